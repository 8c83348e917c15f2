"""(query, document) pairs as the core's unit of work for a pair scorer: dedup and cache keys over pairs.

A pair is keyed by the SHA-256 of a length-prefixed encoding of both texts, so no pair can share a key with
another pair (``("ab", "c")`` vs ``("a", "bc")``), and the namespace's role is ``pair``, which no text namespace
has: a pair's score is never served as a text's vector nor the other way round.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from evalkit.cache.keys import DIGEST_BYTES

PAIR_ROLE = "pair"
"""The cache namespace role of pair scores (texts use query, document, symmetric)."""


def dedup_pairs(queries: Sequence[str], documents: Sequence[str]) -> tuple[list[tuple[str, str]], np.ndarray]:
    """Distinct pairs in first-seen order, and for each input pair the index of its distinct pair."""
    if len(queries) != len(documents):
        raise ValueError(f"{len(queries)} queries for {len(documents)} documents: pairs need one of each")
    index_of: dict[tuple[str, str], int] = {}
    inverse = np.fromiter(
        (index_of.setdefault(pair, len(index_of)) for pair in zip(queries, documents, strict=True)),
        dtype=np.int64,
        count=len(queries),
    )
    return list(index_of), inverse


def pair_digests(pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    """``(len(pairs), 32)`` uint8 keys: SHA-256 of ``b"pair" + len(query) + query + document`` (UTF-8)."""
    sha256 = hashlib.sha256
    keys = []
    for query, document in pairs:
        query_bytes = query.encode("utf-8", "surrogatepass")
        head = b"pair\0" + len(query_bytes).to_bytes(8, "little")
        keys.append(sha256(head + query_bytes + document.encode("utf-8", "surrogatepass")).digest())
    return np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(pairs), DIGEST_BYTES)


__all__ = ["PAIR_ROLE", "dedup_pairs", "pair_digests"]
