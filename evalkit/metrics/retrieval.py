"""Retrieval metrics that equal trec_eval (via pytrec_eval) and MTEB's own MRR, per query, to ~1e-12.

MTEB scores retrieval with pytrec_eval's ``ndcg_cut``, ``map_cut``, ``recall``, ``P`` and ``success`` plus a
pure-Python MRR. We reproduce those numbers without either: the runs are turned into one padded matrix of
grades (rank order, best first) and every metric at every cutoff is read off cumulative sums of it. The
ordering, summation order and division order follow trec_eval's C code so the floats agree, not just the
maths.

trec_eval details that matter for exactness (each checked against pytrec_eval 0.5.11):

* Scores are stored as C ``float``: two scores that differ only beyond float32 precision are a tie, and ties
  are broken by doc id, descending (``strcmp``).
* A doc is relevant when its grade is >= 1. nDCG gains are the grades; a negative grade gains nothing, and
  the ideal DCG is built from the positive grades only.
* A query is scored when it is in the run and has at least one judgement. A query with an empty qrels dict
  is dropped even if the run has it; a run query with no retrieved docs scores 0 everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

K_VALUES: tuple[int, ...] = (1, 3, 5, 10, 20, 100, 1000)
"""The cutoffs MTEB reports for every retrieval task."""

METRIC_PREFIXES: tuple[str, ...] = ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
"""Metric families, named as MTEB names them (``{prefix}_at_{k}``)."""

_UNROUNDED_IN_MTEB = ("mrr",)
"""MTEB 2.26 rounds every retrieval mean to 5 decimals except MRR, which it averages in plain Python."""

_BLOCK_ROWS = 1024
"""Queries scored together: bounds the working matrices to ~8 MB each at 1,000 docs per query."""

Qrels = Mapping[str, Mapping[str, int]]


@dataclass(frozen=True)
class PerQueryScores:
    """Per-query metric values, kept so that callers can bootstrap, pair and compare models per query."""

    query_ids: list[str]
    values: dict[str, np.ndarray]

    def mean(self, decimals: int | None = 5) -> dict[str, float]:
        """The task-level numbers exactly as MTEB reports them.

        The sum is a left-to-right Python ``sum`` over the queries in run order, as MTEB's, because a
        pairwise (numpy) sum can differ in the last bit and so flip a 5th-decimal rounding. MRR is left
        unrounded whatever ``decimals`` is, because MTEB leaves it unrounded; ``None`` rounds nothing.
        """
        if not self.query_ids:
            raise ValueError("no query was scored: the run and the qrels share no judged query")
        means = {}
        for name, per_query in self.values.items():
            mean = sum(per_query.tolist()) / len(self.query_ids)
            if decimals is not None and name.rsplit("_at_", 1)[0] not in _UNROUNDED_IN_MTEB:
                mean = round(mean, decimals)
            means[name] = mean
        return means


def trec_order(doc_ids: Sequence[str], scores: np.ndarray) -> np.ndarray:
    """Indices that sort one query's docs as trec_eval does: score descending, ties by doc id descending.

    Scores are compared as float32 because trec_eval stores them in a C ``float``; comparing float64 would
    split ties that trec_eval keeps, and the doc-id tie-break would then pick a different doc. Doc ids
    compare as Python strings, whose code-point order is the byte order of their UTF-8 (``strcmp``).
    """
    if len(doc_ids) != len(scores):
        raise ValueError(f"{len(doc_ids)} doc ids but {len(scores)} scores")
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, as in C
        sims = np.asarray(scores).astype(np.float32)
    if np.isnan(sims).any():
        raise ValueError("a retrieval score is NaN; trec_eval's order is undefined for NaN")
    order = np.argsort(-sims)  # need not be stable: with ties we sort again below
    ranked = sims[order]
    if not (ranked[1:] == ranked[:-1]).any():
        return order  # no ties, the common case with real model scores: the order is unique
    ids = np.array(list(doc_ids), dtype=str)
    return np.lexsort((ids, sims))[::-1]


def evaluate_ranked(
    query_ids: Sequence[str],
    ranked_doc_ids: Sequence[Sequence[str]],
    qrels: Qrels,
    k_values: Sequence[int] = K_VALUES,
) -> PerQueryScores:
    """Score runs whose order is already fixed (``ranked_doc_ids[i]`` is query i's docs, best first).

    This is the entry point for search code that produces top-k lists itself and need not build score
    dicts. Doc ids within a query must be unique (trec_eval refuses duplicates). Only the first
    ``max(k_values)`` docs of each list matter.
    """
    ks = _checked_k_values(k_values)
    if len(query_ids) != len(ranked_doc_ids):
        raise ValueError(f"{len(query_ids)} query ids but {len(ranked_doc_ids)} ranked lists")
    _check_unique(query_ids)
    depth = max(ks)
    scored, grade_rows, judgements = [], [], []
    for qid, docs in zip(query_ids, ranked_doc_ids, strict=True):
        judged = qrels.get(qid)
        if not judged:
            continue
        top = docs[:depth]
        scored.append(qid)
        grade_rows.append(np.fromiter(map(judged.get, top, repeat(0)), dtype=np.float64, count=len(top)))
        judgements.append(judged)
    return _score(scored, grade_rows, judgements, ks)


def evaluate_run(
    run: Mapping[str, Mapping[str, float]],
    qrels: Qrels,
    k_values: Sequence[int] = K_VALUES,
) -> PerQueryScores:
    """Score a run given as ``{query_id: {doc_id: score}}``, the shape pytrec_eval and MTEB take.

    Queries come out in run order, as pytrec_eval returns them, so that ``mean`` sums in MTEB's order.
    """
    ks = _checked_k_values(k_values)
    depth = max(ks)
    scored, grade_rows, judgements = [], [], []
    for qid, doc_scores in run.items():
        judged = qrels.get(qid)
        if not judged:
            continue
        scored.append(qid)
        grade_rows.append(_ranked_grades(doc_scores, judged, depth))
        judgements.append(judged)
    return _score(scored, grade_rows, judgements, ks)


def _ranked_grades(doc_scores: Mapping[str, float], judged: Mapping[str, int], depth: int) -> np.ndarray:
    """Grades of one query's docs in trec order, cut at ``depth``; unjudged docs grade 0."""
    ids = list(doc_scores)
    scores = np.fromiter(doc_scores.values(), dtype=np.float64, count=len(ids))
    top = trec_order(ids, scores)[:depth]
    if len(ids) > 2 * depth:  # looking up only the kept docs pays off once many are cut
        ids = [ids[i] for i in top.tolist()]
        top = slice(None)
    grades = np.fromiter(map(judged.get, ids, repeat(0)), dtype=np.float64, count=len(ids))
    return grades[top]


def _checked_k_values(k_values: Sequence[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in k_values)
    if not ks or min(ks) < 1 or len(set(ks)) != len(ks):
        raise ValueError(f"k_values must be distinct positive integers, got {list(k_values)}")
    return ks


def _check_unique(query_ids: Sequence[str]) -> None:
    if len(set(query_ids)) != len(query_ids):
        raise ValueError("query ids must be unique: a run holds one ranking per query")


def _score(
    query_ids: list[str],
    grade_rows: list[np.ndarray],
    judgements: list[Mapping[str, int]],
    ks: tuple[int, ...],
) -> PerQueryScores:
    """Score queries in blocks so the padded matrices stay small whatever the number of queries."""
    depth = max(ks)
    ideal_rows, num_rel = _ideal_rows(judgements, depth)
    blocks = []
    for start in range(0, len(query_ids), _BLOCK_ROWS):
        stop = start + _BLOCK_ROWS
        gains = np.maximum(_pad(grade_rows[start:stop]), 0.0)  # a negative grade gains nothing
        blocks.append(_block_metrics(gains, _pad(ideal_rows[start:stop]), num_rel[start:stop], ks))
    names = [f"{prefix}_at_{k}" for prefix in METRIC_PREFIXES for k in ks]
    if blocks:
        values = {name: np.concatenate([block[name] for block in blocks]) for name in names}
    else:
        values = {name: np.zeros(0) for name in names}
    return PerQueryScores(query_ids=query_ids, values=values)


def _ideal_rows(judgements: list[Mapping[str, int]], depth: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Per query: the positive grades, best first and cut at ``depth`` (the ideal ranking's gains), and the
    number of relevant docs (grade >= 1), which recall and MAP divide by however many were retrieved."""
    ideal_rows = []
    num_rel = np.empty(len(judgements), dtype=np.float64)
    for i, judged in enumerate(judgements):
        grades = np.fromiter(judged.values(), dtype=np.float64, count=len(judged))
        num_rel[i] = np.count_nonzero(grades >= 1)
        positive = grades[grades > 0]
        ideal_rows.append(-np.sort(-positive)[:depth])
    return ideal_rows, num_rel


def _pad(rows: Sequence[np.ndarray]) -> np.ndarray:
    """Stack ragged rows into a zero-padded matrix, at least one column wide so every cutoff has a column.

    Zero padding is exact: trec_eval treats the docs missing below a short list as non-relevant, and
    adding 0.0 to a running sum leaves it bit-for-bit unchanged.
    """
    lengths = np.fromiter((len(row) for row in rows), dtype=np.intp, count=len(rows))
    width = max(1, int(lengths.max(initial=0)))
    matrix = np.zeros((len(rows), width), dtype=np.float64)
    if lengths.any():
        matrix[np.arange(width) < lengths[:, None]] = np.concatenate(rows)
    return matrix


def _block_metrics(
    gains: np.ndarray, ideal: np.ndarray, num_rel: np.ndarray, ks: Iterable[int]
) -> dict[str, np.ndarray]:
    """Every metric at every cutoff for one block of queries.

    Sums run left to right along the ranking (``cumsum``), in the order trec_eval adds, and each term is
    formed as trec_eval forms it (gain / log2(rank + 1), hits / rank), so results agree to the last bits.
    """
    width = gains.shape[1]
    ranks = np.arange(1, width + 1, dtype=np.float64)
    relevant = gains >= 1
    hits = np.cumsum(relevant, axis=1)
    dcg = np.cumsum(gains / np.log2(ranks + 1), axis=1)
    idcg = np.cumsum(ideal / np.log2(np.arange(2, ideal.shape[1] + 2, dtype=np.float64)), axis=1)
    precision_sums = np.cumsum(np.where(relevant, hits / ranks, 0.0), axis=1)
    # inf, not the width, for "no hit": a cutoff past the end of every list must still see no hit.
    first_hit = np.where(relevant.any(axis=1), relevant.argmax(axis=1), np.inf)
    has_rel = num_rel > 0
    safe_rel = np.where(has_rel, num_rel, 1.0)

    out: dict[str, np.ndarray] = {}
    for k in ks:
        col = min(k, width) - 1
        hits_k = hits[:, col]
        idcg_k = idcg[:, min(k, ideal.shape[1]) - 1]
        out[f"ndcg_at_{k}"] = np.where(idcg_k > 0, dcg[:, col] / np.where(idcg_k > 0, idcg_k, 1.0), 0.0)
        out[f"map_at_{k}"] = np.where(has_rel, precision_sums[:, col] / safe_rel, 0.0)
        out[f"recall_at_{k}"] = np.where(has_rel, hits_k / safe_rel, 0.0)
        out[f"precision_at_{k}"] = hits_k / k
        out[f"mrr_at_{k}"] = np.where(first_hit < k, 1.0 / (first_hit + 1.0), 0.0)
        out[f"hit_rate_at_{k}"] = (hits_k > 0).astype(np.float64)
    return out
