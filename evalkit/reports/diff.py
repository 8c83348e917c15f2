"""Is the candidate really worse than the baseline? Per-task paired tests, Holm-corrected, with a CI verdict.

A task *regresses* when its main score drops by more than ``max_drop`` points (×100 scale) and the drop is
significant after Holm's correction across the tasks compared. A task without per-item scores on both sides
(mteb-native types, published result files) cannot be tested: it regresses on the drop alone, and says so.

Runs that cannot be compared (a task on one side only unless ``shared_only``, different splits or subsets,
different data content, dataset revisions or task versions: ``evalkit.reports.identity``) raise
``NotComparableError`` (exit code 2): a score difference between them would say nothing about the model.

Each tested task also says what it could detect: the smallest true drop found at 80% power given its paired
per-item differences (``evalkit.stats.power``), and whether that is larger than ``max_drop`` (too small a check).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from evalkit.errors import DataError, EvalkitError
from evalkit.reports.escape import escape_terminal
from evalkit.reports.identity import NotComparableError, check_comparable
from evalkit.reports.runs import Run, paired_cells
from evalkit.results.record import TaskRecord
from evalkit.stats.paired import TESTS, PairedItems, PairedResult, holm, paired_test
from evalkit.stats.power import POWER, detectable_drop

__all__ = ["DiffSettings", "NotComparableError", "RunDiff", "TaskComparison", "diff_runs"]

if TYPE_CHECKING:
    import pandas as pd

MAX_RESAMPLES = 1_000_000  # beyond this a CI job runs for hours and the p-value gains nothing
MAX_SEED = 2**63 - 1


class InvalidSettingError(EvalkitError):
    """A test setting that would make the verdict meaningless (``field`` names the setting)."""


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
    detectable_drop: float | None = None  # 0-1 scale, smallest true drop found at 80% power; None: untested
    max_drop: float = 0.0  # points, the setting it was judged with

    @property
    def too_small(self) -> bool:
        """The check cannot detect a drop of ``max_drop`` at 80% power (only said when a tolerance is set)."""
        return self.detectable_drop is not None and self.max_drop > 0 and 100 * self.detectable_drop > self.max_drop

    @property
    def delta(self) -> float:
        return self.candidate - self.baseline

    @property
    def significant(self) -> bool:
        return self.p_adjusted is not None and self.p_adjusted < self.alpha


@dataclass(frozen=True)
class DiffSettings:
    """How a drop is judged. Checked on construction, before any run is read: a NaN tolerance or an alpha of 5
    would turn every regression into "OK"."""

    test: str = "bootstrap"
    alpha: float = 0.05
    max_drop: float = 0.0  # points on the ×100 scale
    resamples: int = 10_000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.test not in TESTS:
            raise InvalidSettingError(f"unknown test {self.test!r} (known: {', '.join(TESTS)})", field="test")
        if not _real(self.alpha) or not 0 < self.alpha < 1:
            raise InvalidSettingError(f"must be a number in (0, 1), got {self.alpha!r}", field="alpha")
        if not _real(self.max_drop) or self.max_drop < 0:
            raise InvalidSettingError(f"must be finite points >= 0, got {self.max_drop!r}", field="max_drop")
        if not _integer(self.resamples) or not 1 <= self.resamples <= MAX_RESAMPLES:
            message = f"must be an integer in [1, {MAX_RESAMPLES}], got {self.resamples!r}"
            raise InvalidSettingError(message, field="resamples")
        if not _integer(self.seed) or not 0 <= self.seed <= MAX_SEED:
            raise InvalidSettingError(f"must be an integer in [0, 2**63 - 1], got {self.seed!r}", field="seed")


def _real(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunDiff:
    baseline: Run
    candidate: Run
    settings: DiffSettings
    tasks: list[TaskComparison]
    not_compared: tuple[str, ...] = ()  # with shared_only: "<task> (only in baseline|candidate)"

    @property
    def regressions(self) -> list[TaskComparison]:
        return [t for t in self.tasks if t.regression]

    @property
    def exit_code(self) -> int:
        """The CLI's: 1 for a significant regression, else 0 (what cannot be judged was raised, exit 2)."""
        return 1 if self.regressions else 0

    def to_dataframe(self) -> pd.DataFrame:
        """One row per task: scores (0-1), delta, interval, p-values, wins/ties/losses and the CLI's verdict."""
        import pandas as pd

        rows = []
        for t in self.tasks:
            test = t.test
            rows.append(
                {
                    "task": t.task,
                    "type": t.task_type,
                    "main_score": t.main_score,
                    "baseline": t.baseline,
                    "candidate": t.candidate,
                    "delta": t.delta,
                    "ci_low": test.ci_low if test else math.nan,
                    "ci_high": test.ci_high if test else math.nan,
                    "p": test.p_value if test else math.nan,
                    "p_holm": t.p_adjusted if t.p_adjusted is not None else math.nan,
                    "wins": test.wins if test else None,
                    "ties": test.ties if test else None,
                    "losses": test.losses if test else None,
                    "detectable_drop": t.detectable_drop if t.detectable_drop is not None else math.nan,
                    "too_small": t.too_small,
                    "regression": t.regression,
                    "verdict": comparison_cells(t)["verdict"],
                }
            )
        return pd.DataFrame(rows)

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


