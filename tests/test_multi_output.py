"""Encoders with several outputs (dense, sparse, ColBERT) through the one core and the content-addressed cache."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from evalkit.cache import EmbeddingCache
from evalkit.cache.keys import namespace_id, namespace_record
from evalkit.core import EmbeddingCore
from evalkit.core.outputs import MultiVectorRows, SparseRows
from evalkit.errors import EvalkitError

ALL = ("dense", "sparse", "colbert")


def dense_of(text: str) -> list[float]:
    return [len(text), ord(text[0])]


def sparse_of(text: str) -> dict[int, float]:
    """Term weights: each character's code point, weighted by how often it occurs."""
    return {ord(c): float(n) for c, n in sorted(Counter(text).items())}


def colbert_of(text: str) -> np.ndarray:
    """One 3-d vector per character."""
    return np.array([[ord(c), i, 1.0] for i, c in enumerate(text)], dtype=np.float32).reshape(-1, 3)


class MultiEncoder:
    """A fake multi-output adapter whose outputs are functions of the text; counts what it was asked."""

    name = "multi"
    output_kinds = ALL

    def __init__(self) -> None:
        self.encoded: list[str] = []
        self.calls: list[tuple[str, ...]] = []
        self.vocab: dict[int, str] = {}

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        return [prompt + t for t in texts]

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        ids = []
        for text in texts:
            key = len(self.vocab)
            self.vocab[key] = text
            ids.append([key] * len(text))
        return ids

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        return self.embed_outputs(token_ids, ("dense",))["dense"]

    def embed_outputs(self, token_ids: list[list[int]], outputs: tuple[str, ...]) -> dict[str, object]:
        texts = [self.vocab[ids[0]] for ids in token_ids]
        self.calls.append(outputs)
        self.encoded.extend(texts)
        result: dict[str, object] = {}
        if "dense" in outputs:
            result["dense"] = np.array([dense_of(t) for t in texts], dtype=np.float32)
        if "sparse" in outputs:
            rows = [sparse_of(t) for t in texts]
            lengths = np.array([len(r) for r in rows])
            offsets = np.concatenate([[0], np.cumsum(lengths)])
            ids = np.array([i for r in rows for i in r], dtype=np.int32)
            weights = np.array([w for r in rows for w in r.values()], dtype=np.float32)
            result["sparse"] = SparseRows.from_arrays(offsets, ids, weights)
        if "colbert" in outputs:
            vectors = [colbert_of(t) for t in texts]
            result["colbert"] = MultiVectorRows.from_lengths(
                np.array([len(v) for v in vectors]), np.concatenate(vectors)
            )
        return result

    def fingerprint(self) -> dict[str, object]:
        return {"model": self.name}


def assert_outputs_of(texts: list[str], outputs: dict[str, object]) -> None:
    if "dense" in outputs:
        assert np.array_equal(outputs["dense"], np.array([dense_of(t) for t in texts], dtype=np.float32))
    if "sparse" in outputs:
        sparse = outputs["sparse"]
        assert isinstance(sparse, SparseRows) and len(sparse) == len(texts)
        assert sparse.as_dicts() == [sparse_of(t) for t in texts]
    if "colbert" in outputs:
        colbert = outputs["colbert"]
        assert isinstance(colbert, MultiVectorRows) and len(colbert) == len(texts)
        for i, text in enumerate(texts):
            assert np.array_equal(colbert.row(i), colbert_of(text))


TEXTS = ["ccc", "a", "bb", "a", "dddd", "ccc", "e" * 10, "abcab"]


def test_one_forward_pass_fills_every_output_in_input_order() -> None:
    encoder = MultiEncoder()
    outputs = EmbeddingCore(batch_size=2, show_progress=False).encode_outputs(encoder, TEXTS, "document", outputs=ALL)
    assert set(outputs) == set(ALL)
    assert_outputs_of(TEXTS, outputs)
    assert sorted(encoder.encoded) == sorted(set(TEXTS))  # each distinct text once, all outputs from that pass
    assert encoder.calls and all(call == ALL for call in encoder.calls)


