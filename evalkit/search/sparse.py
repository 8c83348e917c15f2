"""Exact sparse retrieval: dot products of term-weight vectors over an inverted index, top-k as dense search gives.

The index is the corpus's weights transposed — per vocabulary id, the documents holding it and their weights
(a CSR matrix, vocabulary × documents) — so scoring a block of queries is one sparse product, ``queries @
postings``, which visits exactly the postings of the queries' terms (scipy's row-by-row SMMP, an accumulator per
query: the inverted-index algorithm). Scores accumulate in float64 and are returned as float32.

A document that shares no term with a query is never reached, so it is not retrieved: such queries get fewer
than k results, and the empty slots of :class:`TopK` hold index -1 and score -inf (sorted last). The order is
dense search's: score descending, equal scores by document index — here also for equal scores at the k-th place,
where the documents with the lowest indices are kept (sparse scores tie far more often than cosines).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from evalkit.core.outputs import SparseRows
from evalkit.search.dense import TopK
from evalkit.search.running_top_k import best_first

DOC_CHUNK = 1 << 16
"""Documents per posting matrix: a query block's score tile is ``QUERY_BLOCK × DOC_CHUNK`` (64 MB at most)."""

QUERY_BLOCK = 256


def csr_of(rows: SparseRows, vocab_size: int) -> sp.csr_array:
    """The rows as a ``(len(rows), vocab_size)`` CSR matrix of float64 weights (ids ascending, as CSR wants)."""
    return sp.csr_array(
        (rows.weights.astype(np.float64), rows.token_ids.astype(np.int64), rows.offsets), shape=(len(rows), vocab_size)
    )


@dataclass(frozen=True)
class InvertedIndex:
    """The corpus as posting lists, in chunks of documents: ``postings[c]`` is vocabulary × chunk-``c`` documents."""

    postings: list[sp.csr_array]
    starts: list[int]
    n_docs: int
    vocab_size: int

    @classmethod
    def build(cls, doc_rows: SparseRows, *, vocab_size: int | None = None, doc_chunk: int = DOC_CHUNK) -> InvertedIndex:
        """Index every document; ``vocab_size`` defaults to the largest id seen plus one."""
        if vocab_size is None:
            vocab_size = int(doc_rows.token_ids.max()) + 1 if len(doc_rows.values) else 1
        docs = csr_of(doc_rows, vocab_size)
        starts = list(range(0, len(doc_rows), doc_chunk))
        postings = [sp.csr_array(docs[start : start + doc_chunk].T) for start in starts]
        return cls(postings=postings, starts=starts, n_docs=len(doc_rows), vocab_size=vocab_size)

    def scores(self, query_rows: SparseRows) -> Sequence[tuple[int, sp.csr_array]]:
        """``(first document, query × chunk scores)`` per chunk: matched pairs only (an unmatched pair is absent)."""
        queries = csr_of(query_rows, self._vocab_for(query_rows))
        return [
            (start, sp.csr_array(queries @ self._padded(postings, queries.shape[1])))
            for start, postings in zip(self.starts, self.postings, strict=True)
        ]

    def _vocab_for(self, query_rows: SparseRows) -> int:
        top = int(query_rows.token_ids.max()) + 1 if len(query_rows.values) else 0
        return max(self.vocab_size, top)

    @staticmethod
    def _padded(postings: sp.csr_array, vocab_size: int) -> sp.csr_array:
        """Postings with room for query ids the corpus never used (they match nothing)."""
        if postings.shape[0] == vocab_size:
            return postings
        postings = postings.copy()
        postings.resize((vocab_size, postings.shape[1]))
        return postings


