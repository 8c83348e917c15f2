"""How many queries or pairs a regression check needs to detect a given drop at 80% power (``evalkit plan``).

The spread comes from a baseline run's per-item scores, never from a made-up SD: without a baseline the plan is
refused. Only one system's scores are known, so the SD of the paired differences is approximated as
``sqrt(2 (1 - rho)) * sd`` with both systems assumed to have the same per-item SD and to correlate per item with
``rho = 0.5`` (so the differences' SD is the baseline's per-item SD); two close checkpoints usually correlate
more, which makes this conservative. Tasks are planned as one Holm family (alpha / number of tasks), as ``diff``
judges them; the formula is ``evalkit.stats.power``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.errors import DataError, EvalkitError
from evalkit.reports.runs import load_run, paired_cells
from evalkit.stats.power import ASSUMED_CORRELATION, POWER, difference_sd, items_needed, per_item_sd, z_sum


@dataclass(frozen=True)
class TaskPlan:
    task: str
    items: int  # queries or pairs the baseline scored
    item_sd: float  # the baseline's per-item SD (0-1 scale)
    difference_sd: float  # assumed SD of paired differences
    needed: int  # items that detect ``max_drop`` at 80% power
    detectable_drop: float  # 0-1 scale, what the baseline's own size detects

    @property
    def enough(self) -> bool:
        return self.items >= self.needed


@dataclass(frozen=True)
class Plan:
    max_drop: float  # points
    alpha: float
    tasks: list[TaskPlan]

    def format_text(self) -> str:
        lines = [
            f"items needed to detect a drop of {self.max_drop:.2f} points at {POWER:.0%} power "
            f"(two-sided alpha {self.alpha:g} / {len(self.tasks)} tasks; paired differences' SD assumed "
            f"sqrt(2(1-rho)) x the baseline's per-item SD, rho {ASSUMED_CORRELATION})",
        ]
        for t in self.tasks:
            verdict = "enough" if t.enough else "too few"
            lines.append(
                f"{t.task}: needs {t.needed:,} items; the baseline has {t.items:,} ({verdict}: they detect "
                f"{100 * t.detectable_drop:.2f} points); per-item SD {100 * t.item_sd:.2f} points"
            )
        return "\n".join(lines) + "\n"


def plan_check(tasks: Sequence[str], max_drop: float, baseline: Path | str | None, *, alpha: float = 0.05) -> Plan:
    """Items each of ``tasks`` needs for ``evalkit diff`` to detect a drop of ``max_drop`` points at 80% power."""
    if baseline is None:
        message = "needed: the items a check needs follow from a baseline run's per-item spread (never an assumed SD)"
        raise EvalkitError(message, field="--baseline")
    if not max_drop > 0 or max_drop != max_drop:
        raise EvalkitError(f"must be > 0 points, got {max_drop!r}", field="--max-drop")
    if not 0 < alpha < 1:
        raise EvalkitError(f"must be in (0, 1), got {alpha!r}", field="--alpha")
    run = load_run(baseline)
    level = alpha / len(tasks)
    planned = []
    for name in tasks:
        record = run.tasks.get(name)
        if record is None:
            raise DataError(f"{name}: not in the baseline run", file=run.folder)
        cells, why = paired_cells(record, record)
        if cells is None:
            raise DataError(f"{name}: cannot plan from the baseline ({why})", file=record.result_file)
        item_sd = per_item_sd(cells)
        sd = difference_sd(item_sd)
        items = sum(cell.n for cell in cells)
        planned.append(
            TaskPlan(
                task=name,
                items=items,
                item_sd=item_sd,
                difference_sd=sd,
                needed=items_needed(sd, max_drop / 100, level, POWER),
                detectable_drop=z_sum(level, POWER) * sd / items**0.5,
            )
        )
    return Plan(max_drop=max_drop, alpha=alpha, tasks=planned)