def test_dense_alone_is_the_dense_path() -> None:
    encoder = MultiEncoder()
    core = EmbeddingCore(show_progress=False)
    outputs = core.encode_outputs(encoder, TEXTS, "query", outputs=("dense",), prompt="q:")
    expected = core.encode(MultiEncoder(), TEXTS, "query", prompt="q:")
    assert np.array_equal(outputs["dense"], expected)
    assert encoder.calls == [("dense",)] * len(encoder.calls)


def test_each_output_is_cached_apart_and_a_later_run_encodes_only_what_it_lacks(tmp_path: Path) -> None:
    first = MultiEncoder()
    EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path), chunk_size=3).encode_outputs(
        first, TEXTS, "document", outputs=("dense", "sparse")
    )
    assert sorted(first.encoded) == sorted(set(TEXTS))

    again = MultiEncoder()
    core = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path))
    assert_outputs_of(TEXTS, core.encode_outputs(again, TEXTS, "document", outputs=("sparse", "dense")))
    assert again.encoded == [] and core.stats["cached"] == len(set(TEXTS))

    more = MultiEncoder()
    outputs = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode_outputs(
        more, TEXTS, "document", outputs=("sparse", "colbert")
    )
    assert_outputs_of(TEXTS, outputs)
    assert sorted(more.encoded) == sorted(set(TEXTS)) and set(more.calls) == {("colbert",)}  # sparse was cached

    dense_only = MultiEncoder()  # the dense rows written by encode_outputs are the ones encode reads
    vectors = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode(dense_only, TEXTS, "document")
    assert dense_only.encoded == [] and np.array_equal(vectors, [dense_of(t) for t in TEXTS])

    as_queries = MultiEncoder()
    EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode_outputs(
        as_queries, ["a", "zz"], "query", outputs=("sparse",)
    )
    assert sorted(as_queries.encoded) == ["a", "zz"]  # another role, another namespace


def test_a_corrupt_ragged_row_is_dropped_and_its_texts_encoded_again(tmp_path: Path, caplog) -> None:
    texts = [f"text {i}" for i in range(12)]
    cache = EmbeddingCache(tmp_path)
    EmbeddingCore(show_progress=False, cache=cache, chunk_size=4).encode_outputs(
        MultiEncoder(), texts, "document", outputs=("colbert",)
    )
    namespace = cache.ragged_namespace(
        {"model": "multi"}, output="colbert", role="document", prompt="", precision="fp32"
    )
    shards = sorted(namespace.path.glob("shard-*.npy"))
    assert len(shards) == 3  # one per chunk
    data = bytearray(shards[1].read_bytes())
    data[-5] ^= 0xFF  # a byte of the last row of the second chunk
    shards[1].write_bytes(bytes(data))

    encoder = MultiEncoder()
    with caplog.at_level(logging.WARNING, logger="evalkit.cache"):
        outputs = EmbeddingCore(show_progress=False, cache=EmbeddingCache(tmp_path)).encode_outputs(
            encoder, texts, "document", outputs=("colbert",)
        )
    assert_outputs_of(texts, outputs)
    assert len(encoder.encoded) == 4 and "checksum" in caplog.text  # exactly the damaged shard's texts


