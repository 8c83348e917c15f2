"""Scoring given candidates: each query against its own candidate documents only (reranking), no corpus search.

The arithmetic is mteb's ``cos_sim`` as its reranking calls it, one query at a time: normalise the query
(1 × d) and the gathered candidates (n × d) with torch, then one (1 × d) @ (d × n) product. Doing the same
operations in the same shapes gives the same float32 scores, so trec_eval sees the same ties as in mteb. A model
whose similarity is dot, euclidean or manhattan is scored by that function, in the same shapes
(:func:`evalkit.search.similarity.similarity_matrix`, the model's ``similarity`` as mteb calls it).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from evalkit.search.similarity import check_similarity, similarity_matrix


def candidate_scores(
    query_vectors: np.ndarray,
    doc_vectors: np.ndarray,
    candidate_rows: Sequence[np.ndarray],
    *,
    similarity: str = "cosine",
) -> list[np.ndarray]:
    """The ``similarity`` (cosine by default) of query ``i`` with each row of ``doc_vectors`` listed in
    ``candidate_rows[i]``, in that order.

    Returns one float32 array per query; a query without candidates gets an empty array.
    """
    if len(candidate_rows) != len(query_vectors):
        raise ValueError(f"{len(query_vectors)} query vectors but {len(candidate_rows)} candidate lists")
    check_similarity(similarity)
    queries = torch.as_tensor(query_vectors, dtype=torch.float32)
    docs = torch.as_tensor(doc_vectors, dtype=torch.float32)
    normalize = torch.nn.functional.normalize
    scores = []
    with torch.inference_mode():
        for row, doc_rows in enumerate(candidate_rows):
            if len(doc_rows) == 0:
                scores.append(np.zeros(0, dtype=np.float32))
                continue
            query, candidates = queries[row].unsqueeze(0), docs[torch.as_tensor(doc_rows, dtype=torch.long)]
            if similarity != "cosine":
                scores.append(similarity_matrix(query, candidates, similarity)[0].numpy().copy())
                continue
            query, candidates = normalize(query, p=2, dim=1), normalize(candidates, p=2, dim=1)
            scores.append((query @ candidates.transpose(0, 1))[0].numpy().copy())
    return scores
