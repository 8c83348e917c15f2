"""Exact cosine top-k at bfloat16 speed: a bf16 matrix product screens, float32 dot products decide.

Most of an exact search's work is scoring pairs that can never enter a top k: once a query holds k candidates,
only a document scoring above its k-th best can. A bfloat16 product runs about twice as fast as a float32 one on a
CPU with bf16 instructions (``avx512_bf16``, ``amx_bf16``), and its error has a bound that the inputs fix:

* rounding a unit vector ``x`` to bf16 moves it by ``e = ‖x - bf16(x)‖ ≤ 2⁻⁹`` (8 significant bits, to nearest),
  so ``|q·d - bf16(q)·bf16(d)| ≤ e_q·‖d‖ + ‖bf16(q)‖·e_d ≤ 2⁻⁹·(2 + 2⁻⁹)``;
* the product sums 384-odd float32 terms whose magnitudes add up to about 1 (float32 accumulation: a few 1e-5 at
  most), and rounds its result to bf16 (relative error 2⁻⁹).

So a pair whose bf16 score falls below ``threshold - margin`` (the margin covering all three, with room to spare)
provably scores below the threshold in float32 too, and is dropped; the few that pass (under 1% of a large corpus)
are scored again exactly, in float32, one dot product per pair (``torch.sparse.sampled_addmm``), and only those exact
scores are ranked. The result is the float32 top k, ties by index, whatever the screen let through: every score
reported, and every score compared, comes from the same per-pair float32 dot product, so it does not depend on
chunking, query tiles or threads either. While a query does not yet hold k candidates it has no threshold, and its
tile is scored exactly in full (by the same per-pair product).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from evalkit.search.corpus_chunks import ChunkReader, CorpusChunk, release_pages
from evalkit.search.normalize import ChunkNormalizer
from evalkit.search.running_top_k import RunningTopK

if TYPE_CHECKING:
    import torch

SCREEN_MIN_SCORES = 1 << 28
"""Queries × documents from which a search is screened: below it (about a second of float32 products on two
cores) the plain float32 search is as quick, and it needs no torch import (a warm run's start-up)."""

SCREEN_TILE_QUERIES = 1024
"""Queries per bf16 product: a 1,024 × 4,096 bf16 tile is 8 MB; bf16 products measured fastest with many rows."""

EXACT_TILE_PAIRS = 1 << 20
"""Pairs scored exactly per call while a query block is still filling up (8 MB of column indices)."""

_ROUNDING = 2.0**-9 * (1.0 + 1e-5)
"""Rounding a float32 row to bf16 (8 significant bits, to nearest) moves it by at most 2⁻⁹ of its length (measured
on unit rows: 0.00166 on average, 0.00194 at most against 2⁻⁹ = 0.00195), so per-row errors would gain nothing; the
factor covers unit rows a few float32 ulps longer than 1."""

_OUTPUT_ROUNDING = 2.0**-9 * (1.0 + 2.0**-7)
"""Relative: the bf16 product's float32 sum is rounded to bf16, by at most 2⁻⁹ of its size (a little more, as the
cut-off is applied to the rounded value)."""

_BF16_FLAGS = ("avx512_bf16", "amx_bf16")

# torch says once that sparse CSR tensors are "in beta"; only this one documented operation is used on them.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta", category=UserWarning)


@cache
def bf16_screening_available() -> bool:
    """Whether this CPU multiplies bf16 in hardware (Linux flags) and torch is installed: without both a bf16
    product is not faster than a float32 one and the plain search runs."""
    try:
        flags = next(
            line for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines() if line.startswith("flags")
        )
    except (OSError, UnicodeDecodeError, StopIteration):
        return False
    if not any(flag in flags.split() for flag in _BF16_FLAGS):
        return False
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def single_threaded_torch() -> Iterator[None]:
    """torch at one thread for the worker threads started inside (each takes the process's setting when it first
    runs a torch operation), and the caller's setting back afterwards (it also sets MKL's, which encoding uses)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def screened_chunks(queries: np.ndarray, chunks: Sequence[CorpusChunk], k: int) -> RunningTopK:
    """One worker's share: the exact running top-k of unit ``queries`` over ``chunks``, screened in bf16.

    Runs torch single-threaded in the calling thread (the caller's threads are the parallelism).
    """
    import torch

    torch.set_num_threads(1)  # per thread here: a fresh worker thread takes this, not the process's setting
    best = RunningTopK(len(queries), k)
    exact_queries = torch.from_numpy(queries)
    rough_queries = exact_queries.bfloat16()
    unit_rows, reader = ChunkNormalizer(), ChunkReader()
    try:
        for chunk in chunks:
            docs = torch.from_numpy(unit_rows(reader.read(chunk.vectors), what="document", first_row=chunk.start))
            release_pages(chunk.vectors)
            for first in range(0, len(queries), SCREEN_TILE_QUERIES):
                rows = slice(first, min(first + SCREEN_TILE_QUERIES, len(queries)))
                _screen_tile(best, (exact_queries[rows], rough_queries[rows]), docs, rows, chunk.start)
    finally:
        reader.close()
    best.flush()
    return best


def _screen_tile(
    best: RunningTopK, queries: tuple[torch.Tensor, torch.Tensor], docs: torch.Tensor, rows: slice, first_doc: int
) -> None:
    """Offer ``best`` the pairs of ``queries`` (float32 and bf16) × unit ``docs`` that may pass, scored exactly."""
    import torch

    exact_queries, rough_queries = queries
    if np.isneginf(best.threshold[rows]).any():  # still filling up: score the whole tile exactly
        step = max(1, EXACT_TILE_PAIRS // len(docs))
        for part in range(0, len(exact_queries), step):
            best.add_tile(_exact_tile(exact_queries[part : part + step], docs), rows.start + part, first_doc)
        return
    rough = torch.mm(rough_queries, docs.bfloat16().T)
    flat = _passing(rough, screen_cutoff(best.threshold[rows], docs.shape[1]))
    if len(flat):
        query, doc = np.divmod(flat, len(docs))
        best.add_pairs(query, doc + first_doc, pair_scores(exact_queries, docs, query, doc), rows)


def _passing(rough: torch.Tensor, cutoff: np.ndarray) -> np.ndarray:
    """Flat positions of the bf16 tile ``rough`` at or above their row's ``cutoff``.

    With positive cut-offs (a search past its first few chunks) the comparison runs on the bf16 bit patterns as
    16-bit integers, three times quicker than torch's, and exact: for a positive ``c`` and any ``x``, ``x >= c``
    exactly when ``bits(x) >= bits(c)`` as signed integers (negative ``x`` have the sign bit set). Each cut-off is
    first rounded down to bf16 by dropping its low 16 bits, which only lets more pairs through.
    """
    import torch

    if (cutoff > 0).all():
        cutoff_bits = (cutoff.view(np.uint32) >> 16).astype(np.int16)
        return np.flatnonzero(rough.view(torch.int16).numpy() >= cutoff_bits[:, None])
    return np.flatnonzero(torch.ge(rough, torch.from_numpy(cutoff)[:, None]).numpy())


def screen_cutoff(threshold: np.ndarray, dim: int) -> np.ndarray:
    """The bf16 score below which a pair of unit rows of ``dim`` components provably scores at or below
    ``threshold`` in float32 (module docstring): the bf16 products of such pairs can be left unscored."""
    accumulation = 4.0 * dim * 2.0**-24 + 1e-6  # both products' float32 sums, twice over
    bound = threshold - (_ROUNDING * (2.0 + _ROUNDING) + accumulation)
    return (bound - np.abs(bound) * _OUTPUT_ROUNDING).astype(np.float32)


def pair_scores(queries: torch.Tensor, docs: torch.Tensor, query: np.ndarray, doc: np.ndarray) -> np.ndarray:
    """``queries[query[i]] · docs[doc[i]]`` in float32, one dot product per pair (``query`` ascending).

    Each pair's arithmetic is the same whichever other pairs are asked for with it, so a score does not depend on
    the tiles or threads that produced it.
    """
    import torch

    counts = np.bincount(query, minlength=len(queries))
    row_starts = np.concatenate([[0], np.cumsum(counts)])
    mask = torch.sparse_csr_tensor(
        torch.from_numpy(row_starts),
        torch.from_numpy(np.ascontiguousarray(doc, dtype=np.int64)),
        torch.zeros(len(doc), dtype=torch.float32),
        size=(len(queries), len(docs)),
        check_invariants=False,
    )
    return torch.sparse.sampled_addmm(mask, queries, docs.T, beta=0.0).values().numpy()


def _exact_tile(queries: torch.Tensor, docs: torch.Tensor) -> np.ndarray:
    """Every pair of ``queries`` × ``docs`` by :func:`pair_scores`, as a dense float32 tile."""
    n_queries, n_docs = len(queries), len(docs)
    query = np.repeat(np.arange(n_queries), n_docs)
    doc = np.tile(np.arange(n_docs), n_queries)
    return pair_scores(queries, docs, query, doc).reshape(n_queries, n_docs)
