"""Encoders declare their capabilities; the core drives token-, text- and pair-level models from the declaration;
adapters are registered by name and imported lazily; every encoding option reaches every model a run builds."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tiny_models import tiny_reranker

from evalkit.cache import EmbeddingCache
from evalkit.cache.keys import text_digests
from evalkit.core import EmbeddingCore
from evalkit.core.pairs import dedup_pairs, pair_digests
from evalkit.encoders import adapters
from evalkit.encoders.adapters import Encoding, build_encoder, build_pair_scorer, register
from evalkit.encoders.protocol import PAIR_SCORES, TOKEN_DENSE, Capabilities, capabilities_of
from evalkit.errors import EvalkitError, UnknownModelError
from evalkit.registry.models import ModelSpec


def test_every_adapter_declares_its_capabilities() -> None:
    from evalkit.encoders.bge_m3 import BGEM3Encoder
    from evalkit.encoders.cross_encoder import CrossEncoderReranker
    from evalkit.encoders.hf import HFEncoder
    from evalkit.encoders.onnx_model import OnnxModelEncoder
    from evalkit.encoders.remote_api import RemoteEmbeddingEncoder
    from evalkit.encoders.splade import SpladeEncoder

    assert HFEncoder.capabilities == TOKEN_DENSE == OnnxModelEncoder.capabilities
    assert BGEM3Encoder.capabilities.outputs == ("dense", "sparse", "colbert")
    assert SpladeEncoder.capabilities.outputs == ("sparse",)
    assert RemoteEmbeddingEncoder.capabilities.level == "texts"
    assert CrossEncoderReranker.capabilities == PAIR_SCORES


def test_a_model_written_before_capabilities_is_read_as_a_token_level_one() -> None:
    class Old:
        output_kinds = ("sparse",)

    assert capabilities_of(object()) == TOKEN_DENSE
    assert capabilities_of(Old()) == Capabilities(outputs=("sparse",))
    with pytest.raises(ValueError, match="level"):
        Capabilities(level="words")  # type: ignore[arg-type]


@dataclass
class PairCounter:
    """A CrossEncoder-like pair scorer: a pair's score is a function of both texts; counts what it was asked."""

    name: str = "test/pairs"
    capabilities: Capabilities = PAIR_SCORES
    scored: list[tuple[str, str]] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)
    table: dict[int, tuple[str, str]] = field(default_factory=dict)

    def tokenize_pairs(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        ids = []
        for pair in pairs:
            self.table[len(self.table)] = pair
            ids.append([len(self.table) - 1] * (len(pair[0]) + len(pair[1])))
        return ids

    def score_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        pairs = [self.table[ids[0]] for ids in token_ids]
        self.scored.extend(pairs)
        self.batches.append(len(pairs))
        return np.array([len(q) * 100 + len(d) + (q[0] == d[0]) for q, d in pairs], dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_pairs_are_deduped_batched_by_tokens_and_cached(tmp_path: Path) -> None:
    queries = ["ab", "ab", "c", "ab"]
    documents = ["x", "x", "cat", "abc"]
    scorer = PairCounter()
    core = EmbeddingCore(show_progress=False, token_budget=8, cache=EmbeddingCache(tmp_path))
    scores = core.score_pairs(scorer, queries, documents)
    expected = [len(q) * 100 + len(d) + (q[0] == d[0]) for q, d in zip(queries, documents, strict=True)]
    assert scores.dtype == np.float32 and scores.tolist() == expected
    assert sorted(scorer.scored) == sorted({("ab", "x"), ("c", "cat"), ("ab", "abc")})  # each pair once
    assert max(scorer.batches) <= 2 and sum(scorer.batches) == 3  # 8 padded tokens: at most two pairs of 4-5
    again = PairCounter()
    core_again = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path))
    assert core_again.score_pairs(again, queries, documents).tolist() == expected
    assert again.scored == [] and core_again.stats["cached"] == 3


def test_pair_keys_collide_with_neither_texts_nor_other_pairs() -> None:
    digests = pair_digests([("ab", "c"), ("a", "bc")])
    assert not np.array_equal(digests[0], digests[1])
    assert not np.array_equal(digests[0], text_digests(["ab\x1fc"])[0])  # the old joined-string key
    distinct, inverse = dedup_pairs(["q", "q"], ["d", "d"])
    assert distinct == [("q", "d")] and inverse.tolist() == [0, 0]


TEXT_LEVEL = Capabilities(level="texts")


@dataclass
class TextCounter:
    name: str = "test/texts"
    capabilities: Capabilities = TEXT_LEVEL
    batches: list[list[str]] = field(default_factory=list)

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + text for text in texts]

    def embed_texts(self, texts: list[str], role: str) -> np.ndarray:
        self.batches.append(list(texts))
        return np.array([[len(t), ord(t[0])] for t in texts], dtype=np.float32)

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def test_text_level_models_are_batched_by_count_deduped_and_cached(tmp_path: Path) -> None:
    texts = ["bb", "a", "bb", "ccc", "dddd", "a"]
    model = TextCounter()
    core = EmbeddingCore(show_progress=False, batch_size=2, cache=EmbeddingCache(tmp_path))
    vectors = core.encode(model, texts, "document")
    assert vectors[:, 0].tolist() == [len(t) for t in texts]
    assert model.batches == [["bb", "a"], ["ccc", "dddd"]]  # input order, two texts a batch, each text once
    again = TextCounter()
    EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode(again, texts, "document")
    assert again.batches == []
    with pytest.raises(EvalkitError, match="not a pair scorer"):
        core.score_pairs(model, ["q"], ["d"])  # type: ignore[arg-type]
    with pytest.raises(EvalkitError, match="no vectors"):
        core.encode(PairCounter(), ["x"], "query")  # type: ignore[arg-type]


