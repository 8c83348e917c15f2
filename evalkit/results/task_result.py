"""MTEB TaskResult files: the format the leaderboard and ``mteb.TaskResult.from_disk`` read."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.evaluators.outcome import TaskOutcome
from evalkit.registry.tasks import TaskSpec
from evalkit.results.atomic import write_json
from evalkit.results.layout import ResultsLayout

MTEB_SCORE_DECIMALS = 6  # mteb's TaskResult.to_disk rounds every score to 6 decimals


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, MTEB_SCORE_DECIMALS) if math.isfinite(value) else None
    return value


def mteb_task_result(
    spec: TaskSpec, outcome: TaskOutcome, *, mteb_version: str, finished_at: dt.datetime
) -> dict[str, Any]:
    """The TaskResult JSON object: ``scores[split]`` is a list of one score dict per subset.

    Other scores may be undefined (written as ``null``, as mteb writes NaN); the main score never is: the
    TaskOutcome refuses one, and this checks again for an outcome built around that check.
    """
    scores: dict[str, list[dict[str, Any]]] = {}
    for split in outcome.splits:
        if not math.isfinite(split.main_score):
            raise DataError(
                f"task '{spec.name}', split '{split.split}', subset '{split.hf_subset}': the main score is "
                f"{split.main_score}; it is not written",
                field="main_score",
            )
        entry = {name: _rounded(value) for name, value in sorted(split.scores.items())}
        entry.update(
            hf_subset=split.hf_subset,
            languages=list(split.languages),
            main_score=_rounded(split.main_score),
        )
        scores.setdefault(split.split, []).append(entry)
    return {
        "dataset_revision": spec.dataset_revision or "no_revision_available",
        "task_name": spec.name,
        "mteb_version": mteb_version,
        "scores": scores,
        "evaluation_time": outcome.evaluation_time_s,
        "kg_co2_emissions": None,
        "date": finished_at.timestamp(),
    }


def per_item_rows(outcome: TaskOutcome) -> list[dict[str, Any]]:
    """One row per query (retrieval) or pair (STS), unrounded, for significance tests."""
    rows = []
    for split in outcome.splits:
        names = list(split.per_item.values)
        columns = [split.per_item.values[name].tolist() for name in names]
        for position, item_id in enumerate(split.per_item.item_ids):
            row: dict[str, Any] = {"split": split.split, "hf_subset": split.hf_subset, "id": item_id}
            row.update((name, column[position]) for name, column in zip(names, columns, strict=True))
            rows.append(row)
    return rows


def write_aggregate_result(layout: ResultsLayout, aggregate_task: Any, member_names: Sequence[str]) -> Path:
    """The aggregate's TaskResult (CQADupstackRetrieval from its 12 forums), combined by mteb's own rule."""
    import mteb

    members = [mteb.TaskResult.from_disk(layout.task_result(name)) for name in member_names]
    combined = aggregate_task.combine_task_results(members)
    obj = json.loads(combined.model_dump_json())
    obj["date"] = combined.date.timestamp() if combined.date else None
    path = layout.task_result(aggregate_task.metadata.name)
    write_json(path, obj)
    return path
