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

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.registry.benchmarks import Benchmark, get_benchmark
from evalkit.results.folders import one_per_task, read_model_folder
from evalkit.results.record import TaskRecord, default_task_registry, record_from_mteb
from evalkit.results.task_score import expected_of_spec, expected_of_task, mean_or_none

if TYPE_CHECKING:
    from mteb.abstasks.abstask import AbsTask

load_model_results = read_model_folder  # the name ``evalkit run --benchmark`` calls; one reader behind it


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


def task_score(record: TaskRecord, task: AbsTask) -> tuple[float | None, str | None]:
    """(score, None), or (None, why): the one rule over the cells the (benchmark's) task object ``task`` keeps.

    This is ``result.validate_and_filter_scores(task=task).get_score()`` when every cell is there, and the
    leaderboard's per-task value always: the leaderboard averages the cells without looking at their languages,
    which ``get_score`` would use to skip a cell that lists none.
    """
    return record.score(expected_of_task(task))


def _aggregate_score(bench: Benchmark, name: str, results: dict[str, TaskRecord]) -> tuple[float | None, str | None]:
    members = bench.member_tasks(name)
    absent = [m.metadata.name for m in members if m.metadata.name not in results]
    if absent:
        return None, f"no result file, and {len(absent)} of {len(members)} member tasks missing: {', '.join(absent)}"
    scores = []
    for member in members:
        score, why = task_score(results[member.metadata.name], member)
        if score is None:
            return None, f"member {member.metadata.name}: {why}"
        scores.append(score)
    return sum(scores) / len(scores), f"mean of its {len(members)} member tasks (no result file of its own)"


Loaded = Path | str | Sequence[Any]  # a results folder, or TaskRecords / in-memory mteb TaskResults


def as_records(folder_or_results: Loaded) -> list[TaskRecord]:
    """Records from a results folder (the one reader), or the given records and mteb TaskResults."""
    registry = default_task_registry()
    if isinstance(folder_or_results, (str, Path)):
        return read_model_folder(Path(folder_or_results), registry)
    return [r if isinstance(r, TaskRecord) else record_from_mteb(r, registry=registry) for r in folder_or_results]


def benchmark_scores(folder_or_results: Loaded, benchmark: str | Benchmark) -> BenchmarkScores:
    """Score one model's results on a benchmark: a results folder, or loaded records / mteb TaskResults."""
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    files = as_records(folder_or_results)
    results = one_per_task(files)
    tasks = {task.metadata.name: task for task in bench.mteb_tasks()}

    per_task: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    for name in bench.task_names:
        score: float | None
        if name in bench.not_in_mteb:
            score, why = None, f"not in mteb: {bench.not_in_mteb[name][1]}"
        elif name in results and name in tasks:
            score, why = task_score(results[name], tasks[name])
        elif name in results and name in bench.spec_tasks:
            spec = bench.spec_tasks[name]
            score, why = results[name].score(expected_of_spec(spec.eval_splits, spec.hf_subsets))
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
    per_type = {task_type: mean_or_none(scores) for task_type, scores in by_type.items()}

    used = [results[name] for name in per_task if name in results]
    models = {f.model for f in used} or {f.model for f in files}
    revisions = {f.revision for f in used} or {f.revision for f in files}
    return BenchmarkScores(
        benchmark=bench.name,
        model=models.pop() if len(models) == 1 else None,
        revision=revisions.pop() if len(revisions) == 1 else None,
        per_task=per_task,
        per_type=per_type,
        mean=mean_or_none(list(per_task.values())),
        mean_task_type=mean_or_none(list(per_type.values())),
        missing=[name for name, score in per_task.items() if score is None],
        notes=notes,
    )