def sparse_top_k(
    query_rows: SparseRows,
    doc_rows: SparseRows | InvertedIndex,
    k: int,
    *,
    query_block: int = QUERY_BLOCK,
) -> TopK:
    """The k documents with the highest sparse dot product for each query, among those sharing a term with it.

    ``doc_rows`` may be an index already built (to search several query sets over one corpus).
    """
    index = doc_rows if isinstance(doc_rows, InvertedIndex) else InvertedIndex.build(doc_rows)
    k = max(0, min(int(k), index.n_docs))
    n_queries = len(query_rows)
    if k == 0 or n_queries == 0:
        return TopK(np.zeros((n_queries, k), dtype=np.int64), np.zeros((n_queries, k), dtype=np.float32))
    indices = np.empty((n_queries, k), dtype=np.int64)
    scores = np.empty((n_queries, k), dtype=np.float32)
    for start in range(0, n_queries, query_block):
        block = query_rows.take(np.arange(start, min(n_queries, start + query_block)))
        best_scores, best_indices = [], []
        for first_doc, matched in index.scores(block):
            tile = _dense_tile(matched)
            docs = np.broadcast_to(np.arange(first_doc, first_doc + tile.shape[1], dtype=np.int64), tile.shape)
            chunk_scores, chunk_indices = best_k(tile, docs, min(k, tile.shape[1]))
            best_scores.append(chunk_scores)
            best_indices.append(chunk_indices)
        block_scores, block_indices = best_first(
            np.concatenate(best_scores, axis=1), np.concatenate(best_indices, axis=1)
        )
        block_scores, block_indices = block_scores[:, :k], block_indices[:, :k].copy()
        block_indices[np.isneginf(block_scores)] = -1  # slots no matching document filled
        stop = start + len(block)
        scores[start:stop], indices[start:stop] = block_scores, block_indices
    return TopK(indices=indices, scores=scores)


def best_k(scores: np.ndarray, indices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the k best entries, best first and equal scores by index — also where equal scores straddle the
    k-th place (an argpartition alone would keep any of them). ``indices`` must ascend along each row."""
    width = scores.shape[1]
    if width > k:
        kth = np.partition(scores, width - k, axis=1)[:, width - k]  # each row's k-th largest score
        above = scores > kth[:, None]
        tied = scores == kth[:, None]
        room = k - above.sum(axis=1)  # how many of the tied entries make the cut: the lowest indices
        keep = above | (tied & (np.cumsum(tied, axis=1) <= room[:, None]))
        scores, indices = scores[keep].reshape(len(scores), k), indices[keep].reshape(len(scores), k)
    return best_first(scores, indices)


def _dense_tile(matched: sp.csr_array) -> np.ndarray:
    """Matched scores as a float32 tile, -inf where a query and a document share no term."""
    tile = np.full(matched.shape, -np.inf, dtype=np.float32)
    coo = matched.tocoo()
    tile[coo.row, coo.col] = coo.data
    return tile


def sparse_scores(query_rows: SparseRows, doc_rows: SparseRows, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The sparse dot product of query ``i`` with each document in ``candidates[i]``, in that order (float32).

    FlagEmbedding's ``compute_lexical_matching_score``: the sum over shared token ids of the two weights' product.
    """
    if len(candidates) != len(query_rows):
        raise ValueError(f"{len(query_rows)} queries but {len(candidates)} candidate lists")
    vocab = 1 + max(
        int(query_rows.token_ids.max()) if len(query_rows.values) else 0,
        int(doc_rows.token_ids.max()) if len(doc_rows.values) else 0,
    )
    query_weights = np.zeros(vocab, dtype=np.float64)
    scores = []
    for row, docs in enumerate(candidates):
        query = query_rows.row(row)
        query_weights[query["token_id"]] = query["weight"]
        gathered = doc_rows.take(docs)
        products = query_weights[gathered.token_ids] * gathered.weights
        owner = np.repeat(np.arange(len(docs)), gathered.lengths)
        scores.append(np.bincount(owner, weights=products, minlength=len(docs)).astype(np.float32))
        query_weights[query["token_id"]] = 0.0
    return scores
