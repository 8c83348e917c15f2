"""The cross-encoder rerank stage on a tiny randomly-initialised BERT classifier (wiring: no reranker weights here).

Checks that the core's batching reproduces the model's own pair scores, that reranking orders by them, and that a
second pass reads every score from the cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_models import tiny_reranker

from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.encoders.cross_encoder import CrossEncoderReranker
from evalkit.registry.models import ModelSpec
from evalkit.search.dense import TopK
from evalkit.search.rerank import rerank_top_k

QUERIES = ["what do cats eat", "who won the final"]
DOCS = [
    "Cats are carnivores and eat meat.",
    "The final was won by the home team after extra time.",
    "Stock markets fell.",
    "A recipe for chocolate cake with dark cocoa and a long list of ingredients " * 8,
]


@pytest.fixture(scope="module")
def reranker_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_reranker(tmp_path_factory.mktemp("tiny-reranker"))


def reranker(folder: Path) -> CrossEncoderReranker:
    spec = ModelSpec(
        name="test/tiny-reranker", adapter="cross-encoder", max_length=48, source="local", local_path=folder
    )
    return CrossEncoderReranker(spec)


def direct_scores(model: CrossEncoderReranker, query: str, docs: list[str]) -> np.ndarray:
    inputs = model.tokenizer(
        [query] * len(docs), docs, truncation="only_second", max_length=48, padding=True, return_tensors="pt"
    )
    with torch.inference_mode():
        return model.model(**inputs).logits[:, 0].numpy()


def test_rerank_orders_by_the_models_own_pair_scores(reranker_folder: Path, tmp_path: Path) -> None:
    model = reranker(reranker_folder)
    first_stage = TopK(indices=np.array([[2, 0, 3, 1], [1, 3, 0, 2]]), scores=np.ones((2, 4), dtype=np.float32))
    cache = EmbeddingCache(tmp_path / "cache")
    core = EmbeddingCore(show_progress=False, token_budget=96, cache=cache)
    reranked = rerank_top_k(core, model, QUERIES, DOCS, first_stage, k=3)
    assert reranked.indices.shape == (2, 3)
    for row, query in enumerate(QUERIES):
        candidates = first_stage.indices[row, :3]
        expected = direct_scores(model, query, [DOCS[i] for i in candidates])
        np.testing.assert_allclose(np.sort(reranked.scores[row])[::-1], np.sort(expected)[::-1], atol=1e-5)
        assert list(reranked.indices[row]) == list(candidates[np.argsort(-expected, kind="stable")])
    # the long document was truncated from its end, never the query
    (long_pair,) = model.tokenize_pairs([(QUERIES[0], DOCS[3])])  # ported: pairs, no "\x1f" join
    assert len(long_pair) == 48 and long_pair[:6] == model.tokenizer(QUERIES[0])["input_ids"][:6]

    again = EmbeddingCore(show_progress=False, token_budget=96, cache=EmbeddingCache(tmp_path / "cache"))
    np.testing.assert_array_equal(rerank_top_k(again, model, QUERIES, DOCS, first_stage, k=3).scores, reranked.scores)
    assert again.stats.get("encoded", 0) == 0 and again.stats.get("cached", 0) == 6


def test_reranker_runs_from_the_cli_and_lands_in_its_own_folder(
    reranker_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from evalkit.cli import main

    data = tmp_path / "toy"
    (data / "qrels").mkdir(parents=True)
    docs = {f"d{i}": text for i, text in enumerate(DOCS)}
    (data / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": "", "text": v}) + "\n" for k, v in docs.items())
    )
    (data / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": f"q{i}", "text": t}) + "\n" for i, t in enumerate(QUERIES))
    )
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq0\td0\t1\nq1\td1\t1\n")
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ToyRerank.yaml").write_text(
        f"name: ToyRerank\ntype: Retrieval\nlanguages: [eng-Latn]\neval_splits: [test]\ndata_dir: {data}\n"
    )
    monkeypatch.setenv("EVALKIT_TASKS_PATH", str(specs))
    out = tmp_path / "results"
    args = ["run", "--model", "sentence-transformers/all-MiniLM-L6-v2", "--tasks", "ToyRerank", "--output", str(out)]
    assert main([*args, "--reranker", str(reranker_folder), "--rerank-top-k", "3", "--quiet"]) == 0
    (model_revision,) = (out / "sentence-transformers__all-MiniLM-L6-v2").iterdir()
    (revision,) = (model_revision / "experiments").iterdir()  # an experiment of the model's revision
    assert revision.name == "rerank_" + reranker_folder.name + "-k3"
    record = json.loads((revision / "evalkit" / "ToyRerank.run.json").read_text())
    assert record["run_settings"]["rerank"]["top_k"] == 3
    scores = json.loads((revision / "ToyRerank.json").read_text())["scores"]["test"][0]
    assert scores["precision_at_5"] == pytest.approx(0.2)  # 3 reranked candidates kept, one relevant per query
    assert main([*args, "--reranker", str(reranker_folder), "--rerank-top-k", "0"]) == 2
