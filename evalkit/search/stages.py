"""The retrievers that are not one model's vectors searched here: BM25 (ranks texts itself), a cross-encoder
stage over a first stage's top k, and the Ray backend (corpus encoded and searched in shards elsewhere).

Each wraps the code that computes it, unchanged, behind :class:`evalkit.search.retriever.Retriever`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.core.outputs import SparseRows
from evalkit.encoders.protocol import Role
from evalkit.errors import EvalkitError
from evalkit.search.dense import TopK
from evalkit.search.rerank import RerankStage, rerank_top_k
from evalkit.search.retriever import Encoded, Retriever, texts_digest

if TYPE_CHECKING:
    from evalkit.distributed.ray_backend import ShardedCorpus


class LexicalModel(Protocol):
    """A model that ranks texts itself (``capabilities.level == "lexical"``, :class:`evalkit.retrievers.bm25`)."""

    name: str

    def top_k(
        self, corpus_texts: list[str], query_texts: list[str], k: int, *, languages: Sequence[str] = ()
    ) -> TopK: ...

    def sparse_rows(
        self, corpus_texts: list[str], query_texts: list[str], *, languages: Sequence[str] = ()
    ) -> tuple[SparseRows, SparseRows]: ...

    def fingerprint(self) -> dict[str, object]: ...


@dataclass
class LexicalSearch:
    """BM25 (or another lexical model) over the indexed texts; the subset's languages pick its preprocessing."""

    model: LexicalModel
    corpus_texts: list[str] = field(default_factory=list)
    languages: tuple[str, ...] = ()
    _queries: list[str] = field(default_factory=list)

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        self.corpus_texts, self.languages = list(corpus_texts), tuple(languages)  # BM25 indexes as it searches

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        self._queries = list(query_texts)
        return self.model.top_k(self.corpus_texts, self._queries, k, languages=self.languages)

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        from evalkit.search.sparse import sparse_scores  # scipy: imported when sparse rows are scored

        queries, documents = self.model.sparse_rows(self.corpus_texts, self._queries, languages=self.languages)
        return sparse_scores(queries, documents, candidates)

    def describe(self) -> dict[str, Any]:
        return {"mode": "lexical", "model": self.model.fingerprint(), "tag": ""}


@dataclass
class LexicalRows:
    """BM25's term weights as a hybrid's sparse vectors (:class:`~evalkit.search.retriever.Encodings`): queries
    and documents come from one call, over the corpus's vocabulary, once the queries are known."""

    model: LexicalModel
    corpus: Encoded | None = None
    queries: Encoded | None = None
    corpus_key: str | None = None
    query_key: str | None = None
    _texts: list[str] = field(default_factory=list)

    def index(self, texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        key = texts_digest(texts, tuple(languages))
        if key != self.corpus_key:
            self._texts, self.corpus_key, self.corpus, self.query_key = list(texts), key, None, None

    def encode_queries(
        self, texts: Sequence[str], *, prompt: str = "", desc: str = "", languages: Sequence[str] = ()
    ) -> None:
        key = texts_digest(texts, self.corpus_key)
        if key != self.query_key:
            queries, documents = self.model.sparse_rows(self._texts, list(texts), languages=languages)
            self.queries, self.corpus, self.query_key = {"sparse": queries}, {"sparse": documents}, key


@dataclass
class RerankedRetriever:
    """A first stage, then a cross-encoder rescoring each query's top ``stage.top_k`` (only those are kept)."""

    first_stage: Retriever
    stage: RerankStage
    core: EmbeddingCore
    corpus_texts: list[str] = field(default_factory=list)
    _queries: list[str] = field(default_factory=list)
    first_stage_top: TopK | None = field(default=None, repr=False)  # the last search's first-stage list (--save-run)

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        self.first_stage.index(corpus_texts, prompt=prompt, languages=languages)
        self.corpus_texts = list(corpus_texts)

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        top = self.first_stage.search(query_texts, k, prompt=prompt, languages=languages, desc=desc)
        self.first_stage_top = top
        self._queries = list(query_texts)
        return rerank_top_k(self.core, self.stage.model, self._queries, self.corpus_texts, top, self.stage.top_k)

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The cross-encoder's own score of each (query, candidate) pair."""
        queries = [self._queries[row] for row, docs in enumerate(candidates) for _ in docs]
        documents = [self.corpus_texts[int(d)] for docs in candidates for d in docs]
        flat = self.core.score_pairs(self.stage.model, queries, documents, desc="rerank")
        bounds = np.cumsum([0, *(len(docs) for docs in candidates)])
        return [flat[a:b] for a, b in itertools.pairwise(bounds)]

    def describe(self) -> dict[str, Any]:
        first = self.first_stage.describe()
        return {**first, "rerank": self.stage.record(), "tag": first["tag"] + self.stage.tag()}


class DistributedSearch(Protocol):
    """A backend that encodes a corpus and searches it elsewhere (:class:`evalkit.distributed.RayBackend`)."""

    def encode_corpus(
        self, core: EmbeddingCore, encoder: Any, texts: list[str], role: Role, *, prompt: str = ""
    ) -> ShardedCorpus: ...

    def top_k(self, queries: np.ndarray, corpus: ShardedCorpus, k: int) -> TopK: ...

    def record(self) -> dict[str, object]:
        """What the run record keeps of the backend."""
        ...


@dataclass
class ShardedRetriever:
    """``--backend ray``: the corpus encoded into shards on the cluster's workers and searched there; the queries
    are encoded here, as the local backend encodes them. Dense cosine only."""

    backend: DistributedSearch
    encoder: Any
    core: EmbeddingCore
    corpus: ShardedCorpus | None = None
    corpus_key: str | None = None

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        key = texts_digest(corpus_texts, "document", prompt)
        if key != self.corpus_key:
            self.corpus = self.corpus_key = None
            self.corpus = self.backend.encode_corpus(
                self.core, self.encoder, list(corpus_texts), "document", prompt=prompt
            )
            self.corpus_key = key

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        assert self.corpus is not None, "index a corpus first"
        queries = self.core.encode(self.encoder, list(query_texts), "query", prompt=prompt, desc=desc)
        return self.backend.top_k(queries, self.corpus, k)

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        raise EvalkitError("--backend ray gives ranked lists only; a fusion needs exact scores (use --backend local)")

    def describe(self) -> dict[str, Any]:
        return {"mode": "dense", "backend": self.backend.record(), "tag": ""}


__all__ = ["DistributedSearch", "LexicalModel", "LexicalRows", "LexicalSearch", "RerankedRetriever", "ShardedRetriever"]
