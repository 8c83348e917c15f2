"""Loaders: a task's data from a local mirror or the Hugging Face hub, as evalkit's records.

``load_task_data`` is the one entry point the rest of evalkit uses; the modules below it each read one format.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from evalkit.errors import MissingDataError
from evalkit.loaders.beir import load_beir_split, load_beir_splits, read_qrels
from evalkit.loaders.checksums import source_file
from evalkit.loaders.hub import hub_location, load_from_hub
from evalkit.loaders.jsonl import iter_jsonl
from evalkit.loaders.miracl import load_miracl_splits
from evalkit.loaders.mirror import load_from_mirror, mirror_candidates
from evalkit.loaders.mkqa import load_answer_retrieval_splits
from evalkit.loaders.pairs import load_pair_split
from evalkit.records import TaskData
from evalkit.registry.tasks import TaskSpec

__all__ = [
    "hub_location",
    "iter_jsonl",
    "load_answer_retrieval_splits",
    "load_beir_split",
    "load_beir_splits",
    "load_from_hub",
    "load_from_mirror",
    "load_miracl_splits",
    "load_pair_split",
    "load_task_data",
    "mirror_candidates",
    "read_qrels",
    "source_file",
]


def load_task_data(spec: TaskSpec, data_dirs: Sequence[Path], *, allow_hub: bool = True) -> TaskData:
    """The task's data from the first place that has it: the mirror folders in order, then the hub.

    A folder that is absent or lacks a file is skipped (and named if nothing works), but a folder whose files
    are malformed raises its DataError at once: falling through to the hub would hide the user's broken data.
    When nothing works, one MissingDataError names every place looked at and why each failed.
    """
    tried: list[str] = []
    for folder in mirror_candidates(spec, data_dirs):
        if not folder.is_dir():
            tried.append(f"{folder} (no such folder)")
            continue
        try:
            return load_from_mirror(spec, folder)
        except MissingDataError as err:
            tried.append(f"{folder} ({err})")
    if spec.dataset_path is not None:
        where = hub_location(spec)
        if not allow_hub:
            tried.append(f"{where} (not tried: hub loading is off)")
        else:
            try:
                return load_from_hub(spec)
            except MissingDataError as err:
                tried.append(f"{where} ({err.message})")
    else:
        tried.append("no hub dataset (the spec names none)")
    raise MissingDataError(f"no data for task '{spec.name}'; looked in: {'; '.join(tried)}")
