"""Decoder embedders (Qwen3-Embedding, gte-Qwen2, e5-mistral and the like) through evalkit's own core: last-token
pooling over a left-padded batch, then Normalize, checked on a tiny randomly initialised Qwen3 built here against a
direct computation and against sentence-transformers. A model that needs its own code stays refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evalkit.core import EmbeddingCore
from evalkit.encoders.adapters import Encoding, build_encoder
from evalkit.errors import SpecError, UnknownModelError
from evalkit.registry.models import ModelSpec, resolve_model

HIDDEN = 32


@pytest.fixture(scope="module")
def texts(mirror: Path) -> list[str]:
    """STS sentences, and runs of four of them (5 to ~50 tokens), lower-cased for the tiny word-level vocabulary."""
    with open(mirror / "STSBenchmark" / "test.jsonl", encoding="utf-8") as handle:
        rows = [json.loads(line) for _, line in zip(range(120), handle, strict=False)]
    joined = [" ".join(row["sentence1"] for row in rows[start : start + 4]) for start in range(0, 80, 4)]
    texts = [row["sentence1"] for row in rows] + [row["sentence2"] for row in rows[:40]] + joined
    return [text.lower() for text in texts]


def build_tiny_qwen3(folder: Path, words: list[str]) -> tuple[torch.nn.Module, object]:
    """A 2-layer Qwen3 (hidden 32) with random weights and a word-level tokenizer that pads on the left and ends
    every text with ``<eos>`` (as Qwen3-Embedding's tokenizer appends ``<|endoftext|>``), saved as a
    sentence-transformers folder: Transformer, Pooling (lasttoken), Normalize."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, Qwen3Config, Qwen3Model

    vocab = {"<pad>": 0, "<eos>": 1, "<unk>": 2, **{word: number + 3 for number, word in enumerate(words)}}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.post_processor = processors.TemplateProcessing(single="$A <eos>", special_tokens=[("<eos>", 1)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        unk_token="<unk>",
        padding_side="left",
        model_max_length=128,
    )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=1,
    )
    model = Qwen3Model(config).eval()
    model.save_pretrained(folder, safe_serialization=True)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "1_Pooling").mkdir()
    (folder / "1_Pooling" / "config.json").write_text(
        json.dumps({"word_embedding_dimension": HIDDEN, "pooling_mode_lasttoken": True})
    )
    (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    return model, tokenizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, texts: list[str]) -> tuple[Path, torch.nn.Module, object]:
    folder = tmp_path_factory.mktemp("tiny-qwen3")
    words = sorted({word for text in texts for word in text.split()})[:500]  # the rest are <unk>
    model, tokenizer = build_tiny_qwen3(folder, words)
    return folder, model, tokenizer


def direct_vectors(model: torch.nn.Module, tokenizer, texts: list[str]) -> np.ndarray:
    """One text at a time, no padding: the last hidden state at the last token (``<eos>``), L2-normalised."""
    rows = []
    with torch.no_grad():
        for text in texts:
            ids = torch.tensor([tokenizer(text)["input_ids"]])
            last = model(input_ids=ids).last_hidden_state[0, -1]
            rows.append(torch.nn.functional.normalize(last, dim=0).numpy())
    return np.stack(rows)


def test_the_folder_reads_as_a_decoder_embedder(tiny) -> None:
    spec = resolve_model(str(tiny[0]))
    assert (spec.pooling, spec.padding_side, spec.normalize, spec.max_length) == ("lasttoken", "left", True, 128)
    assert spec.settings()["padding_side"] == "left"  # in the cache key: right-padded vectors are another key


