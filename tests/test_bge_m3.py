"""BGE-M3's three outputs, wired on a tiny randomly initialised XLM-RoBERTa saved in the real bge-m3 file layout.

Wiring only: the real BAAI/bge-m3 weights are not reachable here, so the numbers prove that each head is applied
as FlagEmbedding applies it (compared with a direct computation from the same files) and that FlagEmbedding's
``compute_score`` formulas come out of evalkit's search functions — not the model's quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import Whitespace
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

from evalkit.cache import EmbeddingCache
from evalkit.core import EmbeddingCore
from evalkit.core.outputs import MultiVectorRows, SparseRows
from evalkit.encoders import load_encoder
from evalkit.encoders.bge_m3 import BGEM3Encoder
from evalkit.errors import UnknownModelError
from evalkit.registry.models import ModelSpec, load_model_registry
from evalkit.search.fusion import weighted_sum
from evalkit.search.multivector import maxsim_scores
from evalkit.search.sparse import sparse_scores

WORDS = ["the", "a", "cat", "dog", "sat", "on", "mat", "sparse", "dense", "vectors", "find", "documents", "about"]
SPECIAL = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}  # XLM-RoBERTa's ids, as bge-m3's tokenizer has them
HIDDEN = 32


def build_tiny_m3(folder: Path) -> Path:
    """XLM-RoBERTa (2 layers, hidden 32) + a word-level tokenizer + both heads, as BAAI/bge-m3 lays them out."""
    vocab = {**SPECIAL, **{word: i + len(SPECIAL) for i, word in enumerate(WORDS)}}
    tokenizer = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    tokenizer.post_processor = TemplateProcessing(single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        model_input_names=["input_ids", "attention_mask"],  # as XLMRobertaTokenizerFast: no token types
    ).save_pretrained(folder)
    torch.manual_seed(0)
    config = XLMRobertaConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    XLMRobertaModel(config).save_pretrained(folder)
    torch.save(torch.nn.Linear(HIDDEN, 1).state_dict(), folder / "sparse_linear.pt")
    torch.save(torch.nn.Linear(HIDDEN, HIDDEN).state_dict(), folder / "colbert_linear.pt")
    return folder


@pytest.fixture(scope="module")
def tiny_m3(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_m3(tmp_path_factory.mktemp("bge-m3-tiny"))


def spec_for(folder: Path) -> ModelSpec:
    return ModelSpec(
        name="test/bge-m3-tiny", adapter="bge-m3", pooling="cls", normalize=True, max_length=48, local_path=folder
    )


TEXTS = ["the cat sat on the mat", "dense vectors", "a dog and a zebra", "find documents about retrieval"]
""""the" and "a" repeat (max-merged); "and" and "zebra" are unknown words (<unk>, dropped from the weights)."""


def direct(folder: Path, text: str) -> tuple[np.ndarray, dict[int, float], np.ndarray]:
    """One text through the saved files, unbatched, as FlagEmbedding's M3 model computes its outputs."""
    tokenizer = PreTrainedTokenizerFast.from_pretrained(folder)
    model = XLMRobertaModel.from_pretrained(folder).eval()
    sparse_linear, colbert_linear = torch.nn.Linear(HIDDEN, 1), torch.nn.Linear(HIDDEN, HIDDEN)
    sparse_linear.load_state_dict(torch.load(folder / "sparse_linear.pt", weights_only=True))
    colbert_linear.load_state_dict(torch.load(folder / "colbert_linear.pt", weights_only=True))
    ids = tokenizer(text)["input_ids"]
    with torch.no_grad():
        hidden = model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        dense = torch.nn.functional.normalize(hidden[0], dim=-1).numpy()
        token_weights = torch.relu(sparse_linear(hidden)).squeeze(-1).tolist()
        colbert = torch.nn.functional.normalize(colbert_linear(hidden[1:]), dim=-1).numpy()
    lexical: dict[int, float] = {}
    for token_id, weight in zip(ids, token_weights, strict=True):
        if token_id not in SPECIAL.values() and weight > 0:
            lexical[token_id] = max(weight, lexical.get(token_id, 0.0))
    return dense, lexical, colbert


def test_outputs_follow_flagembeddings_m3_model(tiny_m3: Path) -> None:
    encoder = BGEM3Encoder(spec_for(tiny_m3), runtime="torch")
    outputs = encoder.embed_outputs(encoder.tokenize(TEXTS), ("dense", "sparse", "colbert"))  # one padded batch
    sparse, colbert = outputs["sparse"], outputs["colbert"]
    assert isinstance(sparse, SparseRows) and isinstance(colbert, MultiVectorRows)
    tokenized = encoder.tokenize(TEXTS)
    for i, text in enumerate(TEXTS):
        dense, lexical, vectors = direct(tiny_m3, text)
        np.testing.assert_allclose(outputs["dense"][i], dense, atol=1e-5)
        got = sparse.as_dicts()[i]
        assert got.keys() == lexical.keys() and lexical  # special and unknown tokens gone, repeats merged
        np.testing.assert_allclose([got[t] for t in lexical], list(lexical.values()), atol=1e-5)
        assert len(colbert.row(i)) == len(tokenized[i]) - 1  # every token but CLS, no padding
        np.testing.assert_allclose(colbert.row(i), vectors, atol=1e-5)
    assert np.all(np.diff(sparse.token_ids[: sparse.offsets[1]]) > 0)  # ids ascending: CSR-ready
    assert 3 in tokenized[2] and 3 not in sparse.as_dicts()[2]  # <unk> was in the text, not in its weights
    # The dense output is the HF adapter's CLS path, alone or with the other outputs.
    np.testing.assert_allclose(encoder.embed_batch(encoder.tokenize(TEXTS)), outputs["dense"], atol=1e-6)


