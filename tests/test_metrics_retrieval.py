"""The retrieval kernel against its references: pytrec_eval per query and metric, MTEB for MRR and the means.

Runs are made up (there is no corpus in qrels_only) but built to hit the cases where implementations drift:
tied scores broken by doc id, ids whose string order is not their numeric order, grade-0 and unjudged docs,
lists shorter than k and longer than max(k), queries with nothing retrieved. The qrels are the real ones.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval

from evalkit.metrics import retrieval
from evalkit.metrics.retrieval import (
    K_VALUES,
    PerQueryScores,
    evaluate_ranked,
    evaluate_run,
    trec_order,
)

Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]

TREC_MEASURES = {
    "ndcg": "ndcg_cut",
    "map": "map_cut",
    "recall": "recall",
    "precision": "P",
    "hit_rate": "success",
}
"""Our (MTEB's) metric prefix -> the trec_eval measure MTEB computes it with."""

QRELS_FILES = {
    "trec-covid": "beir/trec-covid/qrels/test.tsv",  # graded 0/1/2, ~1,300 judgements per query
    "nfcorpus": "beir/nfcorpus/qrels/test.tsv",  # graded 1/2, ids like PLAIN-2 / MED-10
    "scidocs": "beir/scidocs/qrels/test.tsv",  # hex ids, 5 of 6 judgements are grade 0
    "fiqa": "beir/fiqa/qrels/test.tsv",  # numeric ids: string order is not numeric order
    "arguana": "beir/arguana/qrels/test.tsv",  # exactly one relevant doc per query
    "miracl-sw": "miracl/sw/qrels/dev.tsv",  # '#' in doc ids, many grade-0 rows
    "miracl-yo": "miracl/yo/qrels/dev.tsv",  # '#' in query ids too
}
MAX_QUERIES = 250
"""Queries sampled per qrels file: enough shapes, and the whole module stays well under 30 s."""


# --------------------------------------------------------------------------------------------- helpers


def read_qrels(path: Path) -> Qrels:
    """BEIR/MIRACL qrels TSV with a ``query-id corpus-id score`` header."""
    qrels: Qrels = {}
    with path.open(newline="", encoding="utf-8") as handle:
        rows = csv.reader(handle, delimiter="\t")
        assert next(rows) == ["query-id", "corpus-id", "score"], path
        for qid, doc_id, grade in rows:
            qrels.setdefault(qid, {})[doc_id] = int(grade)
    return qrels


def made_up_run(qrels: Qrels, seed: int, max_queries: int = MAX_QUERIES) -> tuple[Run, Qrels]:
    """A run over a sample of the judged queries (plus a few unjudged ones), and the sampled qrels.

    Scores are rounded to 1 or 2 decimals, so most docs share their score with others and the doc-id
    tie-break decides the ranking.
    """
    rng = np.random.default_rng(seed)
    qids = sorted(qrels)
    sample = [qids[i] for i in sorted(rng.choice(len(qids), size=min(max_queries, len(qids)), replace=False))]
    judged_pool = sorted({doc for qid in sample for doc in qrels[qid]})
    run: Run = {}
    for qid in sample:
        run[qid] = made_up_ranking(rng, list(qrels[qid]), judged_pool)
    for extra in range(3):  # in the run, not in the qrels: neither reference scores them
        run[f"not-judged-{extra}"] = made_up_ranking(rng, [], judged_pool)
    rng.shuffle(order := list(run))  # run order is the output order; make it differ from sorted order
    return {qid: run[qid] for qid in order}, {qid: qrels[qid] for qid in sample}


def made_up_ranking(rng: np.random.Generator, own: list[str], judged_pool: list[str]) -> dict[str, float]:
    """Some of the query's own judged docs, docs judged for other queries, and never-judged ids."""
    size = int(rng.choice([0, 1, 3, 8, 40, 150, 1100], p=[0.05, 0.1, 0.15, 0.2, 0.25, 0.2, 0.05]))
    own_take = rng.permutation(own)[: rng.integers(0, min(len(own), size) + 1)].tolist()
    others = rng.choice(judged_pool, size=min(size // 3, len(judged_pool)), replace=False).tolist()
    numeric = [str(n) for n in rng.integers(1, 20_000, size=size)]  # "100" < "99" as strings
    docs = list(dict.fromkeys(own_take + others + numeric))[:size]
    decimals = int(rng.integers(1, 3))
    scores = np.round(rng.random(len(docs)), decimals)
    return dict(zip(docs, scores.tolist(), strict=True))


def trec_eval_scores(run: Mapping[str, Mapping[str, float]], qrels: Qrels, ks: Sequence[int]) -> dict:
    cutoffs = ",".join(str(k) for k in ks)
    measures = {f"{measure}.{cutoffs}" for measure in TREC_MEASURES.values()}
    return pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)


def mteb_mrr(run: Run, qrels: Qrels, query_ids: list[str], ks: Sequence[int]) -> dict[str, list[float]]:
    from mteb._evaluators.retrieval_metrics import mrr

    return mrr(qrels, {qid: run[qid] for qid in query_ids}, ks)


def assert_matches_trec_eval(ours: PerQueryScores, run: Run, qrels: Qrels, ks: Sequence[int]) -> None:
    reference = trec_eval_scores(run, qrels, ks)
    assert ours.query_ids == list(reference)  # the same queries, in the same (run) order
    for prefix, measure in TREC_MEASURES.items():
        for k in ks:
            expected = [reference[qid][f"{measure}_{k}"] for qid in ours.query_ids]
            np.testing.assert_allclose(
                ours.values[f"{prefix}_at_{k}"], expected, rtol=0, atol=1e-9, err_msg=f"{prefix}@{k}"
            )


def assert_matches_mteb_mrr(ours: PerQueryScores, run: Run, qrels: Qrels, ks: Sequence[int]) -> None:
    reference = mteb_mrr(run, qrels, ours.query_ids, ks)
    for k in ks:
        np.testing.assert_allclose(ours.values[f"mrr_at_{k}"], reference[f"MRR@{k}"], rtol=0, atol=1e-9)


@pytest.fixture(scope="module", params=sorted(QRELS_FILES))
def real_case(request: pytest.FixtureRequest, shared_data: Path) -> tuple[Run, Qrels]:
    qrels = read_qrels(shared_data / "qrels_only" / QRELS_FILES[request.param])
    return made_up_run(qrels, seed=sorted(QRELS_FILES).index(request.param))


# --------------------------------------------------------------------------------------------- real qrels


def test_every_metric_per_query_equals_trec_eval(real_case: tuple[Run, Qrels]) -> None:
    run, qrels = real_case
    ours = evaluate_run(run, qrels)
    assert len(ours.query_ids) == len(qrels)
    assert_matches_trec_eval(ours, run, qrels, K_VALUES)


def test_mrr_per_query_equals_mtebs(real_case: tuple[Run, Qrels]) -> None:
    run, qrels = real_case
    assert_matches_mteb_mrr(evaluate_run(run, qrels), run, qrels, K_VALUES)


def test_ranked_lists_score_as_the_run_they_came_from(real_case: tuple[Run, Qrels]) -> None:
    run, qrels = real_case
    ranked = []
    for docs in run.values():
        ids = list(docs)
        ranked.append([ids[i] for i in trec_order(ids, np.array(list(docs.values())))])
    from_lists = evaluate_ranked(list(run), ranked, qrels)
    from_run = evaluate_run(run, qrels)
    assert from_lists.query_ids == from_run.query_ids
    for name, values in from_run.values.items():
        np.testing.assert_array_equal(from_lists.values[name], values, err_msg=name)


def test_means_equal_mtebs_calculate_retrieval_scores(shared_data: Path) -> None:
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    qrels = read_qrels(shared_data / "qrels_only" / QRELS_FILES["trec-covid"])
    run, qrels = made_up_run(qrels, seed=11)
    run = {qid: docs for qid, docs in run.items() if qid in qrels}  # MTEB's MRR requires judged queries
    mteb = calculate_retrieval_scores(run, qrels, list(K_VALUES))
    means = evaluate_run(run, qrels).mean()
    for k in K_VALUES:
        assert means[f"ndcg_at_{k}"] == mteb.ndcg[f"NDCG@{k}"]
        assert means[f"map_at_{k}"] == mteb.map[f"MAP@{k}"]
        assert means[f"recall_at_{k}"] == mteb.recall[f"Recall@{k}"]
        assert means[f"precision_at_{k}"] == mteb.precision[f"P@{k}"]
        assert means[f"hit_rate_at_{k}"] == mteb.hit_rate[f"HitRate@{k}"]
        assert means[f"mrr_at_{k}"] == mteb.mrr[f"MRR@{k}"]  # unrounded, in MTEB too


# --------------------------------------------------------------------------------------------- ordering


def test_trec_order_breaks_ties_by_doc_id_descending_in_byte_order() -> None:
    ids = ["d1", "d2", "d10", "a", "Z", "é", "d3"]
    scores = np.array([0.5, 0.5, 0.5, 0.7, 0.5, 0.5, 0.1])
    # Among the 0.5s, descending strcmp: "é" (0xC3...) > "d2" > "d10" > "d1" > "Z" (uppercase sorts first).
    assert [ids[i] for i in trec_order(ids, scores)] == ["a", "é", "d2", "d10", "d1", "Z", "d3"]


def test_trec_order_compares_scores_as_float32_like_trec_eval() -> None:
    ids = ["a", "b", "c"]
    scores = np.array([0.1 + 0.2, 0.3, 0.3 + 3e-8])  # a, b differ only beyond float32; c does not
    assert [ids[i] for i in trec_order(ids, scores)] == ["c", "b", "a"]
    qrels = {"q": {"a": 1}}
    run = {"q": dict(zip(ids, scores.tolist(), strict=True))}
    assert_matches_trec_eval(evaluate_run(run, qrels, k_values=(1, 2, 3)), run, qrels, (1, 2, 3))


def test_trec_order_without_ties_is_by_score() -> None:
    scores = np.array([0.2, -1.0, 3.5, 0.0])
    assert trec_order(["w", "x", "y", "z"], scores).tolist() == [2, 0, 3, 1]
    assert trec_order([], np.zeros(0)).tolist() == []


def test_trec_order_refuses_nan_and_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="NaN"):
        trec_order(["a", "b"], np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="2 doc ids but 1 scores"):
        trec_order(["a", "b"], np.array([1.0]))


# --------------------------------------------------------------------------------------------- edge semantics


def test_which_queries_are_scored_follows_pytrec_eval() -> None:
    qrels = {
        "empty-run": {"a": 1},
        "no-judgements": {},  # dropped by pytrec_eval even though the run has it
        "only-grade-0": {"a": 0, "b": 0},
        "normal": {"a": 2, "b": 0, "c": 1},
        "not-in-run": {"a": 1},
    }
    run = {
        "normal": {"c": 0.5, "a": 0.5, "x": 0.9},
        "empty-run": {},
        "no-judgements": {"a": 1.0},
        "only-grade-0": {"a": 1.0, "b": 0.2},
        "not-in-qrels": {"a": 1.0},
    }
    ours = evaluate_run(run, qrels, k_values=(1, 2, 3, 10))
    assert ours.query_ids == ["normal", "empty-run", "only-grade-0"]
    assert_matches_trec_eval(ours, run, qrels, (1, 2, 3, 10))
    for values in ours.values.values():
        assert values[1:].tolist() == [0.0, 0.0]


def test_negative_grades_gain_nothing_and_are_not_relevant() -> None:
    qrels = {"q": {"neg": -2, "one": 1, "two": 2, "minus-one": -1, "zero": 0, "far": 3}}
    run = {"q": {"neg": 0.9, "one": 0.8, "minus-one": 0.7, "two": 0.6, "zero": 0.5, "junk": 0.4}}
    ks = (1, 2, 3, 4, 5, 10)
    ours = evaluate_run(run, qrels, k_values=ks)
    assert_matches_trec_eval(ours, run, qrels, ks)
    assert_matches_mteb_mrr(ours, run, qrels, ks)
    ideal = 3 + 2 / np.log2(3) + 1 / np.log2(4)  # from the positive grades only
    assert ours.values["ndcg_at_10"][0] == pytest.approx((1 / np.log2(3) + 2 / np.log2(5)) / ideal, abs=1e-12)


def test_precision_divides_by_k_even_past_the_end_of_a_short_list() -> None:
    ours = evaluate_run({"q": {"a": 1.0, "b": 0.5}}, {"q": {"a": 1, "b": 1, "c": 1}}, k_values=(1, 5, 1000))
    assert ours.values["precision_at_5"].tolist() == [2 / 5]
    assert ours.values["precision_at_1000"].tolist() == [2 / 1000]
    assert ours.values["recall_at_1000"].tolist() == [2 / 3]
    assert ours.values["map_at_1000"].tolist() == [2 / 3]


def test_cutoffs_past_the_end_of_every_list_find_no_hit_that_is_not_there() -> None:
    qrels = {"hit": {"b": 1}, "miss": {"z": 1}}
    run = {"hit": {"a": 0.9, "b": 0.1}, "miss": {"a": 0.9, "b": 0.1}}
    ours = evaluate_run(run, qrels, k_values=(1, 5, 100))
    assert ours.values["mrr_at_100"].tolist() == [0.5, 0.0]
    assert ours.values["hit_rate_at_100"].tolist() == [1.0, 0.0]
    assert_matches_mteb_mrr(ours, run, qrels, (1, 5, 100))


def test_custom_cutoffs_and_lists_longer_than_the_deepest_cutoff() -> None:
    rng = np.random.default_rng(5)
    qrels = {f"q{i}": {str(d): int(rng.integers(0, 3)) for d in rng.integers(0, 60, 12)} for i in range(40)}
    run = {qid: {str(d): float(rng.integers(0, 4)) for d in rng.choice(90, 80, replace=False)} for qid in qrels}
    ks = (7, 2, 25)  # unsorted, not MTEB's; the lists are over twice as long as the deepest cutoff
    ours = evaluate_run(run, qrels, k_values=ks)
    assert_matches_trec_eval(ours, run, qrels, ks)
    assert_matches_mteb_mrr(ours, run, qrels, ks)


def test_blocks_do_not_change_the_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(9)
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(0, 3)) for j in range(8)} for i in range(23)}
    run = {qid: made_up_ranking(rng, list(qrels[qid]), ["d1", "d5"]) for qid in qrels}
    whole = evaluate_run(run, qrels)
    monkeypatch.setattr(retrieval, "_BLOCK_ROWS", 4)  # blocks of different widths, some all-empty
    blocked = evaluate_run(run, qrels)
    for name, values in whole.values.items():
        np.testing.assert_array_equal(blocked.values[name], values, err_msg=name)


