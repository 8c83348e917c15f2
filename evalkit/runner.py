"""``evalkit run`` as a library call: registry → loader → encoder core → evaluator → results.

The stages live in :mod:`evalkit.pipeline` (plan, models, tasks, write). Checks come first, cheapest first: the
options (when they are made), this machine (device, folders), the tasks and the model's name, then every task's
data, then the models; only then is the first vector computed, so bad input fails fast and leaves nothing
half-written.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit import preflight
from evalkit.cache import EmbeddingCache
from evalkit.cache.memo import deferred_memos, run_cache_root
from evalkit.errors import EvalkitError, MissingDataError
from evalkit.evaluators.outcome import TaskOutcome
from evalkit.options import ModelOverrides, RunOptions
from evalkit.pipeline.models import (
    RunModels,
    build_models,
    default_token_budget,
    resolve_run_model,
    results_revision,
)
from evalkit.pipeline.plan import SkippedTask, default_data_dirs, load_all, plan_run
from evalkit.pipeline.tasks import evaluate_task
from evalkit.pipeline.write import write_task
from evalkit.progress import TaskCallback, TaskProgress, print_task_line
from evalkit.registry.models import ModelSpec
from evalkit.registry.tasks import TaskRegistry, TaskSpec, default_registry
from evalkit.results.layout import ResultsLayout
from evalkit.results.record import TaskRecord, read_task_record
from evalkit.results.task_result import write_aggregate_result


class RunConfig:
    """A model and the run's options by their CLI names (``RunConfig(model, tasks=[...], precision="bf16")``).

    The options are validated when the config is made (:class:`evalkit.options.RunOptions`); ``config.options``
    holds them by section.
    """

    def __init__(self, model: str, *, options: RunOptions | None = None, **named: Any) -> None:
        self.model = model
        if options is None:
            options = RunOptions.from_kwargs(**named)
        elif named:
            options = options.replace(**named)
        self.options = options

    def __repr__(self) -> str:
        return f"RunConfig({self.model!r}, options={self.options!r})"


@dataclass(frozen=True)
class WrittenTask:
    """A task's result as written: where, and its scores, for the caller's summary."""

    spec: TaskSpec
    result_file: Path
    outcome: TaskOutcome


@dataclass(frozen=True)
class RunSummary:
    written: list[WrittenTask]
    skipped: list[SkippedTask]
    embedding_stats: dict[str, int] = field(default_factory=dict)  # texts encoded vs read from the cache
    cache: EmbeddingCache | None = None
    model_warnings: tuple[str, ...] = ()  # about the model itself (packaged files that differ from their pins)

    @property
    def complete(self) -> bool:
        return not self.skipped


def apply_model_overrides(model: ModelSpec, overrides: Mapping[str, Any]) -> tuple[ModelSpec, str]:
    """The model with its settings overridden for an ablation, and the tag naming what changed
    (``+pooling-cls+max_length-128``; the run's mteb experiment is named from it): see
    :class:`evalkit.options.ModelOverrides`."""
    unknown = sorted(set(overrides) - set(ModelOverrides.names()))
    if unknown:
        raise EvalkitError(f"unknown model setting(s): {', '.join(unknown)}", field=unknown[0])
    return RunOptions.from_kwargs(model_overrides=dict(overrides)).overrides.apply(model)


def run(
    config: RunConfig,
    registry: TaskRegistry | None = None,
    *,
    encoder: Any = None,
    reranker_model: Any = None,
    on_task_done: TaskCallback | None = print_task_line,
) -> RunSummary:
    """Evaluate the model on every planned task whose data is found; the summary names the tasks skipped.

    ``encoder`` / ``reranker_model``: models already built from objects (:func:`evalkit.evaluate`), used instead of
    resolving ``config.model`` / the ``reranker`` option by name. ``on_task_done`` gets a
    :class:`evalkit.progress.TaskProgress` as each task is written (default: one line on stderr, which a CI log
    shows as it happens; ``--quiet`` does not hide it); ``None`` reports nothing."""
    registry = registry or default_registry()
    options = config.options
    options.check_environment()
    named = options.cache.cache_dir
    with run_cache_root(Path(named).expanduser() if named else None), deferred_memos() as memos:
        plan = plan_run(options.selection, registry)
        if encoder is None:
            model, settings_tag = resolve_run_model(config.model, options)
        else:
            model, settings_tag = _object_model(encoder, options)
        memos.flush()  # tasks and model passed their checks: a refused run leaves no cache folder behind
        datasets, missing, errors = load_all(plan.specs, options.selection)
        if not datasets:
            if len(errors) == 1:
                raise errors[0]
            raise MissingDataError(f"no data for any of the {len(plan.specs)} tasks: " + " | ".join(map(str, errors)))
        tasks = [(spec.name, spec.type) for spec in plan.specs if spec.name in datasets]
        models = build_models(model, settings_tag, options, tasks, encoder=encoder, reranker=reranker_model)
        written = _evaluate_all(plan.specs, datasets, models, options, on_task_done, registry)
        layout = _layout(models, options)
        done = {w.spec.name for w in written}
        for aggregate_task, members in plan.aggregates.values():
            if set(members) <= done:
                write_aggregate_result(layout, aggregate_task, members)
        return RunSummary(
            written=written,
            skipped=[*plan.skipped, *missing],
            embedding_stats=dict(models.core.stats),
            cache=models.cache,
            model_warnings=tuple(getattr(models.model, "warnings", ())),
        )


def _object_model(encoder: Any, options: RunOptions) -> tuple[ModelSpec, str]:
    """A model object's spec; the overrides that change a named model's settings cannot reach an object's."""
    given = {k: v for k, v in options.overrides.record().items() if v is not None}
    if given:
        raise EvalkitError(f"{', '.join(given)}: settings of a named model; a model object carries its own")
    preflight.check_model_name(encoder.spec.name)
    return encoder.spec, ""


def _layout(models: RunModels, options: RunOptions) -> ResultsLayout:
    return ResultsLayout(
        options.output.output_dir, models.model.results_folder_name, models.revision, models.experiment
    )


def _evaluate_all(
    specs: list[TaskSpec],
    datasets: dict[str, Any],
    models: RunModels,
    options: RunOptions,
    on_task_done: TaskCallback | None = None,
    registry: TaskRegistry | None = None,
) -> list[WrittenTask]:
    layout = _layout(models, options)  # its names are checked before the first vector
    written = []
    todo = [s for s in specs if s.name in datasets]
    for index, spec in enumerate(todo, start=1):
        started_at = dt.datetime.now(dt.timezone.utc)
        clock, before = time.perf_counter(), dict(models.core.stats)
        outcome = evaluate_task(spec, datasets[spec.name], models, search_backend=options.retrieval.search_backend)
        finished_at = dt.datetime.now(dt.timezone.utc)
        layout = _layout(models, options)  # --runtime auto: named by the runtime its first encode chose
        write_task(
            layout,
            spec,
            datasets[spec.name],
            outcome,
            models,
            options,
            started_at=started_at,
            finished_at=finished_at,
            stats_before=before,
        )
        written.append(WrittenTask(spec=spec, result_file=layout.task_result(spec.name), outcome=outcome))
        if on_task_done is not None:
            seconds = time.perf_counter() - clock
            record = read_task_record(written[-1].result_file, registry=registry)
            on_task_done(_task_progress(record, index, len(todo), models.core.stats, before, seconds))
    return written


def _task_progress(
    record: TaskRecord, index: int, total: int, stats: Mapping[str, int], before: Mapping[str, int], seconds: float
) -> TaskProgress:
    """The event of a task just written; its main score as read back from its result file by the one rule (the
    number the table and ``diff`` show)."""
    return TaskProgress(
        index=index,
        total=total,
        task_name=record.name,
        encoded=stats.get("encoded", 0) - before.get("encoded", 0),
        cached=stats.get("cached", 0) - before.get("cached", 0),
        seconds=seconds,
        main_score_name=record.main_score_name,
        main_score=record.main_score,
    )


__all__ = [
    "RunConfig",
    "RunSummary",
    "SkippedTask",
    "TaskProgress",
    "WrittenTask",
    "apply_model_overrides",
    "default_data_dirs",
    "default_token_budget",
    "results_revision",
    "run",
]
