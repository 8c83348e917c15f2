"""A task's results on disk: per-item scores and the run record first, the TaskResult last, each written whole.

A result file present means its evidence is too: a run killed between two writes leaves no TaskResult without its
side files.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Mapping
from importlib import metadata
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import TaskOutcome
from evalkit.options import RunOptions
from evalkit.pipeline.models import RunModels
from evalkit.records import TaskData
from evalkit.registry.models import ModelSpec
from evalkit.registry.tasks import TaskSpec
from evalkit.results.atomic import write_json, write_jsonl_gz
from evalkit.results.layout import ResultsLayout
from evalkit.results.model_meta import build_model_meta
from evalkit.results.run_record import run_record
from evalkit.results.task_result import mteb_task_result, per_item_rows
from evalkit.results.throughput import task_throughput
from evalkit.results.trec_run import write_trec_runs
from evalkit.subsets.apply import load_subsets
from evalkit.subsets.manifest import subset_record


def model_meta(
    model: ModelSpec, revision: str, experiment_kwargs: Mapping[str, Any] | None = None
) -> dict[str, object]:
    """The run's ``model_meta.json``: mteb's ``ModelMeta`` of the model (see :mod:`evalkit.results.model_meta`),
    with the ``experiment_kwargs`` by which mteb tells an experiment from the model's own results."""
    return build_model_meta(model, revision, experiment_kwargs)


def _where(settings: Mapping[str, Any]) -> dict[str, Any]:
    return {"device": settings.get("device"), "precision": settings.get("precision")}


def subset_entry(task: str, options: RunOptions, record: Mapping[str, Any]) -> dict[str, str] | None:
    """The run record's ``subset`` for a task run on a quick subset: its name, manifest checksum and rule, after
    checking the content scored is the subset's (the manifest records the filtered data's checksum)."""
    if not options.selection.subset:
        return None
    manifest = load_subsets(options.selection.subset, options.selection.subsets_dir).get(task)
    if manifest is None:
        return None
    if record["data"]["content_sha256"] != manifest["subset_content_sha256"]:
        raise EvalkitError(
            f"{task}: the data scored is not subset {manifest['name']}'s (was it rebuilt during the run?)"
        )
    return subset_record(manifest)


def write_task(
    layout: ResultsLayout,
    spec: TaskSpec,
    data: TaskData,
    outcome: TaskOutcome,
    models: RunModels,
    options: RunOptions,
    *,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    stats_before: Mapping[str, int] | None = None,
) -> None:
    if (layout.revision, layout.experiment) != (models.revision, models.experiment):  # never another run's folder
        raise EvalkitError(  # e.g. a folder named before --runtime auto chose its runtime (the first encode)
            f"results layout {layout.revision}/{layout.experiment} is not the run's "
            f"{models.revision}/{models.experiment}"
        )
    settings = models.settings_record(options)
    throughput = (  # stats_before: the core's counters when the task began (the runner's)
        None if stats_before is None else task_throughput(stats_before, models.core.stats, **_where(settings))
    )
    record: dict[str, Any] = run_record(
        spec=spec,
        data=data,
        outcome=outcome,
        model_fingerprint=models.fingerprint(),
        run_settings=settings,
        started_at=started_at,
        finished_at=finished_at,
        command=list(options.command) if options.command else sys.argv,
        throughput=throughput,
    )
    subset = subset_entry(spec.name, options, record)
    if subset is not None:  # a quick subset's score: diff refuses it against the full task's, submit refuses it
        record["subset"] = subset
    if models.model.warnings:  # e.g. packaged weights that differ from the hub revision they claim
        record["model_warnings"] = list(models.model.warnings)
    if options.output.save_run:  # the ranked lists first, like every side file: a result file implies its evidence
        runs = write_trec_runs(layout, outcome)
        record["run_files"] = [path.relative_to(layout.revision_dir).as_posix() for path in runs]
    for split in outcome.splits:  # written or not wanted: the runner keeps outcomes, not a whole run's ranked lists
        split.rankings.clear()
    result = mteb_task_result(spec, outcome, mteb_version=metadata.version("mteb"), finished_at=finished_at)
    write_jsonl_gz(layout.per_item(spec.name), per_item_rows(outcome))
    write_json(layout.run_record(spec.name), record)
    write_json(layout.model_meta, model_meta(models.model, layout.revision, models.experiment_kwargs))
    write_json(layout.task_result(spec.name), result)
