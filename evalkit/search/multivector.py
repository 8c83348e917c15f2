"""Multi-vector (ColBERT) scoring: MaxSim of each query token against a document's tokens, used to rerank.

``maxsim(q, d) = Σ_i max_j q_i · d_j`` over the query's token vectors ``q_i`` and the document's ``d_j``. BGE-M3
divides it by the number of query tokens (FlagEmbedding's ``colbert_score``: ``scores.sum() / q_reps.size(0)``),
which keeps its scale that of a cosine, so it can be weighed against dense and sparse scores; a query's ranking is
the same either way. Scoring every document is too slow for a corpus, so, as in the BGE-M3 paper, MaxSim reranks
the candidates of a first stage (dense top 100 by default).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from evalkit.core.outputs import MultiVectorRows
from evalkit.search.dense import TopK
from evalkit.search.fusion import padded_top_k


def maxsim_scores(
    query_rows: MultiVectorRows,
    doc_rows: MultiVectorRows,
    candidates: Sequence[np.ndarray],
    *,
    average: bool = True,
) -> list[np.ndarray]:
    """MaxSim of query ``i`` with each document in ``candidates[i]``, in that order (float32).

    ``average`` divides by the query's token count, as BGE-M3 does. An empty query or document scores 0.
    """
    if len(candidates) != len(query_rows):
        raise ValueError(f"{len(query_rows)} queries but {len(candidates)} candidate lists")
    scores = []
    for row, docs in enumerate(candidates):
        query = query_rows.row(row)
        gathered = doc_rows.take(docs)
        score = np.zeros(len(docs), dtype=np.float32)
        filled = np.flatnonzero(gathered.lengths > 0)
        if len(query) and len(filled):
            similarities = query @ gathered.values.T  # query tokens × all candidate tokens, float32
            best = np.maximum.reduceat(similarities, gathered.offsets[filled], axis=1)  # per document, per token
            score[filled] = best.sum(axis=0)
            if average:
                score /= np.float32(len(query))
        scores.append(score)
    return scores


def maxsim_rerank(
    query_rows: MultiVectorRows,
    doc_rows: MultiVectorRows,
    first_stage: TopK,
    k: int,
    *,
    average: bool = True,
) -> TopK:
    """The first stage's top ``k`` candidates per query, reordered by MaxSim (best first, ties by index).

    Slots the first stage left empty (index -1) stay empty, at the end.
    """
    k = min(int(k), first_stage.indices.shape[1])
    candidates = [row[row >= 0] for row in first_stage.indices[:, :k]]
    scores = maxsim_scores(query_rows, doc_rows, candidates, average=average)
    return padded_top_k(candidates, scores, k)
