"""BM25 as a model like any other: ``evalkit run --model bm25`` on SciFact, through the retrieval evaluator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evalkit.cli import main
from evalkit.evaluators.retrieval import document_texts, ranked_doc_ids
from evalkit.loaders import load_task_data
from evalkit.metrics.retrieval import evaluate_ranked
from evalkit.registry.tasks import default_registry
from evalkit.retrievers.bm25 import BM25Retriever


def test_bm25_scifact_through_the_cli_equals_a_direct_bm25_search(mirror: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "results"
    assert (
        main(
            ["run", "--model", "bm25", "--tasks", "SciFact", "--data-dir", str(mirror), "--output", str(out), "--quiet"]
        )
        == 0
    )
    (result,) = out.glob("*/*/SciFact.json")
    via_cli = json.loads(result.read_text())["scores"]["test"][0]

    split = load_task_data(default_registry().get("SciFact"), [mirror]).splits["default"]["test"]
    top = BM25Retriever().top_k(document_texts(split.corpus), split.queries.texts, 1000, languages=("eng-Latn",))
    ranked = ranked_doc_ids(top, split.corpus.ids, split.queries.ids, remove_self_hits=False)
    direct = evaluate_ranked(split.queries.ids, ranked, split.qrels).mean()
    assert via_cli["ndcg_at_10"] == pytest.approx(direct["ndcg_at_10"], abs=1e-6)
    assert via_cli["ndcg_at_10"] > 0.6  # BM25 is a strong baseline on SciFact

    assert (
        main(["run", "--model", "bm25", "--tasks", "STSBenchmark", "--data-dir", str(mirror), "--output", str(out)])
        == 2
    )
    assert "cannot score task 'STSBenchmark'" in capsys.readouterr().err
