"""The model registry: each known model's settings, and the resolution of ``--model`` to weights on disk.

``--model`` takes a registry name (or its short name), a local folder, or a hub id. A registry model whose weights a
Python package carries (``packaged_in``) resolves to that local copy, so it works offline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from evalkit.errors import SpecError, UnknownModelError
from evalkit.registry.mteb_models import (
    ORIGIN_CONFIG,
    ORIGIN_DEFAULT,
    ORIGIN_MTEB,
    ORIGIN_OVERRIDE,
    mteb_fields,
    runnable_mteb_fields,
)
from evalkit.registry.packaged import checked_packaged, packaged_weights
from evalkit.registry.st_folder import POOLING_MODES, settings_from_folder
from evalkit.registry.yaml_spec import SpecMapping, read_spec_file

REGISTRY_FILE = Path(__file__).with_name("models.yaml")

# fmt: off
_MODEL_FIELDS = {
    "adapter", "revision", "pooling", "normalize", "max_length", "prompts", "languages", "embedding_dim",
    "packaged_in", "onnx_file", "tokenizer_from", "aliases", "api_base_url", "api_key_env", "files_sha256",
}
# fmt: on
# fmt: off
_LATER_SETTINGS = (  # recorded by settings() only when not the default: keys (and cached vectors) of others stay
    "similarity", "include_prompt", "default_prompt_name", "dense_modules", "truncate_dim", "padding_side",
    "prompt_style", "instruction_template", "instruction_to_documents", "instructions", "instruction_templates",
    "tokenizer_kwargs",
)
# fmt: on
WEIGHTLESS_ADAPTERS = ("bm25", "openai-api")
"""Adapters with no weights to fetch: BM25 builds its index from the corpus, an embedding API keeps them remote."""


@dataclass(frozen=True)
class ModelSpec:
    """A model's identity and the settings that change its vectors."""

    name: str
    adapter: str = "hf"
    revision: str | None = None
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 512
    prompts: dict[str, str] = field(default_factory=dict)  # mteb's model_prompts format
    languages: tuple[str, ...] = ()
    embedding_dim: int | None = None
    packaged_in: str | None = None
    onnx_file: str | None = None  # adapter onnx: the graph's path inside the packaged folder
    tokenizer_from: str | None = None  # a registry model whose tokenizer this one uses (a graph shipped without one)
    aliases: tuple[str, ...] = ()  # more names ``--model`` accepts
    api_base_url: str | None = None  # adapter openai-api: the base URL (…/v1); the model id is the short name
    api_key_env: str | None = None  # adapter openai-api: the environment variable holding the API key
    similarity: str = "cosine"  # sentence-transformers' similarity_fn_name: cosine, dot, euclidean, manhattan
    include_prompt: bool = True  # pooling counts the prompt's tokens (sentence-transformers' Pooling.include_prompt)
    dense_modules: tuple[str, ...] = ()  # sentence-transformers Dense module folders after pooling, in order
    default_prompt_name: str | None = None  # sentence-transformers: the prompt used when no other applies
    truncate_dim: int | None = None  # keep the first n dimensions of the output (sentence-transformers truncate_dim)
    padding_side: str = "right"  # "left" for decoder embedders whose tokenizer pads on the left
    prompt_style: str = "prompts"  # "prompts": mteb's model_prompts by name; "instruct": a task instruction
    instruction_template: str | None = None  # prompt_style instruct: contains "{instruction}"
    instruction_to_documents: bool = False  # prompt_style instruct: documents get the instruction too
    instructions: dict[str, str] = field(default_factory=dict)  # prompt_style instruct: mteb's prompts_dict
    # instruct, mteb's template being code: per role, its text with "{instruction}" and ("<role>:empty") without one
    instruction_templates: dict[str, str] = field(default_factory=dict)
    tokenizer_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to the tokenizer as sentence-transformers
    origins: dict[str, str] = field(default_factory=dict)  # setting -> where it came from (mteb, model config, ...)
    mteb_meta: dict[str, Any] | None = None  # mteb's ModelMeta for the model, as JSON, when mteb has it
    files_sha256: dict[str, str] = field(default_factory=dict)  # packaged weights: file -> pinned hub SHA-256
    warnings: tuple[str, ...] = ()  # said on stderr and kept in the run record (e.g. packaged files differ)
    source: str = "registry"  # "registry", "local" or "hub"
    local_path: Path | None = None

    @property
    def results_folder_name(self) -> str:
        """``org__model`` as the MTEB results layout names model folders."""
        return self.name.replace("/", "__")

    def settings(self) -> dict[str, Any]:
        """The settings recorded with every result (everything that changes a vector, except the weights)."""
        settings: dict[str, Any] = {
            "adapter": self.adapter,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "prompts": dict(self.prompts),
        }
        for name, value in self._non_default_settings().items():
            settings[name] = value
        return settings

    def _non_default_settings(self) -> dict[str, Any]:
        defaults = ModelSpec(name="")
        values = {
            name: getattr(self, name) for name in _LATER_SETTINGS if getattr(self, name) != getattr(defaults, name)
        }
        return {
            k: (list(v) if isinstance(v, tuple) else dict(v) if isinstance(v, dict) else v) for k, v in values.items()
        }


