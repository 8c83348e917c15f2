"""Hostile inputs, class 3 (vectors that are not what their key says) and the model-folder and cache parts of
classes 6 and 7.

The contract: a file that changes a vector changes its key; an exported ONNX graph or a shard store file that was
changed or truncated since it was written is found on read and made again, never used; a model folder that is
malformed or holds only pickled weights is refused with exit 2 and one line naming the file, before any work; a
cache folder with files that are not the store's own still works, and one that is a file is refused up front.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import run_cli, snapshot

from evalkit.cache import EmbeddingCache
from evalkit.cache.store import CacheError
from evalkit.core import EmbeddingCore
from evalkit.distributed.shard_plan import plan_shards
from evalkit.distributed.shard_store import ShardStore
from evalkit.distributed.worker import EncoderSettings, ShardEncoder, ShardSlice, search_shards
from evalkit.encoders import load_encoder
from evalkit.encoders.hf import weights_fingerprint
from evalkit.encoders.onnx_runtime import checksum_path
from evalkit.errors import EvalkitError, SpecError, UnknownModelError
from evalkit.registry.models import ModelSpec, resolve_model

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
TEXTS = ["Hello World: Vitamin D and BONE fractures.", "x", "Mitochondria are the powerhouse of the cell."]


@pytest.fixture(scope="module")
def packaged() -> ModelSpec:
    return resolve_model(MODEL)


@pytest.fixture
def model_copy(packaged: ModelSpec, tmp_path: Path) -> Path:
    """The packaged all-MiniLM-L6-v2 folder, copied so a test may edit it."""
    assert packaged.local_path is not None
    return Path(shutil.copytree(packaged.local_path, tmp_path / "all-MiniLM-L6-v2"))


def encode(encoder, core: EmbeddingCore | None = None) -> np.ndarray:
    return (core or EmbeddingCore(show_progress=False, token_budget=512)).encode(encoder, TEXTS, "document")


def run_argv(tmp_path: Path, mirror: Path, model: Path | str) -> list[str]:
    return [
        "run", "--model", model, "--tasks", "STSBenchmark", "--data-dir", mirror, "--no-hub", "--quiet",
        "--cache-dir", tmp_path / "cache", "--output", tmp_path / "out",
    ]  # fmt: skip


# -- class 3: every file that changes a vector is in the key ------------------------------------------------------


def test_editing_tokenizer_config_names_a_new_key_and_serves_new_vectors(model_copy: Path, tmp_path: Path) -> None:
    spec = resolve_model(str(model_copy))
    core = EmbeddingCore(show_progress=False, token_budget=512, cache=EmbeddingCache(tmp_path / "cache"))
    before = load_encoder(spec, runtime="torch")
    cased_before = encode(before, core)

    config_file = model_copy / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["do_lower_case"] = False  # the uncased model now sees "Hello World" cased: other tokens, other vectors
    config_file.write_text(json.dumps(config))
    after = load_encoder(resolve_model(str(model_copy)), runtime="torch")

    assert after.fingerprint()["weights_sha256"] != before.fingerprint()["weights_sha256"]
    served = encode(after, core)
    fresh = encode(after)  # no cache at all
    np.testing.assert_array_equal(served, fresh)
    assert np.abs(served[0] - cased_before[0]).max() > 1e-3  # the old vectors are not served for the new tokenizer


@pytest.mark.parametrize(
    "edit",
    ["special_tokens_map.json", "vocab.txt", "1_Pooling/config.json", "sentence_bert_config.json", "modules.json"],
)
def test_every_file_a_loader_reads_is_in_the_fingerprint(model_copy: Path, edit: str) -> None:
    before = weights_fingerprint(model_copy)
    with (model_copy / edit).open("a") as handle:
        handle.write("\n")
    assert weights_fingerprint(model_copy) != before
    (model_copy / "README.md").write_text("edited")  # a file no loader reads leaves the key alone
    after = weights_fingerprint(model_copy)
    (model_copy / "README.md").write_text("edited again")
    assert weights_fingerprint(model_copy) == after


# -- class 3: the exported ONNX graph is checked on every load ----------------------------------------------------


@pytest.fixture(scope="module")
def exported(packaged: ModelSpec, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """One export (the slow part), and the torch vectors the graph must reproduce."""
    root = tmp_path_factory.mktemp("onnx-export")
    encode(load_encoder(packaged, runtime="onnx", artifact_dir=root))
    return root, encode(load_encoder(packaged, runtime="torch", artifact_dir=root))


def _graph(root: Path) -> Path:
    (graph,) = (root / "onnx").glob("*.onnx")
    return graph


def _scale_first_weight(graph: Path) -> None:
    """A graph that still loads and runs, with one weight matrix changed: what a tampered file looks like."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(graph))
    initializer = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    initializer.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(initializer) * 1.5, initializer.name))
    onnx.save(model, str(graph))


