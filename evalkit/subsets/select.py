"""The selection rules, as pure functions over a loaded split: which queries, documents or rows a subset keeps.

* ``hard-negatives`` (retrieval; mteb's HardNegatives tasks): the queries with a judged positive, sampled to
  ``max_queries`` with ``seed`` when there are more; the documents kept are every judged positive (grade > 0) of a
  kept query plus, for each pool run, the top ``depth`` documents it ranked for that query.
* ``stratified`` (STS and pair classification): rows sampled to ``max_items`` with ``seed``, each stratum keeping
  its share (largest remainders): pair classification by label, STS by the decile of the gold score.
* ``query-sample`` (reranking): queries sampled to ``max_queries`` with ``seed``, each with all its candidates.

Sampling is ``numpy.random.default_rng(seed).choice`` without replacement; what is kept stays in file order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from evalkit.records import Qrels

STS_STRATA = "gold-score deciles (numpy.quantile edges over the split's scores; ties share a decile)"
LABEL_STRATA = "label"


def sample_positions(count: int, cap: int, rng: np.random.Generator) -> list[int]:
    """``cap`` of ``range(count)`` drawn without replacement, in increasing order; all of them when ``count <= cap``."""
    if count <= cap:
        return list(range(count))
    return sorted(int(i) for i in rng.choice(count, size=cap, replace=False))


def judged_queries(query_ids: Sequence[str], qrels: Qrels) -> list[str]:
    """The queries (file order) with at least one judged positive: the ones a retrieval score is made of."""
    return [q for q in query_ids if any(grade > 0 for grade in qrels.get(q, {}).values())]


def hard_negative_docs(
    kept_queries: Sequence[str],
    qrels: Qrels,
    pool_rankings: Sequence[Mapping[str, Sequence[str]]],
    corpus_ids: Sequence[str],
    depth: int,
) -> list[str]:
    """The kept documents in corpus order: judged positives of the kept queries ∪ each pool run's top ``depth``."""
    kept: set[str] = set()
    for query_id in kept_queries:
        kept.update(doc for doc, grade in qrels.get(query_id, {}).items() if grade > 0)
        for ranking in pool_rankings:
            kept.update(ranking.get(query_id, ())[:depth])
    return [doc for doc in corpus_ids if doc in kept]


def score_deciles(scores: np.ndarray) -> np.ndarray:
    """Each row's stratum (0-9): the decile of its gold score."""
    if len(scores) == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.quantile(scores, np.linspace(0.0, 1.0, 11))[1:-1]
    return np.searchsorted(edges, scores, side="right").astype(np.int64)


def stratum_quotas(sizes: Mapping[int, int], cap: int) -> dict[int, int]:
    """How many rows each stratum keeps: its share of ``cap`` by largest remainders (ties by stratum)."""
    total = sum(sizes.values())
    if total <= cap:
        return dict(sizes)
    exact = {s: cap * n / total for s, n in sizes.items()}
    quotas = {s: int(np.floor(v)) for s, v in exact.items()}
    left = cap - sum(quotas.values())
    for stratum in sorted(exact, key=lambda s: (-(exact[s] - quotas[s]), s))[:left]:
        quotas[stratum] += 1
    return quotas


def stratified_rows(strata: np.ndarray, cap: int, rng: np.random.Generator) -> list[int]:
    """Row indices (file order) sampled to ``cap``, each stratum keeping its share; all rows when under the cap."""
    labels = sorted(int(s) for s in np.unique(strata))
    members = {s: np.flatnonzero(strata == s) for s in labels}
    quotas = stratum_quotas({s: len(members[s]) for s in labels}, cap)
    kept: list[int] = []
    for stratum in labels:
        picked = sample_positions(len(members[stratum]), quotas[stratum], rng)
        kept.extend(int(members[stratum][i]) for i in picked)
    return sorted(kept)


__all__ = [
    "LABEL_STRATA",
    "STS_STRATA",
    "hard_negative_docs",
    "judged_queries",
    "sample_positions",
    "score_deciles",
    "stratified_rows",
    "stratum_quotas",
]
