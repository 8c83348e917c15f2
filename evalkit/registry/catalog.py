"""Every model evalkit knows, one record each: mteb's registry and evalkit's own ``models.yaml``, listed and searched.

``evalkit models`` prints :func:`list_models`; a Python user calls it the same way. Each entry says what kind of
model it is, where its settings come from, and whether evalkit runs it or refuses it (with the one-line reason).
mteb's registry is read from ``mteb.get_model_metas()``, which loads no weights and no torch.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from evalkit.errors import EvalkitError
from evalkit.registry.models import ModelSpec, load_model_registry

KINDS = ("dense", "sparse", "hybrid", "multi-vector", "cross-encoder", "bm25", "api", "onnx", "router")
"""Model kinds ``--type`` accepts: how a model scores texts (``onnx``: an exported graph evalkit runs itself)."""

_ADAPTER_KINDS = {
    "hf": "dense",
    "bge-m3": "hybrid",  # dense, sparse and ColBERT heads
    "splade": "sparse",
    "onnx": "onnx",
    "openai-api": "api",
    "bm25": "bm25",
    "cross-encoder": "cross-encoder",
}
_MTEB_MODEL_TYPES = {
    "dense": "dense",
    "late-interaction": "multi-vector",
    "cross-encoder": "cross-encoder",
    "sparse": "sparse",
    "hybrid": "hybrid",
    "router": "router",
}


@dataclass(frozen=True)
class CatalogEntry:
    """One model of the catalogue: its kind, where its settings come from, and whether evalkit runs it."""

    name: str
    kind: str  # one of KINDS
    source: str  # "evalkit" (models.yaml only), "mteb" (mteb's registry only) or "evalkit+mteb" (both)
    runs: bool
    reason: str = ""  # why evalkit refuses it; empty when it runs
    revision: str | None = None
    modalities: tuple[str, ...] = ("text",)
    aliases: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["modalities"] = list(self.modalities)
        record["aliases"] = list(self.aliases)
        return record


def mteb_kind(meta: Any) -> str:
    """The kind of an mteb ``ModelMeta``: BM25 and closed-weight APIs first, then mteb's ``model_type``."""
    loader = getattr(getattr(meta, "loader", None), "__name__", "") or ""
    if "bm25" in loader and "hybrid" not in loader:
        return "bm25"
    if meta.open_weights is False or "API" in (meta.framework or []):
        return "api"
    types = [_MTEB_MODEL_TYPES.get(t, t) for t in (meta.model_type or ["dense"])]
    return types[0] if len(types) == 1 else "hybrid"


def _evalkit_entry(spec: ModelSpec, in_mteb: bool) -> CatalogEntry:
    return CatalogEntry(
        name=spec.name,
        kind=_ADAPTER_KINDS.get(spec.adapter, spec.adapter),
        source="evalkit+mteb" if in_mteb else "evalkit",
        runs=True,  # models.yaml is evalkit's own: every entry names an adapter evalkit has
        revision=spec.revision,
        aliases=spec.aliases,
    )


def _mteb_entry(meta: Any) -> CatalogEntry:
    reason = mteb_refusal(meta)
    return CatalogEntry(
        name=meta.name,
        kind=mteb_kind(meta),
        source="mteb",
        runs=not reason,
        reason=reason,
        revision=meta.revision,
        modalities=tuple(meta.modalities or ()),
    )


def mteb_refusal(meta: Any) -> str:
    """Why evalkit refuses an mteb model (``""`` when it runs it): the registry's own rule, not a second one."""
    from evalkit.registry.mteb_models import refusal_reason

    return refusal_reason(meta) or ""


@cache
def mteb_model_metas() -> dict[str, Any]:
    """mteb's model registry by name (no weights, no torch)."""
    import mteb

    return {meta.name: meta for meta in mteb.get_model_metas()}


@cache
def catalog() -> tuple[CatalogEntry, ...]:
    """Every model: evalkit's entries (which take precedence) and the rest of mteb's registry, sorted by name."""
    metas = mteb_model_metas()
    ours = load_model_registry()
    entries = [_evalkit_entry(spec, spec.name in metas) for spec in ours.values()]
    entries += [_mteb_entry(meta) for name, meta in metas.items() if name not in ours]
    return tuple(sorted(entries, key=lambda e: e.name.lower()))