@pytest.mark.parametrize("damage", ["tampered", "truncated"])
def test_a_changed_onnx_graph_is_found_and_exported_again(
    packaged: ModelSpec, exported: tuple[Path, np.ndarray], tmp_path: Path, damage: str, caplog
) -> None:
    source, torch_vectors = exported
    shutil.copytree(source / "onnx", tmp_path / "onnx")
    graph = _graph(tmp_path)
    if damage == "tampered":
        _scale_first_weight(graph)
    else:
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])

    vectors = encode(load_encoder(packaged, runtime="onnx", artifact_dir=tmp_path))
    assert np.abs(vectors - torch_vectors).max() < 1e-5  # the faithful vectors, not the damaged graph's
    assert "exporting it again" in caplog.text
    again = load_encoder(packaged, runtime="onnx", artifact_dir=tmp_path)
    stamp = _graph(tmp_path).stat().st_mtime_ns
    np.testing.assert_array_equal(encode(again), vectors)
    assert _graph(tmp_path).stat().st_mtime_ns == stamp  # the new export is trusted on the next load


def test_a_graph_without_its_checksum_is_not_trusted(
    packaged: ModelSpec, exported: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    source, torch_vectors = exported
    shutil.copytree(source / "onnx", tmp_path / "onnx")
    graph = _graph(tmp_path)
    _scale_first_weight(graph)
    checksum_path(graph).unlink()  # a graph dropped in by hand
    vectors = encode(load_encoder(packaged, runtime="onnx", artifact_dir=tmp_path))
    assert np.abs(vectors - torch_vectors).max() < 1e-5


# -- class 3: the shard store verifies on every read path --------------------------------------------------------


@pytest.fixture(scope="module")
def shard_setup(packaged: ModelSpec):
    encoder = load_encoder(packaged, runtime="torch")
    core = EmbeddingCore(token_budget=64, show_progress=False)  # small batches, so several shards
    texts = [f"document number {i} about {word}" for i, word in enumerate(["bones", "cells", "stars"] * 8)]
    shards = list(plan_shards(core, encoder, texts, "ns", 8))
    assert len(shards) >= 2
    settings = EncoderSettings(packaged, "cpu", "fp32", "torch", 64, None, core.max_batch_size, encoder.fingerprint())
    return shards, settings


def _flip_a_vector_byte(npy: Path) -> None:
    data = bytearray(npy.read_bytes())
    data[-3] ^= 0x40  # a float of the last row: same size, still a valid .npy
    npy.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["flipped", "truncated"])
