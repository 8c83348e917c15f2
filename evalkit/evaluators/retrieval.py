"""Retrieval evaluation: encode corpus and queries, exact top-k search, trec_eval-exact metrics per query.

The first stage is a run setting (:class:`evalkit.search.fusion.RetrievalSettings`): dense cosine search (the
default, MTEB's), sparse search over an inverted index, a ColBERT (MaxSim) rerank of the dense candidates, or a
hybrid fusing those. Whatever the stage, it hands the metrics one :class:`TopK`, so they score every kind alike.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.core.outputs import EncodedOutputs, MultiVectorRows, SparseRows
from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.encoders.protocol import Encoder, OutputKind, Role
from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome, qrels_warnings, require_main_score
from evalkit.metrics.retrieval import K_VALUES, METRIC_PREFIXES, evaluate_ranked, trec_order
from evalkit.records import Corpus, RetrievalSplit
from evalkit.retrievers import LexicalRetriever
from evalkit.search.candidates import candidate_scores
from evalkit.search.dense import SearchBackend, TopK, exact_top_k
from evalkit.search.fusion import (
    DENSE_RETRIEVAL,
    RetrievalSettings,
    candidate_union,
    padded_top_k,
    reciprocal_rank_fusion,
    weighted_sum,
)
from evalkit.search.multivector import maxsim_rerank, maxsim_scores
from evalkit.search.rerank import RerankStage, rerank_top_k
from evalkit.search.sparse import sparse_scores, sparse_top_k

if TYPE_CHECKING:
    from evalkit.distributed.ray_backend import ShardedCorpus

TOP_K = 1000


class DistributedSearch(Protocol):
    """A backend that encodes a corpus and searches it elsewhere (:class:`evalkit.distributed.RayBackend`)."""

    def encode_corpus(
        self, core: EmbeddingCore, encoder: Encoder, texts: list[str], role: Role, *, prompt: str = ""
    ) -> ShardedCorpus: ...

    def top_k(self, queries: np.ndarray, corpus: ShardedCorpus, k: int) -> TopK: ...

    def record(self) -> dict[str, object]:
        """What the run record keeps of the backend."""
        ...


SparseModel = Encoder | LexicalRetriever
"""A second model giving a hybrid's sparse retriever: a sparse encoder (SPLADE) or BM25 (``sparse_rows``)."""

Encoded = np.ndarray | EncodedOutputs
"""A split's encoded texts: dense vectors for dense retrieval, else each output the retrieval needs."""


def document_texts(corpus: Corpus) -> list[str]:
    """A document is its title and text joined by a space, as mteb and BEIR encode it."""
    pairs = zip(corpus.titles, corpus.texts, strict=True)
    return [f"{title} {text}".strip() if title else text for title, text in pairs]


def ranked_doc_ids(
    top: TopK, corpus_ids: list[str], query_ids: list[str], *, remove_self_hits: bool
) -> list[list[str]]:
    """Each query's retrieved ids in trec_eval order (score, then doc id, descending).

    Self-hits are dropped after the top-k search, as mteb does, so such a query keeps k-1 candidates.
    """
    ids = np.asarray(corpus_ids, dtype=object)
    ranked = []
    for row, query_id in enumerate(query_ids):
        indices, scores = top.indices[row], top.scores[row]
        if len(indices) and indices[-1] < 0:  # a query with fewer results than k: its empty slots come last
            filled = indices >= 0
            indices, scores = indices[filled], scores[filled]
        doc_ids = ids[indices]
        if remove_self_hits:
            keep = doc_ids != query_id
            doc_ids, scores = doc_ids[keep], scores[keep]
        ranked.append(doc_ids[trec_order(list(doc_ids), scores)].tolist())
    return ranked


