"""The task registry: YAML specs in ``tasks/`` resolved against the metadata of the installed ``mteb`` package.

A spec holds only what mteb lacks or what we override; for a task mteb knows, the spec can be just its name.
A task mteb does not know (a user's own BEIR-format dataset) is fully described by its spec file.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from evalkit.errors import SpecError, UnknownTaskError
from evalkit.registry.yaml_spec import read_spec_file

TASK_TYPES = ("Retrieval", "STS")
"""Task types this version of evalkit evaluates."""

DEFAULT_MAIN_SCORE = {"Retrieval": "ndcg_at_10", "STS": "cosine_spearman"}

_SPEC_FIELDS = {
    "name",
    "version",
    "mteb",
    "type",
    "description",
    "languages",
    "eval_splits",
    "main_score",
    "hf_subsets",
    "dataset",
    "data_dir",
    "remove_self_hits",
    "score_range",
}


@dataclass(frozen=True)
class TaskSpec:
    """Everything evalkit needs to load, evaluate and record one task."""

    name: str
    type: str
    languages: tuple[str, ...]
    eval_splits: tuple[str, ...]
    main_score: str
    hf_subsets: tuple[str, ...] = ("default",)
    dataset_path: str | None = None
    dataset_revision: str | None = None
    remove_self_hits: bool = False
    score_range: tuple[float, float] = (0.0, 5.0)
    data_dir: Path | None = None
    description: str = ""
    version: int = 1
    metadata_source: str = "spec"  # "mteb" when the metadata came from the mteb package
    spec_file: Path | None = None
    overrides: tuple[str, ...] = field(default_factory=tuple)

    @property
    def language_codes(self) -> tuple[str, ...]:
        """ISO 639-3 codes without the script (``eng-Latn`` → ``eng``)."""
        return tuple(dict.fromkeys(lang.split("-")[0] for lang in self.languages))


def builtin_tasks_dir() -> Path:
    """The ``tasks/`` folder of the source tree, or its copy inside an installed wheel."""
    source_tree = Path(__file__).resolve().parents[2] / "tasks"
    if source_tree.is_dir():
        return source_tree
    return Path(__file__).resolve().parents[1] / "_builtin_tasks"


def task_spec_dirs() -> list[Path]:
    """Built-in specs first, then the folders in ``EVALKIT_TASKS_PATH`` (``os.pathsep``-separated)."""
    extra = [Path(p) for p in os.environ.get("EVALKIT_TASKS_PATH", "").split(os.pathsep) if p]
    return [builtin_tasks_dir(), *extra]


@cache
def _mteb_task(name: str) -> Any | None:
    """The mteb task object for ``name``, or ``None`` when mteb does not know it. Loads no data."""
    import mteb

    try:
        return mteb.get_task(name)
    except KeyError:
        return None


def _mteb_metadata(name: str) -> dict[str, Any] | None:
    task = _mteb_task(name)
    if task is None:
        return None
    meta = task.metadata
    languages = meta.eval_langs
    if isinstance(languages, dict):
        languages = [lang for langs in languages.values() for lang in langs]
    values: dict[str, Any] = {
        "type": meta.type,
        "description": meta.description or "",
        "languages": tuple(dict.fromkeys(languages)),
        "eval_splits": tuple(meta.eval_splits),
        "main_score": meta.main_score,
        "hf_subsets": tuple(task.hf_subsets),
        "dataset_path": meta.dataset["path"],
        "dataset_revision": meta.dataset.get("revision"),
        "remove_self_hits": bool(getattr(task, "ignore_identical_ids", False)),
    }
    if meta.type == "STS":
        values["score_range"] = (float(task.min_score), float(task.max_score))
    return values


def parse_task_spec(path: Path) -> TaskSpec:
    """Read one spec file and resolve it against mteb's metadata."""
    spec = read_spec_file(path)
    spec.reject_unknown(_SPEC_FIELDS)
    name = spec.get("name", str, required=True)
    if path.stem != name:
        raise spec.error("name", f"must equal the file name '{path.stem}' so the registry can find it by name")
    use_mteb = spec.get("mteb", bool, True)
    values = (_mteb_metadata(name) if use_mteb else None) or {}
    source = "mteb" if values else "spec"
    overrides: list[str] = []

    def override(key: str, value: Any) -> None:
        if value is not None:
            values[key] = value
            if source == "mteb":
                overrides.append(key)

    override("type", spec.get("type", str))
    override("description", spec.get("description", str))
    override("languages", spec.get_str_list("languages") or None)
    override("eval_splits", spec.get_str_list("eval_splits") or None)
    override("main_score", spec.get("main_score", str))
    override("hf_subsets", spec.get_str_list("hf_subsets") or None)
    override("remove_self_hits", spec.get("remove_self_hits", bool))
    dataset = spec.child("dataset")
    if dataset is not None:
        dataset.reject_unknown({"path", "revision"})
        override("dataset_path", dataset.get("path", str, required=True))
        override("dataset_revision", dataset.get("revision", str))
    score_range = spec.get("score_range", list)
    if score_range is not None:
        if len(score_range) != 2 or not all(isinstance(v, (int, float)) for v in score_range):
            raise spec.error("score_range", "expected [min, max]")
        override("score_range", (float(score_range[0]), float(score_range[1])))
    data_dir = spec.get("data_dir", str)
    if data_dir is not None:
        values["data_dir"] = (path.parent / data_dir).resolve()

    task_type = values.get("type")
    if task_type is None:
        raise SpecError(
            "required field is missing (mteb does not know this task, so the spec must say)",
            file=path,
            line=spec.start_line,
            field="type",
        )
    if task_type not in TASK_TYPES and source == "spec":
        raise spec.error("type", f"unknown task type '{task_type}' (known: {', '.join(TASK_TYPES)})")
    values.setdefault("main_score", DEFAULT_MAIN_SCORE.get(task_type))
    for required in ("languages", "eval_splits"):
        if not values.get(required):
            raise SpecError(
                "required field is missing (mteb does not know this task, so the spec must say)",
                file=path,
                line=spec.start_line,
                field=required,
            )
    if values.get("dataset_path") is None and values.get("data_dir") is None and source == "spec":
        raise SpecError(
            "a task mteb does not know needs 'dataset' (a hub path) or 'data_dir' (a local folder)",
            file=path,
            line=spec.start_line,
            field="dataset",
        )
    return TaskSpec(
        name=name,
        version=spec.get("version", int, 1),
        metadata_source=source,
        spec_file=path,
        overrides=tuple(overrides),
        **values,
    )