def test_an_unknown_adapter_lists_the_known_ones() -> None:
    with pytest.raises(UnknownModelError, match=r"known: .*bge-m3.*hf"):
        build_encoder(ModelSpec(name="m", adapter="nope"), Encoding())


def test_importing_the_encoders_imports_no_torch() -> None:
    code = "import sys, evalkit.encoders, evalkit.encoders.objects; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# -- every encoding option reaches every model a run builds -------------------------------------------------------


@dataclass
class Recorded:
    """What a registered test adapter was built with."""

    spec: ModelSpec
    encoding: Any
    capabilities: Capabilities = TOKEN_DENSE
    name: str = "recorded"

    @classmethod
    def from_spec(cls, spec: ModelSpec, encoding: Any, *, artifact_dir: Path | None = None) -> Recorded:
        return cls(spec, encoding)

    def fingerprint(self) -> dict[str, object]:
        return {"device": self.encoding.device, "precision": self.encoding.precision}


class RecordedPairs(Recorded):
    pass


register("test-recorded", lazy=f"{__name__}:Recorded")
register("test-recorded-pairs", lazy=f"{__name__}:RecordedPairs", kind="pairs", replicable=False)

OPTIONS = {"device": "cuda:3", "precision": "bf16", "runtime": "onnx"}


def _built(kind: str, encoding: Encoding) -> Any:
    """The model of one kind a run builds, through the entry the run uses for it."""
    if kind in ("dense", "sparse"):  # the model under test, a hybrid's --sparse-model
        return build_encoder(ModelSpec(name=f"test/{kind}", adapter="test-recorded"), encoding)
    if kind == "reranker":
        return build_pair_scorer(ModelSpec(name="test/rr", adapter="test-recorded-pairs"), encoding)
    from evalkit.distributed.ray_backend import encoder_settings  # a Ray worker rebuilds from these settings

    driver = build_encoder(ModelSpec(name="test/ray", adapter="test-recorded"), encoding)
    settings = encoder_settings(driver.spec, driver, EmbeddingCore(show_progress=False), encoding)  # type: ignore[arg-type]
    return build_encoder(settings.model, settings)


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("kind", ["dense", "sparse", "reranker", "ray"])
def test_every_encoding_option_reaches_every_model(option: str, kind: str) -> None:
    encoding = Encoding(**{option: OPTIONS[option]})
    model = _built(kind, encoding)
    assert getattr(model.encoding, option) == OPTIONS[option]


def test_several_devices_make_replicas_of_a_dense_model_and_the_reranker_takes_the_first() -> None:
    encoding = Encoding(device="cuda:0,cuda:1", precision="bf16")
    dense = _built("dense", encoding)
    assert capabilities_of(dense).replicas == 2
    assert [r.encoding.device for r in dense.replicas] == ["cuda:0", "cuda:1"]
    assert {r.encoding.precision for r in dense.replicas} == {"bf16"}
    assert _built("reranker", encoding).encoding.device == "cuda:0"


def test_a_cross_encoder_is_built_as_a_pair_scorer_only() -> None:
    with pytest.raises(UnknownModelError, match="reranker"):
        build_encoder(ModelSpec(name="x", adapter="cross-encoder"), Encoding())
    assert "cross-encoder" in adapters.ADAPTERS


def test_the_reranker_gets_the_runs_precision(tmp_path: Path) -> None:
    """``--precision bf16 --reranker M`` reranks in bf16 (it reranked in fp32 while filed under -bf16)."""
    import torch

    folder = tiny_reranker(tmp_path)
    spec = ModelSpec(name="test/tiny-reranker", max_length=48, source="local", local_path=folder)
    scorer = build_pair_scorer(spec, Encoding(precision="bf16"))
    assert scorer.fingerprint()["precision"] == "bf16"
    assert next(scorer.model.parameters()).dtype == torch.bfloat16  # type: ignore[attr-defined]
    with pytest.raises(EvalkitError, match="fp16 needs a GPU"):
        build_pair_scorer(spec, Encoding(precision="fp16"))


def test_a_lexical_retriever_declares_it_ranks_texts_itself() -> None:
    from evalkit.registry.models import resolve_model
    from evalkit.retrievers import LexicalRetriever

    retriever = build_encoder(resolve_model("mteb/baseline-bm25s"), Encoding(device="cuda:0,cuda:1"))
    assert isinstance(retriever, LexicalRetriever)
    assert capabilities_of(retriever).level == "lexical" and capabilities_of(retriever).outputs == ("sparse",)
