"""Where results live: the MTEB results layout, with evalkit's own files in a subfolder mteb does not read.

A run with the model's own settings is ``<root>/<org>__<model>/<revision>/``. A run with other settings (an
ablation, reduced precision, another retrieval, a reranker) is an *experiment*, stored as mteb 2.26 stores one:
``<revision>/experiments/<name>/`` with its own ``model_meta.json`` carrying ``experiment_kwargs``, ``<name>`` being
mteb's serialisation of those kwargs. mteb's ``ResultCache`` then lists one revision of the model (the default run)
and finds the experiment only when asked (``load_experiments``); a sibling revision folder would pass for another
revision of the model.

Every name that becomes a path here (model folder, revision, experiment, task) is checked to be one safe component
first: they come from model specs, task specs and result files that others wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.safe_paths import safe_component

EVALKIT_DIR = "evalkit"  # our side files, in a subfolder the MTEB results loaders never read
EXPERIMENTS_DIR = "experiments"  # mteb.cache.result_cache._EXPERIMENTS_FOLDER_NAME
_PRECISION_DTYPES = {"bf16": "bfloat16", "fp16": "float16"}  # mteb's OutputDType values


def experiment_name(experiment_kwargs: Mapping[str, Any] | None) -> str | None:
    """The experiment folder's name, as mteb names it (``ModelMeta.experiment_name``); None for the default run."""
    if not experiment_kwargs:  # mteb's rule for the default run, without importing mteb
        return None
    from mteb.models.model_meta import _serialize_experiment_kwargs_to_name

    name = _serialize_experiment_kwargs_to_name(dict(experiment_kwargs) if experiment_kwargs else None)
    return None if name is None else safe_component(name, what="experiment name")


def _tag_value(value: str) -> Any:
    if value in ("on", "off"):
        return value == "on"
    return int(value) if value.isdigit() else value


def experiment_kwargs(tags: str, precision: str = "fp32", runtime: str | None = None) -> dict[str, Any] | None:
    """What a run changes from the model's own settings, as mteb's ``experiment_kwargs``; None when nothing.

    ``tags`` are the run's setting tags (``+pooling-cls+max_length-128+retrieval-hybrid-rrf``): each becomes one
    entry (``{"pooling": "cls", "max_length": 128, "retrieval": "hybrid-rrf"}``). Reduced precision is recorded as
    mteb records it, ``output_dtypes`` (``bfloat16``), and with it the ``runtime`` whose vectors the run scored
    when that is not torch (:func:`runtime_entry`)."""
    kwargs: dict[str, Any] = {}
    for tag in filter(None, tags.split("+")):
        key, _, value = tag.partition("-")
        kwargs[key] = _tag_value(value) if value else True
    if precision != "fp32":
        kwargs["output_dtypes"] = _PRECISION_DTYPES.get(precision, precision)
    kwargs.update(runtime_entry(precision, runtime))
    return kwargs or None


def runtime_entry(precision: str, runtime: str | None) -> dict[str, str]:
    """``{"runtime": ...}`` when a run's vectors depend on the runtime that computed them, else nothing.

    In fp32 every runtime reproduces torch (within 1e-6: one folder, no tag, as before). In reduced precision they
    do not (OpenVINO bf16 vs torch bf16: ~3e-3 per vector, nDCG@10 in the 4th decimal), so a run is filed by its
    runtime, lest one overwrite the other; torch keeps the untagged folder (``output_dtypes_bfloat16``) that
    earlier runs wrote. ``runtime`` None: not known yet (``--runtime auto`` before its first encode)."""
    if precision == "fp32" or runtime in (None, "torch"):
        return {}
    return {"runtime": safe_component(str(runtime), what="runtime")}


@dataclass(frozen=True)
class ResultsLayout:
    """``<root>/<org>__<model>/<revision>[/experiments/<experiment>]/<Task>.json`` plus
    ``.../evalkit/<Task>.{per_item.jsonl.gz,run.json}`` (with ``--save-run``, ``<Task>.<subset>.<split>.trec`` too)
    and ``model_meta.json``."""

    root: Path
    model_folder: str
    revision: str
    experiment: str | None = None  # mteb's experiment name; None: the model's own settings

    def __post_init__(self) -> None:
        safe_component(self.model_folder, what="model folder")
        safe_component(self.revision, what="revision")
        if self.experiment is not None:
            safe_component(self.experiment, what="experiment name")

    @property
    def revision_dir(self) -> Path:
        """The run's folder: the revision folder, or the experiment's folder inside it."""
        base = self.root / self.model_folder / self.revision
        return base if self.experiment is None else base / EXPERIMENTS_DIR / self.experiment

    def task_result(self, task_name: str) -> Path:
        return self.revision_dir / f"{safe_component(task_name, what='task name')}.json"

    def per_item(self, task_name: str) -> Path:
        return self.revision_dir / EVALKIT_DIR / f"{safe_component(task_name, what='task name')}.per_item.jsonl.gz"

    def run_record(self, task_name: str) -> Path:
        return self.revision_dir / EVALKIT_DIR / f"{safe_component(task_name, what='task name')}.run.json"

    def trec_run(self, task_name: str, hf_subset: str, split: str, list_name: str = "run") -> Path:
        """``--save-run``'s ranked list of one split and subset: ``<Task>.<subset>.<split>.trec``, or, for a reranked
        run, ``<Task>.<subset>.<split>.first_stage.trec`` and ``....reranked.trec``."""
        parts = [
            safe_component(task_name, what="task name"),
            safe_component(hf_subset, what="subset name"),
            safe_component(split, what="split name"),
        ]
        if list_name != "run":
            parts.append(safe_component(list_name, what="ranked list name"))
        return self.revision_dir / EVALKIT_DIR / f"{'.'.join(parts)}.trec"

    @property
    def model_meta(self) -> Path:
        return self.revision_dir / "model_meta.json"
