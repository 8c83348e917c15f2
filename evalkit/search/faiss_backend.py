"""Exact search with faiss's ``IndexFlatIP``, an optional backend (``pip install 'evalkit[faiss]'``).

The index is built chunk by chunk from the same unit rows as the numpy backend, so both rank by the same cosine;
unlike it, faiss holds the whole normalised corpus in memory. faiss is imported only when this backend is asked
for, so evalkit works without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.search.corpus_chunks import CorpusChunks, release_pages
from evalkit.search.normalize import ChunkNormalizer


def import_faiss() -> ModuleType:
    """The faiss module, or an error that says how to install it."""
    try:
        import faiss
    except ImportError as err:
        raise EvalkitError(
            "search_backend 'faiss' needs faiss, which is not installed: pip install 'evalkit[faiss]'",
            field="search_backend",
        ) from err
    return faiss


def faiss_top_k(
    queries: np.ndarray, corpus: CorpusChunks, k: int, *, threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (float32) and indices (int64) of each unit query's k best documents, best first as faiss orders them."""
    faiss = import_faiss()
    index = faiss.IndexFlatIP(corpus.dim)
    unit_rows = ChunkNormalizer()  # faiss copies what it adds, so the buffer can be reused
    for chunk in corpus:
        index.add(unit_rows(chunk.vectors, what="document", first_row=chunk.start))
        release_pages(chunk.vectors)
    with _omp_threads(faiss, threads):
        scores, indices = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores.astype(np.float32, copy=False), indices.astype(np.int64, copy=False)


@contextmanager
def _omp_threads(faiss: ModuleType, threads: int | None) -> Iterator[None]:
    """faiss's OpenMP thread count is process-wide, so it is restored afterwards."""
    if threads is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
