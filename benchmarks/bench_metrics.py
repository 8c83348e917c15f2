"""Per-query retrieval metrics at scale: evalkit.metrics.retrieval against pytrec_eval, one process, the same run.

The run is made up: 10,000 queries × 1,000 retrieved documents and graded qrels (0-3, some judged documents not
retrieved, some queries with nothing relevant, a few with no judgements). It is scored twice: with distinct float32
scores, as a model gives, and with scores rounded to 3 decimals, so that every query has ties, which trec_eval
breaks by document id (the slower path for evalkit, which must then sort by id too).

pytrec_eval is called as mteb calls it, ``RelevanceEvaluator(qrels, measures).evaluate(run)`` with ndcg_cut, map_cut,
recall, P and success at 1, 3, 5, 10, 20, 100, 1000, timed with the evaluator's construction since mteb builds one
per evaluation. mteb's own pure-Python MRR is checked and timed too, apart.

    .venv/bin/python benchmarks/bench_metrics.py [--queries 10000] [--depth 1000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pytrec_eval
from _common import OtherCpu, activity_section, other_activity
from _machine import machine_header, write_report

from evalkit.metrics.retrieval import K_VALUES, PerQueryScores, evaluate_run

PYTREC_NAMES = {"ndcg": "ndcg_cut", "map": "map_cut", "recall": "recall", "precision": "P", "hit_rate": "success"}
"""evalkit's metric prefix → trec_eval's measure, both at every cutoff."""

GRADES = np.array([0, 1, 2, 3])
GRADE_ODDS = np.array([0.3, 0.4, 0.2, 0.1])

Run = dict[str, dict[str, float]]
Qrels = dict[str, dict[str, int]]


def made_up(n_queries: int, depth: int, seed: int, decimals: int | None, pool: int = 500_000) -> tuple[Run, Qrels]:
    """A run and its qrels, drawn from a fixed seed; scores rounded to ``decimals`` if given."""
    rng = np.random.default_rng(seed)
    names = np.array([f"doc{i}" for i in range(pool)], dtype=object)
    run: Run = {}
    qrels: Qrels = {}
    for number in range(n_queries):
        query = f"q{number}"
        retrieved = rng.choice(pool, depth, replace=False)
        scores = rng.random(depth, dtype=np.float32).astype(np.float64)
        if decimals is not None:
            scores = np.round(scores, decimals)
        run[query] = dict(zip(names[retrieved].tolist(), scores.tolist(), strict=True))
        if number % 200 == 7:
            continue  # no judgements at all: neither side scores this query
        judged_retrieved = rng.choice(retrieved, rng.integers(0, 20), replace=False)
        judged_elsewhere = rng.integers(0, pool, rng.integers(0 if number % 50 else 1, 10))
        judged = np.concatenate([judged_retrieved, judged_elsewhere])
        grades = rng.choice(GRADES, len(judged), p=GRADE_ODDS)
        qrels[query] = dict(zip(names[judged].tolist(), grades.tolist(), strict=False))
    return run, qrels


def time_pytrec(run: Run, qrels: Qrels) -> tuple[float, dict[str, dict[str, float]]]:
    cutoffs = ",".join(str(k) for k in K_VALUES)
    measures = {f"{name}.{cutoffs}" for name in ("map_cut", "ndcg_cut", "recall", "P", "success")}
    started = time.perf_counter()
    values = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    return time.perf_counter() - started, values


def time_evalkit(run: Run, qrels: Qrels) -> tuple[float, PerQueryScores]:
    started = time.perf_counter()
    values = evaluate_run(run, qrels, K_VALUES)
    return time.perf_counter() - started, values


def compare(ours: PerQueryScores, theirs: dict[str, dict[str, float]]) -> tuple[list[str], bool]:
    """Every metric of every query side by side: the largest difference and how many values are bit-identical."""
    lines, all_equal = [], True
    if sorted(ours.query_ids) != sorted(theirs):
        return [f"- DIFFERENT QUERIES SCORED: evalkit {len(ours.query_ids)}, pytrec_eval {len(theirs)}"], False
    for prefix, trec_name in PYTREC_NAMES.items():
        worst, equal, total = 0.0, 0, 0
        for k in K_VALUES:
            mine = ours.values[f"{prefix}_at_{k}"]
            reference = np.array([theirs[query][f"{trec_name}_{k}"] for query in ours.query_ids])
            worst = max(worst, float(np.abs(mine - reference).max(initial=0.0)))
            equal += int((mine == reference).sum())
            total += len(reference)
        all_equal &= worst <= 1e-12
        lines.append(
            f"- {prefix} ↔ {trec_name} at {len(K_VALUES)} cutoffs: {equal:,} of {total:,} values bit-identical, "
            f"largest difference {worst:.3g}"
        )
    return lines, all_equal


def mteb_mrr_check(ours: PerQueryScores, run: Run, qrels: Qrels) -> tuple[float, str]:
    """mteb's MRR (pure Python, its own code) on the queries both score, against evalkit's."""
    from mteb._evaluators.retrieval_metrics import mrr

    scored = {query: run[query] for query in ours.query_ids}
    started = time.perf_counter()
    theirs = mrr(qrels, scored, K_VALUES)
    seconds = time.perf_counter() - started
    worst = max(
        float(np.abs(ours.values[f"mrr_at_{k}"] - np.array(theirs[f"MRR@{k}"])).max(initial=0.0)) for k in K_VALUES
    )
    return seconds, f"largest difference from evalkit's mrr_at_k over all cutoffs: {worst:.3g}"


SCENARIOS = {"distinct scores (as from a model)": None, "scores rounded to 3 decimals (ties in every query)": 3}


def scenario(name: str, decimals: int | None, args: argparse.Namespace) -> tuple[list[str], str]:
    """Time both sides on one made-up run, alternating, and compare every value."""
    run, qrels = made_up(args.queries, args.depth, args.seed, decimals)
    pytrec_times, evalkit_times = [], []
    for _ in range(args.repeats):
        seconds, theirs = time_pytrec(run, qrels)
        pytrec_times.append(seconds)
        seconds, ours = time_evalkit(run, qrels)
        evalkit_times.append(seconds)
        print(f"{name}: pytrec_eval {pytrec_times[-1]:.2f} s, evalkit {evalkit_times[-1]:.2f} s")
    comparison, identical = compare(ours, theirs)
    mrr_s, mrr_line = mteb_mrr_check(ours, run, qrels)
    best_pytrec, best_evalkit = min(pytrec_times), min(evalkit_times)
    ratio = best_pytrec / best_evalkit
    lines = [
        f"## {name[0].upper()}{name[1:]}",
        "",
        f"{len(ours.query_ids):,} of {len(run):,} queries have judgements and are scored by both.",
        "",
        "| method | time (s), best | all runs (s) |",
        "| --- | ---: | --- |",
        f"| pytrec_eval RelevanceEvaluator(...).evaluate(run) | {best_pytrec:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in pytrec_times)} |",
        f"| evalkit.metrics.retrieval.evaluate_run (+ MRR) | {best_evalkit:.2f} | "
        f"{', '.join(f'{t:.2f}' for t in evalkit_times)} |",
        f"| mteb's MRR alone (pure Python; evalkit includes it) | {mrr_s:.2f} | |",
        "",
        f"**evalkit is {ratio:.2f}× pytrec_eval's speed** (pytrec_eval's time / evalkit's; target ≥ 1×).",
        "",
        "Same values?",
        "",
        *comparison,
        f"- MRR: {mrr_line}",
        f"- verdict: {'identical to 1e-12 on every query and metric' if identical else 'VALUES DIFFER'}",
        "",
    ]
    return lines, f"{name}: pytrec_eval {best_pytrec:.2f} s, evalkit {best_evalkit:.2f} s, ratio {ratio:.2f}×"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--depth", type=int, default=1_000, help="retrieved documents per query")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each side, alternating; best kept")
    args = parser.parse_args()

    activity_before = other_activity()
    lines = [
        "# Per-query retrieval metrics: evalkit vs pytrec_eval",
        "",
        machine_header(packages=("numpy", "pytrec-eval-terrier", "mteb")),
        "",
        f"{args.queries:,} queries × {args.depth:,} retrieved documents (made up, seed {args.seed}), graded qrels. "
        f"Metrics: nDCG, MAP, recall, precision, success/hit rate at {', '.join(map(str, K_VALUES))}: pytrec_eval "
        "as mteb calls it (the evaluator built each time, as mteb does) against evalkit's evaluate_run, on the same "
        f"run dict, in one process; best of {args.repeats} alternating runs.",
        "",
    ]
    summary = []
    with OtherCpu() as others:
        for name, decimals in SCENARIOS.items():
            section, line = scenario(name, decimals, args)
            lines += section
            summary.append(line)
    lines += activity_section(others, activity_before)
    text = "\n".join(lines)
    print(text)
    print(others.summary())
    print(f"written: {write_report('metrics', text)}")
    print("\n".join(summary))


if __name__ == "__main__":
    main()
