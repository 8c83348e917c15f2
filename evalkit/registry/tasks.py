"""The task registry: YAML specs in ``tasks/`` resolved against the metadata of the installed ``mteb`` package.

A spec holds only what mteb lacks or what we override; for a task mteb knows, the spec can be just its name.
A task mteb does not know (a user's own BEIR-format dataset) is fully described by its spec file.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from evalkit.errors import SpecError, UnknownTaskError
from evalkit.kinds import TaskKind, get_kind, is_known, known_types
from evalkit.registry.yaml_spec import SpecMapping, read_spec_file
from evalkit.safe_paths import safe_component

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
    "subset_languages",
    "mirror_only",
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
    subset_languages: dict[str, tuple[str, ...]] = field(default_factory=dict)
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
    prompt: str | dict[str, str] | None = None  # mteb's TaskMetadata.prompt: the instruction instruct models get
    input_roles: tuple[str, str] = ("symmetric", "symmetric")  # pair tasks: the role mteb encodes each side as

    @property
    def language_codes(self) -> tuple[str, ...]:
        """ISO 639-3 codes without the script (``eng-Latn`` → ``eng``)."""
        return tuple(dict.fromkeys(lang.split("-")[0] for lang in self.languages))

    def languages_of(self, hf_subset: str) -> tuple[str, ...]:
        """The languages of one subset (a multilingual task's subsets each have their own)."""
        return self.subset_languages.get(hf_subset, self.languages)

    def restricted_to_languages(self, languages: Sequence[str]) -> TaskSpec:
        """The same task with only the subsets in one of ``languages`` (``eng`` or ``eng-Latn``)."""
        wanted = set(languages)

        def matches(lang: str) -> bool:
            return lang in wanted or lang.split("-")[0] in wanted

        subsets = tuple(s for s in self.hf_subsets if any(matches(lang) for lang in self.languages_of(s)))
        kept = tuple(lang for lang in self.languages if matches(lang))
        return replace(self, hf_subsets=subsets, languages=kept)


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


def mteb_task_for(spec: TaskSpec) -> Any:
    """A fresh mteb task object for an mteb-defined spec, restricted to the spec's subsets and splits."""
    import copy

    task = _mteb_task(spec.name) if spec.metadata_source == "mteb" else None
    if task is None:
        raise SpecError(
            f"task '{spec.name}' is of type {spec.type}, which evalkit scores with mteb's evaluator; mteb does not "
            "know this task",
            file=spec.spec_file,
            field="type",
        )
    task = copy.copy(task)  # the cached object stays pristine; this one gets data and filters
    task.hf_subsets = list(spec.hf_subsets)
    task.filter_eval_splits(list(spec.eval_splits))
    return task


def metadata_from_mteb(task: Any) -> dict[str, Any]:
    """TaskSpec fields from an mteb task object (possibly one a benchmark restricted to its subsets and splits)."""
    meta = task.metadata
    subsets = tuple(task.hf_subsets)
    eval_langs = meta.eval_langs
    if isinstance(eval_langs, dict):
        subset_languages = {s: tuple(eval_langs[s]) for s in subsets if s in eval_langs}
        languages = [lang for s in subsets for lang in subset_languages.get(s, ())]
    else:
        subset_languages = {}
        languages = list(eval_langs)
    values: dict[str, Any] = {
        "type": meta.type,
        "description": meta.description or "",
        "languages": tuple(dict.fromkeys(languages)),
        "eval_splits": tuple(task.eval_splits),  # a benchmark may keep fewer than the metadata lists
        "main_score": meta.main_score,
        "hf_subsets": subsets,
        "subset_languages": subset_languages,
        "dataset_path": meta.dataset["path"],
        "dataset_revision": meta.dataset.get("revision"),
        "remove_self_hits": bool(getattr(task, "ignore_identical_ids", False)),
        "prompt": dict(meta.prompt) if isinstance(meta.prompt, dict) else meta.prompt,
        "input_roles": _input_roles(task),
    }
    if is_known(meta.type):
        values.update(get_kind(meta.type).spec_fields_from_mteb(task))
    return values


def _input_roles(task: Any) -> tuple[str, str]:
    """The role mteb encodes each side of a pair task as (``input1_prompt_type``: TERRa's first side is a document,
    its second a query); ``symmetric`` where mteb passes none, as for almost every STS and pair task."""
    roles = []
    for attribute in ("input1_prompt_type", "input2_prompt_type"):
        value = getattr(task, attribute, None)
        roles.append(str(getattr(value, "value", value)) if value is not None else "symmetric")
    return roles[0], roles[1]


def spec_from_mteb(task: Any) -> TaskSpec:
    """A spec for a task only mteb defines (no YAML file): its metadata, nothing overridden."""
    return TaskSpec(name=task.metadata.name, metadata_source="mteb", **metadata_from_mteb(task))


def parse_task_spec(path: Path, mteb_task: Any | None = None) -> TaskSpec:
    """Read one spec file and resolve it against mteb's metadata (``mteb_task``: a benchmark's restricted task)."""
    spec = read_spec_file(path)
    spec.reject_unknown(_SPEC_FIELDS)
    name = spec.get("name", str, required=True)
    if path.stem != name:
        raise spec.error("name", f"must equal the file name '{path.stem}' so the registry can find it by name")
    use_mteb = spec.get("mteb", bool, True)
    values: dict[str, Any] = {}
    if use_mteb:  # a task mteb defines: its metadata, remembered per mteb version (evalkit/registry/mteb_memo.py)
        from evalkit.registry.mteb_memo import task_metadata

        values = (metadata_from_mteb(mteb_task) if mteb_task is not None else task_metadata(name)) or {}
    source = "mteb" if values else "spec"
    overrides = _apply_spec_fields(spec, path, values, from_mteb=source == "mteb")
    kind = _kind_of(spec, values, source)
    values.setdefault("main_score", kind.default_main_score if kind is not None else None)
    _check_names(spec, values, kind)
    _check_complete(spec, values, source)
    return TaskSpec(
        name=name,
        version=spec.get("version", int, 1),
        metadata_source=source,
        spec_file=path,
        overrides=tuple(overrides),
        **values,
    )


def _apply_spec_fields(spec: SpecMapping, path: Path, values: dict[str, Any], *, from_mteb: bool) -> list[str]:
    """Write the spec's fields over mteb's metadata in ``values``; the names of those that replaced mteb's."""
    overrides: list[str] = []

    def override(key: str, value: Any) -> None:
        if value is not None:
            values[key] = value
            if from_mteb:
                overrides.append(key)

    override("type", spec.get("type", str))
    override("description", spec.get("description", str))
    override("languages", spec.get_str_list("languages") or None)
    override("eval_splits", spec.get_str_list("eval_splits") or None)
    override("main_score", spec.get("main_score", str))
    override("hf_subsets", spec.get_str_list("hf_subsets") or None)
    _read_subset_languages(spec, values, override)
    override("remove_self_hits", spec.get("remove_self_hits", bool))
    dataset = spec.child("dataset")
    if dataset is not None:
        dataset.reject_unknown({"path", "revision"})
        override("dataset_path", dataset.get("path", str, required=True))
        override("dataset_revision", dataset.get("revision", str))
    override("score_range", _score_range(spec))
    data_dir = spec.get("data_dir", str)
    if data_dir is not None:
        values["data_dir"] = _data_dir(spec, path, data_dir)
    return overrides


def _missing(spec: SpecMapping, field: str) -> SpecError:
    return SpecError(
        "required field is missing (mteb does not know this task, so the spec must say)",
        file=spec.file,
        line=spec.start_line,
        field=field,
    )


def _kind_of(spec: SpecMapping, values: dict[str, Any], source: str) -> TaskKind | None:
    """The task's kind; a type no kind declares is an error in a spec-only task (one mteb defines may still be
    listed, and is refused when a run plans it)."""
    task_type = values.get("type")
    if task_type is None:
        raise _missing(spec, "type")
    if is_known(task_type):
        return get_kind(task_type)
    if source == "spec":
        raise spec.error("type", f"unknown task type '{task_type}' (known: {', '.join(known_types())})")
    return None


def _check_complete(spec: SpecMapping, values: dict[str, Any], source: str) -> None:
    """What a task mteb does not know must say itself: languages, splits, and where its data is."""
    for required in ("languages", "eval_splits"):
        if not values.get(required):
            raise _missing(spec, required)
    mirror_only = spec.get("mirror_only", bool, False)
    no_location = values.get("dataset_path") is None and values.get("data_dir") is None
    if no_location and source == "spec" and not mirror_only:
        raise SpecError(
            "a task mteb does not know needs 'dataset' (a hub path), 'data_dir' (a local folder) or "
            "'mirror_only: true' (its folder in the --data-dir mirror)",
            file=spec.file,
            line=spec.start_line,
            field="dataset",
        )


def _score_range(spec: SpecMapping) -> tuple[float, float] | None:
    """``[min, max]``, finite, min below max: a reversed range flips the sign of every STS score, an empty one
    divides by zero."""
    score_range = spec.get("score_range", list)
    if score_range is None:
        return None
    if len(score_range) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in score_range):
        raise spec.error("score_range", "expected [min, max]")
    low, high = float(score_range[0]), float(score_range[1])
    if not (math.isfinite(low) and math.isfinite(high)):
        raise spec.error("score_range", f"expected finite numbers, got [{low}, {high}]")
    if low >= high:
        raise spec.error("score_range", f"expected min below max, got [{low:g}, {high:g}]")
    return low, high