def evaluate_retrieval(
    split: RetrievalSplit,
    encoder: Encoder,
    core: EmbeddingCore,
    *,
    split_name: str,
    hf_subset: str,
    languages: tuple[str, ...],
    main_score: str,
    remove_self_hits: bool,
    k_values: Sequence[int] = K_VALUES,
    corpus_vectors: Encoded | ShardedCorpus | None = None,
    prompts: TaskPrompts = NO_PROMPTS,
    search_backend: SearchBackend = "numpy",
    retrieval: RetrievalSettings = DENSE_RETRIEVAL,
    rerank: RerankStage | None = None,
    sparse_model: SparseModel | None = None,
    distributed: DistributedSearch | None = None,
) -> tuple[SplitOutcome, Encoded | ShardedCorpus | None]:
    """Scores of one split; also returns the corpus encoding so other splits over the same corpus reuse it.

    With the default dense retrieval the encodings are plain vectors and the search is :func:`exact_top_k`;
    otherwise they hold each encoder output ``retrieval`` needs, and :func:`retrieve` runs its first stage. A
    lexical model (BM25) ranks the texts itself. ``rerank`` rescores each query's first-stage top k.
    ``sparse_model`` (a hybrid of two models) gives the sparse retriever in place of the model's own.
    ``distributed`` (``--backend ray``) encodes the corpus into shards on its workers and searches them there; the
    queries are encoded here, as the local backend encodes them.
    """
    computed = {f"{prefix}_at_{k}" for prefix in METRIC_PREFIXES for k in k_values} | {"accuracy"}
    require_main_score(main_score, computed, "Retrieval")
    started = time.perf_counter()
    depth = max(TOP_K, *k_values)
    docs = document_texts(split.corpus)
    if distributed is not None:
        if isinstance(encoder, LexicalRetriever) or retrieval.mode != "dense" or sparse_model is not None:
            raise EvalkitError("--backend ray runs dense retrieval only")
        if corpus_vectors is None:
            corpus_vectors = distributed.encode_corpus(core, encoder, docs, "document", prompt=prompts.document)
        corpus_done = time.perf_counter()
        queries = core.encode(
            encoder, split.queries.texts, "query", prompt=prompts.query, desc=f"encoding {split_name} queries"
        )
        queries_done = time.perf_counter()
        top = distributed.top_k(queries, corpus_vectors, depth)  # type: ignore[arg-type]
    elif isinstance(encoder, LexicalRetriever):
        corpus_done = queries_done = time.perf_counter()
        top = encoder.top_k(docs, split.queries.texts, depth, languages=languages)
    else:
        own_outputs = None  # dense retrieval: plain vectors
        if retrieval.mode != "dense":
            own_outputs = tuple(kind for kind in retrieval.outputs if sparse_model is None or kind != "sparse")
        if corpus_vectors is None:
            corpus_vectors = _encode(core, encoder, docs, "document", prompts.document, "corpus", own_outputs)
        corpus_done = time.perf_counter()
        query_vectors = _encode(
            core, encoder, split.queries.texts, "query", prompts.query, f"{split_name} queries", own_outputs
        )
        queries = query_vectors
        corpus = corpus_vectors
        if sparse_model is not None:
            sparse_queries, sparse_corpus = sparse_rows_of(sparse_model, core, split.queries.texts, docs, languages)
            queries = {**query_vectors, "sparse": sparse_queries}  # type: ignore[dict-item]
            corpus = {**corpus_vectors, "sparse": sparse_corpus}  # type: ignore[dict-item]
        queries_done = time.perf_counter()
        top = retrieve(retrieval, queries, corpus, depth, search_backend=search_backend)
    if rerank is not None:
        top = rerank_top_k(core, rerank.model, split.queries.texts, docs, top, rerank.top_k)
    ranked = ranked_doc_ids(top, split.corpus.ids, split.queries.ids, remove_self_hits=remove_self_hits)
    searched = time.perf_counter()
    per_query = evaluate_ranked(split.queries.ids, ranked, split.qrels, k_values)
    scores = per_query.mean()
    scores["accuracy"] = scores["recall_at_1"]  # mteb reports recall@1 under this name too
    outcome = SplitOutcome(
        split=split_name,
        hf_subset=hf_subset,
        languages=languages,
        scores=scores,
        main_score=scores[main_score],
        per_item=PerItemScores(item_ids=list(per_query.query_ids), values=per_query.values),
        timings={
            "encode_corpus_s": corpus_done - started,
            "encode_queries_s": queries_done - corpus_done,
            "search_s": searched - queries_done,
            "score_s": time.perf_counter() - searched,
        },
        warnings=qrels_warnings(split.qrels),
    )
    return outcome, corpus_vectors