def list_models(*, search: str | None = None, kind: str | None = None) -> list[CatalogEntry]:
    """The catalogue, filtered: ``search`` is a case-insensitive substring of a name or alias, ``kind`` one of
    :data:`KINDS` (any case). An unknown kind is an error naming the known ones, not an empty list."""
    if kind is not None and kind.lower() not in KINDS:
        raise EvalkitError(f"unknown model type '{kind}' (known: {', '.join(KINDS)})", field="--type")
    needle = (search or "").lower()
    return [
        entry
        for entry in catalog()
        if (kind is None or entry.kind == kind.lower())
        and (not needle or any(needle in name.lower() for name in (entry.name, *entry.aliases)))
    ]


def known_names() -> list[str]:
    """Every name ``--model`` and ``evalkit models show`` accept from the registries: names, aliases, short names."""
    names: set[str] = set()
    for entry in catalog():
        names.update((entry.name, entry.name.split("/", 1)[-1], *entry.aliases))
    return sorted(names)


def find_entry(name: str) -> CatalogEntry | None:
    """The entry a name, alias or short name (``all-MiniLM-L6-v2``) denotes; evalkit's entries win a tie."""
    by_name = {entry.name: entry for entry in catalog()}
    if name in by_name:
        return by_name[name]
    for entry in catalog():
        if name in entry.aliases:
            return entry
    short = [entry for entry in catalog() if entry.name.split("/", 1)[-1] == name]
    short.sort(key=lambda e: not e.source.startswith("evalkit"))
    return short[0] if short else None


def did_you_mean(name: str, candidates: Iterable[str] | None = None, n: int = 3) -> list[str]:
    """Close names (difflib), case-insensitively: ``bge-small-en`` finds ``BAAI/bge-small-en-v1.5``."""
    pool = list(candidates) if candidates is not None else known_names()
    lowered: dict[str, str] = {}
    for candidate in pool:
        lowered.setdefault(candidate.lower(), candidate)
    close = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.6)
    return [lowered[c] for c in close]


ORIGIN_DEFAULT = "evalkit default"
ORIGIN_NOT_READ = "evalkit default (model folder not downloaded: its own config was not read)"
_CORE_SETTINGS = ("revision", "adapter", "pooling", "normalize", "max_length", "similarity", "prompt_style")
_MORE_SETTINGS = (
    "include_prompt",
    "dense_modules",
    "truncate_dim",
    "padding_side",
    "tokenizer_kwargs",
    "prompts",
    "default_prompt_name",
    "instruction_template",
    "instruction_templates",
    "instruction_to_documents",
    "instructions",
    "embedding_dim",
    "languages",
    "packaged_in",
    "onnx_file",
    "tokenizer_from",
    "api_base_url",
)
"""Shown when set (or when a source set them): what changes vectors first, then what describes the model."""
_ROLE_TASK_TYPES = ("Retrieval", "Reranking", "AnswerRetrieval", "InstructionRetrieval", "InstructionReranking")
"""Task types mteb encodes with a role (queries, documents); every other type encodes texts with no role."""
_NOT_APPLICABLE = {
    "bm25": ("pooling", "normalize", "max_length", "similarity", "prompt_style"),  # ranks texts itself
    "openai-api": ("pooling",),  # the service pools
}
_FOLDER_SETTINGS = ("pooling", "normalize", "similarity", "include_prompt", "dense_modules", "max_length")


@dataclass(frozen=True)
class Setting:
    """One resolved setting and where its value came from (mteb registry, model config, evalkit override...)."""

    name: str
    value: Any
    origin: str


@dataclass(frozen=True)
class ModelDescription:
    """What ``evalkit models show`` prints: the resolved settings with their origins, and a task's prompts."""

    name: str
    kind: str
    source: str
    folder: str | None  # the weights folder whose config was read; None when not downloaded (or no weights)
    weightless: bool  # BM25 or an API: no weights here at all
    settings: tuple[Setting, ...]
    task: str | None = None
    task_type: str | None = None
    task_prompts: dict[str, str] | None = None  # role -> the exact text put before each input of that role

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["settings"] = {s.name: {"value": _jsonable(s.value), "from": s.origin} for s in self.settings}
        return record


