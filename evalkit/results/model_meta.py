"""``model_meta.json``: mteb's ``ModelMeta`` for the model a run evaluated, as mteb writes and reads it.

mteb's registry is the source when it has the model (``ModelSpec.mteb_meta``, mteb's ``ModelMeta.to_dict()``).
Otherwise the record is built from what the model folder shows, counted the way mteb counts it from the hub: the
parameters and memory from the safetensors headers (no weights loaded), the embedding parameters as
``vocab_size × hidden_size`` from ``config.json``, the frameworks from the files present (as the hub derives its
tags), and the embedding size, maximum tokens and similarity evalkit runs the model with. What a folder cannot show
(release date, license, training data, citation ...) stays empty: a guess there would end up on the leaderboard.

mteb reads the file with ``ModelMeta.model_validate_json_resolved`` (the loader's name resolved against its
registry); :func:`validate_model_meta` checks it the same way.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from evalkit.errors import SpecError
from evalkit.registry.models import ModelSpec

# The hub tags a repository's files give it, in mteb's order (ModelMeta._get_frameworks_from_hf_tags).
_FRAMEWORK_FILES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Sentence Transformers", ("modules.json", "config_sentence_transformers.json")),
    ("PyTorch", ("pytorch_model.bin", "pytorch_model-*.bin")),
    ("TensorFlow", ("tf_model.h5",)),
    ("JAX", ("flax_model.msgpack",)),
    ("Transformers", ("config.json",)),
    ("ONNX", ("*.onnx", "*/*.onnx")),
    ("safetensors", ("*.safetensors",)),
    ("GGUF", ("*.gguf",)),
    ("OpenVINO", ("openvino*.xml", "*/openvino*.xml")),
)
_ADAPTER_FRAMEWORKS = {"openai-api": ["API"]}  # no folder: what the adapter itself is
_MODEL_TYPES = {"splade": ["sparse"], "bm25": ["sparse"], "cross-encoder": ["cross-encoder"]}
_JSON_SIMILARITIES = ("cosine", "dot")  # what mteb's JSON reader accepts (its validator maps only these and MaxSim)
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_NOT_PARAMETERS = frozenset({"I64", "I32", "I16", "I8", "U8", "BOOL"})  # integer buffers (BERT's position_ids)
_MAX_HEADER_BYTES = 100_000_000  # the safetensors format's own limit


def safetensors_parameters(folder: Path) -> tuple[int, int] | None:
    """(parameters, bytes) of every ``*.safetensors`` file in the folder and its module subfolders, read from the
    files' JSON headers alone; None when there is none (an ONNX graph, a ``.bin`` checkpoint). Parameters are the
    floating-point tensors (integer buffers such as ``position_ids`` are stored but are no parameters: the count is
    ``sum(p.numel() for p in model.parameters())``); bytes are every tensor's, as mteb sizes memory from the hub."""
    files = sorted([*folder.glob("*.safetensors"), *folder.glob("*/*.safetensors")])
    if not files:
        return None
    parameters = size = 0
    for path in files:
        with path.open("rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            if length > _MAX_HEADER_BYTES:
                raise SpecError("not a safetensors file (header too large)", file=path)
            header = json.loads(handle.read(length))
        for name, tensor in header.items():
            if name == "__metadata__":
                continue
            count = 1
            for extent in tensor["shape"]:
                count *= int(extent)
            parameters += 0 if tensor["dtype"] in _NOT_PARAMETERS else count
            size += count * _DTYPE_BYTES.get(tensor["dtype"], 4)
    return parameters, size


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _frameworks(folder: Path) -> list[str]:
    return [name for name, patterns in _FRAMEWORK_FILES if any(next(folder.glob(p), None) for p in patterns)]


def _embed_dim(model: ModelSpec, folder: Path | None, config: Mapping[str, Any]) -> int | None:
    """The size of the vectors evalkit returns: truncated, else the last Dense module's, else the hidden size."""
    if model.truncate_dim:
        return model.truncate_dim
    if model.embedding_dim:
        return model.embedding_dim
    if folder is not None and model.dense_modules:
        out = _read_json(folder / model.dense_modules[-1] / "config.json").get("out_features")
        return int(out) if isinstance(out, int) else None
    if model.adapter in ("hf", "onnx") and isinstance(config.get("hidden_size"), int):
        return int(config["hidden_size"])
    return None


def _max_tokens(model: ModelSpec) -> int | None:
    """The tokens per text evalkit cuts at; an opaque model object or BM25 has no such setting evalkit knows."""
    return None if model.adapter in ("object", "bm25") else model.max_length


def _similarity(model: ModelSpec) -> str | None:
    if model.adapter in ("splade", "bm25"):
        return "dot"
    return model.similarity if model.similarity in _JSON_SIMILARITIES else None


def _from_folder(model: ModelSpec) -> dict[str, Any]:
    """Every ModelMeta field, from the model folder and evalkit's settings; unknowable fields empty."""
    folder = model.local_path if model.local_path is not None and model.local_path.is_dir() else None
    config = _read_json(folder / "config.json") if folder is not None else {}
    counted = safetensors_parameters(folder) if folder is not None else None
    vocab, hidden = config.get("vocab_size"), config.get("hidden_size")
    return {
        "loader": None,  # mteb has no implementation of this model to load it by
        "loader_kwargs": {},
        "name": model.name,
        "revision": model.revision,
        "release_date": None,
        "languages": list(model.languages) or None,
        "n_parameters": counted[0] if counted else None,
        "n_active_parameters_override": None,
        "n_embedding_parameters": vocab * hidden if isinstance(vocab, int) and isinstance(hidden, int) else None,
        "memory_usage_mb": round(counted[1] / 1024**2) if counted else None,
        "max_tokens": _max_tokens(model),
        "embed_dim": _embed_dim(model, folder, config),
        "license": None,
        "open_weights": None,
        "public_training_code": None,
        "public_training_data": None,
        "framework": _frameworks(folder) if folder is not None else list(_ADAPTER_FRAMEWORKS.get(model.adapter, [])),
        "reference": f"https://huggingface.co/{model.name}" if model.source == "hub" else None,
        "similarity_fn_name": _similarity(model),
        "use_instructions": True if (model.prompts or model.instructions) else None,
        "training_datasets": None,
        "adapted_from": None,
        "superseded_by": None,
        "modalities": ["text"],
        "model_type": list(_MODEL_TYPES.get(model.adapter, ["dense"])),
        "citation": None,
        "contacts": None,
        "experiment_kwargs": None,
        "output_dtypes": None,
        "extra_requirements_groups": None,
    }


def build_model_meta(
    model: ModelSpec, revision: str, experiment_kwargs: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``model_meta.json`` of a run: mteb's record of the model (or one built from its folder) under the run's
    revision, with ``experiment_kwargs`` naming what the run changed (None for the model's own settings)."""
    meta = dict(model.mteb_meta) if model.mteb_meta else _from_folder(model)
    meta.pop("is_cross_encoder", None)  # derived by mteb from model_type; reading it back only warns
    meta["name"] = model.name
    meta["revision"] = revision
    meta["experiment_kwargs"] = dict(experiment_kwargs) if experiment_kwargs else None
    return meta


def _field_of(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "model_meta"


def validate_model_meta(meta: Mapping[str, Any] | str | bytes, *, file: str | Path | None = None) -> Any:
    """mteb's ``ModelMeta`` read from ``meta`` (the JSON text or its object) as mteb's result cache reads
    ``model_meta.json``; raise ``SpecError`` naming the first field mteb refuses."""
    import warnings

    from mteb.models.model_meta import ModelMeta
    from pydantic import ValidationError

    text = meta if isinstance(meta, (str, bytes)) else json.dumps(dict(meta), default=str)
    try:
        data = json.loads(text)
    except ValueError as err:
        raise SpecError(f"not JSON: {err}", file=file) from None
    if not isinstance(data, dict):
        raise SpecError("not mteb's ModelMeta: expected a JSON object", file=file)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # mteb's notices on legacy fields: the outcome is what counts
            return ModelMeta.model_validate_json_resolved(text)
    except ValidationError as err:
        first = err.errors()[0]
        field = _field_of(tuple(first.get("loc", ())))
        message = " ".join(str(first.get("msg", "invalid")).split())[:160]
        raise SpecError(f"not mteb's ModelMeta: {field}: {message}", file=file, field=field) from None
    except (TypeError, ValueError) as err:
        raise SpecError(f"not mteb's ModelMeta: {' '.join(str(err).split())[:160]}", file=file) from None
