"""The model registry: each known model's settings, and the resolution of ``--model`` to weights on disk.

``--model`` takes a registry name (or its short name), a local folder, or a hub id. A registry model whose weights a
Python package carries (``packaged_in``) resolves to that local copy, so it works offline.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

from evalkit.errors import SpecError, UnknownModelError
from evalkit.registry.yaml_spec import SpecMapping, read_spec_file

REGISTRY_FILE = Path(__file__).with_name("models.yaml")

_MODEL_FIELDS = {
    "adapter",
    "revision",
    "pooling",
    "normalize",
    "max_length",
    "prompts",
    "languages",
    "embedding_dim",
    "packaged_in",
    "onnx_file",
    "tokenizer_from",
    "aliases",
    "api_base_url",
    "api_key_env",
}
POOLINGS = ("mean", "cls")
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
    source: str = "registry"  # "registry", "local" or "hub"
    local_path: Path | None = None

    @property
    def results_folder_name(self) -> str:
        """``org__model`` as the MTEB results layout names model folders."""
        return self.name.replace("/", "__")

    def settings(self) -> dict[str, Any]:
        """The settings recorded with every result (everything that changes a vector, except the weights)."""
        return {
            "adapter": self.adapter,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "max_length": self.max_length,
            "prompts": dict(self.prompts),
        }


def _parse_prompts(entry: SpecMapping) -> dict[str, str]:
    prompts = entry.get("prompts", dict, {})
    for key, text in prompts.items():
        if not isinstance(text, str):
            raise entry.error("prompts", f"prompt '{key}' must be a string, got {type(text).__name__}")
    return dict(prompts)


def _parse_entry(name: str, entry: SpecMapping) -> ModelSpec:
    entry.reject_unknown(_MODEL_FIELDS)
    pooling = entry.get("pooling", str, "mean")
    if pooling not in POOLINGS:
        raise entry.error("pooling", f"expected one of {', '.join(POOLINGS)}, got '{pooling}'")
    adapter = entry.get("adapter", str, "hf")
    return ModelSpec(
        name=name,
        adapter=adapter,
        revision=entry.get("revision", str),
        pooling=pooling,
        normalize=entry.get("normalize", bool, True),
        max_length=entry.get("max_length", int, 512),
        prompts=_parse_prompts(entry),
        languages=entry.get_str_list("languages"),
        embedding_dim=entry.get("embedding_dim", int),
        packaged_in=entry.get("packaged_in", str),
        onnx_file=_required_for(entry, "onnx_file", adapter == "onnx"),
        tokenizer_from=entry.get("tokenizer_from", str),
        aliases=entry.get_str_list("aliases"),
        api_base_url=_required_for(entry, "api_base_url", adapter == "openai-api"),
        api_key_env=entry.get("api_key_env", str),
    )


def _required_for(entry: SpecMapping, key: str, required: bool) -> str | None:
    """A string field some adapters need (``onnx_file`` for onnx) and the others may omit."""
    value = entry.get(key, str)
    if required and value is None:
        raise entry.error(key, f"required for adapter '{entry.values.get('adapter')}'")
    return value


@cache
def load_model_registry(path: Path = REGISTRY_FILE) -> dict[str, ModelSpec]:
    root = read_spec_file(path)
    models = {}
    for name in root.values:
        entry = root.child(name)
        if entry is None:
            raise SpecError("expected a mapping of settings", file=path, line=root.line_of(name), field=name)
        models[name] = _parse_entry(name, entry)
    return models


def packaged_weights(spec: ModelSpec) -> Path | None:
    """The local copy of a registry model's weights carried by a Python package, if that package is installed.

    The folder is the package's ``get_model_path()`` or, for a package that only ships files, its own folder; it
    counts when it holds the model's ONNX graph (``onnx_file``) or else a ``config.json``.
    """
    if spec.packaged_in is None:
        return None
    try:
        module = importlib.import_module(spec.packaged_in)
    except ImportError:
        return None
    if hasattr(module, "get_model_path"):
        folder: Path | None = Path(module.get_model_path())
    elif getattr(module, "__file__", None):
        folder = Path(module.__file__).parent
    else:  # a data folder inside a package (a namespace package: no __init__.py, no __file__)
        folder = Path(next(iter(module.__path__))) if getattr(module, "__path__", None) else None
    if folder is not None and folder.is_file():  # a package pointing at its model file, not a folder
        folder = folder.parent
    marker = spec.onnx_file or "config.json"
    return folder if folder is not None and (folder / marker).is_file() else None


def _settings_from_folder(folder: Path) -> dict[str, Any]:
    """Pooling, normalisation and max length from a sentence-transformers folder, when it is one."""
    settings: dict[str, Any] = {}
    pooling_config = folder / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        config = json.loads(pooling_config.read_text())
        settings["pooling"] = "cls" if config.get("pooling_mode_cls_token") else "mean"
    modules = folder / "modules.json"
    if modules.is_file():
        types = [m.get("type", "") for m in json.loads(modules.read_text())]
        settings["normalize"] = any(t.endswith("Normalize") for t in types)
    st_prompts = folder / "config_sentence_transformers.json"
    if st_prompts.is_file():
        prompts = json.loads(st_prompts.read_text()).get("prompts") or {}
        settings["prompts"] = {k: v for k, v in prompts.items() if isinstance(v, str) and v}
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        max_length = json.loads(st_config.read_text()).get("max_seq_length")
        if isinstance(max_length, int):
            settings["max_length"] = max_length
    return settings


def _download_from_hub(repo_id: str, revision: str | None) -> Path:
    """Fetch a model's weights and configs (safetensors preferred, no code files) from the hub."""
    from huggingface_hub import snapshot_download

    # BGE-M3's sparse and ColBERT heads are torch state dicts beside the weights (loaded weights-only).
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
        # Only non-safetensors weights exist; fetch them too (loaded with torch's weights-only unpickler).
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=[*patterns, "*.bin"]))
    return folder


def resolve_model(model: str) -> ModelSpec:
    """Turn ``--model`` into a spec with ``local_path`` set: a registry name or alias, a local folder or a hub id.

    BM25 and embedding-API models have no weights here; their ``local_path`` stays ``None``.
    """
    registry = load_model_registry()
    short_names = {name.split("/", 1)[-1]: name for name in registry}
    aliases = {alias: name for name, spec in registry.items() for alias in spec.aliases}
    name = model if model in registry else short_names.get(model) or aliases.get(model)
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
            local = _download_from_hub(spec.name, spec.revision)
        return replace(spec, local_path=local)
    folder = Path(model).expanduser()
    if folder.is_dir():
        if not (folder / "config.json").is_file():
            raise UnknownModelError(f"{folder} is a folder but holds no config.json", file=folder / "config.json")
        return ModelSpec(
            name=f"local/{folder.resolve().name}",
            source="local",
            local_path=folder.resolve(),
            **_settings_from_folder(folder),
        )
    if model.count("/") == 1 and not model.startswith((".", "/")):
        local = _download_from_hub(model, None)
        return ModelSpec(
            name=model, source="hub", revision=local.name, local_path=local, **_settings_from_folder(local)
        )
    raise UnknownModelError(
        f"unknown model '{model}': not in the registry, not a folder, not a hub id (org/name); "
        "`evalkit models` lists the registry"
    )
