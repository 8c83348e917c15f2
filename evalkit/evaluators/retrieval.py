"""Retrieval evaluation: encode corpus and queries, exact top-k search, trec_eval-exact metrics per query."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.encoders.protocol import Encoder
from evalkit.evaluators.outcome import PerItemScores, SplitOutcome
from evalkit.metrics.retrieval import K_VALUES, evaluate_ranked, trec_order
from evalkit.records import Corpus, RetrievalSplit
from evalkit.search.dense import SearchBackend, TopK, exact_top_k

TOP_K = 1000


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
        doc_ids = ids[top.indices[row]]
        scores = top.scores[row]
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
    corpus_vectors: np.ndarray | None = None,
    prompts: TaskPrompts = NO_PROMPTS,
    search_backend: SearchBackend = "numpy",
) -> tuple[SplitOutcome, np.ndarray]:
    """Scores of one split; also returns the corpus vectors so other splits over the same corpus reuse them."""
    started = time.perf_counter()
    if corpus_vectors is None:
        corpus_vectors = core.encode(
            encoder, document_texts(split.corpus), "document", prompt=prompts.document, desc="corpus"
        )
    corpus_done = time.perf_counter()
    query_vectors = core.encode(
        encoder, split.queries.texts, "query", prompt=prompts.query, desc=f"{split_name} queries"
    )
    queries_done = time.perf_counter()
    top = exact_top_k(query_vectors, corpus_vectors, max(TOP_K, *k_values), search_backend=search_backend)
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
    )
    return outcome, corpus_vectors
