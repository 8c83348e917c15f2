"""Exact dense search: cosine top-k over a corpus streamed in chunks, so memory does not grow with the corpus.

The score matrix is never built. Each corpus chunk is normalised on its own (a copy of that chunk only, so a
memory-mapped corpus is read, never copied whole), multiplied with a block of queries in float32, and the tile is
reduced at once by :class:`RunningTopK`, which keeps only the scores above each query's current k-th best. Worker
threads take corpus chunks in turn, each with its own running top-k and single-threaded BLAS, and their results
are merged at the end: the filtering and merging then run in parallel too, not just the matrix products.

Extra memory is, per worker, one normalised chunk, one score tile and the running top-k of one query block
(``query_block × 2k`` scores and indices: the top k plus room for candidates awaiting a merge) — nothing scales
with the corpus. Chunks of a read-only memory map are read into one reused buffer (:class:`ChunkReader`), so no
page of the corpus stays mapped either.

A large cosine search on a CPU with bf16 instructions (:func:`screens`) screens each tile with a bf16 product and
scores in float32 only the pairs that, by the product's error bound, could still beat their query's k-th best
(:mod:`evalkit.search.screened`): the same float32 top k, ties by index, at about twice the matrix-product speed.

A model whose similarity is not cosine (``dot``, ``euclidean``, ``manhattan``: its ``similarity_fn_name``) streams
the corpus too, but each tile is a whole block of queries against a piece of the corpus aligned to mteb's
50,000-document chunks, scored by the torch operation mteb calls (:mod:`evalkit.search.similarity`) over the raw
float32 rows: shaped so, the products carry mteb's bits, so rankings and ties are mteb's. One worker runs it (torch
uses its own threads); its memory is one tile (below 2·``query_block`` × 2·``doc_chunk`` scores: 134 MB at most
with the defaults), one float32 piece and one block's running top-k — still nothing that scales with the corpus.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from itertools import repeat
from typing import Literal

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.host import usable_cores
from evalkit.search.corpus_chunks import ChunkReader, CorpusChunk, CorpusChunks, release_pages
from evalkit.search.normalize import ChunkNormalizer, finite_unit_rows, l2_normalized
from evalkit.search.running_top_k import RunningTopK, best_first, merge_top_k
from evalkit.search.screened import SCREEN_MIN_SCORES, bf16_screening_available, screened_chunks, single_threaded_torch
from evalkit.search.similarity import TorchTiles, aligned_ranges, check_similarity, finite_float32_rows

__all__ = ["SEARCH_BACKENDS", "SearchBackend", "TopK", "exact_top_k", "l2_normalized", "screens"]

SearchBackend = Literal["numpy", "faiss"]
SEARCH_BACKENDS: tuple[str, ...] = ("numpy", "faiss")
"""``numpy``: chunked BLAS search, bounded memory (the default). ``faiss``: an ``IndexFlatIP`` over the whole
normalised corpus (needs ``evalkit[faiss]``; holds the corpus in memory), for cross-checking or where it is faster."""

DOC_CHUNK = 4096
"""Corpus rows per chunk: a 384-d float32 chunk is 6 MB, large enough for BLAS to run at full speed. For the
torch-scored functions, pieces this large (aligned to mteb's chunks) carry the bits of mteb's own products."""

QUERY_BLOCK = 2048
"""Queries whose running top-k is held at once (each block streams the corpus once): 2,048 × 2k scores and
indices, 49 MB per worker at k = 1,000."""

TILE_QUERIES = 256
"""Queries per matrix product: a 256 × 4,096 score tile (4 MB) is still in cache when it is filtered, which
measured faster than larger tiles at the same BLAS speed."""


@dataclass(frozen=True)
class TopK:
    """Per query, the indices of the best documents and their scores: best first, equal scores by index."""

    indices: np.ndarray  # int64, (n_queries, k)
    scores: np.ndarray  # float32, (n_queries, k)


def exact_top_k(
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray | Sequence[np.ndarray],
    k: int,
    *,
    doc_chunk: int = DOC_CHUNK,
    query_block: int = QUERY_BLOCK,
    threads: int | None = None,
    search_backend: SearchBackend = "numpy",
    similarity: str = "cosine",
) -> TopK:
    """The k documents most similar to each query (all of them if the corpus is smaller), by the model's
    ``similarity``: cosine (the default), dot, or negative euclidean / manhattan distance.

    ``doc_vectors`` is one ``(n_docs, dim)`` array or a sequence of such arrays (shards, numbered one after the
    other); memory-mapped arrays are read chunk by chunk and never copied whole. ``threads`` defaults to the CPUs
    this process may use. Cosine scores are float32 dot products of unit vectors; their last bit can depend on the
    BLAS kernel and chunk shapes, so two backends may order scores that differ by about 1e-7 differently. The
    other functions are scored by torch as mteb scores them (faiss is refused for them).
    """
    _check_backend(search_backend, check_similarity(similarity))
    if query_block < 1:
        raise ValueError(f"query_block must be at least 1, got {query_block}")
    corpus = CorpusChunks(doc_vectors, doc_chunk)
    if similarity == "cosine":
        queries = finite_unit_rows(query_vectors, what="query")
    else:  # a copy: torch reads the rows in place and must be able to own them
        queries = finite_float32_rows(np.array(query_vectors, dtype=np.float32), what="query")
    if corpus.n_rows and queries.shape[1] != corpus.dim:
        raise ValueError(f"query vectors have {queries.shape[1]} dimensions but document vectors {corpus.dim}")
    k = max(0, min(int(k), corpus.n_rows))
    if k == 0 or len(queries) == 0:
        return TopK(np.zeros((len(queries), k), dtype=np.int64), np.zeros((len(queries), k), dtype=np.float32))
    if search_backend == "faiss":
        from evalkit.search.faiss_backend import faiss_top_k  # lazily: faiss is an optional dependency

        scores, indices = faiss_top_k(queries, corpus, k, threads=threads)
        scores, indices = best_first(scores, indices)
    elif similarity == "cosine":
        n_threads = threads if threads is not None else usable_cores()
        scores, indices = _chunked_top_k(queries, corpus, k, query_block=query_block, threads=n_threads)
    else:
        scores, indices = _torch_top_k(queries, corpus, k, query_block=query_block, doc_piece=doc_chunk, how=similarity)
    return TopK(indices=indices, scores=scores)


def _check_backend(search_backend: str, similarity: str) -> None:
    if search_backend not in SEARCH_BACKENDS:
        raise EvalkitError(
            f"unknown search backend {search_backend!r}; choose one of {', '.join(SEARCH_BACKENDS)}",
            field="search_backend",
        )
    if search_backend == "faiss" and similarity != "cosine":
        raise EvalkitError(
            f"--search-backend faiss searches by cosine; this model's similarity is {similarity} "
            "(use --search-backend numpy)",
            field="search_backend",
        )


def _chunked_top_k(
    queries: np.ndarray, corpus: CorpusChunks, k: int, *, query_block: int, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    chunks = list(corpus)
    scores = np.empty((len(queries), k), dtype=np.float32)
    indices = np.empty((len(queries), k), dtype=np.int64)
    screen = screens(len(queries), corpus.n_rows, query_block)
    search = screened_chunks if screen else _search_chunks
    with _single_threaded_blas() or nullcontext() as limited, single_threaded_torch() if screen else nullcontext():
        workers = max(1, min(threads, len(chunks))) if limited is not None or screen else 1
        with ThreadPoolExecutor(workers) as pool:
            for start in range(0, len(queries), query_block):
                block = queries[start : start + query_block]
                shares = [chunks[worker::workers] for worker in range(workers)]
                parts = list(pool.map(search, repeat(block), shares, repeat(k)))
                stop = start + len(block)
                scores[start:stop], indices[start:stop] = merge_top_k(parts, k)
    return scores, indices


def screens(n_queries: int, n_docs: int, query_block: int = QUERY_BLOCK) -> bool:
    """Whether a cosine search of this size screens its tiles in bf16 (:mod:`evalkit.search.screened`): on a CPU
    with bf16 instructions, from ``SCREEN_MIN_SCORES`` queries × documents per query block. Either way the
    result is the float32 top k; the screened one scores each pair by one float32 dot product rather than a
    matrix product, so the two can order float32 near-ties (about 1e-7 apart) differently."""
    return min(n_queries, query_block) * n_docs >= SCREEN_MIN_SCORES and bf16_screening_available()


def _torch_top_k(
    queries: np.ndarray, corpus: CorpusChunks, k: int, *, query_block: int, doc_piece: int, how: str
) -> tuple[np.ndarray, np.ndarray]:
    """dot / euclidean / manhattan: each block of queries (the last taking the remainder) against pieces of the
    corpus aligned to mteb's chunks (:func:`~evalkit.search.similarity.aligned_ranges`), one tile per pair, in one
    worker whose torch operations use torch's own threads. Memory: one tile, one piece and one running top-k."""
    tiles = TorchTiles(how, n_queries=len(queries), n_docs=corpus.n_rows)
    pieces = aligned_ranges(corpus.n_rows, doc_piece)
    scores = np.empty((len(queries), k), dtype=np.float32)
    indices = np.empty((len(queries), k), dtype=np.int64)
    for first, last in aligned_ranges(len(queries), query_block, chunk=max(len(queries), 1)):
        best = RunningTopK(last - first, k)
        for start, stop in pieces:
            best.add_tile(tiles.tile(queries[first:last], tiles.docs(corpus, start, stop), start), 0, start)
        best.flush()
        scores[first:last], indices[first:last] = best_first(best.scores, best.indices)
    return scores, indices


def _search_chunks(queries: np.ndarray, chunks: Sequence[CorpusChunk], k: int) -> RunningTopK:
    """One worker's share: the running top-k of ``queries`` over ``chunks``."""
    best = RunningTopK(len(queries), k)
    unit_rows = ChunkNormalizer()
    reader = ChunkReader()
    tile_buffer = np.empty(0, dtype=np.float32)
    try:
        for chunk in chunks:
            docs = unit_rows(reader.read(chunk.vectors), what="document", first_row=chunk.start)
            release_pages(chunk.vectors)
            for first in range(0, len(queries), TILE_QUERIES):
                block = queries[first : first + TILE_QUERIES]
                size = len(block) * len(docs)
                if tile_buffer.size < size:  # reused: a fresh multi-MB array per tile would cost page faults
                    tile_buffer = np.empty(size, dtype=np.float32)
                tile = np.matmul(block, docs.T, out=tile_buffer[:size].reshape(len(block), len(docs)))
                best.add_tile(tile, first, chunk.start)
    finally:
        reader.close()
    best.flush()
    return best


def _single_threaded_blas() -> AbstractContextManager[object] | None:
    """A context that keeps BLAS to one thread, as parallelism comes from the worker threads (BLAS threads on top
    would oversubscribe the cores, and their split of a product could change the last bit of a score).

    None without threadpoolctl (a dependency of scikit-learn, which mteb needs): search then runs in one worker
    and lets BLAS use its own threads.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    return threadpool_limits(limits=1, user_api="blas")

