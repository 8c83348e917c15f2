"""What a run evaluates: the task specs (named, or a benchmark's), restricted to its languages, and their data.

Every task's data is loaded and checked here, before any model is built, so malformed data fails the run before
any work and a task whose data is nowhere is skipped with its reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.errors import EvalkitError, MissingDataError
from evalkit.kinds import is_known, known_types
from evalkit.loaders import load_task_data
from evalkit.options import SelectionOptions
from evalkit.records import TaskData
from evalkit.registry.tasks import TaskRegistry, TaskSpec, builtin_tasks_dir
from evalkit.subsets.apply import apply_subset, load_subsets


@dataclass(frozen=True)
class SkippedTask:
    """A task a run could not evaluate, and why (its data was found nowhere, or no subset was in the languages)."""

    name: str
    reason: str


@dataclass(frozen=True)
class RunPlan:
    """What a run evaluates: task specs, tasks skipped up front, and aggregates to combine after their members."""

    specs: list[TaskSpec]
    skipped: list[SkippedTask]
    aggregates: dict[str, tuple[Any, tuple[str, ...]]]  # name → (mteb aggregate task, member task names)


def default_data_dirs() -> list[Path]:
    """``EVALKIT_DATA_DIR`` (``os.pathsep``-separated), else ``../shared/data/tasks`` beside the project."""
    configured = os.environ.get("EVALKIT_DATA_DIR")
    if configured:
        return [Path(p) for p in configured.split(os.pathsep) if p]
    for candidate in (
        Path.cwd() / "../shared/data/tasks",
        builtin_tasks_dir().parent / "../shared/data/tasks",
    ):
        if candidate.is_dir():
            return [candidate.resolve()]
    return []


def _benchmark_specs(name: str, registry: TaskRegistry) -> tuple[list[TaskSpec], list[SkippedTask], dict[str, Any]]:
    from evalkit.registry.benchmarks import get_benchmark

    bench = get_benchmark(name)
    specs: list[TaskSpec] = []
    skipped = [SkippedTask(task, f"not in mteb: {why}") for task, (_, why) in bench.not_in_mteb.items()]
    aggregates: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for task in bench.mteb_tasks():
        task_name = task.metadata.name
        if task_name in bench.aggregates:  # CQADupStack: run its forums, then combine them as mteb does
            members = bench.member_tasks(task_name)
            aggregates[task_name] = (task, tuple(m.metadata.name for m in members))
            specs += [registry.get(m.metadata.name, mteb_task=m) for m in members]
        else:
            specs.append(registry.get(task_name, mteb_task=task))
    specs += bench.spec_tasks.values()  # tasks only an evalkit spec defines (MKQA), restricted like the rest
    return specs, skipped, aggregates


def plan_run(selection: SelectionOptions, registry: TaskRegistry) -> RunPlan:
    """The named tasks (without ``--tasks`` and a benchmark: the quick subsets' tasks), then the benchmark's, each
    restricted to the benchmark's splits and subsets."""
    subsets = load_subsets(selection.subset, selection.subsets_dir) if selection.subset else {}
    names = list(selection.tasks) or (list(subsets) if selection.benchmark is None else [])
    specs = [registry.get(name) for name in names]
    skipped: list[SkippedTask] = []
    aggregates: dict[str, tuple[Any, tuple[str, ...]]] = {}
    if selection.benchmark is not None:
        more, skipped, aggregates = _benchmark_specs(selection.benchmark, registry)
        specs += more
    specs = list({spec.name: spec for spec in specs}.values())
    if not specs:
        raise EvalkitError("nothing to run: name tasks (--tasks) or a benchmark (--benchmark)")
    if selection.languages:
        restricted = []
        for spec in specs:
            kept = spec.restricted_to_languages(selection.languages)
            if kept.hf_subsets:
                restricted.append(kept)
            else:
                skipped.append(SkippedTask(spec.name, f"no subset in {', '.join(selection.languages)}"))
        specs = restricted
    _check_subsets([spec.name for spec in specs], subsets)
    for spec in specs:
        if not is_known(spec.type):
            raise EvalkitError(
                f"task '{spec.name}' is of type {spec.type}, which this evalkit does not evaluate "
                f"(evaluated: {', '.join(known_types())})",
                file=spec.spec_file,
                field="type",
            )
    return RunPlan(specs=specs, skipped=skipped, aggregates=aggregates)


def _check_subsets(task_names: list[str], subsets: dict[str, Any]) -> None:
    """Each subset's task is in the run, and a run on quick subsets runs nothing else: its results folder (an
    experiment named by the subsets) holds subset scores only."""
    for task, manifest in subsets.items():
        if task not in task_names:
            raise EvalkitError(f"--subset {manifest['name']} is of task {task}, which this run does not evaluate")
    full = [name for name in task_names if name not in subsets]
    if subsets and full:
        raise EvalkitError(
            f"a run on quick subsets evaluates subsets only; {', '.join(full)} has none (name one with --subset, or "
            "run the full tasks apart)"
        )


def load_all(
    specs: list[TaskSpec], selection: SelectionOptions
) -> tuple[dict[str, TaskData], list[SkippedTask], list[MissingDataError]]:
    """Every task's data before any encoding: malformed data stops the run here, missing data skips the task. A task
    with a quick subset (``--subset``) is filtered to it here, after checking it is the data the subset was built
    from (:func:`evalkit.subsets.apply_subset`)."""
    data_dirs = list(selection.data_dirs) or default_data_dirs()
    subsets = load_subsets(selection.subset, selection.subsets_dir) if selection.subset else {}
    loaded: dict[str, TaskData] = {}
    skipped: list[SkippedTask] = []
    errors: list[MissingDataError] = []
    for spec in specs:
        try:
            data = load_task_data(spec, data_dirs, allow_hub=selection.allow_hub)
            loaded[spec.name] = apply_subset(data, subsets[spec.name]) if spec.name in subsets else data
        except MissingDataError as err:
            skipped.append(SkippedTask(spec.name, str(err)))
            errors.append(err)
    return loaded, skipped, errors