def test_metric_names_are_mtebs() -> None:
    ours = evaluate_run({"q": {"a": 1.0}}, {"q": {"a": 1}})
    prefixes = ("ndcg", "map", "recall", "precision", "mrr", "hit_rate")
    assert list(ours.values) == [f"{p}_at_{k}" for p in prefixes for k in K_VALUES]
    assert all(v.dtype == np.float64 for v in ours.values.values())


# --------------------------------------------------------------------------------------------- means and API


def test_mean_rounds_like_mteb_and_leaves_mrr_unrounded() -> None:
    scores = PerQueryScores(
        query_ids=["a", "b", "c"],
        values={"ndcg_at_10": np.array([1.0, 0.0, 0.0]), "mrr_at_10": np.array([1.0, 0.0, 0.0])},
    )
    assert scores.mean() == {"ndcg_at_10": 0.33333, "mrr_at_10": 1 / 3}
    assert scores.mean(decimals=None) == {"ndcg_at_10": 1 / 3, "mrr_at_10": 1 / 3}
    assert scores.mean(decimals=2)["ndcg_at_10"] == 0.33


def test_mean_of_no_queries_is_an_error() -> None:
    with pytest.raises(ValueError, match="no query was scored"):
        evaluate_run({"q": {"a": 1.0}}, {"other": {"a": 1}}).mean()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="k_values"):
        evaluate_run({}, {}, k_values=(0, 5))
    with pytest.raises(ValueError, match="k_values"):
        evaluate_run({}, {}, k_values=(5, 5))
    with pytest.raises(ValueError, match="2 query ids but 1 ranked lists"):
        evaluate_ranked(["a", "b"], [["x"]], {})
    with pytest.raises(ValueError, match="unique"):
        evaluate_ranked(["a", "a"], [["x"], ["y"]], {})