def _data_dir(spec: SpecMapping, path: Path, data_dir: str) -> Path:
    try:
        return (path.parent / data_dir).resolve()
    except (OSError, ValueError) as err:  # a NUL byte, a link loop
        raise spec.error("data_dir", f"not a usable folder path ({err})") from None


def _check_names(spec: SpecMapping, values: dict[str, Any], kind: TaskKind | None) -> None:
    """Names the spec gives that become file names (splits, subsets) are single safe path components, and a main
    score the spec sets is one the type's kind computes: found now, not as a KeyError after hours of encoding."""
    named = [(key, name, spec.line_of(key)) for key in ("eval_splits", "hf_subsets") for name in spec.get_str_list(key)]
    subsets = spec.child("subset_languages")
    named += [("subset_languages", name, subsets.line_of(name)) for name in subsets.values] if subsets else []
    for key, name, line in named:
        safe_component(name, what=key.rstrip("s").replace("_", " "), file=spec.file, line=line, field=key)
    known = kind.score_names if kind is not None else None  # None: mteb's evaluator names the scores
    if "main_score" in spec.values and known is not None and values["main_score"] not in known:
        close = difflib.get_close_matches(values["main_score"], sorted(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise spec.error("main_score", f"'{values['main_score']}' is not a {values['type']} score{hint}")


def _read_subset_languages(spec: SpecMapping, values: dict[str, Any], override: Callable[[str, Any], None]) -> None:
    """``subset_languages: {ar: [ara-Arab], …}``: each subset's own languages, as mteb's ``eval_langs`` dict.

    The subsets and the task's languages follow from it when the spec does not list them (write the subsets only
    here: an unquoted ``no`` in a YAML list is the boolean false, while a mapping key stays the text written).
    """
    node = spec.child("subset_languages")
    if node is None:
        return
    subset_languages: dict[str, tuple[str, ...]] = {}
    for subset in node.values:
        languages = node.get_str_list(subset)
        if not languages:
            raise node.error(subset, "expected a non-empty list of languages")
        subset_languages[str(subset)] = languages
    override("subset_languages", subset_languages)
    if "hf_subsets" not in spec.values:
        override("hf_subsets", tuple(subset_languages))
    if "languages" not in spec.values:
        override("languages", tuple(dict.fromkeys(lang for langs in subset_languages.values() for lang in langs)))
    missing = [subset for subset in values.get("hf_subsets", ()) if subset not in subset_languages]
    if missing:
        raise spec.error("subset_languages", f"no languages given for subset(s) {', '.join(missing)}")


@dataclass
class TaskRegistry:
    """Task specs by name: YAML specs in the spec folders, and every task the installed mteb defines.

    ``names`` lists the spec files plus ``extra_names`` (the tasks of the named benchmarks), so listing stays
    offline and fast; ``get`` resolves any mteb task name even when nothing lists it.
    """

    spec_dirs: list[Path]
    extra_names: Sequence[str] = ()

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
        return sorted(set(self._files) | set(self.extra_names))

    def get(self, name: str, *, mteb_task: Any | None = None) -> TaskSpec:
        """The spec of ``name``; ``mteb_task`` (a benchmark's restricted task object) replaces mteb's default."""
        if mteb_task is None and name in self._specs:
            return self._specs[name]
        if name in self._files:
            spec = parse_task_spec(self._files[name], mteb_task)
        else:
            task = mteb_task if mteb_task is not None else _mteb_task(name)
            if task is None:
                close = difflib.get_close_matches(name, self.names, n=3)
                hint = f" (did you mean {', '.join(close)}?)" if close else ""
                raise UnknownTaskError(f"unknown task '{name}'{hint}; `evalkit tasks` lists the known ones")
            spec = spec_from_mteb(task)
        if mteb_task is None:
            self._specs[name] = spec
        return spec

    def select(self, *, task_type: str | None = None, language: str | None = None) -> list[TaskSpec]:
        """Specs of the given type and language (``eng`` or ``eng-Latn``), sorted by type then name."""
        specs = [self.get(name) for name in self.names]
        if task_type is not None:
            specs = [s for s in specs if s.type.lower() == task_type.lower()]
        if language is not None:
            specs = [s for s in specs if language in s.languages or language in s.language_codes]
        return sorted(specs, key=lambda s: (s.type, s.name))


def default_registry() -> TaskRegistry:
    """The spec files, plus every task of the named benchmarks (MTEB(eng, v1/v2), MTEB(cmn, v1), BEIR)."""
    from evalkit.registry.benchmarks import benchmark_task_names  # benchmarks build on this module
    from evalkit.registry.mteb_memo import LazyNames

    return TaskRegistry(task_spec_dirs(), LazyNames(benchmark_task_names))  # mteb imported only to list names

