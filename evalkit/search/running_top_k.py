"""The k best documents per query over a stream of score tiles, keeping only scores that can still make the cut.

Once a query has k candidates, its k-th best score is a threshold that only rises, and a score at or below it can
never enter the top k. Over n documents in random order only about ``k · ln(n / k)`` scores per query ever pass it,
so a tile costs one comparison and one scan of the mask. Passing scores are written behind the current top k in a
fixed buffer (no sorting, no lists), and the buffer is reduced back to k only when a query's share of it is full.
This is the reservoir scheme faiss uses for large k; selecting the top k of every tile (``argpartition``) instead
would cost more than the matrix product itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

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
            self._merge_dense(tile, first_doc, rows)
            return
        passing = np.flatnonzero(tile > self.threshold[rows, None])  # flat: several times faster than 2-D nonzero
        if len(passing) == 0:
            return
        query, doc = np.divmod(passing, tile.shape[1])
        self._append(rows, query, doc + first_doc, tile.reshape(-1)[passing], lambda: (tile, first_doc))

    def add_pairs(self, query: np.ndarray, doc: np.ndarray, scores: np.ndarray, rows: slice) -> None:
        """Offer scattered scores: ``scores[i]`` of query ``rows.start + query[i]`` for document ``doc[i]``
        (corpus-wide), ``query`` ascending; pairs at or below their query's threshold are dropped here.

        For a screened search, where only the few pairs that can still make the cut were scored exactly. Every
        query of ``rows`` must already hold k candidates (a finite threshold).
        """
        keep = np.flatnonzero(scores > self.threshold[rows][query])
        if len(keep) == 0:
            return
        query, doc, scores = query[keep], doc[keep], scores[keep]

        def as_tile() -> tuple[np.ndarray, int]:  # -inf where nothing passed
            first_doc = int(doc.min())
            tile = np.full((rows.stop - rows.start, int(doc.max()) + 1 - first_doc), -np.inf, dtype=np.float32)
            tile[query, doc - first_doc] = scores
            return tile, first_doc

        self._append(rows, query, doc, scores, as_tile)

    def _append(
        self,
        rows: slice,
        query: np.ndarray,
        doc: np.ndarray,
        scores: np.ndarray,
        as_tile: Callable[[], tuple[np.ndarray, int]],
    ) -> None:
        """Write passing candidates (``query`` ascending, within ``rows``; ``doc`` corpus-wide) behind the current
        top k; ``as_tile`` gives them as a tile and its first document, for when they overflow the buffer."""
        counts = np.bincount(query, minlength=rows.stop - rows.start)
        if (counts > self.capacity - self._pending[rows]).any():
            self.flush(rows)
            if (counts > self.capacity).any():  # more than a whole buffer from one tile: merge it directly
                self._merge_dense(*as_tile(), rows)
                return
        # Candidates come out row by row, so a candidate's slot is its row's next free slot plus its rank in the row.
        first_slot = np.arange(rows.start, rows.stop) * self._width + self.k + self._pending[rows]
        slot = (first_slot - (np.cumsum(counts) - counts))[query] + np.arange(len(query))
        self._scores.reshape(-1)[slot] = scores
        self._indices.reshape(-1)[slot] = doc
        self._pending[rows] += counts

    def flush(self, rows: slice = slice(None)) -> None:
        """Reduce the gathered candidates of ``rows`` into their top k and raise their thresholds."""
        pending = self._pending[rows]
        if len(pending) == 0 or not pending.any():
            return
        used = self.k + int(pending.max())
        scores, indices = self._scores[rows, :used], self._indices[rows, :used]
        keep = top_k_columns(scores, self.k, indices.__getitem__)
        best = np.take_along_axis(scores, keep, axis=1)
        self._indices[rows, : self.k] = np.take_along_axis(indices, keep, axis=1)
        self._scores[rows, : self.k] = best
        self._scores[rows, self.k : used] = -np.inf
        self._pending[rows] = 0
        self.threshold[rows] = best.min(axis=1)

    def _merge_dense(self, tile: np.ndarray, first_doc: int, rows: slice) -> None:
        self.flush(rows)
        docs = np.arange(first_doc, first_doc + tile.shape[1], dtype=np.int64)
        if tile.shape[1] >= self.k and np.isneginf(self._scores[rows, : self.k]).all():
            # The first chunk: nothing to merge with (and argpartition is slow on the many equal -inf).
            keep = top_k_columns(tile, self.k, lambda _: docs)
            best, best_docs = np.take_along_axis(tile, keep, axis=1), docs[keep]
        else:
            scores = np.concatenate([self._scores[rows, : self.k], tile], axis=1)
            old_docs = self._indices[rows, : self.k]
            keep = top_k_columns(scores, self.k, lambda row: np.concatenate([old_docs[row], docs]))
            best = np.take_along_axis(scores, keep, axis=1)
            old = np.take_along_axis(self._indices[rows, : self.k], np.minimum(keep, self.k - 1), axis=1)
            best_docs = np.where(keep < self.k, old, first_doc + keep - self.k)
        self._scores[rows, : self.k] = best
        self._indices[rows, : self.k] = best_docs
        self.threshold[rows] = best.min(axis=1)


def top_k_columns(scores: np.ndarray, k: int, indices: Callable[[int], np.ndarray]) -> np.ndarray:
    """Column indices of each row's k best scores, in no order (``k <= scores.shape[1]``): the k largest, and of
    scores equal to the k-th largest, those of the smallest documents (``indices(row)``: that row's), so that an
    exact tie at the cut is decided by index as :func:`best_first` decides it, not by where the scores sit."""
    width = scores.shape[1]
    keep = np.argpartition(scores, width - k, axis=1)[:, width - k :]
    kept = np.take_along_axis(scores, keep, axis=1)
    kth = kept.min(axis=1, keepdims=True)
    straddling = np.count_nonzero(scores == kth, axis=1) != np.count_nonzero(kept == kth, axis=1)
    for row in np.flatnonzero(straddling):  # rare: equal scores on both sides of the cut
        keep[row] = np.lexsort((indices(row), -scores[row]))[:k]
    return keep


def merge_top_k(parts: Sequence[RunningTopK], k: int) -> tuple[np.ndarray, np.ndarray]:
    """The best k per query over several flushed partial results (disjoint parts of the corpus), best first."""
    if len(parts) == 1:
        return best_first(parts[0].scores, parts[0].indices)
    scores = np.concatenate([part.scores for part in parts], axis=1)
    docs = np.concatenate([part.indices for part in parts], axis=1)
    keep = top_k_columns(scores, k, docs.__getitem__)
    return best_first(np.take_along_axis(scores, keep, axis=1), np.take_along_axis(docs, keep, axis=1))


def best_first(scores: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row sorted by score, descending, and equal scores by document index, ascending.

    Fixing the order of exact ties makes the result independent of chunking, threads and backend wherever the
    scores themselves agree.
    """
    order = np.lexsort((indices, -scores), axis=1)
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(indices, order, axis=1)
