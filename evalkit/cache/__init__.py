"""The on-disk embedding cache: vectors keyed by everything that changes them, so no text is encoded twice.

The core uses it as: ``digests = text_digests(texts)`` → ``namespace.lookup(digests)`` → encode the misses in
chunks, ``writer.add(...)`` + ``writer.flush()`` after each → merge. See :mod:`evalkit.cache.store` for the layout.
Variable-length rows (sparse term weights, per-token vectors) live in ragged namespaces
(``cache.ragged_namespace(...)``, :mod:`evalkit.cache.ragged`), with the same keys, commits and checksums.
"""

from evalkit.cache.keys import text_digests
from evalkit.cache.ragged import RaggedLookup, RaggedNamespace, RaggedWriter
from evalkit.cache.store import (
    CacheError,
    CacheLookup,
    CacheNamespace,
    CacheSize,
    CacheWriter,
    EmbeddingCache,
    NamespaceInfo,
    default_cache_dir,
)

__all__ = [
    "CacheError",
    "CacheLookup",
    "CacheNamespace",
    "CacheSize",
    "CacheWriter",
    "EmbeddingCache",
    "NamespaceInfo",
    "RaggedLookup",
    "RaggedNamespace",
    "RaggedWriter",
    "default_cache_dir",
    "text_digests",
]
