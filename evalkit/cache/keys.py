"""What identifies a cached vector: a namespace for everything except the text, and a digest per text.

The namespace hashes everything that changes a vector besides the text — the encoder's fingerprint (weights hash,
revision, pooling, normalisation, max length, ...), the role, the resolved prompt and the precision — so the same
text encoded as a query and as a document gets two vectors (mteb's cache keys on the text alone, mteb#5383). The
text digest is per text, not per task, so another task sharing a corpus reuses its vectors.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FORMAT_VERSION = 1
"""Bumped when the meaning of a key or the shard layout changes; old caches are then simply not found."""

DIGEST_BYTES = 32


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """SHA-256 of each text's UTF-8 bytes, as a ``(len(texts), 32)`` uint8 array (row i belongs to texts[i]).

    ``surrogatepass`` because real corpora hold lone surrogates now and then; such a text must get a key, not
    crash the run. Hashing is the one per-text Python loop of a lookup (about 0.45 s per million short texts).
    """
    sha256 = hashlib.sha256
    joined = b"".join([sha256(text.encode("utf-8", "surrogatepass")).digest() for text in texts])
    return np.frombuffer(joined, dtype=np.uint8).reshape(len(texts), DIGEST_BYTES)


def as_digests(keys: Sequence[str] | np.ndarray) -> np.ndarray:
    """Texts, or digests already computed by :func:`text_digests` (so the core hashes a text once), as digests."""
    if isinstance(keys, np.ndarray) and keys.dtype == np.uint8:
        if keys.ndim != 2 or keys.shape[1] != DIGEST_BYTES:
            raise ValueError(f"digests must have shape (n, {DIGEST_BYTES}), got {keys.shape}")
        return np.ascontiguousarray(keys)
    return text_digests([str(text) for text in keys] if isinstance(keys, np.ndarray) else keys)


STORAGE_DTYPES = ("float16", "float32", "float64")


def namespace_record(
    fingerprint: Mapping[str, object],
    *,
    role: str,
    prompt: str,
    precision: str,
    dtype: str = "float32",
    output: str = "dense",
) -> dict[str, Any]:
    """The namespace's key parts as plain JSON data: hashed for the folder name, kept in clear in ``meta.json``.

    ``precision`` is how the model computed; ``dtype`` is how the vectors are stored. Both are keys because both
    change a vector: float16 storage of an fp32 model must never be served to a run that asked for float32.
    ``output`` (dense, sparse, colbert) is a key part only when it is not ``dense``, so dense namespaces keep the
    names they had before encoders could give other outputs, and caches written then are still found.
    """
    if not fingerprint:
        # An empty fingerprint would hand one model's vectors to another.
        raise ValueError("an encoder fingerprint is required to key the cache (weights hash, revision, settings)")
    if not role:
        raise ValueError("a role (query, document, symmetric) is required to key the cache")
    if not precision:
        raise ValueError("a precision is required to key the cache")
    if dtype not in STORAGE_DTYPES:
        raise ValueError(f"vectors are stored as one of {', '.join(STORAGE_DTYPES)}, not {dtype!r}")
    if not output:
        raise ValueError("an output kind (dense, sparse, colbert) is required to key the cache")
    record = {
        "format": FORMAT_VERSION,
        "fingerprint": dict(fingerprint),
        "role": role,
        "prompt": prompt,
        "precision": precision,
        "dtype": dtype,
    }
    if output != "dense":
        record["output"] = output
    return record


def canonical_json(record: Mapping[str, Any]) -> bytes:
    """One byte string per record whatever the key order, so the same settings always name the same namespace."""
    try:
        text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        # A repr() fallback could embed memory addresses and silently never hit; better to say so.
        raise TypeError(f"a cache key must be plain JSON data (str, number, bool, list, dict): {err}") from err
    return text.encode("ascii")


def namespace_id(record: Mapping[str, Any]) -> str:
    """The namespace's name: SHA-256 (hex) of the canonical JSON of its key parts."""
    return hashlib.sha256(canonical_json(record)).hexdigest()
