"""A model's benchmark score as the MTEB leaderboard computes it, from the TaskResult files in its results folder.

The rules, all mteb's (mteb/benchmarks/_create_table.py, mteb/results/task_result.py):

- A task's score is the mean main score over the (split, subset) cells the *benchmark's* task object keeps
  (``TaskResult.validate_and_filter_scores(task=...)``): MTEB(eng, v1) scores STS17 on ``en-en`` only, MTEB(cmn, v1)
  scores ATEC on ``test`` only although the file also holds ``validation``. The main score is the one in the task
  metadata (PairClassification ``max_ap``, Ocnli/Cmnli ``max_accuracy``), never chosen here.
- A cell the file lacks, or whose main score is absent or NaN, makes the task's score ``None``, never a mean over
  the cells that happen to be there; a ``None`` task makes its type mean and the benchmark mean ``None``.
- An aggregate task (CQADupstackRetrieval) is scored from its own result file when there is one, which is what the
  leaderboard reads; otherwise from its members, as the plain mean of the member scores, which is what mteb's
  ``AbsTaskAggregate`` would have written into that file.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import DataError
from evalkit.registry.benchmarks import Benchmark, get_benchmark
from evalkit.safe_paths import ensure_within

if TYPE_CHECKING:
    from mteb import TaskResult
    from mteb.abstasks.abstask import AbsTask
    from packaging.version import Version

    from evalkit.registry.tasks import TaskSpec

_NO_REVISION = {None, "", "no_revision_available", "external"}


@dataclass(frozen=True)
class TaskResultFile:
    """One loaded ``<Task>.json`` (any mteb version, converted by mteb), with the model it belongs to."""

    result: TaskResult
    path: Path | None = None
    model: str | None = None
    revision: str | None = None

    @property
    def task_name(self) -> str:
        return str(self.result.task_name)


@dataclass(frozen=True)
class BenchmarkScores:
    """Per-task, per-type and overall scores of one model on one benchmark, on mteb's 0-1 scale."""

    benchmark: str
    model: str | None
    revision: str | None  # None when unknown or when the tasks came from several revisions
    per_task: dict[str, float | None]  # benchmark order
    per_type: dict[str, float | None]  # the leaderboard's per-type columns
    mean: float | None  # the leaderboard's "Mean (Task)"
    mean_task_type: float | None  # the leaderboard's "Mean (TaskType)": mean of the per-type means
    missing: list[str]  # tasks whose score is None, benchmark order
    notes: dict[str, str]  # why a task has no score, or how an aggregate's score was formed


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[:300]}"