def _finite_scores(base: TaskRecord, cand: TaskRecord, baseline: float, candidate: float, source: str) -> None:
    """A drop from or to NaN is no verdict, neither "OK" nor "regression": refuse it (exit 2)."""
    for side, score in ((base, baseline), (cand, candidate)):
        if not math.isfinite(score):
            raise DataError(f"{base.name}: {source} no finite main score, nothing to judge", file=side.result_file)


def _file_scores(base: TaskRecord, cand: TaskRecord) -> tuple[float, float]:
    """Both sides' task scores by the one rule; a missing one (a cell, a NaN or null main score) is refused."""
    scores = []
    for side in (base, cand):
        score, why = side.score()
        if score is None:
            raise DataError(
                f"{base.name}: the result file gives no finite main score, nothing to judge ({why})",
                file=side.result_file,
            )
        scores.append(score)
    return scores[0], scores[1]


def _prepare(name: str, base: TaskRecord, cand: TaskRecord) -> tuple[list[PairedItems] | None, str | None]:
    """Everything that can refuse a task, before any test runs: comparability, per-item rows, finite scores."""
    check_comparable(name, base, cand)
    cells, why = paired_cells(base, cand)
    if cells is None:
        _file_scores(base, cand)
    return cells, why


def _test_task(
    name: str, base: TaskRecord, cand: TaskRecord, cells: list[PairedItems], settings: DiffSettings
) -> PairedResult:
    result = paired_test(cells, settings.test, alpha=settings.alpha, resamples=settings.resamples, seed=settings.seed)
    _finite_scores(base, cand, result.baseline, result.candidate, "the per-item scores give")
    if not math.isfinite(result.p_value):  # Holm over a NaN would sort it anywhere
        raise DataError(f"{name}: the {settings.test} test gave no p-value", file=cand.per_item_file)
    return result


def _judge(
    base: TaskRecord,
    cand: TaskRecord,
    result: PairedResult | None,
    why: str | None,
    p_adjusted: float | None,
    settings: DiffSettings,
    detectable: float | None,
) -> TaskComparison:
    if result is not None:
        baseline_score, candidate_score = result.baseline, result.candidate
    else:
        baseline_score, candidate_score = _file_scores(base, cand)
    too_far = 100 * (baseline_score - candidate_score) > settings.max_drop + 1e-9
    significant = p_adjusted is not None and p_adjusted < settings.alpha
    return TaskComparison(
        task=base.name,
        task_type=base.task_type,
        main_score=base.main_score_name,
        baseline=baseline_score,
        candidate=candidate_score,
        test=result,
        p_adjusted=p_adjusted,
        note=why,
        regression=too_far and (significant or result is None),
        alpha=settings.alpha,
        detectable_drop=detectable,
        max_drop=settings.max_drop,
    )


def _one_sided(baseline: Run, candidate: Run) -> list[str]:
    return [
        f"{n} (only in {'baseline' if n in baseline.tasks else 'candidate'})"
        for n in sorted(baseline.tasks.keys() ^ candidate.tasks.keys())
    ]


