"""A sentence-transformers model folder read as settings: pooling, modules, prompts, max length, similarity.

Every setting of the folder that changes a vector or a score comes back under its :class:`ModelSpec` field name:
``pooling`` (one of sentence-transformers' modes, or several joined by ``+``, concatenated in that order),
``include_prompt``, ``dense_modules`` (the Dense module folders after pooling, in ``modules.json`` order),
``normalize``, ``similarity``, ``prompts``, ``default_prompt_name``, ``max_length`` and ``padding_side``.

Each file is checked as it is read; a malformed one, or a setting evalkit would not reproduce exactly (a module it
does not compute, a Dense activation it does not have, lower-casing, code to run), is a one-line error naming the
file and field, never a default put in its place. ``truncate_dim`` is not here: sentence-transformers takes it as
a constructor argument only and writes it to no file of the folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from evalkit.errors import SpecError

POOLING_MODES = ("cls", "max", "mean", "mean_sqrt_len_tokens", "weightedmean", "lasttoken")
"""sentence-transformers' pooling modes (``Pooling.POOLING_MODES``), all computed by evalkit."""
_LEGACY_POOLING_KEYS = {  # in the order sentence-transformers concatenates them
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
SIMILARITIES = ("cosine", "dot", "euclidean", "manhattan")
_SIMILARITY_ALIASES = {"dot_product": "dot"}
DENSE_ACTIVATIONS = ("Identity", "Tanh", "ReLU", "GELU", "Sigmoid", "SiLU")
"""Parameterless ``torch.nn`` activations a Dense module may name (``torch.nn[.modules.*].<Name>``)."""
_DENSE_KEYS = {"in_features", "out_features", "bias", "activation_function", "module_input_name"}
_DENSE_KEYS |= {"module_output_name", "use_residual"}
_SENTENCE_EMBEDDING = "sentence_embedding"
_TRANSFORMER_ARGS = ("model_args", "tokenizer_args", "config_args", "model_kwargs", "processor_kwargs")
_TRANSFORMER_ARGS += ("config_kwargs",)
_PLAIN_TEXT_MODALITY = {"text": {"method": "forward", "method_output_name": "last_hidden_state"}}


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


def _flag(config: dict[str, Any], key: str, path: Path, default: bool) -> bool:
    value = config.get(key, default)
    if not isinstance(value, bool):
        raise SpecError(f"expected true or false, got {value!r}"[:120], file=path, field=key)
    return value


def pooling_from(path: Path) -> dict[str, Any]:
    """``pooling`` and ``include_prompt`` from a Pooling module's ``config.json``, in either of its formats: the
    ``pooling_mode`` of sentence-transformers 5+ (a name or a list) or the older ``pooling_mode_*`` flags. Several
    modes are concatenated in the order sentence-transformers gives them (joined by ``+`` here)."""
    config = _read_json(path, dict)
    flags = {key: _flag(config, key, path, False) for key in _LEGACY_POOLING_KEYS if key in config}
    named = config.get("pooling_mode")
    if named is not None:
        modes = [named] if isinstance(named, str) else named
        if not isinstance(modes, list) or not modes or not all(isinstance(m, str) for m in modes):
            raise SpecError(f"expected a mode name or a list of them, got {named!r}"[:120], file=path,
                            field="pooling_mode")  # fmt: skip
    else:
        modes = [mode for key, mode in _LEGACY_POOLING_KEYS.items() if flags.get(key)] or ["mean"]
    unknown = [mode for mode in modes if mode not in POOLING_MODES]
    if unknown:
        raise SpecError(f"unknown pooling mode {unknown[0]!r} (known: {', '.join(POOLING_MODES)})"[:160],
                        file=path, field="pooling_mode")  # fmt: skip
    return {"pooling": "+".join(modes), "include_prompt": _flag(config, "include_prompt", path, True)}


def _module_types(path: Path) -> list[tuple[str, str]]:
    """(short type name, folder) of each module of ``modules.json``, in order."""
    modules = _read_json(path, list)
    found = []
    for number, module in enumerate(modules):
        kind = module.get("type") if isinstance(module, dict) else None
        if not isinstance(kind, str):
            raise SpecError(f"module {number} has no 'type' string", file=path, field="type")
        folder = module.get("path", "")
        if not isinstance(folder, str):
            raise SpecError(f"module {number} has no 'path' string", file=path, field="path")
        found.append((kind.rsplit(".", 1)[-1], folder))
    return found


def _modules_from(path: Path) -> dict[str, Any]:
    """``dense_modules``, ``normalize`` and the Pooling folder from ``modules.json``: Transformer (in the folder
    itself), Pooling, any Dense modules, and an optional Normalize last. Dropout does nothing at inference. Any
    other module, or another order, is refused naming the module: evalkit would not compute it."""
    modules = [(kind, folder) for kind, folder in _module_types(path) if kind != "Dropout"]
    kinds = [kind for kind, _ in modules]

    def refuse(number: int, why: str) -> SpecError:
        kind, _ = modules[number]
        return SpecError(f"module {number} ({kind}) {why}", file=path, field="type")

    if not modules or kinds[0] != "Transformer":
        raise SpecError("the first module must be a Transformer, which evalkit computes", file=path, field="type")
    if modules[0][1] not in ("", "."):
        raise refuse(0, f"keeps its weights in '{modules[0][1]}'; evalkit loads them from the folder itself")
    if len(modules) < 2 or kinds[1] != "Pooling":
        raise SpecError("the second module must be a Pooling, which evalkit computes", file=path, field="type")
    dense = []
    for number, (kind, folder) in enumerate(modules[2:], start=2):
        if kind == "Dense" and "Normalize" not in kinds[2:number]:
            dense.append(folder)
        elif kind == "Normalize" and number == len(modules) - 1:
            _check_normalize(path.parent / folder / "config.json")
        elif kind in ("Dense", "Normalize"):
            raise refuse(
                number, "is out of the order evalkit computes (Transformer, Pooling, Dense..., Normalize last)"
            )
        else:
            raise refuse(number, "is not computed by evalkit here (it runs Transformer, Pooling, Dense, Normalize)")
    for folder in dense:
        dense_config(path.parent / folder / "config.json")
        _require_safetensors(path.parent / folder)
    return {"pooling_folder": modules[1][1], "dense_modules": tuple(dense), "normalize": kinds[-1] == "Normalize"}


def _require_safetensors(folder: Path) -> None:
    """A Dense module's weights must be safetensors: a pickled ``pytorch_model.bin`` can run code when read."""
    if (folder / "model.safetensors").is_file():
        return
    pickled = folder / "pytorch_model.bin"
    if pickled.is_file():
        raise SpecError("pickled weights are not loaded; convert to safetensors", file=pickled)
    raise SpecError("the Dense module has no weights (model.safetensors)", file=folder / "model.safetensors")


def _check_normalize(path: Path) -> None:
    if not path.is_file():
        return
    config = _read_json(path, dict)
    if config.get("module_input_name", _SENTENCE_EMBEDDING) != _SENTENCE_EMBEDDING:
        raise SpecError("only the sentence embedding is normalised here", file=path, field="module_input_name")


def dense_config(path: Path) -> dict[str, Any]:
    """A Dense module's ``config.json`` checked field by field: what sentence-transformers computes from it is
    what evalkit computes (``activation`` is a name of :data:`DENSE_ACTIVATIONS`), or it is refused."""
    config = _read_json(path, dict)
    unknown = sorted(set(config) - _DENSE_KEYS)
    if unknown:
        raise SpecError("a Dense setting evalkit does not reproduce", file=path, field=unknown[0])
    sizes = {}
    for key in ("in_features", "out_features"):
        value = config.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SpecError(f"expected a positive integer, got {value!r}"[:120], file=path, field=key)
        sizes[key] = value
    for key in ("module_input_name", "module_output_name"):
        if config.get(key) not in (None, _SENTENCE_EMBEDDING):
            raise SpecError("only a Dense over the sentence embedding is computed here", file=path, field=key)
    activation = config.get("activation_function", "torch.nn.modules.activation.Tanh")
    name = activation.rsplit(".", 1)[-1] if isinstance(activation, str) else None
    if not isinstance(activation, str) or not activation.startswith("torch.nn.") or name not in DENSE_ACTIVATIONS:
        raise SpecError(f"activation {activation!r} is not one evalkit computes (torch.nn "
                        f"{', '.join(DENSE_ACTIVATIONS)})"[:200], file=path, field="activation_function")  # fmt: skip
    return {
        **sizes,
        "bias": _flag(config, "bias", path, True),
        "activation": name,
        "use_residual": _flag(config, "use_residual", path, False),
    }


def _st_config_from(path: Path) -> dict[str, Any]:
    """Prompts, the default prompt's name and the similarity function from ``config_sentence_transformers.json``."""
    config = _read_json(path, dict)
    model_type = config.get("model_type", "SentenceTransformer")
    if model_type != "SentenceTransformer":
        raise SpecError(f"a {model_type!r} is not a dense sentence embedder"[:120], file=path, field="model_type")
    prompts = config.get("prompts") or {}
    if not isinstance(prompts, dict):
        raise SpecError("expected an object of prompt name to text", file=path, field="prompts")
    # An empty prompt is kept: mteb stops at its key rather than falling back to a less specific one.
    settings: dict[str, Any] = {"prompts": {k: v for k, v in prompts.items() if isinstance(v, str)}}
    default_name = config.get("default_prompt_name")
    if default_name is not None:
        if not isinstance(default_name, str) or default_name not in prompts:
            raise SpecError(f"names no prompt of 'prompts' ({default_name!r})"[:120], file=path,
                            field="default_prompt_name")  # fmt: skip
        if prompts[default_name]:
            settings["default_prompt_name"] = default_name
    similarity = config.get("similarity_fn_name") or "cosine"
    similarity = _SIMILARITY_ALIASES.get(similarity, similarity)
    if similarity not in SIMILARITIES:
        raise SpecError(f"expected one of {', '.join(SIMILARITIES)}, got {similarity!r}"[:120], file=path,
                        field="similarity_fn_name")  # fmt: skip
    settings["similarity"] = similarity
    return settings


def needs_remote_code(auto_map: Any) -> bool:
    """Whether an ``auto_map`` names code of the model's own (``module.Class``, ``repo--module.Class``) rather
    than only classes the library has (a tokenizer's ``["BertTokenizer", null]``)."""
    if not auto_map:
        return False
    if not isinstance(auto_map, dict):
        return True
    names = [v for value in auto_map.values() for v in (value if isinstance(value, list) else [value])]
    return any(not isinstance(name, str) or "." in name for name in names if name is not None)


def _refuse_remote_code(folder: Path) -> None:
    """A model whose config or tokenizer maps to code of its own (``auto_map``) is refused: evalkit never runs a
    model's code, and the library's class in its place would compute something else."""
    for name in ("config.json", "tokenizer_config.json"):
        path = folder / name
        if path.is_file() and needs_remote_code(_read_json(path, dict).get("auto_map")):
            raise SpecError("the model needs its own code (trust_remote_code), which evalkit never runs",
                            file=path, field="auto_map")  # fmt: skip


def settings_from_folder(folder: Path) -> dict[str, Any]:
    """Every setting of a sentence-transformers folder that changes a vector or a score, as ModelSpec fields.

    Each file is checked as it is read: a malformed one, or a setting evalkit would not honour (a module it does
    not compute, lower-casing, remote code), is a one-line error naming the file and field.
    """
    _refuse_remote_code(folder)
    settings: dict[str, Any] = {}
    pooling_folder = "1_Pooling"
    modules = folder / "modules.json"
    if modules.is_file():
        found = _modules_from(modules)
        pooling_folder = found.pop("pooling_folder")
        settings.update({k: v for k, v in found.items() if k != "dense_modules" or v})
    pooling_config = folder / pooling_folder / "config.json"
    if pooling_config.is_file():
        settings.update({k: v for k, v in pooling_from(pooling_config).items() if k == "pooling" or v is False})
    st_config = folder / "config_sentence_transformers.json"
    if st_config.is_file():
        settings.update({k: v for k, v in _st_config_from(st_config).items() if k != "similarity" or v != "cosine"})
    bert_config = folder / "sentence_bert_config.json"
    if bert_config.is_file():
        settings.update(_max_length_from(bert_config))
    if modules.is_file() and "max_length" not in settings:
        settings.update(_tokenizer_max_length(folder))
    settings.update(_padding_side(folder))
    return settings


def _padding_side(folder: Path) -> dict[str, str]:
    path = folder / "tokenizer_config.json"
    side = _read_json(path, dict).get("padding_side", "right") if path.is_file() else "right"
    if side not in ("left", "right"):
        raise SpecError(f"expected left or right, got {side!r}"[:120], file=path, field="padding_side")
    return {"padding_side": side} if side == "left" else {}


def _tokenizer_max_length(folder: Path) -> dict[str, int]:
    """The length sentence-transformers truncates at when ``sentence_bert_config.json`` gives none: the
    tokenizer's ``model_max_length`` capped at the model's ``max_position_embeddings`` (each when it is set)."""
    limits = []
    for name, key in (("tokenizer_config.json", "model_max_length"), ("config.json", "max_position_embeddings")):
        path = folder / name
        value = _read_json(path, dict).get(key) if path.is_file() else None
        if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 10**9:
            limits.append(value)
    return {"max_length": min(limits)} if limits else {}


def _max_length_from(path: Path) -> dict[str, int]:
    config = _read_json(path, dict)
    for key in _TRANSFORMER_ARGS:
        if config.get(key):
            raise SpecError("arguments to the Transformer module are not applied here", file=path, field=key)
    task = config.get("transformer_task", "feature-extraction")
    if task != "feature-extraction":
        raise SpecError(f"a {task!r} Transformer is not computed here"[:120], file=path, field="transformer_task")
    if config.get("modality_config", _PLAIN_TEXT_MODALITY) != _PLAIN_TEXT_MODALITY:
        raise SpecError("only text through the model's forward is computed here", file=path, field="modality_config")
    if config.get("module_output_name", "token_embeddings") != "token_embeddings":
        raise SpecError("only token embeddings are pooled here", file=path, field="module_output_name")
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