def _jsonable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe_model(name: str, task: str | None = None) -> ModelDescription:
    """A model's resolved settings (``model_settings``: no weights fetched) with each one's origin, and with
    ``task`` the exact prompt or instruction per role as evalkit (and mteb) apply it for that task.

    An unknown name raises UnknownModelError with close names; a hub id that is in no registry and not downloaded
    says so (and that the machine is offline, when it is); a model evalkit refuses raises its reason.
    """
    from pathlib import Path

    from evalkit.registry.models import WEIGHTLESS_ADAPTERS, model_settings

    entry = find_entry(name)
    if entry is None and not Path(name).expanduser().is_dir():
        _unknown(name)
    spec = model_settings(entry.name if entry is not None else name)
    folder_read = spec.local_path is not None or spec.adapter in WEIGHTLESS_ADAPTERS
    settings = tuple(_settings_of(spec, folder_read, _NOT_APPLICABLE.get(spec.adapter, ())))
    prompts = task_type = None
    if task is not None:
        task_type, prompts = _task_prompts(spec, task)
    return ModelDescription(
        name=spec.name,
        kind=entry.kind if entry is not None else _ADAPTER_KINDS.get(spec.adapter, spec.adapter),
        source=entry.source if entry is not None else spec.source,
        folder=str(spec.local_path) if spec.local_path is not None else None,
        weightless=spec.adapter in WEIGHTLESS_ADAPTERS,
        settings=settings,
        task=task,
        task_type=task_type,
        task_prompts=prompts,
    )


def _settings_of(spec: ModelSpec, folder_read: bool, not_applicable: Iterable[str]) -> Iterable[Setting]:
    defaults = ModelSpec(name="")
    for key in (*_CORE_SETTINGS, *_MORE_SETTINGS):
        value = getattr(spec, key, None)
        origin = spec.origins.get(key)
        if key in not_applicable or (key not in _CORE_SETTINGS and origin is None and value == getattr(defaults, key)):
            continue
        if key == "revision" and value is None:
            origin = "none pinned: runs are filed under local-<12 hex of the weights' hash>"
        elif key == "revision" and origin is None and spec.source == "hub":
            origin = "the downloaded snapshot's commit"
        elif origin is None:
            origin = ORIGIN_NOT_READ if key in _FOLDER_SETTINGS and not folder_read else ORIGIN_DEFAULT
        yield Setting(key, value, origin)


def _task_prompts(spec: ModelSpec, task: str) -> tuple[str, dict[str, str]]:
    """The task's type and the prompt per role it encodes with (``query``/``document``, or ``symmetric``)."""
    from evalkit.encoders.prompts import TaskPrompts
    from evalkit.registry.tasks import default_registry

    task_spec = default_registry().get(task)
    resolved = TaskPrompts.for_model(
        spec, task_name=task_spec.name, task_type=task_spec.type, task_prompt=task_spec.prompt
    )
    roles = ("query", "document") if task_spec.type in _ROLE_TASK_TYPES else ("symmetric",)
    return task_spec.type, {role: resolved.for_role(role) for role in roles}


def _unknown(name: str) -> None:
    """Raise the one-line error for a name no registry knows: a hub id not downloaded, or a typo."""
    from evalkit.errors import UnknownModelError

    close = did_you_mean(name)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `evalkit models --search TEXT` lists them"
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not _downloaded(name):
        offline = " and this machine is offline (HF_HUB_OFFLINE=1)" if _offline() else ""
        raise UnknownModelError(
            f"model '{name}' is in neither evalkit's nor mteb's registry and is not downloaded{offline}{hint}"
        )
    if name.count("/") == 1 and not name.startswith((".", "/", "~")):
        return  # downloaded: its folder's own config is read
    raise UnknownModelError(f"unknown model '{name}': not in evalkit's or mteb's registry, not a folder{hint}")


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _downloaded(repo_id: str) -> bool:
    """Whether the hub cache holds a snapshot of ``repo_id`` (never fetches)."""
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, local_files_only=True)
    except Exception:  # the hub client raises many kinds; all mean "not in the cache"
        return False
    return True