def diff_runs(
    baseline: Run,
    candidate: Run,
    settings: DiffSettings | None = None,
    *,
    shared_only: bool = False,
    power: bool = True,
) -> RunDiff:
    """Compare every task of the two runs. ``shared_only``: judge the tasks both have and list the others in
    ``RunDiff.not_compared``, instead of refusing runs whose task sets differ (exit 2, the CI default).
    ``power=False`` leaves ``detectable_drop`` unset: a caller that only reads verdicts (the subset report's many
    pairwise diffs) skips the power search, about a quarter of a diff's time."""
    settings = settings or DiffSettings()
    names = sorted(baseline.tasks.keys() & candidate.tasks.keys())
    one_sided = _one_sided(baseline, candidate)
    if one_sided and not shared_only:
        raise NotComparableError(f"tasks missing from one run: {', '.join(one_sided)}", file=candidate.folder)
    if not names:
        raise NotComparableError("the runs share no task", file=candidate.folder)
    pairs = {name: (baseline.tasks[name], candidate.tasks[name]) for name in names}
    prepared = {name: _prepare(name, *pairs[name]) for name in names}
    results = {
        name: None if cells is None else _test_task(name, *pairs[name], cells, settings)
        for name, (cells, _) in prepared.items()
    }
    tested = sum(result is not None for result in results.values())
    adjusted = iter(holm([r.p_value for r in results.values() if r is not None]))
    comparisons = []
    for name, result in results.items():
        p_adjusted = next(adjusted) if result is not None else None
        cells = prepared[name][0]
        detectable = None if cells is None or not power else detectable_drop(cells, settings.alpha / tested, POWER)
        comparisons.append(_judge(*pairs[name], result, prepared[name][1], p_adjusted, settings, detectable))
    return RunDiff(
        baseline=baseline, candidate=candidate, settings=settings, tasks=comparisons, not_compared=tuple(one_sided)
    )


TEST_NAMES = {
    "bootstrap": "paired bootstrap",
    "permutation": "paired randomisation (permutation) test",
    "ttest": "paired t-test",
}


def describe_settings(settings: DiffSettings, task_count: int) -> str:
    resampled = f", {settings.resamples:,} resamples, seed {settings.seed}" if settings.test != "ttest" else ""
    return (
        f"{TEST_NAMES[settings.test]}{resampled}; Holm-corrected across {task_count} tasks; alpha {settings.alpha:g}; "
        f"max drop {settings.max_drop:.2f} points; {100 * (1 - settings.alpha):g}% confidence intervals; "
        f"detectable: smallest drop (points) found at {POWER:.0%} power, two-sided at alpha / tasks tested"
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
        "detectable": detectable_cell(t),
        "verdict": verdict,
    }


def detectable_cell(t: TaskComparison) -> str:
    """The smallest drop (points) found at 80% power, marked when it exceeds ``--max-drop``."""
    if t.detectable_drop is None:
        return ""
    return f"{100 * t.detectable_drop:.2f}" + (" (too small)" if t.too_small else "")


def notes(diff: RunDiff) -> list[str]:
    """Plain sentences under the table: tasks too small to detect the tolerance, tasks not compared."""
    lines = []
    for t in diff.tasks:
        if t.too_small:
            lines.append(
                f"{t.task}: too small to detect a drop of {t.max_drop:.2f} points at {POWER:.0%} power "
                f"({t.test.n if t.test else 0} items detect {100 * (t.detectable_drop or 0):.2f} points)"
            )
    if diff.not_compared:
        lines.append(f"not compared (one run only): {', '.join(diff.not_compared)}")
    return lines


def format_text(diff: RunDiff) -> str:
    """The terminal table: every name read from a file shown inert (no escape sequence reaches the terminal)."""
    rows = [{c: escape_terminal(v) for c, v in comparison_cells(t).items()} for t in diff.tasks]
    columns = list(rows[0]) if rows else []
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    lines = [
        f"baseline:  {escape_terminal(diff.baseline.label)}  ({escape_terminal(diff.baseline.folder)})",
        f"candidate: {escape_terminal(diff.candidate.label)}  ({escape_terminal(diff.candidate.folder)})",
        f"test: {describe_settings(diff.settings, len(diff.tasks))}",
        "",
        "  ".join(c.ljust(widths[c]) for c in columns),
    ]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in columns) for r in rows]
    extra = [escape_terminal(line) for line in notes(diff)]
    lines += ["", *extra, escape_terminal(diff.verdict())] if extra else ["", escape_terminal(diff.verdict())]
    return "\n".join(lines)


def regressions_named(diffs: Sequence[RunDiff]) -> list[str]:
    return [f"{d.candidate.label}: {t.task}" for d in diffs for t in d.regressions]
