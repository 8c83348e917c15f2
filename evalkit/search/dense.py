"""Exact dense search: cosine top-k over the corpus, in chunks, so memory stays bounded.

The score matrix is never built whole: each (query block × corpus chunk) tile is reduced to its top k at once and
merged into the running best, so extra memory is ``query_block × (doc_chunk + k)`` floats whatever the corpus size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopK:
    """Per query, the indices of the best documents and their scores, best first (ties in no set order)."""

    indices: np.ndarray  # int64, (n_queries, k)
    scores: np.ndarray  # float32, (n_queries, k)


def l2_normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), so a dot product is the cosine similarity."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)


def _top_k_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k largest scores (unordered)."""
    if scores.shape[1] <= k:
        return np.broadcast_to(np.arange(scores.shape[1]), scores.shape).copy()
    return np.argpartition(-scores, k - 1, axis=1)[:, :k]


def exact_top_k(
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray,
    k: int,
    *,
    doc_chunk: int = 50_000,
    query_block: int = 1_024,
) -> TopK:
    """The k documents with the highest cosine similarity for each query."""
    queries = l2_normalized(query_vectors)
    docs = l2_normalized(doc_vectors)
    k = min(k, len(docs))
    all_indices = np.empty((len(queries), k), dtype=np.int64)
    all_scores = np.empty((len(queries), k), dtype=np.float32)
    for q_start in range(0, len(queries), query_block):
        block = queries[q_start : q_start + query_block]
        best_scores = np.full((len(block), 0), -np.inf, dtype=np.float32)
        best_indices = np.zeros((len(block), 0), dtype=np.int64)
        for d_start in range(0, len(docs), doc_chunk):
            tile = block @ docs[d_start : d_start + doc_chunk].T
            local = _top_k_rows(tile, k)
            candidate_scores = np.concatenate([best_scores, np.take_along_axis(tile, local, axis=1)], axis=1)
            candidate_indices = np.concatenate([best_indices, local + d_start], axis=1)
            keep = _top_k_rows(candidate_scores, k)
            best_scores = np.take_along_axis(candidate_scores, keep, axis=1)
            best_indices = np.take_along_axis(candidate_indices, keep, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        all_scores[q_start : q_start + len(block)] = np.take_along_axis(best_scores, order, axis=1)
        all_indices[q_start : q_start + len(block)] = np.take_along_axis(best_indices, order, axis=1)
    return TopK(indices=all_indices, scores=all_scores)
