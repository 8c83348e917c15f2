"""The pieces of ``--backend ray`` that need no Ray: shard plan, shard store, a worker's encoding and search.

The claim to hold: a corpus encoded shard by shard, in any order, by any worker, gives the local core's vectors bit
for bit, and a search over shards merged gives the single-process search's ranking and scores exactly.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evalkit.core import EmbeddingCore
from evalkit.distributed.ray_backend import ShardedCorpus
from evalkit.distributed.shard_plan import plan_shards
from evalkit.distributed.shard_store import ShardStore, shard_key
from evalkit.distributed.worker import EncoderSettings, ShardEncoder, merge, search_shards
from evalkit.encoders import load_encoder
from evalkit.errors import EvalkitError
from evalkit.registry.models import resolve_model
from evalkit.search.dense import TopK, exact_top_k

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="module")
def scifact_docs(mirror: Path) -> list[str]:
    with (mirror / "SciFact" / "corpus.jsonl").open() as handle:
        rows = [json.loads(line) for _, line in zip(range(240), handle, strict=False)]
    texts = [f"{row['title']} {row['text']}" for row in rows]
    return texts + texts[:7]  # duplicates: encoded once, stored once


def test_store_commits_with_the_manifest_last_and_rejects_damage(tmp_path: Path) -> None:
    store = ShardStore(tmp_path / "shards")
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4)
    key = shard_key("ns", ["a", "b", "c"])
    assert key != shard_key("ns", ["a", "c", "b"]) != shard_key("other", ["a", "b", "c"])
    assert store.read(key) is None and store.committed([key]) == set()
    store.write(key, vectors)
    np.testing.assert_array_equal(store.read(key), vectors)
    assert store.committed([key, "nope"]) == {key} and not list((tmp_path / "shards").glob("*.tmp-*"))

    (tmp_path / "shards" / f"{key}.npy").write_bytes(b"garbage")  # damaged: absent, so computed again
    assert store.read(key) is None
    half = shard_key("ns", ["x"])
    (tmp_path / "shards" / f"{half}.npy").write_bytes(b"killed mid-write")  # no manifest: never committed
    assert store.committed([half]) == set() and store.read(half) is None


def test_store_takes_an_fsspec_url() -> None:
    store = ShardStore("memory://evalkit-test/shards")
    store.write("k", np.ones((2, 3), dtype=np.float32))
    np.testing.assert_array_equal(store.read("k"), np.ones((2, 3), dtype=np.float32))
    assert store.committed(["k"]) == {"k"}


@pytest.mark.parametrize(("chunk_size", "shard_size"), [(100, 30), (4096, 64)])
def test_shards_in_any_order_give_the_local_cores_vectors_bit_for_bit(
    scifact_docs: list[str], tmp_path: Path, chunk_size: int, shard_size: int
) -> None:
    spec = resolve_model(MODEL)
    encoder = load_encoder(spec)
    core = EmbeddingCore(token_budget=4096, chunk_size=chunk_size, show_progress=False)
    local = core.encode(encoder, scifact_docs, "document")

    from evalkit.core.embed import dedup

    distinct, inverse = dedup(scifact_docs)
    shards = list(plan_shards(core, encoder, distinct, "ns", shard_size))
    assert len(shards) > 3 and sorted(np.concatenate([s.positions for s in shards])) == list(range(len(distinct)))
    settings = EncoderSettings(spec, "cpu", "fp32", "auto", 4096, None, core.max_batch_size, encoder.fingerprint())
    store = ShardStore(tmp_path / "shards")
    worker = ShardEncoder(settings, store)
    for shard in reversed(shards):  # any order, any worker
        worker.encode(shard)
    assembled = np.empty_like(local[: len(distinct)])
    for shard in shards:
        assembled[shard.positions] = store.read(shard.key)
    np.testing.assert_array_equal(assembled[inverse], local)  # identical, not close


def test_a_worker_with_other_weights_or_settings_refuses(tmp_path: Path) -> None:
    spec = resolve_model(MODEL)
    fingerprint = dict(load_encoder(spec).fingerprint())
    other = EncoderSettings(spec, "cpu", "fp32", "auto", 4096, None, 256, {**fingerprint, "weights_sha256": "x"})
    with pytest.raises(EvalkitError, match="not the driver's"):
        ShardEncoder(other, ShardStore(tmp_path))
    ShardEncoder(replace(other, fingerprint=fingerprint), ShardStore(tmp_path))


def same_ranking_up_to_last_bit(a: TopK, b: TopK) -> None:
    """Scores within a float32 rounding of each other (a matrix product's last bit depends on where a row sits in
    it), and the same documents in the same places except where two neighbours' scores are that close."""
    np.testing.assert_allclose(a.scores, b.scores, rtol=0, atol=3e-7)
    for row in range(len(a.indices)):
        for position in np.flatnonzero(a.indices[row] != b.indices[row]):
            neighbours = b.scores[row, max(0, position - 1) : position + 2]
            assert np.ptp(neighbours) < 1e-6 or position == a.indices.shape[1] - 1, (row, position)


def test_sharded_search_equals_one_search_over_everything(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    docs = rng.standard_normal((5000, 32)).astype(np.float32)
    queries = rng.standard_normal((40, 32)).astype(np.float32)
    store = ShardStore(tmp_path / "shards")
    shard_of = (np.arange(5000) * 7 % 5).astype(np.int32)  # documents scattered over 5 shards
    row_of = np.zeros(5000, dtype=np.int64)
    keys = []
    for number in range(5):
        members = np.flatnonzero(shard_of == number)
        rows = rng.permutation(len(members))  # a shard's own row order
        row_of[members] = rows
        stored = np.empty((len(members), 32), dtype=np.float32)
        stored[rows] = docs[members]
        keys.append(f"shard{number}")
        store.write(keys[-1], stored)
    corpus = ShardedCorpus(store, keys, shard_of, row_of, 32)
    parts = [search_shards(store, [piece], queries, 100) for piece in corpus.slices()]
    same_ranking_up_to_last_bit(merge(parts, 100), exact_top_k(queries, docs, 100))
    assert [len(piece.docs) for piece in corpus.slices()] == [1000] * 5


def test_merge_keeps_the_best_k_and_orders_ties_by_index() -> None:
    a = TopK(np.array([[5, 1]]), np.array([[0.9, 0.5]], dtype=np.float32))
    b = TopK(np.array([[0, 7]]), np.array([[0.9, 0.8]], dtype=np.float32))
    top = merge([a, b], 3)
    assert top.indices.tolist() == [[0, 5, 7]]


def test_search_tasks_take_runs_of_consecutive_shards() -> None:
    from evalkit.distributed.ray_backend import task_groups

    slices = list(range(20))
    assert task_groups(slices, 2) == [slices[0:5], slices[5:10], slices[10:15], slices[15:20]]  # type: ignore[arg-type]
    assert task_groups(slices[:3], 8) == [[0], [1], [2]]  # type: ignore[arg-type]
    assert task_groups([], 2) == []
