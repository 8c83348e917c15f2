"""The report verbs of the Python API: ``leaderboard`` and ``diff`` (and ``compare``) over folders or ``Results``.

The CLI's ``leaderboard``/``diff``/``compare`` commands are parsing and printing over these calls, so a notebook
gets the same verdicts and exit codes: ``RunDiff.exit_code`` is 0 or 1, and what cannot be judged is raised as the
``EvalkitError`` the CLI prints with exit code 2.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

from evalkit.registry.benchmarks import Benchmark
from evalkit.reports.compare import compare_runs
from evalkit.reports.diff import DiffSettings, InvalidSettingError, RunDiff, diff_runs
from evalkit.reports.leaderboard import Leaderboard, build_leaderboard, leaderboard_of
from evalkit.reports.leaderboard_stats import IntervalSettings
from evalkit.results.api import Results
from evalkit.results.folders import Run, one_per_task, read_run

RunSource = Path | str | Results


def diff_settings(settings: DiffSettings | None = None, **options: Any) -> DiffSettings:
    """``DiffSettings`` from keyword options (test, alpha, max_drop, resamples, seed), each checked; an unknown
    option is an error naming it, never ignored."""
    known = {f.name for f in fields(DiffSettings)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise InvalidSettingError(f"unknown setting (known: {', '.join(sorted(known))})", field=unknown[0])
    if settings is not None:
        return DiffSettings(**{**{f: getattr(settings, f) for f in known}, **options})
    return DiffSettings(**options)


def as_run(source: RunSource) -> Run:
    """A folder leading to one revision, or a ``Results`` holding exactly one run."""
    return source.run() if isinstance(source, Results) else read_run(source)


def diff(
    baseline: RunSource,
    candidate: RunSource,
    *,
    settings: DiffSettings | None = None,
    shared_only: bool = False,
    **options: Any,
) -> RunDiff:
    """Is the candidate worse than the baseline? ``options``: the CLI's test settings by name, checked before any
    run is read. ``.exit_code`` and ``.verdict()`` are the CLI's; runs that cannot be compared raise.
    ``shared_only``: judge the tasks both runs have, listing the others in ``.not_compared``."""
    checked = diff_settings(settings, **options)
    return diff_runs(as_run(baseline), as_run(candidate), checked, shared_only=shared_only)


def compare(
    baseline: RunSource, runs: Sequence[RunSource], *, settings: DiffSettings | None = None, **options: Any
) -> list[RunDiff]:
    """Every run against ``baseline`` on the tasks they share (one Holm family per run), as ``evalkit compare``."""
    checked = diff_settings(settings, **options)
    return compare_runs(as_run(baseline), [as_run(run) for run in runs], checked)


def leaderboard(
    results_or_folders: Results | Path | str | Sequence[Path | str | Results],
    benchmark: str | Benchmark | None = None,
    *,
    each_revision: bool = False,
    rank_intervals: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    speed: bool = False,
) -> Leaderboard:
    """Models × tasks with MTEB's means and Borda rank; a row per model (its revisions joined as mteb joins them),
    or per revision with ``each_revision``. Folders and ``Results`` may be mixed.

    ``rank_intervals``: each row's 95% rank interval by two resampling units, within tasks (per-item scores of
    evalkit runs) and across tasks (every row with all tasks), from ``resamples`` resamples drawn from ``seed``;
    ``speed``: encode speed, peak memory, device and precision from the run records. ``.to_dataframe()`` gives the
    table with these columns; ``.rows`` the same as records."""
    intervals = IntervalSettings(resamples=resamples, seed=seed) if rank_intervals else None
    options: dict[str, Any] = {"intervals": intervals, "speed": speed}
    single = isinstance(results_or_folders, (str, Path, Results))
    sources = [results_or_folders] if single else list(results_or_folders)  # type: ignore[arg-type]
    if not any(isinstance(s, Results) for s in sources):
        return build_leaderboard([Path(s) for s in sources], benchmark, each_revision=each_revision, **options)
    logging.getLogger("mteb").setLevel(logging.ERROR)
    loaded: list[tuple[str, list]] = []
    for source in sources:
        results = source if isinstance(source, Results) else _folder_results(source)
        loaded += _rows_of(results, each_revision)
    return leaderboard_of(loaded, benchmark, **options)


def _folder_results(folder: Path | str) -> Results:
    from evalkit.results.api import load_results

    return load_results(folder)


def _rows_of(results: Results, each_revision: bool) -> list[tuple[str, list]]:
    if each_revision:
        return [(run.model, list(run.tasks.values())) for run in results.runs]
    by_model: dict[str, list] = {}
    for run in results.runs:
        by_model.setdefault(run.model, []).extend(run.tasks.values())
    return [(model, sorted(one_per_task(group).values(), key=lambda r: r.name)) for model, group in by_model.items()]
