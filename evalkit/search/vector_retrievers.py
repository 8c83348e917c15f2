"""The retrievers over a model's vectors: dense (numpy or faiss exact top-k), sparse (an inverted index) and
ColBERT (MaxSim over the dense candidates), each reading one :class:`~evalkit.search.retriever.ModelEncodings`.

Several retrievers over one model share its encodings, so a BGE-M3 hybrid encodes each text once for all three;
ColBERT's dense first stage is the dense retriever itself, whose last result is kept, so a hybrid fusing dense and
ColBERT searches the dense vectors once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.core.outputs import MultiVectorRows, SparseRows
from evalkit.search.dense import SearchBackend, TopK, exact_top_k
from evalkit.search.multivector import maxsim_rerank, maxsim_scores
from evalkit.search.retriever import Encoded, Encodings, dense_rows


def _sparse(encoded: Encoded | None) -> SparseRows:
    rows = encoded["sparse"]  # type: ignore[index]
    assert isinstance(rows, SparseRows)
    return rows


def _colbert(encoded: Encoded | None) -> MultiVectorRows:
    rows = encoded["colbert"]  # type: ignore[index]
    assert isinstance(rows, MultiVectorRows)
    return rows


@dataclass
class _OverEncodings:
    """Index and query encoding delegated to the shared encodings."""

    encodings: Encodings

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        self.encodings.index(corpus_texts, prompt=prompt, languages=languages)

    def _queries(self, query_texts: Sequence[str], prompt: str, desc: str, languages: Sequence[str]) -> tuple[Any, Any]:
        self.encodings.encode_queries(query_texts, prompt=prompt, desc=desc, languages=languages)
        return self.encodings.queries, self.encodings.corpus


@dataclass
class DenseRetriever(_OverEncodings):
    """Top-k over the model's dense vectors by its similarity (MTEB's retrieval: cosine unless the model names
    dot, euclidean or manhattan); ``search_backend`` picks numpy or faiss (cosine only)."""

    search_backend: SearchBackend = "numpy"
    similarity: str = "cosine"
    _last: tuple[Any, TopK] | None = field(default=None, repr=False)

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        queries, corpus = self._queries(query_texts, prompt, desc, languages)
        key = (self.encodings.query_key, k)
        if self._last is None or self._last[0] != key:  # ColBERT's first stage and a hybrid's member: searched once
            self._last = (
                key,
                exact_top_k(
                    dense_rows(queries),
                    dense_rows(corpus),
                    k,
                    search_backend=self.search_backend,
                    similarity=self.similarity,
                ),
            )
        return self._last[1]

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        from evalkit.search.candidates import candidate_scores  # torch: imported where first needed

        queries, corpus = self.encodings.queries, self.encodings.corpus
        return candidate_scores(
            dense_rows(queries),  # type: ignore[arg-type]
            dense_rows(corpus),  # type: ignore[arg-type]
            candidates,
            similarity=self.similarity,
        )

    def describe(self) -> dict[str, Any]:
        # The similarity is the model's (recorded with its settings); named here only where it is not cosine,
        # so a cosine run's record stays what it was.
        similarity = {"similarity": self.similarity} if self.similarity != "cosine" else {}
        return {"mode": "dense", "search_backend": self.search_backend, **similarity, "tag": ""}


@dataclass
class SparseRetriever(_OverEncodings):
    """Term-weight dot products over an inverted index of the model's sparse rows (SPLADE, BGE-M3's sparse head)."""

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        from evalkit.search.sparse import sparse_top_k  # scipy: imported when sparse rows are searched

        queries, corpus = self._queries(query_texts, prompt, desc, languages)
        return sparse_top_k(_sparse(queries), _sparse(corpus), k)

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        from evalkit.search.sparse import sparse_scores

        return sparse_scores(_sparse(self.encodings.queries), _sparse(self.encodings.corpus), candidates)

    def describe(self) -> dict[str, Any]:
        return {"mode": "sparse", "tag": "+retrieval-sparse"}


@dataclass
class ColbertRetriever(_OverEncodings):
    """MaxSim rerank of the dense retriever's top ``candidates`` (the depth is its own, whatever ``k`` asks)."""

    first_stage: DenseRetriever | None = None
    candidates: int = 100

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        assert self.first_stage is not None
        self.first_stage.index(corpus_texts, prompt=prompt, languages=languages)
        super().index(corpus_texts, prompt=prompt, languages=languages)

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        assert self.first_stage is not None
        dense_run = self.first_stage.search(query_texts, self.candidates, prompt=prompt, languages=languages, desc=desc)
        queries, corpus = self._queries(query_texts, prompt, desc, languages)
        return maxsim_rerank(_colbert(queries), _colbert(corpus), dense_run, self.candidates)

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        return maxsim_scores(_colbert(self.encodings.queries), _colbert(self.encodings.corpus), candidates)

    def describe(self) -> dict[str, Any]:
        from evalkit.search.fusion import CANDIDATES

        tag = "+retrieval-colbert" + (f"-k{self.candidates}" if self.candidates != CANDIDATES else "")
        return {"mode": "colbert", "candidates": self.candidates, "tag": tag}


__all__ = ["ColbertRetriever", "DenseRetriever", "SparseRetriever"]
