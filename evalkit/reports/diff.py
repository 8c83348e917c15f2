"""Is the candidate really worse than the baseline? Per-task paired tests, Holm-corrected, with a CI verdict.

A task *regresses* when its main score drops by more than ``max_drop`` points (×100 scale) and the drop is
significant after Holm's correction across the tasks compared. A task without per-item scores on both sides
(mteb-native types, published result files) cannot be tested: it regresses on the drop alone, and says so.

Runs that cannot be compared (a task on one side only, different splits or subsets, different data checksums,
dataset revisions or task versions) raise ``NotComparableError`` (exit code 2): a score difference between them
would say nothing about the model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from evalkit.errors import EvalkitError
from evalkit.reports.runs import Run, TaskRun, paired_cells
from evalkit.stats.paired import PairedResult, holm, paired_test


class NotComparableError(EvalkitError):
    """The two runs did not evaluate the same thing."""


@dataclass(frozen=True)
class TaskComparison:
    task: str
    task_type: str
    main_score: str
    baseline: float  # 0-1 scale, as in the result files
    candidate: float
    test: PairedResult | None
    p_adjusted: float | None
    note: str | None  # why there is no test
    regression: bool
    alpha: float = 0.05

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < self.alpha


@dataclass(frozen=True)
class DiffSettings:
    test: str = "bootstrap"
    alpha: float = 0.05
    max_drop: float = 0.0  # points on the ×100 scale
    resamples: int = 10_000
    seed: int = 0


@dataclass(frozen=True)
class RunDiff:
    baseline: Run
    candidate: Run
    settings: DiffSettings
    tasks: list[TaskComparison]

    @property
    def regressions(self) -> list[TaskComparison]:
        return [t for t in self.tasks if t.regression]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def verdict(self) -> str:
        """One line, the last a CI log shows."""
        tolerance = f"{self.settings.max_drop:.2f} points"
        if not self.regressions:
            return (
                f"OK: no task dropped by more than {tolerance} with significance "
                f"(alpha {self.settings.alpha:g}, Holm-corrected over {len(self.tasks)} tasks)"
            )
        named = ", ".join(f"{t.task} ({100 * t.delta:+.2f})" for t in self.regressions)
        return (
            f"REGRESSION: {len(self.regressions)} of {len(self.tasks)} tasks dropped by more than {tolerance} "
            f"with significance: {named}"
        )


def _check_comparable(task: str, base: TaskRun, cand: TaskRun) -> None:
    where = cand.result_file
    if base.cells.keys() != cand.cells.keys():
        raise NotComparableError(
            f"{task}: the runs scored different splits/subsets: {sorted(base.cells)} vs {sorted(cand.cells)}",
            file=where,
            field="scores",
        )
    if base.dataset_revision and cand.dataset_revision and base.dataset_revision != cand.dataset_revision:
        raise NotComparableError(
            f"{task}: different dataset revisions ({base.dataset_revision} vs {cand.dataset_revision})",
            file=where,
            field="dataset_revision",
        )
    if base.task_version is not None and cand.task_version is not None and base.task_version != cand.task_version:
        raise NotComparableError(
            f"{task}: different task versions ({base.task_version} vs {cand.task_version})", file=where, field="version"
        )
    base_sums, cand_sums = base.data_checksums, cand.data_checksums
    if base_sums is not None and cand_sums is not None and base_sums != cand_sums:
        changed = sorted(
            name for name in base_sums.keys() | cand_sums.keys() if base_sums.get(name) != cand_sums.get(name)
        )
        raise NotComparableError(
            f"{task}: the runs read different data ({', '.join(changed)} differ)", file=where, field="data.files"
        )


def diff_runs(
    baseline: Run, candidate: Run, settings: DiffSettings | None = None, *, shared_only: bool = False
) -> RunDiff:
    """Compare every task of the two runs. ``shared_only``: compare the tasks both have (ablations) instead of
    refusing runs whose task sets differ (CI)."""
    settings = settings or DiffSettings()
    names = sorted(baseline.tasks.keys() & candidate.tasks.keys())
    if not shared_only:
        one_sided = sorted(baseline.tasks.keys() ^ candidate.tasks.keys())
        if one_sided:
            side = [f"{n} (only in {'baseline' if n in baseline.tasks else 'candidate'})" for n in one_sided]
            raise NotComparableError(f"tasks missing from one run: {', '.join(side)}", file=candidate.folder)
    if not names:
        raise NotComparableError("the runs share no task", file=candidate.folder)
    tested: list[tuple[str, PairedResult | None, str | None]] = []
    for name in names:
        base, cand = baseline.tasks[name], candidate.tasks[name]
        _check_comparable(name, base, cand)
        cells, why = paired_cells(base, cand)
        if cells is None:
            tested.append((name, None, why))
            continue
        result = paired_test(
            cells, settings.test, alpha=settings.alpha, resamples=settings.resamples, seed=settings.seed
        )
        tested.append((name, result, None))
    adjusted = iter(holm([r.p_value for _, r, _ in tested if r is not None]))
    comparisons = []
    for name, result, why in tested:
        base, cand = baseline.tasks[name], candidate.tasks[name]
        p_adjusted = next(adjusted) if result is not None else None
        baseline_score = result.baseline if result is not None else base.score
        candidate_score = result.candidate if result is not None else cand.score
        drop = 100 * (baseline_score - candidate_score)
        too_far = drop > settings.max_drop + 1e-9 or math.isnan(candidate_score)
        significant = p_adjusted is not None and p_adjusted < settings.alpha
        comparisons.append(
            TaskComparison(
                task=name,
                task_type=base.task_type,
                main_score=base.main_score_name,
                baseline=baseline_score,
                candidate=candidate_score,
                test=result,
                p_adjusted=p_adjusted,
                note=why,
                regression=too_far and (significant or result is None),
                alpha=settings.alpha,
            )
        )
    return RunDiff(baseline=baseline, candidate=candidate, settings=settings, tasks=comparisons)


TEST_NAMES = {
    "bootstrap": "paired bootstrap",
    "permutation": "paired randomisation (permutation) test",
    "ttest": "paired t-test",
}


def describe_settings(settings: DiffSettings, task_count: int) -> str:
    resampled = f", {settings.resamples:,} resamples, seed {settings.seed}" if settings.test != "ttest" else ""
    return (
        f"{TEST_NAMES[settings.test]}{resampled}; Holm-corrected across {task_count} tasks; alpha {settings.alpha:g}; "
        f"max drop {settings.max_drop:.2f} points; {100 * (1 - settings.alpha):g}% confidence intervals"
    )


def comparison_cells(t: TaskComparison) -> dict[str, str]:
    """The formatted values of one row, shared by the text, Markdown and HTML renderings (unescaped)."""
    if t.test is not None:
        ci = f"[{100 * t.test.ci_low:+.2f}, {100 * t.test.ci_high:+.2f}]"
        p = f"{t.test.p_value:.4f}"
        p_adj = f"{t.p_adjusted:.4f}" if t.p_adjusted is not None else ""
        wtl = f"{t.test.wins}/{t.test.ties}/{t.test.losses}"
    else:
        ci, p, p_adj, wtl = "", "", "", ""
    if t.regression:
        verdict = "REGRESSION" + (" (untested)" if t.test is None else "")
    elif t.test is None:
        verdict = f"untested: {t.note}"
    elif t.p_adjusted is not None and t.p_adjusted < t.alpha:
        verdict = "better" if t.delta > 0 else "worse, within tolerance"
    else:
        verdict = "no significant change"
    return {
        "task": t.task,
        "type": t.task_type,
        "main score": t.main_score,
        "baseline": f"{100 * t.baseline:.2f}",
        "candidate": f"{100 * t.candidate:.2f}",
        "delta": f"{100 * t.delta:+.2f}",
        "CI": ci,
        "p": p,
        "p (Holm)": p_adj,
        "W/T/L": wtl,
        "verdict": verdict,
    }


def format_text(diff: RunDiff) -> str:
    rows = [comparison_cells(t) for t in diff.tasks]
    columns = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = [
        f"baseline:  {diff.baseline.label}  ({diff.baseline.folder})",
        f"candidate: {diff.candidate.label}  ({diff.candidate.folder})",
        f"test: {describe_settings(diff.settings, len(diff.tasks))}",
        "",
        "  ".join(c.ljust(widths[c]) for c in columns),
    ]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    lines += ["", diff.verdict()]
    return "\n".join(lines)


def regressions_named(diffs: Sequence[RunDiff]) -> list[str]:
    return [f"{d.candidate.label}: {t.task}" for d in diffs for t in d.regressions]