def test_a_damaged_shard_is_found_on_every_read_and_encoded_again(tmp_path: Path, shard_setup, damage: str) -> None:
    shards, settings = shard_setup
    store = ShardStore(tmp_path / "shards")
    worker = ShardEncoder(settings, store)
    for shard in shards:
        worker.encode(shard)
    good = {shard.key: store.read(shard.key) for shard in shards}
    victim = shards[1]
    npy = tmp_path / "shards" / f"{victim.key}.npy"

    def damage_it() -> None:
        if damage == "flipped":
            _flip_a_vector_byte(npy)
        else:
            npy.write_bytes(npy.read_bytes()[: npy.stat().st_size // 2])
        assert victim.key in store.committed_keys()  # still looks committed to a listing

    damage_it()
    assert store.open(victim.key) is None  # search's memory-mapped path checks the bytes too
    assert victim.key not in store.committed_keys()  # removed, so the next run encodes it again
    done = worker.encode(victim)
    assert done.computed
    np.testing.assert_array_equal(store.open(victim.key), good[victim.key])

    damage_it()
    assert store.verify(victim.key) is None and not npy.exists()  # what the driver checks before reusing a shard
    worker.encode(victim)
    damage_it()
    assert not worker.encode(shards[0]).computed  # an intact shard is reused
    assert worker.encode(victim).computed  # the worker's own check: a damaged shard is not taken as done
    np.testing.assert_array_equal(store.read(victim.key), good[victim.key])

    damage_it()
    rows = np.arange(len(victim.positions))
    with pytest.raises(EvalkitError, match="damaged since it was encoded") as caught:
        search_shards(store, [ShardSlice(victim.key, rows, rows)], good[victim.key][:2], 3)
    assert str(tmp_path / "shards") in str(caught.value) and "\n" not in str(caught.value)
    assert victim.key not in store.committed_keys()


# -- class 7 (cache part): files the store does not own --------------------------------------------------------


def test_stray_files_in_the_cache_folder_are_ignored(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path / "cache")
    namespace = cache.namespace({"model": "m"}, role="document", prompt="", precision="fp32")
    with namespace.writer(4) as writer:
        writer.add(["a", "b"], np.eye(2, 4, dtype=np.float32))
    store = cache.store
    (store / "ab").write_text("a stray file where a prefix folder would be")
    (store / "zz").mkdir()
    (store / "zz" / "notes").mkdir()
    (store / "README").write_text("mine")
    (tmp_path / "cache" / "notes.txt").write_text("mine too")
    (namespace.path / "backup.npy").write_bytes(b"not a shard")
    (namespace.path / "writer-someone.lock").mkdir()  # a folder under one of the store's own names
    before = snapshot(tmp_path / "cache")

    fresh = EmbeddingCache(tmp_path / "cache")
    again = fresh.namespace({"model": "m"}, role="document", prompt="", precision="fp32")
    found = again.lookup(["a", "b", "c"])
    assert found.hit.tolist() == [True, True, False]
    np.testing.assert_array_equal(found.vectors, np.eye(2, 4, dtype=np.float32))
    with again.writer(4) as writer:
        writer.add(["c"], np.ones((1, 4), dtype=np.float32))
    size = fresh.size()  # what `evalkit run` prints after the results are written
    assert size.namespaces == 1 and size.entries == 3
    after = snapshot(tmp_path / "cache")
    assert all(after.get(name) == digest for name, digest in before.items() if "shard-" not in name)


def test_a_cache_folder_that_is_a_file_is_refused_up_front(tmp_path: Path) -> None:
    (tmp_path / "cache").write_text("not a folder")
    with pytest.raises(CacheError, match="this is a file") as caught:
        EmbeddingCache(tmp_path / "cache")
    assert str(tmp_path / "cache") in str(caught.value)
    with pytest.raises(CacheError, match="inside a file"):
        EmbeddingCache(tmp_path / "cache" / "below")
    (tmp_path / "ok" / "embeddings").mkdir(parents=True)
    (tmp_path / "ok" / "embeddings" / "v1").write_text("")
    with pytest.raises(CacheError, match="this is a file"):
        EmbeddingCache(tmp_path / "ok")
    namespace_path = EmbeddingCache(tmp_path / "ok2").namespace({"m": 1}, role="query", prompt="", precision="fp32")
    namespace_path.path.parent.mkdir(parents=True)
    namespace_path.path.write_text("")
    with pytest.raises(CacheError, match="namespace folder"):
        namespace_path.lookup(["a"])


def test_run_with_a_cache_folder_that_is_a_file_exits_2_before_the_compute(
    tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cache").write_text("not a folder")
    before = snapshot(tmp_path)
    outcome = run_cli(run_argv(tmp_path, mirror, MODEL), capsys)
    assert outcome.code == 2, outcome.stderr
    assert str(tmp_path / "cache") in outcome.error_line
    assert snapshot(tmp_path) == before


# -- class 6 (model-folder part): one line naming the file -------------------------------------------------------


def test_a_malformed_pooling_config_exits_2_naming_the_file(
    model_copy: Path, tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pooling = model_copy / "1_Pooling" / "config.json"
    pooling.write_text('{\n  "word_embedding_dimension": 384,\n  "pooling_mode_mean_tokens": tru\n}')
    before = snapshot(tmp_path)
    outcome = run_cli(run_argv(tmp_path, mirror, model_copy), capsys)
    assert outcome.code == 2
    assert f"{pooling}:3: not valid JSON" in outcome.error_line
    assert snapshot(tmp_path) == before


LAYER_NORM_MODULES = json.dumps(
    [
        {"idx": 0, "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"},
    ]
)


@pytest.mark.parametrize(
    ("file", "content", "expected"),
    [
        ("1_Pooling/config.json", '["mean"]', "expected an object"),
        ("1_Pooling/config.json", '{"pooling_mode_cls_token": "yes"}', "field 'pooling_mode_cls_token'"),
        ("1_Pooling/config.json", '{"pooling_mode": "median"}', "field 'pooling_mode'"),
        ("modules.json", '[{"idx": 0, "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]', "first"),
        ("modules.json", LAYER_NORM_MODULES, "LayerNorm"),
        ("modules.json", '{"type": "Pooling"}', "expected an array"),
        ("config_sentence_transformers.json", '{"prompts": ["q"]}', "field 'prompts'"),
        ("sentence_bert_config.json", '{"max_seq_length": "256"}', "field 'max_seq_length'"),
        ("sentence_bert_config.json", '{"max_seq_length": 256, "do_lower_case": true}', "field 'do_lower_case'"),
    ],
)
def test_model_folder_settings_evalkit_would_not_honour_are_refused(
    model_copy: Path, file: str, content: str, expected: str
) -> None:
    (model_copy / "tokenizer_config.json").write_text('{"do_lower_case": false}')  # a cased tokenizer
    (model_copy / file).write_text(content)
    with pytest.raises(SpecError, match=expected) as caught:
        resolve_model(str(model_copy))
    assert str(caught.value).startswith(str(model_copy / file))


@pytest.mark.parametrize(
    ("pooling", "expected"),
    [
        ('{"pooling_mode_max_tokens": true}', "max"),
        ('{"pooling_mode_lasttoken": true}', "lasttoken"),
        ('{"pooling_mode_weightedmean_tokens": true, "include_prompt": false}', "weightedmean"),
        ('{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}', "cls+mean"),
    ],
)
def test_pooling_modes_once_refused_now_run_exactly(model_copy: Path, pooling: str, expected: str) -> None:
    """Every sentence-transformers pooling mode, and a prompt left out of the pooling, is computed as
    sentence-transformers computes it (tests/test_st_configs.py compares the vectors): read, not refused."""
    (model_copy / "1_Pooling" / "config.json").write_text(pooling)
    spec = resolve_model(str(model_copy))
    assert spec.pooling == expected
    assert spec.include_prompt is ("include_prompt" not in pooling)
    assert encode(load_encoder(spec, runtime="torch")).shape[0] == len(TEXTS)


def test_pickled_weights_only_exit_2_and_are_never_unpickled(
    model_copy: Path, tmp_path: Path, mirror: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (model_copy / "model.safetensors").unlink()
    (model_copy / "pytorch_model.bin").write_bytes(pickle.dumps(Payload()))
    before = snapshot(tmp_path)
    outcome = run_cli(run_argv(tmp_path, mirror, model_copy), capsys)
    assert outcome.code == 2
    assert "pickled weights are not loaded; convert to safetensors" in outcome.error_line
    assert str(model_copy / "pytorch_model.bin") in outcome.error_line
    assert not marker.exists()
    assert snapshot(tmp_path) == before


def test_bge_m3_heads_load_weights_only_and_a_bad_head_is_one_line(tmp_path: Path) -> None:
    from test_bge_m3 import build_tiny_m3, spec_for

    folder = build_tiny_m3(tmp_path / "m3")
    encoder = load_encoder(spec_for(folder), runtime="torch")
    assert encoder.sparse_linear.weight.shape == (1, 32)
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    torch.save({"weight": Payload()}, folder / "colbert_linear.pt")
    with pytest.raises(UnknownModelError, match="weights-only") as caught:
        _ = encoder.colbert_linear
    assert not marker.exists()
    assert str(caught.value).startswith(str(folder / "colbert_linear.pt")) and "\n" not in str(caught.value)


def test_an_uncased_tokenizer_with_sentence_transformers_lower_casing_is_accepted(model_copy: Path) -> None:
    (model_copy / "sentence_bert_config.json").write_text('{"max_seq_length": 128, "do_lower_case": true}')
    assert resolve_model(str(model_copy)).max_length == 128  # the tokenizer lower-cases already: same tokens
