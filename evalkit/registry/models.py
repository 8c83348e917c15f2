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
    marker = spec.onnx_file or "config.json"
    located = _package_folder(spec.packaged_in)  # found without running the package (its __init__ may load torch)
    if located is not None and (located / marker).is_file():
        return located
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
    return folder if folder is not None and (folder / marker).is_file() else None


def _package_folder(dotted: str) -> Path | None:
    """The folder of ``top.sub.data`` found from the top package's location alone, importing nothing."""
    import importlib.util

    top, *rest = dotted.split(".")
    try:
        found = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    locations = list(found.submodule_search_locations or []) if found is not None else []
    if not locations:
        return None
    folder = Path(locations[0]).joinpath(*rest)
    return folder if folder.is_dir() else None


_ST_MODULES = ("Transformer", "Pooling", "Normalize")
"""The sentence-transformers modules evalkit computes; any other (Dense, LayerNorm, ...) would be silently skipped."""
_POOLING_MODES = ("pooling_mode_cls_token", "pooling_mode_mean_tokens")
_OTHER_POOLING_MODES = (
    "pooling_mode_max_tokens",
    "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens",
    "pooling_mode_lasttoken",
)


def _read_json(path: Path, kind: type) -> Any:
    """A model folder's JSON file, or a one-line error naming it (and the line of a syntax error)."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SpecError(f"not valid JSON: {err.msg} (column {err.colno})", file=path, line=err.lineno) from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpecError(f"cannot read it: {type(err).__name__}: {err}"[:200], file=path) from None
    if not isinstance(value, kind):
        expected = "an object" if kind is dict else "an array"
        raise SpecError(f"expected {expected} at the top level, got {type(value).__name__}", file=path)
    return value


def _pooling_from(path: Path) -> str:
    """``cls`` or ``mean``; a pooling evalkit does not compute is refused rather than replaced by mean."""
    config = _read_json(path, dict)
    for key in (*_POOLING_MODES, *_OTHER_POOLING_MODES, "include_prompt"):
        if key in config and not isinstance(config[key], bool):
            raise SpecError(f"expected true or false, got {config[key]!r}"[:120], file=path, field=key)
    other = [key for key in _OTHER_POOLING_MODES if config.get(key)]
    if other:
        raise SpecError("this pooling is not supported here (mean or CLS only)", file=path, field=other[0])
    if all(config.get(key) for key in _POOLING_MODES):
        raise SpecError("CLS and mean pooling together is not supported", file=path, field=_POOLING_MODES[0])
    if config.get("include_prompt") is False:
        raise SpecError("pooling without the prompt's tokens is not supported", file=path, field="include_prompt")
    return "cls" if config.get("pooling_mode_cls_token") else "mean"


def _normalize_from(path: Path) -> bool:
    """Whether the module list ends in a Normalize; a module that would change vectors unseen is refused."""
    modules = _read_json(path, list)
    types = []
    for number, module in enumerate(modules):
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(kind, str):
            raise SpecError(f"module {number} has no 'type' string", file=path, field="type")
        if kind.rsplit(".", 1)[-1] not in _ST_MODULES:
            raise SpecError(
                f"module {number} is a {kind}, which evalkit does not compute (only {', '.join(_ST_MODULES)})",
                file=path,
                field="type",
            )
        types.append(kind)
    return any(t.endswith("Normalize") for t in types)


def _settings_from_folder(folder: Path) -> dict[str, Any]:
    """Pooling, normalisation, prompts and max length from a sentence-transformers folder, when it is one.

    Each file is checked as it is read: a malformed one, or a setting evalkit would not honour (max pooling, a
    Dense module, lower-casing), is a one-line error naming the file and field, never a default put in its place.
    """
    settings: dict[str, Any] = {}
    pooling_config = folder / "1_Pooling" / "config.json"
    if pooling_config.is_file():
        settings["pooling"] = _pooling_from(pooling_config)
    modules = folder / "modules.json"
    if modules.is_file():
        settings["normalize"] = _normalize_from(modules)
    st_prompts = folder / "config_sentence_transformers.json"
    if st_prompts.is_file():
        prompts = _read_json(st_prompts, dict).get("prompts") or {}
        if not isinstance(prompts, dict):
            raise SpecError("expected an object of prompt name to text", file=st_prompts, field="prompts")
        settings["prompts"] = {k: v for k, v in prompts.items() if isinstance(v, str) and v}
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        settings.update(_max_length_from(st_config))
    return settings


def _max_length_from(path: Path) -> dict[str, int]:
    config = _read_json(path, dict)
    tokenizer_config = path.with_name("tokenizer_config.json")
    lowers_anyway = tokenizer_config.is_file() and _read_json(tokenizer_config, dict).get("do_lower_case") is True
    if config.get("do_lower_case") and not lowers_anyway:  # sentence-transformers lower-cases; evalkit would not
        raise SpecError("lower-casing the input is not supported here", file=path, field="do_lower_case")
    max_length = config.get("max_seq_length")
    if max_length is None:
        return {}
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise SpecError(f"expected a positive integer, got {max_length!r}"[:120], file=path, field="max_seq_length")
    return {"max_length": max_length}


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