@dataclass
class TaskRegistry:
    """All task specs found in the spec folders, by name."""

    spec_dirs: list[Path]

    def __post_init__(self) -> None:
        self._files: dict[str, Path] = {}
        for folder in self.spec_dirs:
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.yaml")):
                self._files[path.stem] = path  # later folders override earlier ones
        self._specs: dict[str, TaskSpec] = {}

    @property
    def names(self) -> list[str]:
        return sorted(self._files)

    def get(self, name: str) -> TaskSpec:
        if name not in self._files:
            close = difflib.get_close_matches(name, self._files, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise UnknownTaskError(f"unknown task '{name}'{hint}; `evalkit tasks` lists the known ones")
        if name not in self._specs:
            self._specs[name] = parse_task_spec(self._files[name])
        return self._specs[name]

    def select(self, *, task_type: str | None = None, language: str | None = None) -> list[TaskSpec]:
        """Specs of the given type and language (``eng`` or ``eng-Latn``), sorted by type then name."""
        specs = [self.get(name) for name in self.names]
        if task_type is not None:
            specs = [s for s in specs if s.type.lower() == task_type.lower()]
        if language is not None:
            specs = [s for s in specs if language in s.languages or language in s.language_codes]
        return sorted(specs, key=lambda s: (s.type, s.name))


def default_registry() -> TaskRegistry:
    return TaskRegistry(task_spec_dirs())