def _encode(
    core: EmbeddingCore,
    encoder: Encoder,
    texts: list[str],
    role: Role,
    prompt: str,
    desc: str,
    outputs: tuple[OutputKind, ...] | None,
) -> Encoded:
    if outputs is None:
        return core.encode(encoder, texts, role, prompt=prompt, desc=desc)
    return core.encode_outputs(encoder, texts, role, outputs=outputs, prompt=prompt, desc=desc)


def sparse_rows_of(
    model: SparseModel, core: EmbeddingCore, query_texts: list[str], document_texts: list[str], languages: Sequence[str]
) -> tuple[SparseRows, SparseRows]:
    """``(queries, documents)`` as a second model's sparse vectors: BM25's term weights (one vocabulary, the
    corpus's, so both sides come from one call), or a sparse encoder's through the core and its cache. The sparse
    model takes no prompt: the main model's instructions are not its own."""
    if isinstance(model, LexicalRetriever):
        return model.sparse_rows(document_texts, query_texts, languages=languages)  # type: ignore[attr-defined]
    encoded = [
        core.encode_outputs(model, texts, role, outputs=("sparse",), prompt="", desc=f"{role} sparse")["sparse"]
        for texts, role in ((query_texts, "query"), (document_texts, "document"))
    ]
    assert all(isinstance(rows, SparseRows) for rows in encoded)
    return encoded[0], encoded[1]  # type: ignore[return-value]


def retrieve(
    retrieval: RetrievalSettings,
    queries: Encoded,
    corpus: Encoded,
    k: int,
    *,
    search_backend: SearchBackend = "numpy",
) -> TopK:
    """The first stage: each query's ranked documents under ``retrieval``.

    ``dense`` and ``sparse`` return their top ``k``; ``colbert`` reranks the dense top ``retrieval.candidates``;
    ``hybrid`` fuses the retrievers' top ``retrieval.candidates`` over their union (see :mod:`evalkit.search.fusion`).
    """
    if retrieval.mode == "dense":
        assert isinstance(queries, np.ndarray) and isinstance(corpus, np.ndarray)
        return exact_top_k(queries, corpus, k, search_backend=search_backend)
    assert isinstance(queries, Mapping) and isinstance(corpus, Mapping)
    depth = k if retrieval.mode == "sparse" else retrieval.candidates
    runs: dict[str, TopK] = {}
    if "dense" in retrieval.outputs:  # dense candidates: a retriever of the hybrid, or ColBERT's first stage
        runs["dense"] = exact_top_k(queries["dense"], corpus["dense"], depth, search_backend=search_backend)
    if "sparse" in retrieval.retrievers:
        runs["sparse"] = sparse_top_k(_sparse(queries), _sparse(corpus), depth)
    if "colbert" in retrieval.retrievers:
        runs["colbert"] = maxsim_rerank(_colbert(queries), _colbert(corpus), runs["dense"], retrieval.candidates)
    if retrieval.mode != "hybrid":
        return runs[retrieval.mode]
    candidates = candidate_union([runs[name] for name in retrieval.retrievers])
    if retrieval.fusion == "rrf":
        fused = reciprocal_rank_fusion([runs[name] for name in retrieval.retrievers], candidates, k=retrieval.rrf_k)
    else:
        exact = {name: _exact_scores(name, queries, corpus, candidates) for name in retrieval.retrievers}
        fused = weighted_sum(exact, retrieval.effective_weights, normalization=retrieval.normalization)
    return padded_top_k(candidates, fused, max((len(c) for c in candidates), default=0))


def _exact_scores(
    retriever: str, queries: EncodedOutputs, corpus: EncodedOutputs, candidates: list[np.ndarray]
) -> list[np.ndarray]:
    """One retriever's own score for every candidate of every query."""
    if retriever == "dense":
        return candidate_scores(queries["dense"], corpus["dense"], candidates)  # type: ignore[arg-type]
    if retriever == "sparse":
        return sparse_scores(_sparse(queries), _sparse(corpus), candidates)
    return maxsim_scores(_colbert(queries), _colbert(corpus), candidates)


def _sparse(encoded: EncodedOutputs) -> SparseRows:
    rows = encoded["sparse"]
    assert isinstance(rows, SparseRows)
    return rows


def _colbert(encoded: EncodedOutputs) -> MultiVectorRows:
    rows = encoded["colbert"]
    assert isinstance(rows, MultiVectorRows)
    return rows
