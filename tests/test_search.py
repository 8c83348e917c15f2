"""Exact dense search in chunks: equal to brute force for any chunking, shards, memory maps; faiss agrees."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.errors import EvalkitError
from evalkit.search.corpus_chunks import CorpusChunks, release_pages
from evalkit.search.dense import exact_top_k, l2_normalized
from evalkit.search.normalize import ChunkNormalizer
from evalkit.search.running_top_k import RunningTopK, best_first


def brute_force(queries: np.ndarray, docs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The whole score matrix, each row sorted by score descending, then index ascending."""
    full = l2_normalized(queries) @ l2_normalized(docs).T
    indices = np.broadcast_to(np.arange(full.shape[1]), full.shape)
    scores, order = best_first(full, indices)
    return order[:, :k], scores[:, :k]


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    return rng.normal(size=(13, 16)).astype(np.float32), rng.normal(size=(150, 16)).astype(np.float32)


@pytest.mark.parametrize("doc_chunk", [1, 7, 64, 150, 1000])
@pytest.mark.parametrize("k", [1, 10, 30, 149])
def test_chunked_search_equals_brute_force(vectors, doc_chunk: int, k: int) -> None:
    queries, docs = vectors
    top = exact_top_k(queries, docs, k, doc_chunk=doc_chunk, query_block=5, threads=2)
    expected_indices, expected_scores = brute_force(queries, docs, k)
    assert top.indices.dtype == np.int64 and top.scores.dtype == np.float32
    assert np.array_equal(top.indices, expected_indices)
    assert np.allclose(top.scores, expected_scores, atol=1e-6)


def test_k_beyond_the_corpus_returns_every_document(vectors) -> None:
    queries, docs = vectors
    top = exact_top_k(queries, docs[:20], 1000, doc_chunk=3)
    assert top.indices.shape == (13, 20)
    assert np.array_equal(np.sort(top.indices, axis=1), np.broadcast_to(np.arange(20), (13, 20)))
    assert np.array_equal(top.indices, brute_force(queries, docs[:20], 20)[0])


def test_shards_are_numbered_one_after_the_other(vectors) -> None:
    queries, docs = vectors
    shards = [docs[:40], docs[40:40], docs[40:41], docs[41:]]  # uneven, one empty, one a single row
    top = exact_top_k(queries, shards, 25, doc_chunk=16)
    assert np.array_equal(top.indices, brute_force(queries, docs, 25)[0])


def test_read_only_memory_maps_are_searched_in_place(vectors, tmp_path: Path) -> None:
    """A read-only map would raise on any in-place write, and the normaliser only ever sees one chunk."""
    queries, docs = vectors
    np.save(tmp_path / "a.npy", docs[:70])
    np.save(tmp_path / "b.npy", docs[70:])
    shards = [np.load(tmp_path / name, mmap_mode="r") for name in ("a.npy", "b.npy")]
    top = exact_top_k(queries, shards, 30, doc_chunk=32)
    assert np.array_equal(top.indices, brute_force(queries, docs, 30)[0])
    assert np.array_equal(np.concatenate(shards), docs)  # released pages read back unchanged


def test_no_more_than_one_chunk_is_normalised_at_a_time(vectors, monkeypatch: pytest.MonkeyPatch) -> None:
    """The memory bound by construction: every copy of corpus rows is a chunk, never the corpus."""
    queries, docs = vectors
    seen: list[int] = []
    original = ChunkNormalizer.__call__

    def recording(self: ChunkNormalizer, rows: np.ndarray, **kwargs) -> np.ndarray:
        seen.append(len(rows))
        return original(self, rows, **kwargs)

    monkeypatch.setattr(ChunkNormalizer, "__call__", recording)
    exact_top_k(queries, docs, 10, doc_chunk=32)
    assert sum(seen) == len(docs) and max(seen) <= 32


