"""The on-disk embedding cache: keys, round trips, crash safety, corruption, size and location. No model needed."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from evalkit.cache import CacheError, CacheSize, EmbeddingCache, default_cache_dir, text_digests
from evalkit.cache.index import DigestIndex
from evalkit.cache.keys import namespace_id, namespace_record

FINGERPRINT = {
    "model": "tiny",
    "revision": "abc123",
    "weights_sha256": "0" * 64,
    "pooling": "mean",
    "normalize": True,
    "max_length": 256,
}
KEY = {"role": "document", "prompt": "", "precision": "fp32"}
DIM = 8


def vectors_for(n: int, seed: int = 0, dim: int = DIM) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def texts_for(n: int, start: int = 0) -> list[str]:
    return [f"text number {i}" for i in range(start, start + n)]


def fill(cache: EmbeddingCache, texts: list[str], vectors: np.ndarray, rows_per_shard: int = 4, **key: object):
    namespace = cache.namespace(FINGERPRINT, **{**KEY, **key})  # type: ignore[arg-type]
    with namespace.writer(vectors.shape[1], rows_per_shard=rows_per_shard) as writer:
        writer.add(texts, vectors)
    return namespace


def shard_ids(folder: Path) -> list[str]:
    return sorted(p.name[len("shard-") : -len(".json")] for p in folder.glob("shard-*.json"))


def test_round_trip_in_input_order_with_misses(tmp_path):
    texts, vectors = texts_for(10), vectors_for(10)
    namespace = fill(EmbeddingCache(tmp_path), texts, vectors)

    asked = ["unknown", texts[7], texts[2], "also unknown", texts[9], texts[2]]
    found = namespace.lookup(asked)

    assert found.hit.tolist() == [False, True, True, False, True, True]
    np.testing.assert_array_equal(found.vectors, vectors[[7, 2, 9, 2]])
    assert found.vectors.dtype == np.float32
    assert namespace.contains(asked).tolist() == found.hit.tolist()
    # Digests computed once by the core are accepted wherever texts are.
    by_digest = namespace.lookup(text_digests(asked))
    np.testing.assert_array_equal(by_digest.vectors, found.vectors)


def test_empty_namespace_and_float16_storage(tmp_path):
    cache = EmbeddingCache(tmp_path)
    empty = cache.namespace(FINGERPRINT, **KEY)
    found = empty.lookup(["a", "b"])
    assert found.hit.tolist() == [False, False] and found.vectors.shape == (0, 0)
    assert not empty.path.exists()  # a read creates nothing

    vectors = vectors_for(3)
    compact = cache.namespace(FINGERPRINT, **KEY, dtype=np.float16)
    with compact.writer(DIM) as writer:
        writer.add(["a", "b", "c"], vectors)
    found = compact.lookup(["c", "a"])
    assert found.vectors.dtype == np.float16
    np.testing.assert_array_equal(found.vectors, vectors[[2, 0]].astype(np.float16))
    assert not empty.lookup(["a"]).hit.any()  # float16-rounded vectors are never served as float32


@pytest.mark.parametrize(
    "change",
    [
        {"role": "query"},
        {"prompt": "Represent this sentence for searching relevant passages: "},
        {"precision": "bf16"},
        {"dtype": np.float16},
        {"fingerprint": {**FINGERPRINT, "revision": "def456"}},
        {"fingerprint": {**FINGERPRINT, "weights_sha256": "1" * 64}},
        {"fingerprint": {**FINGERPRINT, "max_length": 512}},
        {"fingerprint": {**FINGERPRINT, "pooling": "cls"}},
        {"fingerprint": {**FINGERPRINT, "normalize": False}},
    ],
    ids=lambda change: next(iter(change)) if "fingerprint" not in change else "fingerprint",
)
def test_every_key_part_makes_its_own_namespace(tmp_path, change):
    cache = EmbeddingCache(tmp_path)
    texts = texts_for(5)
    base = fill(cache, texts, vectors_for(5))
    key = {"fingerprint": FINGERPRINT, **KEY, **change}
    other = cache.namespace(key.pop("fingerprint"), **key)

    assert other.namespace_id != base.namespace_id
    assert not other.lookup(texts).hit.any()
    assert base.lookup(texts).hit.all()


def test_namespace_ignores_key_order_and_rejects_unusable_keys():
    reordered = dict(reversed(list(FINGERPRINT.items())))
    assert namespace_id(namespace_record(reordered, **KEY)) == namespace_id(namespace_record(FINGERPRINT, **KEY))
    with pytest.raises(ValueError, match="fingerprint"):
        namespace_record({}, **KEY)
    with pytest.raises(TypeError, match="plain JSON"):
        namespace_id(namespace_record({"weights": object()}, **KEY))


def test_a_new_cache_object_sees_earlier_writes_and_another_task_reuses_shared_texts(tmp_path):
    corpus, vectors = texts_for(12), vectors_for(12)
    fill(EmbeddingCache(tmp_path), corpus, vectors)

    second_run = EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY)
    assert second_run.lookup(corpus).hit.all()

    other_task = corpus[3:6] + texts_for(2, start=100)  # same corpus texts, plus two of its own
    found = second_run.lookup(other_task)
    assert found.hit.tolist() == [True, True, True, False, False]
    np.testing.assert_array_equal(found.vectors, vectors[3:6])


def test_an_open_namespace_picks_up_shards_written_by_someone_else(tmp_path):
    reader = EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY)
    assert not reader.lookup(["x"]).hit.any()
    fill(EmbeddingCache(tmp_path), ["x"], vectors_for(1))
    assert reader.lookup(["x"]).hit.all()


def test_writer_commits_on_exit_even_after_an_error(tmp_path):
    namespace = EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY)
    with pytest.raises(RuntimeError, match="out of memory"), namespace.writer(DIM, rows_per_shard=100) as writer:
        writer.add(texts_for(3), vectors_for(3))
        raise RuntimeError("out of memory")
    assert namespace.lookup(texts_for(3)).hit.all()
    assert not list(namespace.path.glob("writer-*"))


def test_a_different_vector_size_under_the_same_key_is_an_error(tmp_path):
    namespace = fill(EmbeddingCache(tmp_path), texts_for(2), vectors_for(2))
    with pytest.raises(CacheError, match="fingerprint"), namespace.writer(DIM * 2):
        pass
    with namespace.writer(DIM) as writer, pytest.raises(ValueError, match="shape"):
        writer.add(["a"], vectors_for(1, dim=DIM * 2))


_KILLED_WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import numpy as np
    from evalkit.cache import EmbeddingCache

    root, kill_at, fingerprint = sys.argv[1], sys.argv[2], eval(sys.argv[3])
    texts = [f"text number {i}" for i in range(20)]
    vectors = np.random.default_rng(0).standard_normal((20, 8)).astype(np.float32)
    namespace = EmbeddingCache(root).namespace(fingerprint, role="document", prompt="", precision="fp32")

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    with namespace.writer(8, rows_per_shard=5) as writer:
        writer.add(texts[:15], vectors[:15])  # three shards, committed
        if kill_at == "mid_npy":  # half of the next .npy on disk, then death
            def half_then_die(handle, array, **kwargs):
                handle.write(array.tobytes()[: array.nbytes // 2])
                handle.flush()
                die()
            np.lib.format.write_array = half_then_die
        else:  # all data files written and synced, manifest staged but not yet renamed into place
            os.replace = die
        writer.add(texts[15:], vectors[15:])
    """
)


