"""The rerank stage: a cross-encoder rescoring each query's first-stage top k, its pairs scored by the core.

Only the k candidates are kept, as mteb's two-stage retrieval and FlagEmbedding's reranker evaluation keep them:
metrics beyond k then measure the reranked list, not a splice of two scorers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.encoders.protocol import PairScorer
from evalkit.search.dense import TopK


@dataclass(frozen=True)
class RerankStage:
    """``--reranker M --rerank-top-k K``: the pair scorer and how many first-stage candidates it rescores."""

    model: PairScorer
    top_k: int = 100

    def tag(self) -> str:
        """The revision-folder tag: a reranked run never overwrites the first stage's results."""
        return f"+rerank-{self.model.name.split('/')[-1]}-k{self.top_k}"

    def record(self) -> dict[str, object]:
        return {"model": self.model.fingerprint(), "top_k": self.top_k}


def rerank_top_k(
    core: EmbeddingCore,
    reranker: PairScorer,
    query_texts: list[str],
    doc_texts: list[str],
    first_stage: TopK,
    k: int,
) -> TopK:
    """Rescore the first ``k`` candidates of each query (first-stage order); best first, ties by first-stage rank."""
    k = min(k, first_stage.indices.shape[1])
    candidates = first_stage.indices[:, :k]
    queries = [query_texts[row] for row in range(candidates.shape[0]) for _ in range(k)]
    documents = [doc_texts[index] for index in candidates.ravel()]
    scores = core.score_pairs(reranker, queries, documents, desc="rerank")
    scores = scores.reshape(candidates.shape).astype(np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")
    return TopK(indices=np.take_along_axis(candidates, order, axis=1), scores=np.take_along_axis(scores, order, axis=1))