def test_last_token_pooling_over_left_padding_equals_the_direct_computation(tiny, texts: list[str]) -> None:
    """Left padding and position ids, for this architecture: Qwen3Model, given no ``position_ids``, numbers the
    positions of the padded batch 0..T-1 (``cache_position``), so a left-padded text's tokens sit at positions
    shifted by its count of pads, unlike the same text run alone. Qwen3 encodes position only through rotary
    embeddings, whose attention scores depend on the *difference* of two positions, and the pads are masked out
    of attention: the shift cancels, and the vector is the unpadded one up to float rounding (it would not for
    learned absolute positions). The batch here does hold pads (texts of 5 to ~50 tokens), and the shift claim
    is checked directly: moving every position of an unpadded text by 7 leaves its vector within rounding."""
    folder, model, tokenizer = tiny
    spec = resolve_model(str(folder))
    encoder = build_encoder(spec, Encoding(runtime="auto"))
    assert encoder.runtime == "torch"  # left padding: the ONNX export is checked on right-padded batches only
    core = EmbeddingCore(show_progress=False, token_budget=2048, max_batch_size=64)
    ours = core.encode(encoder, texts, "document")
    lengths = {len(tokenizer(text)["input_ids"]) for text in texts}
    assert max(lengths) - min(lengths) > 20  # padded batches, not one length
    direct = direct_vectors(model, tokenizer, texts)
    assert float(np.abs(ours - direct).max()) < 1e-5
    ids = torch.tensor([tokenizer(texts[0])["input_ids"]])
    with torch.no_grad():
        shifted = model(input_ids=ids, position_ids=torch.arange(ids.shape[1]).unsqueeze(0) + 7).last_hidden_state
    assert float(np.abs(torch.nn.functional.normalize(shifted[0, -1], dim=0).numpy() - direct[0]).max()) < 1e-5


def test_sentence_transformers_gives_the_same_vectors(tiny, texts: list[str]) -> None:
    from sentence_transformers import SentenceTransformer

    folder = tiny[0]
    encoder = build_encoder(resolve_model(str(folder)), Encoding())
    ours = EmbeddingCore(show_progress=False).encode(encoder, texts, "query")
    theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=16, convert_to_numpy=True)
    assert float(np.abs(ours - theirs).max()) < 1e-5


def test_a_prompt_left_out_of_a_left_padded_pooling_equals_sentence_transformers(tiny, texts: list[str]) -> None:
    """``include_prompt: false`` with left padding: the prompt's tokens sit after each row's pads."""
    from sentence_transformers import SentenceTransformer

    folder = tiny[0]
    pooling = folder / "1_Pooling" / "config.json"
    original = pooling.read_text()
    pooling.write_text(json.dumps({"embedding_dimension": HIDDEN, "pooling_mode": "mean", "include_prompt": False}))
    try:
        spec = resolve_model(str(folder))
        prompt = "a man is "
        ours = EmbeddingCore(show_progress=False).encode(build_encoder(spec, Encoding()), texts, "query", prompt=prompt)
        theirs = SentenceTransformer(str(folder), device="cpu").encode(texts, prompt=prompt, batch_size=16)
    finally:
        pooling.write_text(original)
    assert float(np.abs(ours - theirs).max()) < 1e-5


def test_a_model_that_needs_its_own_code_is_refused_in_one_line(tiny, tmp_path: Path) -> None:
    folder = tiny[0]
    copy = tmp_path / "remote"
    copy.mkdir()
    for path in folder.iterdir():
        if path.is_file():
            (copy / path.name).symlink_to(path)
    config = json.loads((folder / "config.json").read_text())
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "modeling_qwen.Qwen3Model"}}))
    with pytest.raises(SpecError, match="trust_remote_code") as caught:
        resolve_model(str(copy))
    assert str(caught.value).startswith(str(copy / "config.json")) and "\n" not in str(caught.value)
    # and the encoder refuses it too, whatever built the spec
    spec = ModelSpec(name="remote", source="local", local_path=copy, pooling="lasttoken", padding_side="left")
    with pytest.raises(UnknownModelError, match="trust_remote_code") as caught_encoder:
        build_encoder(spec, Encoding(runtime="torch"))
    assert "\n" not in str(caught_encoder.value)
