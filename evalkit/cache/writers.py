"""Writing to the embedding cache: a writer per process, its shards committed one by one, and the cleaning of
what dead writers left behind.

Concurrent writers never share a file: each has a random writer id, names its shards ``<writer id>-<n>`` and holds
an ``flock`` on ``writer-<writer id>.lock`` while it runs, so a reader can tell a dead writer's leftovers (deleted)
from a live writer's shard in progress (left alone).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

import numpy as np

from evalkit.cache.keys import as_digests
from evalkit.cache.shards import MANIFEST_SUFFIX, SHARD_PREFIX, CacheError, fsync_dir, write_shard

try:
    import fcntl
except ImportError:  # Windows: no flock, so leftovers are only cleaned once they are old
    fcntl = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from evalkit.cache.store import CacheNamespace

logger = logging.getLogger("evalkit.cache.store")

_LOCK_PREFIX = "writer-"
_LOCK_SUFFIX = ".lock"
_STALE_S = 24 * 3600
"""Age after which leftovers whose writer's liveness cannot be tested (no flock, staged temp files) are removed."""


def _shard_id_of(name: str) -> str | None:
    """``shard-<id>.<suffix>`` (or its staged manifest ``.shard-<id>.json.tmp``) → ``<id>``."""
    name = name.removeprefix(".").removesuffix(".tmp")
    if not name.startswith(SHARD_PREFIX) or "." not in name:
        return None
    return name[len(SHARD_PREFIX) :].split(".", 1)[0]


def _writer_alive(lock: Path) -> bool:
    """Whether the writer owning ``lock`` still runs: it holds an flock on the file while it does."""
    if fcntl is None:
        try:
            return time.time() - lock.stat().st_mtime < _STALE_S
        except FileNotFoundError:
            return False
    try:
        handle = lock.open("rb")
    except FileNotFoundError:
        return False
    with handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        return False  # we got the lock, so nobody holds it; closing the handle releases it


def clean_leftovers(folder: Path, names: list[str]) -> None:
    """Delete what dead writers left: uncommitted shard files, their staged manifests, their lock files."""
    names_set = set(names)
    uncommitted: dict[str, list[str]] = {}
    for name in names:
        shard_id = _shard_id_of(name)
        if shard_id is not None and f"{SHARD_PREFIX}{shard_id}{MANIFEST_SUFFIX}" not in names_set:
            uncommitted.setdefault(shard_id.split("-", 1)[0], []).append(name)
        elif name.endswith(".tmp"):  # a staged lock or meta.json whose writer died before renaming it
            path = folder / name
            try:
                if time.time() - path.stat().st_mtime > _STALE_S:
                    path.unlink(missing_ok=True)
            except OSError:
                pass
    writers = {name[len(_LOCK_PREFIX) : -len(_LOCK_SUFFIX)] for name in names if name.startswith(_LOCK_PREFIX)}
    for writer_id in writers | uncommitted.keys():
        try:
            _clean_writer(folder, writer_id, uncommitted.get(writer_id, []))
        except OSError as err:  # a folder or unreadable file under one of our names: not ours to fix, ignored
            logger.debug("embedding cache: leaving %s's leftovers in %s: %s", writer_id, folder, err)


def _clean_writer(folder: Path, writer_id: str, uncommitted: list[str]) -> None:
    lock = folder / f"{_LOCK_PREFIX}{writer_id}{_LOCK_SUFFIX}"
    if _writer_alive(lock):
        return
    # The writer is gone, so whatever it committed is committed by now: look again before deleting.
    for name in uncommitted:
        shard_id = _shard_id_of(name)
        if not (folder / f"{SHARD_PREFIX}{shard_id}{MANIFEST_SUFFIX}").exists():
            logger.debug("embedding cache: removing %s, left by a writer that died", folder / name)
            (folder / name).unlink(missing_ok=True)
    lock.unlink(missing_ok=True)


class _WriterLock:
    """An flock held for a writer's lifetime; created under a staged name so it is never seen unlocked."""

    def __init__(self, folder: Path, writer_id: str) -> None:
        staged = folder / f".{writer_id}{_LOCK_SUFFIX}.tmp"
        self.path = folder / f"{_LOCK_PREFIX}{writer_id}{_LOCK_SUFFIX}"
        self._handle: IO[bytes] = staged.open("xb")
        if fcntl is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.replace(staged, self.path)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self._handle.close()