def test_ragged_rows_round_trip_across_shards_with_empty_rows_and_misses(tmp_path: Path) -> None:
    fingerprint = {"model": "tiny", "weights_sha256": "0" * 64}
    namespace = EmbeddingCache(tmp_path).ragged_namespace(
        fingerprint, output="sparse", role="document", prompt="", precision="fp32"
    )
    texts = [f"t{i}" for i in range(7)]
    rows = [{3: 0.5, 9: 1.0}, {}, {1: 2.0}, {4: 1.0, 5: 1.0, 6: 1.0}, {}, {2: 0.25}, {7: 3.0, 8: 4.0}]
    lengths = np.array([len(r) for r in rows])
    written = SparseRows.from_arrays(
        np.concatenate([[0], np.cumsum(lengths)]),
        np.array([i for r in rows for i in r], dtype=np.int32),
        np.array([w for r in rows for w in r.values()], dtype=np.float32),
    )
    with namespace.writer((), rows_per_shard=3, max_shard_bytes=3 * 8) as writer:
        writer.add(texts, written.offsets, written.values)
    assert len(list(namespace.path.glob("shard-*.json"))) >= 3

    asked = ["t6", "nope", "t1", "t3", "t6", "t0"]
    found = (
        EmbeddingCache(tmp_path)
        .ragged_namespace(fingerprint, output="sparse", role="document", prompt="", precision="fp32")
        .lookup(asked)
    )
    assert found.hit.tolist() == [True, False, True, True, True, True]
    assert SparseRows(found.offsets, found.values).as_dicts() == [rows[6], rows[1], rows[3], rows[6], rows[0]]


def test_an_uncommitted_ragged_shard_is_never_read(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    namespace = cache.ragged_namespace({"model": "m"}, output="colbert", role="query", prompt="", precision="fp32")
    with namespace.writer((3,)) as writer:
        writer.add(["a", "b"], np.array([0, 1, 3]), np.ones((3, 3), dtype=np.float32))
    (manifest,) = namespace.path.glob("shard-*.json")
    manifest.unlink()  # as if the writer died before its commit point
    fresh = EmbeddingCache(tmp_path).ragged_namespace(
        {"model": "m"}, output="colbert", role="query", prompt="", precision="fp32"
    )
    assert not fresh.lookup(["a", "b"]).hit.any()
    assert not list(fresh.path.glob("shard-*"))  # the dead writer's files are cleaned up


def test_dense_namespaces_keep_their_names_and_outputs_get_their_own() -> None:
    key = {"role": "document", "prompt": "", "precision": "fp32"}
    dense = namespace_record({"model": "m"}, **key)
    assert "output" not in dense  # caches written before multi-output encoders are still found
    assert namespace_record({"model": "m"}, **key, output="dense") == dense
    names = {namespace_id(namespace_record({"model": "m"}, **key, output=kind)) for kind in ALL}
    assert len(names) == 3


def test_an_output_the_model_lacks_is_a_clear_error() -> None:
    class DenseOnly(MultiEncoder):
        output_kinds = ("dense",)

    with pytest.raises(EvalkitError, match="sparse"):
        EmbeddingCore(show_progress=False).encode_outputs(DenseOnly(), ["x"], "query", outputs=("dense", "sparse"))
    with pytest.raises(EvalkitError, match="unknown output"):
        EmbeddingCore(show_progress=False).encode_outputs(MultiEncoder(), ["x"], "query", outputs=("lexical",))


def test_out_of_memory_backoff_keeps_every_output_right() -> None:
    class FlakyEncoder(MultiEncoder):
        def embed_outputs(self, token_ids: list[list[int]], outputs: tuple[str, ...]) -> dict[str, object]:
            if len(token_ids) > 2:
                raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
            return super().embed_outputs(token_ids, outputs)

    core = EmbeddingCore(show_progress=False, token_budget=100)
    texts = [f"text number {i}" for i in range(7)]
    assert_outputs_of(texts, core.encode_outputs(FlakyEncoder(), texts, "document", outputs=ALL))
    assert core.stats["oom_retries"] >= 1


def test_no_texts_give_empty_outputs() -> None:
    outputs = EmbeddingCore(show_progress=False).encode_outputs(MultiEncoder(), [], "query", outputs=ALL)
    assert [len(outputs[kind]) for kind in ALL] == [0, 0, 0]
