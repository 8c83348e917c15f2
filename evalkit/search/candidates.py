"""Scoring given candidates: each query against its own candidate documents only (reranking), no corpus search.

The arithmetic is mteb's ``cos_sim`` as its reranking calls it, one query at a time: normalise the query
(1 × d) and the gathered candidates (n × d) with torch, then one (1 × d) @ (d × n) product. Doing the same
operations in the same shapes gives the same float32 scores, so trec_eval sees the same ties as in mteb.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def candidate_scores(
    query_vectors: np.ndarray, doc_vectors: np.ndarray, candidate_rows: Sequence[np.ndarray]
) -> list[np.ndarray]:
    """Cosine of query ``i`` with each row of ``doc_vectors`` listed in ``candidate_rows[i]``, in that order.

    Returns one float32 array per query; a query without candidates gets an empty array.
    """
    if len(candidate_rows) != len(query_vectors):
        raise ValueError(f"{len(query_vectors)} query vectors but {len(candidate_rows)} candidate lists")
    queries = torch.as_tensor(query_vectors, dtype=torch.float32)
    docs = torch.as_tensor(doc_vectors, dtype=torch.float32)
    normalize = torch.nn.functional.normalize
    scores = []
    with torch.inference_mode():
        for row, doc_rows in enumerate(candidate_rows):
            if len(doc_rows) == 0:
                scores.append(np.zeros(0, dtype=np.float32))
                continue
            query = normalize(queries[row].unsqueeze(0), p=2, dim=1)
            candidates = normalize(docs[torch.as_tensor(doc_rows, dtype=torch.long)], p=2, dim=1)
            scores.append((query @ candidates.transpose(0, 1))[0].numpy().copy())
    return scores
