"""The k best documents per query over a stream of score tiles, keeping only scores that can still make the cut.

Once a query has k candidates, its k-th best score is a threshold that only rises, and a score at or below it can
never enter the top k. Over n documents in random order only about ``k · ln(n / k)`` scores per query ever pass it,
so a tile costs one comparison and one scan of the mask. Passing scores are written behind the current top k in a
fixed buffer (no sorting, no lists), and the buffer is reduced back to k only when a query's share of it is full.
This is the reservoir scheme faiss uses for large k; selecting the top k of every tile (``argpartition``) instead
would cost more than the matrix product itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class RunningTopK:
    """Per query, the best ``k`` (score, document index) pairs seen so far; -inf / -1 fill empty slots.

    Memory is fixed at ``n_queries × (k + capacity)`` scores and indices, ``capacity`` (default k) being the
    candidates a query may gather between two reductions.
    """

    def __init__(self, n_queries: int, k: int, capacity: int | None = None) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.capacity = capacity or k
        self._width = k + self.capacity
        self._scores = np.full((n_queries, self._width), -np.inf, dtype=np.float32)
        self._indices = np.full((n_queries, self._width), -1, dtype=np.int64)
        self._pending = np.zeros(n_queries, dtype=np.int64)  # candidates gathered behind the top k, per query
        self.threshold = np.full(n_queries, -np.inf, dtype=np.float32)
        """Each query's k-th best score so far: -inf until it has k candidates."""

    @property
    def scores(self) -> np.ndarray:
        """The best k scores per query, in no order (call :meth:`flush` first)."""
        return self._scores[:, : self.k]

    @property
    def indices(self) -> np.ndarray:
        """The documents of :attr:`scores`."""
        return self._indices[:, : self.k]

    def add_tile(self, tile: np.ndarray, first_query: int, first_doc: int) -> None:
        """Offer ``tile[i, j]``, the score of query ``first_query + i`` for document ``first_doc + j``.

        The tile is copied from, never kept, so the caller may reuse its buffer.
        """
        rows = slice(first_query, first_query + tile.shape[0])
        if np.isneginf(self.threshold[rows]).any():  # still filling up: everything passes, merge it at once
            self._merge_dense(tile, rows, first_doc)
            return
        passing = np.flatnonzero(tile > self.threshold[rows, None])  # flat: several times faster than 2-D nonzero
        if len(passing) == 0:
            return
        query, doc = np.divmod(passing, tile.shape[1])
        counts = np.bincount(query, minlength=tile.shape[0])
        if (counts > self.capacity - self._pending[rows]).any():
            self.flush(rows)
            if (counts > self.capacity).any():  # more than a whole buffer from one tile: merge it directly
                self._merge_dense(tile, rows, first_doc)
                return
        # Candidates come out row by row, so a candidate's slot is its row's fill plus its rank within the row.
        rank = np.arange(len(query)) - (np.cumsum(counts) - counts)[query]
        slot = (query + first_query) * self._width + self.k + self._pending[rows][query] + rank
        self._scores.reshape(-1)[slot] = tile.reshape(-1)[passing]
        self._indices.reshape(-1)[slot] = doc + first_doc
        self._pending[rows] += counts

    def flush(self, rows: slice = slice(None)) -> None:
        """Reduce the gathered candidates of ``rows`` into their top k and raise their thresholds."""
        pending = self._pending[rows]
        if len(pending) == 0 or not pending.any():
            return
        used = self.k + int(pending.max())
        scores, indices = self._scores[rows, :used], self._indices[rows, :used]
        keep = top_k_columns(scores, self.k)
        best = np.take_along_axis(scores, keep, axis=1)
        self._indices[rows, : self.k] = np.take_along_axis(indices, keep, axis=1)
        self._scores[rows, : self.k] = best
        self._scores[rows, self.k : used] = -np.inf
        self._pending[rows] = 0
        self.threshold[rows] = best.min(axis=1)

    def _merge_dense(self, tile: np.ndarray, rows: slice, first_doc: int) -> None:
        self.flush(rows)
        docs = np.arange(first_doc, first_doc + tile.shape[1], dtype=np.int64)
        if tile.shape[1] >= self.k and np.isneginf(self._scores[rows, : self.k]).all():
            # The first chunk: nothing to merge with (and argpartition is slow on the many equal -inf).
            keep = top_k_columns(tile, self.k)
            best, best_docs = np.take_along_axis(tile, keep, axis=1), docs[keep]
        else:
            scores = np.concatenate([self._scores[rows, : self.k], tile], axis=1)
            keep = top_k_columns(scores, self.k)
            best = np.take_along_axis(scores, keep, axis=1)
            old = np.take_along_axis(self._indices[rows, : self.k], np.minimum(keep, self.k - 1), axis=1)
            best_docs = np.where(keep < self.k, old, first_doc + keep - self.k)
        self._scores[rows, : self.k] = best
        self._indices[rows, : self.k] = best_docs
        self.threshold[rows] = best.min(axis=1)


def top_k_columns(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k largest scores, in no order (``k <= scores.shape[1]``)."""
    width = scores.shape[1]
    return np.argpartition(scores, width - k, axis=1)[:, width - k :]


def merge_top_k(parts: Sequence[RunningTopK], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best k per query over several flushed partial results (disjoint parts of the corpus), best first."""
    if len(parts) == 1:
        return best_first(parts[0].scores, parts[0].indices)
    scores = np.concatenate([part.scores for part in parts], axis=1)
    docs = np.concatenate([part.indices for part in parts], axis=1)
    keep = top_k_columns(scores, k)
    return best_first(np.take_along_axis(scores, keep, axis=1), np.take_along_axis(docs, keep, axis=1))


def best_first(scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted by score, descending, and equal scores by document index, ascending.

    Fixing the order of exact ties makes the result independent of chunking, threads and backend wherever the
    scores themselves agree.
    """
    order = np.lexsort((indices, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)
