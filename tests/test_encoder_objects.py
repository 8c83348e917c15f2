"""Any model object in: an in-memory SentenceTransformer through evalkit's own path, callables and objects' own
``encode`` through the text-level entry, a CrossEncoder as a pair scorer; caching keyed by the parameters."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.encoders.adapters import Encoding, build_encoder
from evalkit.encoders.objects import MtebObjectEncoder, encoder_from_object
from evalkit.encoders.protocol import capabilities_of
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model

MINILM = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion on a wooden board in the kitchen.",
    "Two dogs run across a snowy field.",
    "A man is playing a guitar.",
    "The stock market fell sharply on Tuesday after the announcement.",
    "Children are playing soccer.",
]


@pytest.fixture(scope="module")
def st() -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(resolve_model(MINILM).local_path), device="cpu")


def core(cache: EmbeddingCache | None = None) -> EmbeddingCore:
    return EmbeddingCore(show_progress=False, cache=cache)


def test_an_in_memory_sentence_transformer_runs_evalkits_own_path(st: Any) -> None:
    encoder = encoder_from_object(st)
    assert capabilities_of(encoder).level == "tokens" and encoder.spec.pooling == "mean" and encoder.spec.normalize
    registry = build_encoder(resolve_model(MINILM), Encoding(runtime="torch"))
    ours = core().encode(encoder, TEXTS, "document")
    np.testing.assert_allclose(ours, core().encode(registry, TEXTS, "document"), atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours, st.encode(TEXTS), atol=1e-6, rtol=0)


def test_a_callable_wrapping_encode_gives_the_same_vectors_and_is_not_cached(
    st: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(len(texts))
        return st.encode(texts)

    with caplog.at_level(logging.WARNING, logger="evalkit"):
        model = encoder_from_object(embed)
    assert capabilities_of(model).level == "texts" and not capabilities_of(model).cacheable
    assert "not cached" in caplog.text and len(caplog.records) == 1
    cache = EmbeddingCache(tmp_path)
    vectors = core(cache).encode(model, TEXTS, "document")
    np.testing.assert_allclose(vectors, core().encode(encoder_from_object(st), TEXTS, "document"), atol=1e-6, rtol=0)
    core(cache).encode(model, TEXTS, "document")
    assert calls == [5, 5]  # deduped, and encoded again: an opaque callable is never cached
    assert not list((tmp_path).rglob("meta.json"))


def test_a_weight_changed_in_place_is_encoded_again(st: Any, tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    first_core = core(cache)
    before = first_core.encode(encoder_from_object(st), TEXTS, "document")
    again = core(cache)
    np.testing.assert_array_equal(again.encode(encoder_from_object(st), TEXTS, "document"), before)
    assert again.stats["cached"] == 5 and again.stats["encoded"] == 0
    parameter = next(st.parameters())
    try:
        with torch.no_grad():
            parameter.add_(1e-3)
        changed = core(cache)
        after = changed.encode(encoder_from_object(st), TEXTS, "document")
        assert changed.stats["encoded"] == 5 and changed.stats["cached"] == 0  # a cache miss, never stale vectors
        assert np.abs(after - before).max() > 0  # the new weights, not the cached vectors
    finally:
        with torch.no_grad():
            parameter.sub_(1e-3)


def test_a_revision_names_an_objects_vectors_instead_of_its_parameters(tmp_path: Path) -> None:
    def embed(texts: list[str]) -> np.ndarray:
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    model = encoder_from_object(embed, revision="step-100")
    assert capabilities_of(model).cacheable and model.fingerprint()["revision"] == "step-100"
    cache = EmbeddingCache(tmp_path)
    core(cache).encode(model, TEXTS, "query")
    second = core(cache)
    second.encode(encoder_from_object(embed, revision="step-100"), TEXTS, "query")
    assert second.stats["cached"] == 5


def test_an_object_with_encode_and_an_mteb_protocol_object() -> None:
    class Plain:
        def encode(self, texts: list[str]) -> list[list[float]]:
            return [[float(len(t))] for t in texts]

    class MtebLike:
        def __init__(self) -> None:
            self.seen: list[Any] = []

        def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str, prompt_type: Any = None):
            texts = [text for batch in inputs for text in batch["text"]]
            self.seen.append((task_metadata.name, prompt_type))
            return torch.tensor([[float(len(t)), 2.0] for t in texts])

    vectors = core().encode(encoder_from_object(Plain()), ["ab", "c"], "query")
    assert vectors.tolist() == [[2.0], [1.0]]
    mteb_like = MtebLike()
    model = encoder_from_object(mteb_like, revision="r1")
    assert isinstance(model, MtebObjectEncoder)
    vectors = core().encode(model.for_task("STSBenchmark"), ["abc", "d"], "query")
    assert vectors.tolist() == [[3.0, 2.0], [1.0, 2.0]]
    assert mteb_like.seen[0][0] == "STSBenchmark" and mteb_like.seen[0][1].value == "query"
    assert model.fingerprint() != model.for_task("SciFact").fingerprint()  # its prompts may differ per task


def test_what_is_no_model_and_a_similarity_evalkit_does_not_score_are_refused(st: Any) -> None:
    """Any of sentence-transformers' four similarity functions is scored as mteb scores it (the spec carries it to
    search and the pair metrics); anything else is refused, never replaced by cosine."""
    from types import SimpleNamespace

    from evalkit.encoders.st_objects import _check_similarity

    with pytest.raises(EvalkitError, match="cannot evaluate"):
        encoder_from_object(42)
    original = st.similarity_fn_name
    try:
        st.similarity_fn_name = "euclidean"
        assert encoder_from_object(st).spec.similarity == "euclidean"
    finally:
        st.similarity_fn_name = original
    with pytest.raises(EvalkitError, match="maxsim"):
        _check_similarity(SimpleNamespace(similarity_fn_name="maxsim"), "m", normalizes=True)


def test_a_prompt_its_pooling_leaves_out_is_refused_not_prepended(st: Any) -> None:
    """With include_prompt: false the model pools without the prompt's tokens; evalkit's text-level path would
    prepend the prompt to the text and pool it: a different vector, so it is refused."""
    pooling, prompts = st[1], dict(st.prompts)
    original = pooling.include_prompt
    try:
        pooling.include_prompt = False
        st.prompts = {"query": "query: "}
        with pytest.raises(EvalkitError, match="include_prompt"):
            encoder_from_object(st)
    finally:
        pooling.include_prompt, st.prompts = original, prompts


def test_a_cross_encoder_is_a_pair_scorer_batched_deduped_and_cached(tmp_path: Path) -> None:
    from sentence_transformers import CrossEncoder
    from tiny_models import tiny_reranker

    ce = CrossEncoder(str(tiny_reranker(tmp_path / "ce")), device="cpu", max_length=48)
    scorer = encoder_from_object(ce)
    assert capabilities_of(scorer).level == "pairs"
    cats = ("what do cats eat", "Cats eat meat.")
    pairs = [cats, ("who won", "The home team."), cats]
    cache = EmbeddingCache(tmp_path / "cache")
    first = core(cache)
    scores = first.score_pairs(scorer, [q for q, _ in pairs], [d for _, d in pairs])
    np.testing.assert_allclose(scores, ce.predict(pairs), atol=1e-5)
    assert first.stats["encoded"] == 2  # the repeated pair is scored once
    second = core(cache)
    np.testing.assert_array_equal(second.score_pairs(encoder_from_object(ce), *zip(*pairs, strict=True)), scores)
    assert second.stats["cached"] == 2 and second.stats["encoded"] == 0