class CacheWriter:
    """Buffers vectors and commits them a shard at a time, so a killed run loses at most one unflushed shard.

    Call :meth:`flush` after each chunk of work that should survive a crash; a shard is also committed whenever
    ``rows_per_shard`` rows are buffered, and on exit (even on an exception: what was computed is valid).
    """

    def __init__(self, namespace: CacheNamespace, dim: int, rows_per_shard: int) -> None:
        if dim < 1 or rows_per_shard < 1:
            raise ValueError(f"dim and rows_per_shard must be positive, got {dim} and {rows_per_shard}")
        self.namespace = namespace
        self.dim = dim
        self.rows_per_shard = rows_per_shard
        self.writer_id = uuid.uuid4().hex
        self.rows_written = 0
        self.shards_written = 0
        self._digests: list[np.ndarray] = []
        self._vectors: list[np.ndarray] = []
        self._buffered = 0
        self._lock: _WriterLock | None = None

    def __enter__(self) -> CacheWriter:
        self.namespace.refresh()
        if self.namespace.dim not in (None, self.dim):
            raise CacheError(
                f"the cache holds {self.namespace.dim}-dim vectors for this encoder setting, now given {self.dim}: "
                "the encoder's fingerprint misses a setting that changes its vectors",
                file=self.namespace.path,
            )
        folder = self.namespace.path
        folder.mkdir(parents=True, exist_ok=True)
        self._write_meta()
        self._lock = _WriterLock(folder, self.writer_id)
        return self

    def _write_meta(self) -> None:
        meta = self.namespace.path / "meta.json"
        if meta.exists():
            return
        record = {
            "namespace": self.namespace.namespace_id,
            "key": self.namespace.key,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        staged = meta.with_name(f".meta.json.{self.writer_id}.tmp")
        staged.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        os.replace(staged, meta)  # two writers racing write the same key; either file is right

    def add(self, keys: Sequence[str] | np.ndarray, vectors: np.ndarray) -> None:
        """Store ``vectors[i]`` for ``keys[i]`` (texts, or digests from ``text_digests``)."""
        if self._lock is None:
            raise RuntimeError("use the writer as a context manager: with namespace.writer(dim) as writer: ...")
        digests = as_digests(keys)
        vectors = np.asarray(vectors)
        if vectors.shape != (len(digests), self.dim):
            raise ValueError(f"expected vectors of shape ({len(digests)}, {self.dim}), got {vectors.shape}")
        if not len(digests):
            return
        self._digests.append(digests.copy())  # copies: the caller may reuse its buffers
        self._vectors.append(vectors.astype(self.namespace.dtype))
        self._buffered += len(digests)
        if self._buffered >= self.rows_per_shard:
            self._commit(full_shards_only=True)

    def flush(self) -> None:
        """Commit whatever is buffered now (as one shard, or several if more than ``rows_per_shard``)."""
        if self._buffered:
            self._commit(full_shards_only=False)

    def _commit(self, *, full_shards_only: bool) -> None:
        digests = np.concatenate(self._digests) if len(self._digests) > 1 else self._digests[0]
        vectors = np.concatenate(self._vectors) if len(self._vectors) > 1 else self._vectors[0]
        start = 0
        while len(digests) - start >= (self.rows_per_shard if full_shards_only else 1):
            stop = min(len(digests), start + self.rows_per_shard)
            shard_id = f"{self.writer_id}-{self.shards_written:06d}"
            write_shard(self.namespace.path, shard_id, digests[start:stop], vectors[start:stop])
            self.rows_written += stop - start
            self.shards_written += 1
            start = stop
            # Keep the buffer consistent after each shard, so a failed write loses nothing that was not committed.
            self._digests, self._vectors = [digests[start:]], [vectors[start:]]
            self._buffered = len(digests) - start
        if not self._buffered:
            self._digests, self._vectors = [], []

    def close(self) -> None:
        """Commit the rest and release the writer lock."""
        if self._lock is None:
            return
        try:
            self.flush()
        finally:
            self._lock.release()
            self._lock = None
            fsync_dir(self.namespace.path)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