def test_scores_are_flagembeddings_compute_score(tiny_m3: Path) -> None:
    """dense q·p, sparse Σ shared weights, colbert Σ_i max_j q_i·p_j / n_q, and the [0.4, 0.2, 0.4] hybrid."""
    encoder = BGEM3Encoder(spec_for(tiny_m3), runtime="torch")
    query, passages = TEXTS[:1], TEXTS[1:]
    core = EmbeddingCore(show_progress=False)
    kinds = ("dense", "sparse", "colbert")
    q = core.encode_outputs(encoder, query, "query", outputs=kinds)
    p = core.encode_outputs(encoder, passages, "document", outputs=kinds)
    candidates = [np.arange(len(passages))]
    ours = {
        "dense": [q["dense"][0] @ p["dense"].T],
        "sparse": sparse_scores(q["sparse"], p["sparse"], candidates),
        "colbert": maxsim_scores(q["colbert"], p["colbert"], candidates),
    }
    q_dense, q_lexical, q_colbert = direct(tiny_m3, query[0])
    for j, passage in enumerate(passages):
        p_dense, p_lexical, p_colbert = direct(tiny_m3, passage)
        dense = float(q_dense @ p_dense)
        sparse = sum(w * p_lexical[t] for t, w in q_lexical.items() if t in p_lexical)
        colbert = float((q_colbert @ p_colbert.T).max(axis=1).sum() / len(q_colbert))
        assert ours["dense"][0][j] == pytest.approx(dense, abs=1e-5)
        assert ours["sparse"][0][j] == pytest.approx(sparse, abs=1e-5)
        assert ours["colbert"][0][j] == pytest.approx(colbert, abs=1e-5)
        hybrid = weighted_sum(ours, {"dense": 0.4, "sparse": 0.2, "colbert": 0.4})[0][j]
        assert hybrid == pytest.approx((0.4 * dense + 0.2 * sparse + 0.4 * colbert) / 1.0, abs=1e-5)


def test_all_outputs_are_cached_and_the_heads_are_part_of_the_key(tiny_m3: Path, tmp_path: Path) -> None:
    spec = spec_for(tiny_m3)
    encoder = load_encoder(spec, runtime="torch")
    assert isinstance(encoder, BGEM3Encoder)
    kinds = ("dense", "sparse", "colbert")
    first = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path / "cache"))
    expected = first.encode_outputs(encoder, TEXTS, "document", outputs=kinds)
    second = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path / "cache"))
    again = second.encode_outputs(load_encoder(spec, runtime="torch"), TEXTS, "document", outputs=kinds)
    assert second.stats["encoded"] == 0
    assert np.array_equal(again["dense"], expected["dense"])
    assert again["sparse"].as_dicts() == expected["sparse"].as_dicts()
    assert np.array_equal(again["colbert"].values, expected["colbert"].values)

    retrained = shutil.copytree(tiny_m3, tmp_path / "retrained")
    torch.save(torch.nn.Linear(HIDDEN, 1).state_dict(), retrained / "sparse_linear.pt")
    assert BGEM3Encoder(spec_for(retrained)).fingerprint()["weights_sha256"] != encoder.fingerprint()["weights_sha256"]

    headless = shutil.copytree(tiny_m3, tmp_path / "headless")
    (headless / "colbert_linear.pt").unlink()
    dense_only = BGEM3Encoder(spec_for(headless), runtime="torch")
    assert dense_only.embed_outputs(dense_only.tokenize(TEXTS[:1]), ("dense", "sparse"))["sparse"]
    with pytest.raises(UnknownModelError, match=r"colbert_linear\.pt"):
        dense_only.embed_outputs(dense_only.tokenize(TEXTS[:1]), ("colbert",))


def test_the_registry_runs_bge_m3_with_its_heads_at_mtebs_revision() -> None:
    import mteb

    spec = load_model_registry()["BAAI/bge-m3"]
    assert spec.adapter == "bge-m3" and spec.pooling == "cls" and spec.normalize
    assert spec.revision == mteb.get_model_meta("BAAI/bge-m3").revision


def test_a_hybrid_run_lands_in_its_own_revision_and_records_its_settings(
    tiny_m3: Path, mirror: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SciFact through `evalkit.runner.run` with the tiny model: plumbing (random weights' scores mean nothing)."""
    import evalkit.pipeline.models
    import evalkit.runner as runner

    monkeypatch.setattr(evalkit.pipeline.models, "resolve_model", lambda name: spec_for(tiny_m3))
    config = runner.RunConfig(
        model="tiny",
        tasks=["SciFact"],
        data_dirs=[mirror],
        output_dir=tmp_path / "results",
        retrieval="hybrid",
        fusion="rrf",
        runtime="torch",
        cache_dir=tmp_path / "cache",
        show_progress=False,
    )
    summary = runner.run(config)
    (written,) = summary.written
    revision = written.result_file.parent  # an experiment of the model's revision, as mteb stores one
    assert (revision.parent.name, revision.name) == ("experiments", "retrieval_hybrid-rrf")
    record = json.loads((revision / "evalkit" / "SciFact.run.json").read_text())
    assert record["run_settings"]["retrieval"] == {
        "mode": "hybrid",
        "candidates": 100,
        "fusion": "rrf",
        "weights": {"dense": 1.0, "sparse": 0.3, "colbert": 1.0},
        "rrf_k": 60,
    }
    assert 0.0 <= written.outcome.splits[0].main_score <= 1.0
    again = runner.run(config)
    assert again.embedding_stats["encoded"] == 0  # corpus and queries, every output, from the cache
