"""Any model object in memory as an evalkit model: the entry for training loops, callbacks and notebooks.

:func:`encoder_from_object` wraps, once, whatever a caller holds, and from there the one core path runs:

- a ``sentence_transformers.SentenceTransformer`` whose modules evalkit reproduces exactly (``Transformer`` +
  ``Pooling`` in a mode of :data:`evalkit.encoders.pooling.POOLING_MODES` [+ ``Normalize``]) goes through evalkit's
  own token-level path, built from the in-memory module and tokenizer (its prompts, ``default_prompt_name`` and
  ``similarity_fn_name`` honoured); any other one through its own ``encode``, as a text-level model;
- an object following mteb's encoder protocol (``encode(DataLoader, *, task_metadata, hf_split, hf_subset,
  prompt_type)``), any object with ``.encode(list[str])``, and a plain callable ``list[str] -> array``: text-level;
- a ``sentence_transformers.CrossEncoder``: a pair scorer (a reranker).

Caching stays correct: a torch module's fingerprint is a hash of its parameters, taken when the object is wrapped
(call this once per evaluation, so a model changed in place gets new vectors next time, never stale ones), or the
``revision=`` the caller gives. An opaque callable with neither is never cached, and a warning says so.
"""

from __future__ import annotations

import inspect
from typing import Any

from evalkit.encoders.object_text import MtebObjectEncoder, ObjectTextEncoder, object_fingerprint
from evalkit.encoders.object_text import object_name as _object_name
from evalkit.encoders.protocol import Capabilities
from evalkit.errors import EvalkitError


def encoder_from_object(obj: Any, *, revision: str | None = None, name: str | None = None) -> Any:
    """The evalkit model for ``obj`` (see the module docstring for what is accepted); ``revision`` names its
    weights in the cache instead of a hash of its parameters; ``name`` is how results and messages call it."""
    if isinstance(getattr(obj, "capabilities", None), Capabilities):
        return obj  # an evalkit model already
    kind = _sentence_transformers_kind(obj)
    if kind == "cross-encoder":
        from evalkit.encoders.st_objects import in_memory_cross_encoder

        return in_memory_cross_encoder(obj, revision=revision, name=name)
    if kind == "sentence-transformer":
        from evalkit.encoders.st_objects import sentence_transformer_encoder

        return sentence_transformer_encoder(obj, revision=revision, name=name)
    encode = getattr(obj, "encode", None)
    if callable(encode) and "task_metadata" in _parameters(encode):
        return MtebObjectEncoder(obj, revision=revision, name=name)
    if callable(encode):
        return ObjectTextEncoder(
            name or _object_name(obj), lambda texts, role: encode(texts), object_fingerprint(obj, revision)
        )
    if callable(obj):
        fingerprint = object_fingerprint(obj, revision)
        return ObjectTextEncoder(name or _object_name(obj), lambda texts, role: obj(texts), fingerprint)
    raise EvalkitError(
        f"cannot evaluate a {type(obj).__name__}: pass a model name or folder, a SentenceTransformer, an object with "
        ".encode(list[str]), or a callable list[str] -> array",
        field="model",
    )


def _sentence_transformers_kind(obj: Any) -> str | None:
    """``sentence-transformer``, ``cross-encoder`` or None, without importing sentence-transformers for others."""
    if not any(base.__module__.startswith("sentence_transformers") for base in type(obj).__mro__):
        return None
    from sentence_transformers import CrossEncoder, SentenceTransformer

    if isinstance(obj, CrossEncoder):
        return "cross-encoder"
    if isinstance(obj, SentenceTransformer):
        return "sentence-transformer"
    return None


def _parameters(function: Any) -> set[str]:
    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()


__all__ = ["MtebObjectEncoder", "ObjectTextEncoder", "encoder_from_object"]