@pytest.mark.parametrize("kill_at", ["mid_npy", "before_commit"])
def test_kill_9_mid_shard_keeps_exactly_the_committed_shards(tmp_path, kill_at):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-c", _KILLED_WRITER, str(tmp_path), kill_at, repr(FINGERPRINT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == -9, done.stderr
    namespace = EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY)
    leftovers = {p.name for p in namespace.path.iterdir()}
    assert any(name.startswith("writer-") for name in leftovers)  # the dead writer's lock, before a reader looks

    found = namespace.lookup(texts_for(20))

    assert found.hit.tolist() == [True] * 15 + [False] * 5
    np.testing.assert_array_equal(found.vectors, vectors_for(20)[:15])
    # The dead writer's uncommitted files and lock are gone; three committed shards and meta.json remain.
    names = sorted(p.name for p in namespace.path.iterdir())
    assert len(names) == 3 * 3 + 1 and "meta.json" in names, names
    assert all(name.startswith("shard-") for name in names if name != "meta.json")


_CONCURRENT_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import numpy as np
    from evalkit.cache import EmbeddingCache

    root, start, fingerprint = sys.argv[1], int(sys.argv[2]), eval(sys.argv[3])
    texts = [f"text number {i}" for i in range(100)]
    vectors = np.random.default_rng(0).standard_normal((100, 8)).astype(np.float32)
    namespace = EmbeddingCache(root).namespace(fingerprint, role="document", prompt="", precision="fp32")
    with namespace.writer(8, rows_per_shard=2) as writer:
        Path(root, f"ready-{start}").touch()  # both writers open at once before either writes
        while len(list(Path(root).glob("ready-*"))) < 2:
            time.sleep(0.01)
        for i in range(start, start + 40, 2):
            writer.add(texts[i : i + 2], vectors[i : i + 2])
            namespace.lookup(texts[:60])  # reads while the other process writes
    """
)


def test_two_processes_writing_one_namespace_at_once_do_not_corrupt_each_other(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _CONCURRENT_WRITER, str(tmp_path), str(start), repr(FINGERPRINT)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start in (0, 20)  # texts 20..39 are written by both
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr

    cache = EmbeddingCache(tmp_path)
    found = cache.namespace(FINGERPRINT, **KEY).lookup(texts_for(60))

    assert found.hit.all()
    np.testing.assert_array_equal(found.vectors, vectors_for(100)[:60])
    assert cache.size().entries == 80  # the overlap is stored twice, harmlessly
    assert not list(tmp_path.rglob("writer-*")) and not list(tmp_path.rglob("*.tmp"))


def test_a_live_writers_shard_in_progress_is_left_alone(tmp_path):
    cache = EmbeddingCache(tmp_path)
    namespace = cache.namespace(FINGERPRINT, **KEY)
    with namespace.writer(DIM) as writer:
        in_progress = namespace.path / f"shard-{writer.writer_id}-000000.npy"
        in_progress.write_bytes(b"half a shard")
        EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY).refresh()  # another process opening the cache
        assert in_progress.exists()
    # Once the writer is gone (here: closed without committing that file), it is a leftover.
    EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY).refresh()
    assert not in_progress.exists()


def _truncate_npy(folder: Path, shard_id: str) -> None:
    path = folder / f"shard-{shard_id}.npy"
    path.write_bytes(path.read_bytes()[:-10])


def _flip_last_vector_byte(folder: Path, shard_id: str) -> None:
    path = folder / f"shard-{shard_id}.npy"
    data = bytearray(path.read_bytes())
    data[-3] ^= 0xFF
    path.write_bytes(bytes(data))


def _flip_idx_byte(folder: Path, shard_id: str) -> None:
    path = folder / f"shard-{shard_id}.idx"
    data = bytearray(path.read_bytes())
    data[5] ^= 0x01
    path.write_bytes(bytes(data))


def _garble_manifest(folder: Path, shard_id: str) -> None:
    (folder / f"shard-{shard_id}.json").write_bytes(b'{"format": 1, "rows": ')


def _delete_npy(folder: Path, shard_id: str) -> None:
    (folder / f"shard-{shard_id}.npy").unlink()


@pytest.mark.parametrize(
    "damage", [_truncate_npy, _flip_last_vector_byte, _flip_idx_byte, _garble_manifest, _delete_npy]
)
def test_a_damaged_shard_is_never_read_and_its_texts_are_misses(tmp_path, caplog, damage):
    texts, vectors = texts_for(12), vectors_for(12)
    folder = fill(EmbeddingCache(tmp_path), texts, vectors, rows_per_shard=4).path
    ids = shard_ids(folder)
    assert len(ids) == 3
    damage(folder, ids[1])  # holds texts 4..7

    namespace = EmbeddingCache(tmp_path).namespace(FINGERPRINT, **KEY)
    with caplog.at_level(logging.WARNING, logger="evalkit.cache"):
        found = namespace.lookup(texts)

    assert found.hit.tolist() == [True] * 4 + [False] * 4 + [True] * 4
    np.testing.assert_array_equal(found.vectors, np.concatenate([vectors[:4], vectors[8:]]))
    assert ids[1] in caplog.text
    assert shard_ids(folder) == [ids[0], ids[2]]
    assert not list(folder.glob(f"shard-{ids[1]}.*"))
    # The misses are encoded again and written; the next lookup hits everything.
    with namespace.writer(DIM) as writer:
        writer.add(texts[4:8], vectors[4:8])
    np.testing.assert_array_equal(namespace.lookup(texts).vectors, vectors)


def test_size_counts_bytes_entries_and_namespaces(tmp_path):
    cache = EmbeddingCache(tmp_path)
    assert cache.size() == CacheSize(bytes=0, entries=0, namespaces=0)
    fill(cache, texts_for(10), vectors_for(10))
    fill(cache, texts_for(3), vectors_for(3), role="query")

    size = cache.size()

    on_disk = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert (size.bytes, size.entries, size.namespaces) == (on_disk, 13, 2)
    listed = {info.key["role"]: info for info in cache.namespaces() if info.key}
    assert listed["query"].entries == 3 and listed["document"].entries == 10
    assert listed["document"].key["fingerprint"] == FINGERPRINT  # in clear, for people


def test_location_explicit_then_env_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_CACHE_DIR", str(tmp_path / "from-env"))
    assert EmbeddingCache().root == tmp_path / "from-env"
    assert EmbeddingCache(tmp_path / "explicit").root == tmp_path / "explicit"
    fill(EmbeddingCache(), ["a"], vectors_for(1))
    assert (tmp_path / "from-env" / "embeddings" / "v1").is_dir()

    monkeypatch.delenv("EVALKIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "evalkit"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # the XDG spec says to ignore a relative path
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "evalkit"


def test_digest_index_tells_apart_digests_sharing_their_first_eight_bytes():
    digests = np.zeros((4, 32), dtype=np.uint8)
    digests[:, 31] = [1, 2, 3, 4]  # same 8-byte prefix, different digests
    index = DigestIndex([digests[:2], digests[2:3]])
    queries = digests[[3, 1, 2, 0]]

    found = index.find(queries)

    assert found[0] == -1
    assert [(int(index.shard[p]), int(index.row[p])) for p in found[1:]] == [(0, 1), (1, 0), (0, 0)]


def test_text_digests_accept_any_python_string():
    assert text_digests(["\ud800 lone surrogate", ""]).shape == (2, 32)
