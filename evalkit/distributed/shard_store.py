"""Embedding shards on storage every worker reaches: a local folder, or any fsspec URL (``s3://``, ``gs://``, ...).

A shard is the vectors of a run of corpus texts, named by content: the SHA-256 of the embedding cache's namespace
(model fingerprint, role, prompt, precision — :mod:`evalkit.cache.keys`) and of the shard's text digests, in
order. So the store is the embedding cache at shard granularity: the same model, settings and texts find the same
shard, whichever run, worker or machine computed it, and a killed run resumes by skipping the shards present.

Each shard is two objects: ``<key>.npy`` (the vectors) and then ``<key>.json`` (rows, dim, the SHA-256 of the npy
bytes). The manifest is written last and is the commit: a shard without one, or whose bytes do not match it, is
absent and is computed again. On a local folder both are written to a temporary name and renamed, so a reader
never sees half a file; object stores make a whole object visible at once anyway. Every read path (:meth:`read`,
:meth:`open`, :meth:`verify`) checks the bytes against the manifest's SHA-256 and removes a shard that fails, so a
damaged or truncated shard is encoded again instead of staying "committed".
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.cache.keys import canonical_json, text_digests

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1


def shard_key(namespace: str, texts: Sequence[str]) -> str:
    """The content name of the shard holding ``texts`` (in this order) under a cache namespace id."""
    digest = hashlib.sha256(namespace.encode("ascii"))
    digest.update(text_digests(texts).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class ShardInfo:
    """A committed shard, from its manifest."""

    key: str
    rows: int
    dim: int
    sha256: str


class ShardStore:
    """Shards under one URL or folder; every method may be called from any process, concurrently.

    Two workers writing the same shard write the same bytes (the same key is the same content), so whichever
    rename lands last is as good as the first.
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        import fsspec

        self.url = str(url)
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        self.fs.makedirs(self.root, exist_ok=True)
        self._local = "file" in _protocols(self.fs)

    def __getstate__(self) -> dict[str, Any]:  # shipped to Ray workers as its URL; each opens its own filesystem
        return {"url": self.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    def _path(self, name: str) -> str:
        return f"{self.root.rstrip('/')}/{name}"

    def info(self, key: str) -> ShardInfo | None:
        """The shard's manifest, or None when it is not committed (or the manifest is unreadable)."""
        try:
            record = json.loads(self.fs.cat_file(self._path(f"{key}.json")))
            return ShardInfo(key, int(record["rows"]), int(record["dim"]), str(record["sha256"]))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def committed_keys(self) -> set[str]:
        """Every committed shard's key (one listing)."""
        try:
            names = {os.path.basename(p) for p in self.fs.ls(self.root, detail=False)}
        except FileNotFoundError:
            return set()
        return {name[: -len(".json")] for name in names if name.endswith(".json") and name[:-5] + ".npy" in names}

    def committed(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` with a manifest and their vectors (one listing, not one request per key).

        The bytes are not read here; a shard taken from this set is checked with :meth:`verify` before it is
        trusted, and :meth:`open` and :meth:`read` check it again when it is used.
        """
        return set(keys) & self.committed_keys()

    def verify(self, key: str) -> ShardInfo | None:
        """The shard's manifest if its vectors match it; None when absent, and a damaged shard is removed."""
        info = self.info(key)
        if info is None:
            return None
        try:
            if self._local:
                digest = hashlib.sha256()
                with open(self._path(f"{key}.npy"), "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 22), b""):
                        digest.update(block)
                sha256 = digest.hexdigest()
            else:
                sha256 = hashlib.sha256(self.fs.cat_file(self._path(f"{key}.npy"))).hexdigest()
        except (FileNotFoundError, IsADirectoryError):
            sha256 = ""
        if sha256 != info.sha256:
            logger.warning("shard store: %s fails its checksum in %s; removed, it will be encoded again", key, self.url)
            self.remove(key)
            return None
        return info

    def open(self, key: str) -> np.ndarray | None:
        """The shard's vectors for reading through once (search): memory-mapped from a local folder, so a search
        streams the shard chunk by chunk instead of holding it; read whole from other stores. Checked against the
        manifest's SHA-256 first (a damaged shard would change rankings); None, and removed, when it fails."""
        if not self._local:
            return self.read(key)
        info = self.verify(key)
        if info is None:
            return None
        try:
            vectors = np.load(self._path(f"{key}.npy"), mmap_mode="r", allow_pickle=False)
        except (FileNotFoundError, ValueError):
            return None
        return vectors if vectors.shape == (info.rows, info.dim) else None

    def read(self, key: str) -> np.ndarray | None:
        """The shard's vectors, checked against its manifest; None when absent or damaged (removed, recomputed)."""
        info = self.info(key)
        if info is None:
            return None
        try:
            data = self.fs.cat_file(self._path(f"{key}.npy"))
        except (FileNotFoundError, IsADirectoryError):
            data = b""
        vectors = None
        if hashlib.sha256(data).hexdigest() == info.sha256:
            vectors = np.load(io.BytesIO(data), allow_pickle=False)
        if vectors is None or vectors.shape != (info.rows, info.dim):
            logger.warning("shard store: %s fails its checksum in %s; removed, it will be encoded again", key, self.url)
            self.remove(key)
            return None
        return vectors

    def write(self, key: str, vectors: np.ndarray) -> ShardInfo:
        """Commit a shard: vectors first, manifest last."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        buffer = io.BytesIO()
        np.save(buffer, vectors, allow_pickle=False)
        data = buffer.getvalue()
        info = ShardInfo(key, int(vectors.shape[0]), int(vectors.shape[1]), hashlib.sha256(data).hexdigest())
        self._put(f"{key}.npy", data)
        manifest = {"format": MANIFEST_FORMAT, "rows": info.rows, "dim": info.dim, "sha256": info.sha256}
        self._put(f"{key}.json", canonical_json(manifest))
        return info

    def remove(self, key: str) -> None:
        for name in (f"{key}.json", f"{key}.npy"):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm_file(self._path(name))

    def _put(self, name: str, data: bytes) -> None:
        path = self._path(name)
        if not self._local:
            self.fs.pipe_file(path, data)
            return
        temporary = f"{path}.tmp-{uuid.uuid4().hex}"
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