def test_chunk_normaliser_is_l2_normalized_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    vectors = (rng.normal(size=(1000, 48)) * rng.uniform(1e-3, 1e3, size=(1000, 1))).astype(np.float32)
    vectors[17] = 0.0
    normalise = ChunkNormalizer()
    for start, stop in [(0, 300), (300, 600), (600, 650), (650, 1000)]:  # the buffers shrink and grow again
        assert np.array_equal(normalise(vectors[start:stop], what="document"), l2_normalized(vectors[start:stop]))
    vectors[700, 3] = np.inf
    with pytest.raises(EvalkitError, match="document vector 1200"):
        normalise(vectors[600:], what="document", first_row=1100)


def test_results_do_not_depend_on_thread_count(vectors) -> None:
    queries, docs = vectors
    one = exact_top_k(queries, docs, 40, doc_chunk=8, threads=1)
    many = exact_top_k(queries, docs, 40, doc_chunk=8, threads=5)
    assert np.array_equal(one.indices, many.indices) and np.array_equal(one.scores, many.scores)


def test_without_threadpoolctl_one_worker_gives_the_same(vectors, monkeypatch: pytest.MonkeyPatch) -> None:
    queries, docs = vectors
    expected = exact_top_k(queries, docs, 40, doc_chunk=8, threads=3)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)
    top = exact_top_k(queries, docs, 40, doc_chunk=8, threads=3)
    assert np.array_equal(top.indices, expected.indices)
    assert np.allclose(top.scores, expected.scores, atol=1e-6)


def test_exact_ties_come_out_by_index() -> None:
    """Vectors of ±0.5 in four dimensions are exactly unit length, so duplicate documents tie exactly."""
    base = np.array([[0.5, 0.5, 0.5, 0.5, 0], [0.5, -0.5, 0.5, 0.5, 0], [0, 0.5, 0.5, 0.5, 0.5]], dtype=np.float32)
    docs = base[np.random.default_rng(3).integers(0, 3, size=40)]
    top = exact_top_k(base, docs, 40, doc_chunk=6)
    expected_indices, expected_scores = brute_force(base, docs, 40)
    assert np.array_equal(top.scores, expected_scores)
    assert np.array_equal(top.indices, expected_indices)


def test_half_precision_shards_are_computed_in_float32(vectors) -> None:
    queries, docs = vectors
    halves = (docs * 300).astype(np.float16)  # squares beyond float16's range: normalising in float16 gives inf
    top = exact_top_k(queries, halves, 10, doc_chunk=50)
    assert np.array_equal(top.indices, brute_force(queries, halves.astype(np.float32), 10)[0])


def test_nothing_to_search() -> None:
    assert exact_top_k(np.ones((3, 4)), np.zeros((0, 4)), 10).indices.shape == (3, 0)
    assert exact_top_k(np.ones((0, 4)), np.ones((5, 4)), 10).scores.shape == (0, 5)
    assert exact_top_k(np.ones((2, 4)), [], 10).indices.shape == (2, 0)


def test_bad_input_is_refused(vectors) -> None:
    queries, docs = vectors
    broken = docs.copy()
    broken[97, 3] = np.nan
    with pytest.raises(EvalkitError, match="document vector 97"):
        exact_top_k(queries, broken, 5, doc_chunk=10)
    with pytest.raises(ValueError, match="dimensions"):
        exact_top_k(queries[:, :8], docs, 5)
    with pytest.raises(ValueError, match="different widths"):
        exact_top_k(queries, [docs, docs[:, :8]], 5)
    with pytest.raises(EvalkitError, match="unknown search backend"):
        exact_top_k(queries, docs, 5, search_backend="annoy")  # type: ignore[arg-type]


