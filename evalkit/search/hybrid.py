"""Hybrid retrieval as a retriever: the runs of several retrievers fused into one (weighted sum or RRF).

The members are retrievers like any other — a BGE-M3 model's dense, sparse and ColBERT retrievers (one encoding
shared), or a dense model and a second model's sparse retriever (``--sparse-model``: SPLADE or BM25). Each member
searches the first-stage depth (``candidates``); a weighted sum then asks each member for its exact score of every
candidate (:meth:`Retriever.scores`), so a document one member ranked below its top k still gets its real score.
See :mod:`evalkit.search.fusion` for the fusions themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.search.dense import TopK
from evalkit.search.fusion import (
    RetrievalSettings,
    candidate_union,
    padded_top_k,
    reciprocal_rank_fusion,
    weighted_sum,
)
from evalkit.search.retriever import Retriever


@dataclass
class HybridRetriever:
    """``members`` by retriever name (``dense``, ``sparse``, ``colbert``), fused as ``settings`` says."""

    members: Mapping[str, Retriever]
    settings: RetrievalSettings

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        for member in self.members.values():
            member.index(corpus_texts, prompt=prompt, languages=languages)

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        """The fused ranking of the members' top ``candidates``, as wide as the largest candidate union (the
        first-stage depth bounds it, not ``k``)."""
        names = self.settings.retrievers
        depth = self.settings.candidates
        runs = [
            self.members[name].search(query_texts, depth, prompt=prompt, languages=languages, desc=desc)
            for name in names
        ]
        candidates = candidate_union(runs)
        if self.settings.fusion == "rrf":
            fused = reciprocal_rank_fusion(runs, candidates, k=self.settings.rrf_k)
        else:
            exact = {name: self.members[name].scores(candidates) for name in names}
            fused = weighted_sum(exact, self.settings.effective_weights, normalization=self.settings.normalization)
        return padded_top_k(candidates, fused, max((len(c) for c in candidates), default=0))

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The weighted sum of the members' exact scores (a rank fusion has no score outside its runs)."""
        weights = self.settings.effective_weights
        exact = {name: self.members[name].scores(candidates) for name in weights}
        return weighted_sum(exact, weights, normalization=self.settings.normalization)

    def describe(self) -> dict[str, Any]:
        return {**self.settings.record(), "tag": self.settings.tag()}


@dataclass
class TwoModelHybrid(HybridRetriever):
    """A hybrid of the run's dense model and a second model's sparse retriever (``--sparse-model``)."""

    sparse_model: Mapping[str, object] | None = None  # the second model's fingerprint
    sparse_tag_name: str = ""

    def describe(self) -> dict[str, Any]:
        described = super().describe()
        return {
            **described,
            "sparse_model": self.sparse_model,
            "tag": described["tag"] + f"+sparse-{self.sparse_tag_name}",
        }


__all__ = ["HybridRetriever", "TwoModelHybrid"]