def _model_identity(revision_dir: Path) -> tuple[str | None, str | None]:
    """Model name and revision from ``model_meta.json``, else from ``<org>__<model>/<revision>/`` as mteb does.

    Both are labels here, never paths (the renderers escape them): any string is accepted, anything else refused.
    """
    meta_path = revision_dir / "model_meta.json"
    if not meta_path.is_file():
        return revision_dir.parent.name.replace("__", "/") or None, revision_dir.name or None
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad UTF-8 or bad JSON
        raise DataError(f"cannot read model metadata: {_one_line(err)}", file=meta_path) from None
    if not isinstance(meta, dict):
        raise DataError("model metadata must be a JSON object", file=meta_path)
    for key in ("name", "revision"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise DataError(f"'{key}' must be a string", file=meta_path, field=key)
    return meta.get("name"), meta.get("revision")


def load_task_result_file(path: Path, *, model: str | None = None, revision: str | None = None) -> TaskResultFile:
    """Load one file with ``mteb.TaskResult.from_disk``, which converts every older format (pre-1.11 included)."""
    import mteb

    try:
        with warnings.catch_warnings():  # mteb warns about conversions; the scorer reports what matters per task
            warnings.simplefilter("ignore")
            result = mteb.TaskResult.from_disk(Path(path))
    except Exception as err:  # mteb raises anything from OSError to pydantic and KeyError here
        raise DataError(f"cannot load task result: {_one_line(err)}", file=path) from None
    return TaskResultFile(result=result, path=Path(path), model=model, revision=revision)


def _task_files(folder: Path) -> list[Path]:
    """The ``<Task>.json`` files of a folder; one that links outside it is refused (never read)."""
    files = sorted(p for p in folder.glob("*.json") if p.name != "model_meta.json" and p.is_file())
    return [ensure_within(folder, p, what="task result file") for p in files]


def load_model_results(folder: Path) -> list[TaskResultFile]:
    """Every task result of a model: ``folder`` is a revision folder, or a model folder holding revision folders.

    With several revision folders a task can have several files; one is kept per task by mteb's
    ``BenchmarkResults.join_revisions`` rule: a file with scores, then the model's main revision (mteb's registry),
    then a file that records an mteb version, then a real revision over ``no_revision_available``, then the newest
    mteb version. Remaining ties go to the most recently modified file. Returned sorted by task name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a results folder", file=folder)
    revision_dirs = [folder] if _task_files(folder) else [d for d in sorted(folder.iterdir()) if d.is_dir()]
    for revision_dir in revision_dirs:
        ensure_within(folder, revision_dir, what="revision folder")
    files: list[TaskResultFile] = []
    for revision_dir in revision_dirs:
        model, revision = _model_identity(revision_dir) if _task_files(revision_dir) else (None, None)
        files.extend(load_task_result_file(p, model=model, revision=revision) for p in _task_files(revision_dir))
    if not files:
        raise DataError("no task result files (<Task>.json) here or in its revision folders", file=folder)
    return sorted(_one_per_task(files).values(), key=lambda f: f.task_name)


@cache
def _main_revision(model: str | None) -> str | None:
    if model is None:
        return None
    import mteb

    try:
        return mteb.get_model_meta(model).revision
    except Exception:  # unknown to mteb's registry: no main revision to prefer
        return None


def _parse_version(text: str | None) -> Version | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text) if text else None
    except (InvalidVersion, TypeError):
        return None


def _preference(file: TaskResultFile) -> tuple[Any, ...]:
    from packaging.version import Version

    version = _parse_version(file.result.mteb_version)
    mtime = file.path.stat().st_mtime if file.path is not None and file.path.exists() else 0.0
    return (
        bool(file.result.scores),
        file.revision not in _NO_REVISION and file.revision == _main_revision(file.model),
        version is not None,
        file.revision not in _NO_REVISION,
        version or Version("0"),
        mtime,
        str(file.path),
    )


def _one_per_task(files: Sequence[TaskResultFile]) -> dict[str, TaskResultFile]:
    by_task: dict[str, list[TaskResultFile]] = {}
    for file in files:
        by_task.setdefault(file.task_name, []).append(file)
    return {name: group[0] if len(group) == 1 else max(group, key=_preference) for name, group in by_task.items()}


def _finite(value: object) -> float | None:
    """A main score as a float, or None for anything that is not one finite number (NaN, a string, true, 1e400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _is_subset(cell: object) -> bool:
    return isinstance(cell, dict) and isinstance(cell.get("hf_subset"), str)


def task_score(result: TaskResult, task: AbsTask) -> tuple[float | None, str | None]:
    """(score, None), or (None, why): mean main score over the (split, subset) cells task object ``task`` keeps.

    This is ``result.validate_and_filter_scores(task=task).get_score()`` when every cell is there, and the
    leaderboard's per-task value always: the leaderboard averages the cells without looking at their languages,
    which ``get_score`` would use to skip a cell that lists none.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            filtered = result.validate_and_filter_scores(task=task)
    except Exception as err:
        return None, f"result does not fit the task: {_one_line(err)}"
    values: list[float] = []
    for split in task.eval_splits:
        for cell in filtered.scores.get(split, []):
            value = cell.get("main_score")
            where = f"split '{split}' subset '{cell.get('hf_subset')}'"
            if value is None:
                present = sorted(k for k in cell if k not in {"hf_subset", "languages", "main_score", "mteb_version"})
                wanted = task.metadata.main_score
                return None, f"no main score '{wanted}' for {where} (the file has: {', '.join(present) or 'nothing'})"
            number = _finite(value)
            if number is None:
                return None, f"no score for {where}" + ("" if isinstance(value, float) else " (not a number)")
            values.append(number)
    if not values:
        return None, f"no scores for splits {', '.join(task.eval_splits)}"
    return sum(values) / len(values), None


def spec_task_score(result: TaskResult, spec: TaskSpec) -> tuple[float | None, str | None]:
    """(score, None), or (None, why), for a task only an evalkit spec defines (MKQA): the mean main score over
    the spec's (split, subset) cells, each of which must be in the file, as :func:`task_score` requires."""
    values: list[float] = []
    for split in spec.eval_splits:
        cells = {cell.get("hf_subset"): cell for cell in result.scores.get(split, []) if _is_subset(cell)}
        for subset in spec.hf_subsets:
            value = _finite(cells.get(subset, {}).get("main_score"))
            if value is None:
                return None, f"no score for split '{split}' subset '{subset}'"
            values.append(value)
    if not values:
        return None, f"no scores for splits {', '.join(spec.eval_splits)}"
    return sum(values) / len(values), None


def _aggregate_score(
    bench: Benchmark, name: str, results: dict[str, TaskResultFile]
) -> tuple[float | None, str | None]:
    members = bench.member_tasks(name)
    absent = [m.metadata.name for m in members if m.metadata.name not in results]
    if absent:
        return None, f"no result file, and {len(absent)} of {len(members)} member tasks missing: {', '.join(absent)}"
    scores = []
    for member in members:
        score, why = task_score(results[member.metadata.name].result, member)
        if score is None:
            return None, f"member {member.metadata.name}: {why}"
        scores.append(score)
    return sum(scores) / len(scores), f"mean of its {len(members)} member tasks (no result file of its own)"


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def _as_files(folder_or_results: Path | str | Sequence[TaskResultFile | TaskResult]) -> list[TaskResultFile]:
    if isinstance(folder_or_results, (str, Path)):
        return load_model_results(Path(folder_or_results))
    return [r if isinstance(r, TaskResultFile) else TaskResultFile(result=r) for r in folder_or_results]


def benchmark_scores(
    folder_or_results: Path | str | Sequence[TaskResultFile | TaskResult], benchmark: str | Benchmark
) -> BenchmarkScores:
    """Score one model's results on a benchmark: a results folder, or loaded files / mteb TaskResults."""
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    files = _as_files(folder_or_results)
    results = _one_per_task(files)
    tasks = {task.metadata.name: task for task in bench.mteb_tasks()}

    per_task: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for name in bench.task_names:
        score: float | None
        if name in bench.not_in_mteb:
            score, why = None, f"not in mteb: {bench.not_in_mteb[name][1]}"
        elif name in results and name in tasks:
            score, why = task_score(results[name].result, tasks[name])
        elif name in results and name in bench.spec_tasks:
            score, why = spec_task_score(results[name].result, bench.spec_tasks[name])
        elif name in bench.aggregates:
            score, why = _aggregate_score(bench, name, results)
        else:
            score, why = None, "no result file"
        per_task[name] = score
        if why is not None:
            notes[name] = why

    by_type: dict[str, list[float | None]] = {}
    for name, score in per_task.items():
        by_type.setdefault(bench.task_type(name), []).append(score)
    per_type = {task_type: _mean(scores) for task_type, scores in by_type.items()}

    used = [results[name] for name in per_task if name in results]
    models = {f.model for f in used} or {f.model for f in files}
    revisions = {f.revision for f in used} or {f.revision for f in files}
    return BenchmarkScores(
        benchmark=bench.name,
        model=models.pop() if len(models) == 1 else None,
        revision=revisions.pop() if len(revisions) == 1 else None,
        per_task=per_task,
        per_type=per_type,
        mean=_mean(list(per_task.values())),
        mean_task_type=_mean(list(per_type.values())),
        missing=[name for name, score in per_task.items() if score is None],
        notes=notes,
    )