def test_running_top_k_over_ragged_tiles() -> None:
    rng = np.random.default_rng(11)
    scores = rng.normal(size=(9, 500)).astype(np.float32)
    best = RunningTopK(9, 37)
    start = 0
    for width in (3, 50, 1, 200, 46, 200):
        best.add_tile(scores[:, start : start + width], 0, start)
        start += width
    best.flush()
    got_scores, got_indices = best_first(best.scores, best.indices)
    expected = np.argsort(-scores, axis=1, kind="stable")[:, :37]
    assert np.array_equal(got_indices, expected)
    assert np.array_equal(got_scores, np.take_along_axis(scores, expected, axis=1))


def test_chunks_cover_the_corpus_once() -> None:
    shards = [np.zeros((5, 2)), np.zeros((0, 2)), np.zeros((3, 2))]
    chunks = list(CorpusChunks(shards, 2))
    assert [(c.start, len(c.vectors)) for c in chunks] == [(0, 2), (2, 2), (4, 1), (5, 2), (7, 1)]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_released_pages_leave_resident_memory(tmp_path: Path) -> None:
    """Without the release a search over a memory-mapped corpus would end with the whole file resident."""
    np.save(tmp_path / "big.npy", np.ones((8192, 1024), dtype=np.float32))  # 32 MiB
    mapped = np.load(tmp_path / "big.npy", mmap_mode="r")
    assert float(mapped.sum(dtype=np.float64)) == 8192 * 1024  # every page read, so resident
    before = _resident_kib()
    release_pages(mapped)
    assert before - _resident_kib() > 16 * 1024
    assert float(mapped[::512].sum(dtype=np.float64)) == 16 * 1024  # and readable again


def _resident_kib() -> int:
    status = Path("/proc/self/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmRSS:")))


def test_faiss_backend_ranks_as_the_numpy_backend(vectors) -> None:
    pytest.importorskip("faiss")
    queries, docs = vectors
    shards = [docs[:100], docs[100:]]
    ours = exact_top_k(queries, shards, 60, doc_chunk=16)
    theirs = exact_top_k(queries, shards, 60, doc_chunk=16, search_backend="faiss", threads=1)
    assert np.array_equal(ours.indices, theirs.indices)
    assert np.allclose(ours.scores, theirs.scores, atol=1e-6)
    assert exact_top_k(queries, docs, 500, search_backend="faiss").indices.shape == (13, 150)


def test_faiss_backend_without_faiss_says_how_to_install_it(vectors, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes ``import faiss`` raise ImportError
    queries, docs = vectors
    with pytest.raises(EvalkitError, match=r"evalkit\[faiss\]"):
        exact_top_k(queries, docs, 5, search_backend="faiss")


def test_exact_ties_at_the_cut_keep_the_smaller_index() -> None:
    """Duplicates of a document tie exactly; where the tie straddles the k-th place, the earliest documents stay,
    whichever worker or chunk met them first."""
    rng = np.random.default_rng(9)
    queries, docs = rng.normal(size=(30, 32)).astype(np.float32), rng.normal(size=(2000, 32)).astype(np.float32)
    docs[1500:1510] = docs[3]
    expected_indices, _ = brute_force(queries, docs, 100)
    for threads in (1, 2, 3):
        top = exact_top_k(queries, [docs[:900], docs[900:]], 100, doc_chunk=500, query_block=16, threads=threads)
        assert np.array_equal(top.indices, expected_indices)


def test_chunk_reader_reads_what_the_map_holds(tmp_path: Path) -> None:
    from evalkit.search.corpus_chunks import ChunkReader

    values = np.arange(5000 * 24, dtype=np.float32).reshape(5000, 24)
    np.save(tmp_path / "v.npy", values)
    mapped = np.load(tmp_path / "v.npy", mmap_mode="r")
    reader = ChunkReader()
    for start, stop in [(0, 7), (1000, 3000), (4990, 5000)]:
        got = reader.read(mapped[start:stop])
        assert not isinstance(got, np.memmap) and np.array_equal(got, values[start:stop])
    assert reader.read(values[10:20]) is not None and np.array_equal(reader.read(values[::2][:5]), values[::2][:5])
    reader.close()
