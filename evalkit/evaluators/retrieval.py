"""Retrieval evaluation: the run's retriever indexes the corpus and ranks it for the queries; trec_eval-exact
metrics per query.

How it retrieves — dense cosine (MTEB's), sparse, ColBERT, a hybrid, BM25, a cross-encoder stage, the Ray backend —
is the run's :class:`evalkit.search.retriever.Retriever`, built and checked once
(:func:`evalkit.search.build.build_retriever`). This module asks it to index and search and scores the
:class:`TopK` it returns, the same way for every kind: there is one path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.evaluators.outcome import PerItemScores, Ranking, SplitOutcome, qrels_warnings, require_main_score
from evalkit.metrics.retrieval import K_VALUES, METRIC_PREFIXES, evaluate_ranked, trec_order
from evalkit.records import Corpus, RetrievalSplit
from evalkit.search.dense import TopK
from evalkit.search.retriever import Retriever

TOP_K = 1000


class RetrievalModels(Protocol):
    """What the retrieval evaluators need of a run's models (:class:`evalkit.pipeline.models.RunModels`)."""

    @property
    def retriever(self) -> Retriever: ...


def document_texts(corpus: Corpus) -> list[str]:
    """A document is its title and text joined by a space, as mteb and BEIR encode it."""
    pairs = zip(corpus.titles, corpus.texts, strict=True)
    return [f"{title} {text}".strip() if title else text for title, text in pairs]


def ranked_lists(
    top: TopK, corpus_ids: list[str], query_ids: list[str], *, remove_self_hits: bool
) -> tuple[list[list[str]], list[np.ndarray]]:
    """Each query's retrieved ids and their scores in trec_eval order (score, then doc id, descending).

    Self-hits are dropped after the top-k search, as mteb does, so such a query keeps k-1 candidates.
    """
    ids = np.asarray(corpus_ids, dtype=object)
    ranked, ranked_scores = [], []
    for row, query_id in enumerate(query_ids):
        indices, scores = top.indices[row], top.scores[row]
        if len(indices) and indices[-1] < 0:  # a query with fewer results than k: its empty slots come last
            filled = indices >= 0
            indices, scores = indices[filled], scores[filled]
        doc_ids = ids[indices]
        if remove_self_hits:
            keep = doc_ids != query_id
            doc_ids, scores = doc_ids[keep], scores[keep]
        order = trec_order(list(doc_ids), scores)
        ranked.append(doc_ids[order].tolist())
        ranked_scores.append(np.asarray(scores)[order])
    return ranked, ranked_scores


def ranked_doc_ids(
    top: TopK, corpus_ids: list[str], query_ids: list[str], *, remove_self_hits: bool
) -> list[list[str]]:
    """Each query's retrieved ids in trec_eval order (score, then doc id, descending); see :func:`ranked_lists`."""
    return ranked_lists(top, corpus_ids, query_ids, remove_self_hits=remove_self_hits)[0]


def split_rankings(
    retriever: Retriever, top: TopK, split: RetrievalSplit, *, remove_self_hits: bool
) -> dict[str, Ranking]:
    """The ranked lists a ``--save-run`` writes: the one list scored, or, after a rerank stage (whose retriever
    keeps its first stage's ``first_stage_top``), the first-stage list and the reranked one."""
    query_ids = list(split.queries.ids)

    def ranking(found: TopK) -> Ranking:
        doc_ids, scores = ranked_lists(found, split.corpus.ids, query_ids, remove_self_hits=remove_self_hits)
        return Ranking(query_ids=query_ids, doc_ids=doc_ids, scores=scores)

    first = getattr(retriever, "first_stage_top", None)
    if isinstance(first, TopK):
        return {"first_stage": ranking(first), "reranked": ranking(top)}
    return {"run": ranking(top)}


def evaluate_retrieval(
    split: RetrievalSplit,
    models: RetrievalModels,
    *,
    remove_self_hits: bool,
    search_backend: str = "numpy",
    split_name: str,
    hf_subset: str,
    languages: tuple[str, ...],
    main_score: str,
    prompts: TaskPrompts = NO_PROMPTS,
    k_values: Sequence[int] = K_VALUES,
) -> SplitOutcome:
    """Scores of one split, ranked by ``models.retriever``.

    The corpus is indexed through the retriever, which keeps it by content: the next split or task over the same
    documents (and document prompt) reuses it. ``search_backend`` is the run's, already in the retriever; it is
    taken here for the evaluators' common signature.
    """
    computed = {f"{prefix}_at_{k}" for prefix in METRIC_PREFIXES for k in k_values} | {"accuracy"}
    require_main_score(main_score, computed, "Retrieval")
    retriever = models.retriever
    started = time.perf_counter()
    retriever.index(document_texts(split.corpus), prompt=prompts.document, languages=languages)
    indexed = time.perf_counter()
    top = retriever.search(
        split.queries.texts,
        max(TOP_K, *k_values),
        prompt=prompts.query,
        languages=languages,
        desc=f"encoding {split_name} queries",
    )
    rankings = split_rankings(retriever, top, split, remove_self_hits=remove_self_hits)
    ranked = rankings["reranked" if "reranked" in rankings else "run"].doc_ids
    searched = time.perf_counter()
    per_query = evaluate_ranked(split.queries.ids, ranked, split.qrels, k_values)
    scores = per_query.mean()
    scores["accuracy"] = scores["recall_at_1"]  # mteb reports recall@1 under this name too
    return SplitOutcome(
        split=split_name,
        hf_subset=hf_subset,
        languages=languages,
        scores=scores,
        main_score=scores[main_score],
        per_item=PerItemScores(item_ids=list(per_query.query_ids), values=per_query.values),
        timings={
            "encode_corpus_s": indexed - started,  # nothing when the corpus was indexed already
            "search_s": searched - indexed,  # the queries encoded, searched, reranked
            "score_s": time.perf_counter() - searched,
        },
        warnings=qrels_warnings(split.qrels),
        rankings=rankings,
    )


__all__ = [
    "TOP_K",
    "RetrievalModels",
    "document_texts",
    "evaluate_retrieval",
    "ranked_doc_ids",
    "ranked_lists",
    "split_rankings",
]
