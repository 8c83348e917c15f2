"""Per-language scores of a multilingual benchmark, read from its result files, as the BGE-M3 paper tabulates them.

The paper's MIRACL and MKQA tables give one column per language and their plain average over languages. Here a
benchmark names the scores to tabulate (``language_table`` in its YAML file); each of its tasks gives one table per
eval split, with a row per hf subset (a language) in the task's order. Every value is read from a TaskResult file,
none is recomputed. An average is only given when every language has its score: like a benchmark mean, it is
never taken over the languages that happen to be there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evalkit.registry.benchmarks import Benchmark, get_benchmark
from evalkit.results.benchmark_scores import as_records
from evalkit.results.record import TaskRecord
from evalkit.results.task_score import cells_of, finite, subset_of


@dataclass(frozen=True)
class LanguageTable:
    """One task's scores on one split, per language (hf subset), and their average over languages (0-1 scale)."""

    task: str
    split: str
    metrics: tuple[str, ...]
    languages: tuple[str, ...]  # hf subsets, in the task's order
    scores: dict[str, dict[str, float | None]]  # language → metric → score; None when the file lacks it
    average: dict[str, float | None]  # metric → mean over the languages; None when any language lacks it
    note: str | None = None  # why the whole table is empty (no result file)


def _task_layout(bench: Benchmark, name: str) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """(eval splits, hf subsets) of one benchmark task as the benchmark restricts it; ``None`` for a task that
    has neither an mteb task object nor a spec (listed under ``not_in_mteb``, or an aggregate)."""
    if name in bench.spec_tasks:
        spec = bench.spec_tasks[name]
        return tuple(spec.eval_splits), tuple(spec.hf_subsets)
    task = next((t for t in bench.mteb_tasks() if t.metadata.name == name), None)
    if task is None or task.is_aggregate:
        return None
    return tuple(task.eval_splits), tuple(task.hf_subsets)


def _cell_value(record: TaskRecord | None, split: str, subset: str, metric: str) -> float | None:
    if record is None:
        return None
    cell = next((c for c in cells_of(record.scores, split) if subset_of(c) == subset), None)
    return finite(cell.get(metric)) if cell is not None else None  # NaN, a string or true count as missing


def language_tables(
    folder_or_results: Path | str | Sequence[TaskRecord], benchmark: str | Benchmark
) -> list[LanguageTable]:
    """The benchmark's per-language tables for one model: a results folder, or its loaded result files.

    Empty for a benchmark that names no ``language_table`` scores.
    """
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    if not bench.language_table:
        return []
    results = {record.name: record for record in as_records(folder_or_results)}
    metrics = tuple(bench.language_table)
    tables: list[LanguageTable] = []
    for name in bench.task_names:
        layout = _task_layout(bench, name)
        if layout is None:
            continue
        splits, subsets = layout
        result = results.get(name)
        for split in splits:
            scores = {subset: {m: _cell_value(result, split, subset, m) for m in metrics} for subset in subsets}
            average: dict[str, float | None] = {}
            for metric in metrics:
                values = [scores[subset][metric] for subset in subsets]
                present = [v for v in values if v is not None]
                average[metric] = sum(present) / len(present) if present and len(present) == len(values) else None
            tables.append(
                LanguageTable(
                    task=name,
                    split=split,
                    metrics=metrics,
                    languages=subsets,
                    scores=scores,
                    average=average,
                    note=None if result is not None else "no result file",
                )
            )
    return tables
