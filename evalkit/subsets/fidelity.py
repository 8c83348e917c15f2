"""Does a quick subset rank runs and judge regressions as the full task does? Fidelity over a panel of runs.

A quick subset is only useful if what it says about a model is what the full task would say. This measures that
on runs the user has: each panel entry is one run (a label) scored on the full task and on its subset. Per task,
over the runs holding it on both sides: Spearman and Kendall τ-b between full and subset main scores (does the
subset order the runs alike), the mean and largest absolute score shift (subset − full), and whether ``diff``'s
verdict against the baseline (regression / improvement / worse within tolerance / no significant change) is the
same on the subset as on the full task, with the same settings and the same Holm family of tasks on both sides.

Scores are the result files' main scores and verdicts are ``evalkit.reports.diff``'s: nothing is re-scored or
re-judged here. Runs that cannot be compared (different data, different subsets) raise as ``diff`` raises (exit 2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from evalkit.errors import DataError, EvalkitError
from evalkit.reports.api import RunSource, as_run
from evalkit.reports.diff import DiffSettings, RunDiff, TaskComparison, diff_runs
from evalkit.reports.identity import subset_of
from evalkit.results.folders import Run

if TYPE_CHECKING:
    from evalkit.subsets.separable import SeparableSummary

__all__ = ["FidelityReport", "PanelError", "RunScores", "TaskFidelity", "subset_fidelity", "verdict_of"]

REGRESSION = "regression"
IMPROVEMENT = "improvement"
WORSE_WITHIN = "worse, within tolerance"
NO_CHANGE = "no significant change"
POOLED = "all tasks"
# How fp32 vectors were computed, not which model: ONNX Runtime, OpenVINO and torch agree to ~1e-6 in fp32. In bf16
# they do not (~3e-3 between torch's and OpenVINO's kernels), so there the runtime is part of what is compared.
RUNTIME_KEYS = frozenset({"runtime"})
TIE_WITHIN = 1e-6  # result files keep 6 decimals: closer scores are one score, not an order

PanelEntry = tuple[str, RunSource | Run, RunSource | Run]


class PanelError(EvalkitError):
    """A panel that cannot measure fidelity: a label twice, no baseline, a full run on a subset, ..."""


def verdict_of(comparison: TaskComparison) -> str:
    """``diff``'s verdict on one task as one of four words; the CLI's row verdict without its test details."""
    if comparison.regression:
        return REGRESSION
    if comparison.significant:
        return IMPROVEMENT if comparison.delta > 0 else WORSE_WITHIN
    return NO_CHANGE


@dataclass(frozen=True)
class RunScores:
    """One run on one task: main scores (0-1, as in the result files) and verdicts against the baseline."""

    label: str
    full: float
    subset: float
    full_verdict: str | None  # None for the baseline itself
    subset_verdict: str | None

    @property
    def shift(self) -> float:
        return self.subset - self.full

    @property
    def agrees(self) -> bool | None:
        return None if self.full_verdict is None else self.full_verdict == self.subset_verdict


@dataclass(frozen=True)
class TaskFidelity:
    """How well one task's subset (or, for the pooled row, every task's) stands in for the full task."""

    task: str
    runs: int
    spearman: float  # NaN: fewer than two runs, or a constant side
    kendall: float  # τ-b
    mean_abs_shift: float  # 0-1 scale
    max_abs_shift: float
    verdicts: int  # non-baseline runs judged on both sides
    agreements: int
    disagreements: tuple[str, ...]  # "<label>: <full verdict> on the full task, <subset verdict> on the subset"
    scores: tuple[RunScores, ...] = ()
    separable: SeparableSummary | None = None  # pairs the full task separates, kept in order? None: not measured

    def to_dict(self) -> dict[str, Any]:
        """Plain values (NaN as None), scores on the 0-1 scale of the result files."""
        return {
            "task": self.task,
            "runs": self.runs,
            "spearman": _plain(self.spearman),
            "kendall_tau_b": _plain(self.kendall),
            "mean_abs_shift": _plain(self.mean_abs_shift),
            "max_abs_shift": _plain(self.max_abs_shift),
            "verdicts": self.verdicts,
            "agreements": self.agreements,
            "disagreements": list(self.disagreements),
            "separable": None if self.separable is None else self.separable.to_dict(),
            "scores": [
                {
                    "label": s.label,
                    "full": s.full,
                    "subset": s.subset,
                    "shift": s.shift,
                    "full_verdict": s.full_verdict,
                    "subset_verdict": s.subset_verdict,
                }
                for s in self.scores
            ],
        }


@dataclass(frozen=True)
class FidelityReport:
    """Per-task fidelity, a pooled row (correlations averaged over tasks, shifts and verdicts over all cells)."""

    baseline: str
    settings: DiffSettings
    tasks: tuple[TaskFidelity, ...]
    pooled: TaskFidelity
    not_compared: tuple[str, ...] = ()  # "<label>: <task> (full only | subset only)", or a task the baseline lacks

    @property
    def min_kendall(self) -> float:
        """The worst task's τ-b (NaN when no task has one): the number a fidelity target is held to."""
        values = [t.kendall for t in self.tasks if math.isfinite(t.kendall)]
        return min(values) if values else math.nan

    @property
    def min_separable_tau(self) -> float:
        """The worst task's τ over the pairs the full task separates (NaN when no task has one)."""
        values = [t.separable.tau for t in self.tasks if t.separable is not None and math.isfinite(t.separable.tau)]
        return min(values) if values else math.nan

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-ready values (no pandas)."""
        return {
            "baseline": self.baseline,
            "settings": {
                "test": self.settings.test,
                "alpha": self.settings.alpha,
                "max_drop": self.settings.max_drop,
                "resamples": self.settings.resamples,
                "seed": self.settings.seed,
            },
            "tasks": [t.to_dict() for t in self.tasks],
            "pooled": self.pooled.to_dict(),
            "min_kendall_tau_b": _plain(self.min_kendall),
            "min_separable_tau": _plain(self.min_separable_tau),
            "not_compared": list(self.not_compared),
        }

    def to_markdown(self) -> str:
        from evalkit.subsets.fidelity_format import format_markdown

        return format_markdown(self)


def _plain(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _run_of(source: RunSource | Run) -> Run:
    return source if isinstance(source, Run) else as_run(source)


@dataclass(frozen=True)
class Member:
    label: str
    full: Run
    subset: Run

    @property
    def tasks(self) -> set[str]:
        return self.full.tasks.keys() & self.subset.tasks.keys()


def _check_sides(label: str, full: Run, subset: Run) -> None:
    """The full side ran full tasks, the subset side subsets, both the same model: else the panel is mislabelled."""
    for name, record in full.tasks.items():
        if subset_of(record) is not None:
            raise PanelError(f"{label}: the full run scored '{name}' on a subset", file=record.result_file)
    for name, record in subset.tasks.items():
        if subset_of(record) is None:
            raise PanelError(f"{label}: the subset run scored the full '{name}', not a subset", file=record.result_file)
    if full.model != subset.model:
        raise PanelError(f"{label}: the full and subset runs are of different models ({full.model} vs {subset.model})")
    fp32 = full.settings.get("precision", "fp32") == "fp32"
    shared = (full.settings.keys() & subset.settings.keys()) - (RUNTIME_KEYS if fp32 else frozenset())
    changed = sorted(key for key in shared if full.settings[key] != subset.settings[key])
    if changed:
        raise PanelError(f"{label}: the full and subset runs differ in settings ({', '.join(changed)})")


def _members(panel: Sequence[PanelEntry], baseline: str) -> list[Member]:
    members: list[Member] = []
    for entry in panel:
        if not isinstance(entry, (tuple, list)) or len(entry) != 3 or not isinstance(entry[0], str) or not entry[0]:
            raise PanelError("each panel entry is (label, full run, subset run) with a non-empty label")
        label = entry[0]
        if any(m.label == label for m in members):
            raise PanelError(f"label '{label}' is given twice", field="label")
        full, subset = _run_of(entry[1]), _run_of(entry[2])
        _check_sides(label, full, subset)
        members.append(Member(label, full, subset))
    if not any(m.label == baseline for m in members):
        raise PanelError(f"the baseline '{baseline}' is not a label of the panel", field="baseline")
    if len(members) < 2:
        raise PanelError("a panel needs the baseline and at least one other run")
    return members


def _one_sided(members: list[Member]) -> list[str]:
    notes = []
    for m in members:
        notes += [f"{m.label}: {t} (full only)" for t in sorted(m.full.tasks.keys() - m.subset.tasks.keys())]
        notes += [f"{m.label}: {t} (subset only)" for t in sorted(m.subset.tasks.keys() - m.full.tasks.keys())]
    return notes


def only(run: Run, tasks: set[str]) -> Run:
    return replace(run, tasks={name: record for name, record in run.tasks.items() if name in tasks})


def _verdicts(
    base: Member, member: Member, settings: DiffSettings, full: RunDiff | None = None
) -> dict[str, tuple[str, str]]:
    """task → (verdict on the full task, verdict on the subset), over the tasks both runs have on both sides, so
    both diffs correct over the same family of tasks. ``full``: that full-task diff, when already computed."""
    tasks = base.tasks & member.tasks
    if not tasks:
        return {}
    if full is None:
        full = diff_runs(only(base.full, tasks), only(member.full, tasks), settings, power=False)
    subset: RunDiff = diff_runs(only(base.subset, tasks), only(member.subset, tasks), settings, power=False)
    on_subset = {t.task: verdict_of(t) for t in subset.tasks}
    return {t.task: (verdict_of(t), on_subset[t.task]) for t in full.tasks}


def main_score(run: Run, task: str) -> float:
    record = run.tasks[task]
    score, why = record.score()
    if score is None or not math.isfinite(score):
        raise DataError(f"{task}: no finite main score ({why})", file=record.result_file)
    return score


def _correlations(full: list[float], subset: list[float]) -> tuple[float, float]:
    """Spearman and Kendall τ-b across the panel; NaN where undefined (under two runs, a constant side)."""
    if len(full) < 2:
        return math.nan, math.nan
    from scipy import stats

    full, subset = _tied(full), _tied(subset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a constant side: scipy warns and returns NaN, which is the answer
        spearman = float(stats.spearmanr(full, subset).statistic)
        kendall = float(stats.kendalltau(full, subset).statistic)
    return spearman, kendall


def _tied(scores: list[float]) -> list[float]:
    """Scores within ``TIE_WITHIN`` of their neighbour in sorted order made equal (ties, as τ-b counts them): two
    runs that differ by float rounding (an ablation that cannot change a score) must not count as ordered."""
    tied = list(scores)
    order = sorted(range(len(scores)), key=scores.__getitem__)
    for previous, current in pairwise(order):
        if scores[current] - scores[previous] <= TIE_WITHIN:
            tied[current] = tied[previous]
    return tied


def _task_row(task: str, scores: list[RunScores]) -> TaskFidelity:
    spearman, kendall = _correlations([s.full for s in scores], [s.subset for s in scores])
    judged = [s for s in scores if s.agrees is not None]
    shifts = [abs(s.shift) for s in scores]
    return TaskFidelity(
        task=task,
        runs=len(scores),
        spearman=spearman,
        kendall=kendall,
        mean_abs_shift=sum(shifts) / len(shifts),
        max_abs_shift=max(shifts),
        verdicts=len(judged),
        agreements=sum(bool(s.agrees) for s in judged),
        disagreements=tuple(
            f"{s.label}: {s.full_verdict} on the full task, {s.subset_verdict} on the subset"
            for s in judged
            if not s.agrees
        ),
        scores=tuple(scores),
    )


def _pooled(rows: list[TaskFidelity]) -> TaskFidelity:
    cells = [s for row in rows for s in row.scores]
    shifts = [abs(s.shift) for s in cells]

    def mean_of(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return sum(finite) / len(finite) if finite else math.nan

    return TaskFidelity(
        task=POOLED,
        runs=len({s.label for s in cells}),
        spearman=mean_of([r.spearman for r in rows]),
        kendall=mean_of([r.kendall for r in rows]),
        mean_abs_shift=sum(shifts) / len(shifts) if shifts else math.nan,
        max_abs_shift=max(shifts) if shifts else math.nan,
        verdicts=sum(r.verdicts for r in rows),
        agreements=sum(r.agreements for r in rows),
        disagreements=tuple(f"{r.task}: {d}" for r in rows for d in r.disagreements),
    )


def subset_fidelity(
    panel: Sequence[PanelEntry], *, baseline: str, settings: DiffSettings | None = None, pairs: bool = True
) -> FidelityReport:
    """Fidelity of quick subsets over a panel of ``(label, full run, subset run)`` (folders, ``Results`` or runs).

    ``baseline`` is the label every other run is diffed against, with ``settings`` (``diff``'s, e.g. ``max_drop``)
    on the full tasks and on the subsets alike. A task is measured over the runs that hold it on both sides, when
    the baseline does too; what is on one side only is listed in ``not_compared``. Raises ``EvalkitError``
    (exit 2) for a malformed panel and ``diff``'s errors for runs that cannot be compared. ``pairs``: also diff
    every pair of runs on the full tasks and count, per task, the pairs it separates that keep their order on the
    subset (``TaskFidelity.separable``; one full-task diff per pair, n·(n − 1)/2 in all: ``False`` skips them).
    """
    from evalkit.subsets import separable

    settings = settings or DiffSettings()
    members = _members(panel, baseline)
    base = next(m for m in members if m.label == baseline)
    diffs = separable.pair_diffs(members, base, settings) if pairs else {}
    verdicts = {
        m.label: _verdicts(base, m, settings, diffs.get((base.label, m.label))) for m in members if m is not base
    }
    not_compared = _one_sided(members)
    all_tasks = sorted(set().union(*(m.tasks for m in members)))
    not_compared += [f"{t} (not in the baseline's runs)" for t in all_tasks if t not in base.tasks]
    rows = []
    for task in (t for t in all_tasks if t in base.tasks):
        scores = []
        for m in (m for m in members if task in m.tasks):
            full_verdict, subset_verdict = verdicts.get(m.label, {}).get(task, (None, None))
            scores.append(
                RunScores(m.label, main_score(m.full, task), main_score(m.subset, task), full_verdict, subset_verdict)
            )
        row = _task_row(task, scores)
        if pairs:
            row = replace(
                row, separable=separable.separable_summary(task, [m for m in members if task in m.tasks], diffs)
            )
        rows.append(row)
    if not rows:
        raise PanelError("the baseline scored no task on both the full task and its subset")
    pooled = _pooled(rows)
    if pairs:
        pooled = replace(
            pooled, separable=separable.pooled_summary(r.separable for r in rows if r.separable is not None)
        )
    return FidelityReport(baseline, settings, tuple(rows), pooled, tuple(not_compared))