def _parse_prompts(entry: SpecMapping) -> dict[str, str]:
    prompts = entry.get("prompts", dict, {})
    for key, text in prompts.items():
        if not isinstance(text, str):
            raise entry.error("prompts", f"prompt '{key}' must be a string, got {type(text).__name__}")
    return dict(prompts)


def _parse_sha256(entry: SpecMapping) -> dict[str, str]:
    """``files_sha256``: file path in the packaged folder -> the hub's SHA-256 of it (64 hex digits)."""
    pins = entry.get("files_sha256", dict, {})
    for file, digest in pins.items():
        if not (isinstance(digest, str) and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
            raise entry.error("files_sha256", f"'{file}' must map to 64 lower-case hex digits")
    return dict(pins)


def _parse_entry(name: str, entry: SpecMapping) -> dict[str, Any]:
    """The fields a models.yaml entry sets, and only those (what it leaves out comes from mteb or the folder)."""
    entry.reject_unknown(_MODEL_FIELDS)
    pooling = entry.get("pooling", str, "mean")
    if not pooling or any(mode not in POOLING_MODES for mode in pooling.split("+")):
        raise entry.error(
            "pooling", f"expected one of {', '.join(POOLING_MODES)} (or several joined by +), got '{pooling}'"
        )
    adapter = entry.get("adapter", str, "hf")
    parsed: dict[str, Any] = {
        "adapter": adapter,
        "revision": entry.get("revision", str),
        "pooling": pooling,
        "normalize": entry.get("normalize", bool, True),
        "max_length": entry.get("max_length", int, 512),
        "prompts": _parse_prompts(entry),
        "languages": entry.get_str_list("languages"),
        "embedding_dim": entry.get("embedding_dim", int),
        "packaged_in": entry.get("packaged_in", str),
        "onnx_file": _required_for(entry, "onnx_file", adapter == "onnx"),
        "tokenizer_from": entry.get("tokenizer_from", str),
        "aliases": entry.get_str_list("aliases"),
        "api_base_url": _required_for(entry, "api_base_url", adapter == "openai-api"),
        "api_key_env": entry.get("api_key_env", str),
        "files_sha256": _parse_sha256(entry),
    }
    return {key: value for key, value in parsed.items() if key in entry.values or key == "adapter"}


def _required_for(entry: SpecMapping, key: str, required: bool) -> str | None:
    """A string field some adapters need (``onnx_file`` for onnx) and the others may omit."""
    value = entry.get(key, str)
    if required and value is None:
        raise entry.error(key, f"required for adapter '{entry.values.get('adapter')}'")
    return value


@cache
def load_model_registry(path: Path = REGISTRY_FILE) -> dict[str, ModelSpec]:
    """models.yaml's models, each merged with mteb's registry entry for it (models.yaml wins, as an override)."""
    return {
        name: merge_settings(name, override=override, mteb=mteb)
        for name, (override, mteb) in _registry_layers(path).items()
    }


@cache
def _registry_layers(path: Path = REGISTRY_FILE) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per models.yaml model: (the fields models.yaml sets, mteb's fields for it)."""
    root = read_spec_file(path)
    layers = {}
    for name in root.values:
        entry = root.child(name)
        if entry is None:
            raise SpecError("expected a mapping of settings", file=path, line=root.line_of(name), field=name)
        layers[name] = (_parse_entry(name, entry), mteb_fields(name))
    return layers


def merge_settings(
    name: str,
    *,
    override: Mapping[str, Any] | None = None,
    mteb: Mapping[str, Any] | None = None,
    folder: Mapping[str, Any] | None = None,
    **identity: Any,
) -> ModelSpec:
    """One ModelSpec from its sources, in this precedence, highest first, each setting's source in ``origins``:

    1. evalkit override (models.yaml; command-line overrides are applied later, on the result);
    2. mteb registry (what mteb's loader passes: its model_prompts replace the model's own prompts, as
       mteb's SentenceTransformerEncoderWrapper does; its instruction template; its max_seq_length);
    3. the model folder's own config (sentence-transformers files: pooling, modules, prompts, similarity);
    4. mteb's recorded ``max_tokens`` (for a model whose folder does not say its maximum length);
    5. evalkit's defaults (ModelSpec's).
    """
    mteb = dict(mteb or {})
    mteb_origins = mteb.pop("origins", {})
    layers: list[tuple[str, Mapping[str, Any]]] = []
    max_tokens = (mteb.get("mteb_meta") or {}).get("max_tokens")
    if isinstance(max_tokens, (int, float)) and 1 <= max_tokens < float("inf"):
        layers.append((ORIGIN_MTEB, {"max_length": int(max_tokens)}))
    layers += [(ORIGIN_CONFIG, folder or {}), (ORIGIN_MTEB, mteb), (ORIGIN_OVERRIDE, override or {})]
    values: dict[str, Any] = {}
    origins = dict.fromkeys(
        ("adapter", "pooling", "normalize", "max_length", "prompts", *_LATER_SETTINGS), ORIGIN_DEFAULT
    )
    for origin, fields in layers:
        for key, value in fields.items():
            values[key] = value
            if key not in ("mteb_meta", "local_path", "source"):
                origins[key] = mteb_origins.get(key, origin) if fields is mteb else origin
    return ModelSpec(name=name, **{**values, **identity}, origins=origins)


def _download_from_hub(repo_id: str, revision: str | None) -> Path:
    """Fetch a model's weights and configs (safetensors only, no code files, nothing pickled) from the hub."""
    from huggingface_hub import snapshot_download

    # BGE-M3's sparse and ColBERT heads are small torch state dicts beside the weights (loaded weights-only).
    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*", "sparse_linear.pt", "colbert_linear.pt"]
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except Exception as err:  # the hub client raises many kinds; all mean "not reachable here"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UnknownModelError(
            f"model '{repo_id}' is not in the registry, not a local folder, and could not be fetched from the "
            f"hub ({type(err).__name__}: {reason[:160]}); `evalkit models` lists the registry"
        ) from None
    if not any(folder.glob("*.safetensors")):
        raise UnknownModelError(
            f"model '{repo_id}' has no safetensors weights on the hub: pickled weights are not loaded; convert to "
            "safetensors"
        )
    return folder


def _registry_name(model: str, registry: Mapping[str, ModelSpec]) -> str | None:
    """The models.yaml name ``model`` refers to (its full name, its short name or an alias), if any."""
    short_names = {name.split("/", 1)[-1]: name for name in registry}
    aliases = {alias: name for name, spec in registry.items() for alias in spec.aliases}
    return model if model in registry else short_names.get(model) or aliases.get(model)


def _with_folder(name: str, folder: Path) -> ModelSpec:
    """A models.yaml model with its folder's own config under models.yaml's and mteb's settings."""
    override, mteb = _registry_layers()[name]
    spec = load_model_registry()[name]
    if spec.adapter != "hf":  # ONNX graphs, BGE-M3, SPLADE: their settings are models.yaml's
        return replace(spec, local_path=folder)
    return merge_settings(name, override=override, mteb=mteb, folder=settings_from_folder(folder), local_path=folder)


def resolve_model(model: str) -> ModelSpec:
    """Turn ``--model`` into a spec with ``local_path`` set: a models.yaml name or alias, a local folder, a model in
    mteb's registry (its settings and revision; one evalkit cannot run exactly raises why) or another hub id.
    Settings merge as ``merge_settings`` says; BM25 and embedding-API models keep ``local_path`` ``None``.
    """
    registry = load_model_registry()
    name = _registry_name(model, registry)
    if name is not None:
        spec = registry[name]
        if spec.adapter in WEIGHTLESS_ADAPTERS:
            return spec
        local = packaged_weights(spec)
        if local is None and spec.adapter == "onnx":
            raise UnknownModelError(
                f"model '{name}' is carried by the Python package that provides the module '{spec.packaged_in}', "
                "which is not installed (it is in evalkit's dev extra)",
                field="packaged_in",
            )
        if local is None:
            return _with_folder(name, _download_from_hub(spec.name, spec.revision))
        return checked_packaged(_with_folder(name, local), local)
    folder = Path(model).expanduser()
    if folder.is_dir():
        return _local_folder_spec(folder)
    if model.count("/") == 1 and not model.startswith((".", "/")):
        known = runnable_mteb_fields(model)
        if known is not None:
            mteb_name, fields = known
            local = _download_from_hub(mteb_name, fields.get("revision"))
            return merge_settings(
                mteb_name, mteb=fields, folder=settings_from_folder(local), source="hub", local_path=local
            )
        local = _download_from_hub(model, None)
        return merge_settings(
            model, folder=settings_from_folder(local), source="hub", revision=local.name, local_path=local
        )
    raise UnknownModelError(
        f"unknown model '{model}': not in the registry, not a folder, not a hub id (org/name); "
        "`evalkit models` lists the registry"
    )


def _local_folder_spec(folder: Path) -> ModelSpec:
    if not (folder / "config.json").is_file():
        raise UnknownModelError(f"{folder} is a folder but holds no config.json", file=folder / "config.json")
    return merge_settings(
        f"local/{folder.resolve().name}",
        folder=settings_from_folder(folder),
        source="local",
        local_path=folder.resolve(),
    )


def model_settings(name: str) -> ModelSpec:
    """A model's resolved settings without fetching weights (``evalkit models show``), ``origins`` filled.

    The folder's own config is read when the weights are already here (a package, the hub cache, a local folder);
    otherwise the settings that come from it show their defaults. ``local_path`` says which folder was read.
    """
    registry = load_model_registry()
    registry_name = _registry_name(name, registry)
    if registry_name is not None:
        spec = registry[registry_name]
        if spec.adapter in WEIGHTLESS_ADAPTERS:
            return spec
        local = packaged_weights(spec) or _cached_snapshot(spec.name, spec.revision)
        return _with_folder(registry_name, local) if local is not None else spec
    folder = Path(name).expanduser()
    if folder.is_dir():
        return _local_folder_spec(folder)
    known = runnable_mteb_fields(name) if name.count("/") == 1 else None
    if known is not None:
        mteb_name, fields = known
        local = _cached_snapshot(mteb_name, fields.get("revision"))
        folder_fields = settings_from_folder(local) if local is not None else None
        return merge_settings(mteb_name, mteb=fields, folder=folder_fields, source="hub", local_path=local)
    local = _cached_snapshot(name, None) if name.count("/") == 1 else None
    if local is None:
        raise UnknownModelError(
            f"unknown model '{name}': not in evalkit's or mteb's registry, not a local folder, and not downloaded "
            "(`evalkit models` lists the registries)"
        )
    return merge_settings(name, folder=settings_from_folder(local), source="hub", revision=local.name, local_path=local)


def _cached_snapshot(repo_id: str, revision: str | None) -> Path | None:
    """The hub cache's copy of a model, if it was downloaded before; never fetches."""
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo_id, revision=revision, local_files_only=True))
    except Exception:  # the hub client raises many kinds; all mean "not in the cache"
        return None
    return folder if (folder / "config.json").is_file() else None
