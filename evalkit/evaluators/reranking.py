"""Reranking evaluation: order each query's given candidates by the model's similarity (cosine unless it names
dot, euclidean or manhattan, as mteb's reranking calls ``model.similarity``), score the order with trec_eval's
metrics.

mteb 2.x runs reranking tasks as retrieval restricted to ``top_ranked`` candidates, so the numbers and their
names are retrieval's (``map_at_1000``, ``mrr_at_10``, ...): the candidates are ranked in trec_eval's order
(score, then doc id, descending), cut at the deepest cutoff, and judged against qrels in which a candidate
graded 0 counts as judged non-relevant. mteb's nAUC confidence scores are not reproduced.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.encoders.prompts import NO_PROMPTS, TaskPrompts
from evalkit.encoders.protocol import Encoder
from evalkit.evaluators.outcome import PerItemScores, Ranking, SplitOutcome, qrels_warnings, require_main_score
from evalkit.evaluators.retrieval import document_texts
from evalkit.kinds.reranking import SUBQUERY_PREFIX
from evalkit.metrics.retrieval import K_VALUES, METRIC_PREFIXES, evaluate_ranked, evaluate_run, trec_order
from evalkit.records import Qrels, RerankingSplit
from evalkit.search.candidates import candidate_scores


def candidate_rows(split: RerankingSplit) -> tuple[list[int], list[np.ndarray]]:
    """The corpus rows that some query has as a candidate (first-seen order), and per query the positions of
    its candidates in that list. Only these documents need encoding."""
    row_of = {doc_id: row for row, doc_id in enumerate(split.corpus.ids)}
    position_of: dict[int, int] = {}
    per_query = []
    for doc_ids in split.candidates:
        rows = (row_of[doc_id] for doc_id in doc_ids)
        positions = [position_of.setdefault(row, len(position_of)) for row in rows]
        per_query.append(np.asarray(positions, dtype=np.int64))
    return list(position_of), per_query


def rank_candidates(
    candidates: Sequence[Sequence[str]], scores_per_query: Sequence[np.ndarray], depth: int
) -> tuple[list[list[str]], list[np.ndarray]]:
    """Each query's candidates in trec_eval order, cut at ``depth``, and their scores in that order."""
    ranked, ranked_scores = [], []
    for doc_ids, scores in zip(candidates, scores_per_query, strict=True):
        order = trec_order(doc_ids, scores)[:depth]
        ranked.append([doc_ids[i] for i in order.tolist()])
        ranked_scores.append(scores[order])
    return ranked, ranked_scores


def evaluate_reranking(
    split: RerankingSplit,
    encoder: Encoder,
    core: EmbeddingCore,
    *,
    split_name: str,
    hf_subset: str,
    languages: tuple[str, ...],
    main_score: str,
    k_values: Sequence[int] = K_VALUES,
    prompts: TaskPrompts = NO_PROMPTS,
    similarity: str = "cosine",
) -> SplitOutcome:
    """Scores of one split, with each query's metrics kept; candidates ranked by the model's ``similarity``.

    When ``main_score`` starts with ``max_over_subqueries_`` (MindSmallReranking) the merged-subquery scores
    are added as mteb adds them."""
    computed = {f"{prefix}_at_{k}" for prefix in METRIC_PREFIXES for k in k_values} | {"accuracy"}
    require_main_score(main_score, computed | {SUBQUERY_PREFIX + name for name in computed}, "Reranking")
    started = time.perf_counter()
    query_vectors = core.encode(
        encoder, split.queries.texts, "query", prompt=prompts.query, desc=f"{split_name} queries"
    )
    doc_rows, rows_per_query = candidate_rows(split)
    texts = document_texts(split.corpus)
    doc_vectors = core.encode(
        encoder, [texts[row] for row in doc_rows], "document", prompt=prompts.document, desc=f"{split_name} candidates"
    )
    encoded = time.perf_counter()
    scores_per_query = candidate_scores(query_vectors, doc_vectors, rows_per_query, similarity=similarity)
    depth = max(k_values)  # mteb keeps each query's top max(k) candidates (torch.topk) before scoring
    ranked, ranked_scores = rank_candidates(split.candidates, scores_per_query, depth)
    ranked_done = time.perf_counter()
    per_query = evaluate_ranked(split.queries.ids, ranked, split.qrels, k_values)
    scores = per_query.mean()
    scores["accuracy"] = scores["recall_at_1"]  # mteb reports recall@1 under this name too
    if main_score.startswith(SUBQUERY_PREFIX):
        run = {
            query_id: dict(zip(doc_ids, query_scores.tolist(), strict=True))
            for query_id, doc_ids, query_scores in zip(split.queries.ids, ranked, ranked_scores, strict=True)
        }
        scores.update(max_over_subqueries(run, split.qrels, k_values))
    return SplitOutcome(
        split=split_name,
        hf_subset=hf_subset,
        languages=languages,
        scores=scores,
        main_score=scores[main_score],
        per_item=PerItemScores(item_ids=list(per_query.query_ids), values=per_query.values),
        timings={
            "encode_s": encoded - started,
            "rank_s": ranked_done - encoded,
            "score_s": time.perf_counter() - ranked_done,
        },
        warnings=qrels_warnings(split.qrels),
        rankings={"run": Ranking(query_ids=list(split.queries.ids), doc_ids=ranked, scores=ranked_scores)},
    )


def max_over_subqueries(
    run: dict[str, dict[str, float]], qrels: Qrels, k_values: Sequence[int] = K_VALUES
) -> dict[str, float]:
    """mteb's ``max_over_subqueries``: queries whose ids differ only after the last ``_`` are merged into one,
    each document keeping its best score over them, and judged by the last subquery's qrels (mteb assumes they
    are all the same). Groups and their order come from the qrels, as in mteb.
    """
    groups: dict[str, list[str]] = {}
    for query_id in qrels:
        groups.setdefault("_".join(query_id.split("_")[:-1]), []).append(query_id)
    merged_run: dict[str, dict[str, float]] = {}
    merged_qrels: Qrels = {}
    for base, query_ids in groups.items():
        best: dict[str, float] = {}
        for query_id in query_ids:
            for doc_id, score in run.get(query_id, {}).items():
                best[doc_id] = max(score, best[doc_id]) if doc_id in best else score
        merged_run[base] = best
        merged_qrels[base] = qrels[query_ids[-1]]
    means = evaluate_run(merged_run, merged_qrels, k_values).mean()
    means["accuracy"] = means["recall_at_1"]
    return {SUBQUERY_PREFIX + name: value for name, value in means.items()}
