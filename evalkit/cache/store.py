"""The embedding cache: namespaces of shards under one root, looked up by text digest, written shard by shard.

Layout: ``<root>/embeddings/v1/<id[:2]>/<id>/`` per namespace (``id`` from :mod:`evalkit.cache.keys`), holding a
``meta.json`` with the key parts in clear (for people and cache listings; the code never trusts it) and the shards
of :mod:`evalkit.cache.shards`. ``embeddings/`` because the evalkit cache folder may hold other caches later.

Crash safety comes from the shard manifest being the commit point. Concurrent writers never share a file: each
has a random writer id, names its shards ``<writer id>-<n>`` and holds an ``flock`` on ``writer-<writer id>.lock``
while it runs, so a reader can tell a dead writer's leftovers (deleted) from a live writer's shard in progress
(left alone). Not thread-safe: one object per thread, or a lock around it.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from evalkit.cache.index import DigestIndex
from evalkit.cache.keys import as_digests, namespace_id, namespace_record
from evalkit.cache.shards import (
    MANIFEST_SUFFIX,
    SHARD_PREFIX,
    CacheError,
    CorruptShard,
    Shard,
    read_shard,
    remove_shard,
)
from evalkit.cache.writers import CacheWriter, clean_leftovers

if TYPE_CHECKING:
    from evalkit.cache.ragged import RaggedNamespace

logger = logging.getLogger(__name__)

ENV_VAR = "EVALKIT_CACHE_DIR"
LAYOUT = Path("embeddings") / "v1"
DEFAULT_ROWS_PER_SHARD = 4096


def default_cache_dir() -> Path:
    """``$EVALKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/evalkit``, else ``~/.cache/evalkit``."""
    configured = os.environ.get(ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"  # the XDG spec ignores relative paths
    return base / "evalkit"


class CacheLookup(NamedTuple):
    """What a lookup found: ``vectors[k]`` belongs to the k-th True entry of ``hit``."""

    vectors: np.ndarray
    """``(hit.sum(), dim)`` vectors, in input order; ``(0, 0)`` when the namespace is empty."""
    hit: np.ndarray
    """One bool per key asked for."""


@dataclass(frozen=True)
class NamespaceInfo:
    """One namespace on disk, for listings: its key parts (from ``meta.json``, None if unreadable) and size."""

    namespace_id: str
    path: Path
    key: dict[str, Any] | None
    bytes: int
    entries: int
    shards: int


@dataclass(frozen=True)
class CacheSize:
    bytes: int
    entries: int
    """Committed vectors (a text written twice, by two concurrent runs, counts twice)."""
    namespaces: int


def namespace_info(folder: Path) -> NamespaceInfo:
    """A namespace folder's size and committed entries, from ``meta.json`` and the manifests alone."""
    total = entries = shards = 0
    try:
        scan = list(os.scandir(folder))
    except FileNotFoundError:
        scan = []
    for entry in scan:
        try:
            total += entry.stat().st_size
        except FileNotFoundError:  # deleted while we looked
            continue
        if entry.name.startswith(SHARD_PREFIX) and entry.name.endswith(MANIFEST_SUFFIX):
            try:
                entries += int(json.loads(Path(entry.path).read_bytes())["rows"])
                shards += 1
            except (OSError, ValueError, KeyError, TypeError):
                continue
    try:
        key = json.loads((folder / "meta.json").read_bytes())["key"]
    except (OSError, ValueError, KeyError, TypeError):
        key = None
    return NamespaceInfo(folder.name, folder, key, total, entries, shards)


class CacheNamespace:
    """The vectors of one encoder setting (fingerprint, role, prompt, precision, dtype), keyed by text digest."""

    def __init__(self, path: Path, namespace_id: str, key: dict[str, Any]) -> None:
        self.path = path
        self.namespace_id = namespace_id
        self.key = key
        self._shards: dict[str, Shard] = {}
        self._rejected: set[str] = set()
        self._ordered: list[Shard] = []
        self._index = DigestIndex([])
        self._cleaned = False

    def __repr__(self) -> str:
        return f"CacheNamespace({str(self.path)!r}, entries={len(self._index)})"

    @property
    def dtype(self) -> np.dtype:
        """How the vectors are stored and returned (little-endian, part of the key)."""
        return np.dtype(self.key["dtype"]).newbyteorder("<")

    @property
    def dim(self) -> int | None:
        """The vectors' size, None while the namespace holds none (as of the last refresh)."""
        return self._ordered[0].dim if self._ordered else None

    def __len__(self) -> int:
        """Committed vectors as of the last refresh."""
        return len(self._index)

    def refresh(self) -> None:
        """Pick up shards committed since the last look (by us or another process); drop ones deleted since.

        A directory listing when nothing changed, so every lookup calls it. The first call also removes what dead
        writers left behind.
        """
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            names = []
        except NotADirectoryError:
            raise CacheError(
                "a file stands where the embedding cache keeps a namespace folder; remove it", file=self.path
            ) from None
        if not self._cleaned and names:
            clean_leftovers(self.path, names)
            self._cleaned = True
        committed = {
            name[len(SHARD_PREFIX) : -len(MANIFEST_SUFFIX)]
            for name in names
            if name.startswith(SHARD_PREFIX) and name.endswith(MANIFEST_SUFFIX)
        }
        changed = False
        for shard_id in self._shards.keys() - committed:  # deleted by another process that found it corrupt
            del self._shards[shard_id]
            changed = True
        for shard_id in sorted(committed - self._shards.keys() - self._rejected):
            try:
                self._shards[shard_id] = self._read_shard(shard_id)
            except CorruptShard as err:
                self._discard(shard_id, str(err))
                continue
            changed = True
        if changed:
            self._rebuild()

    def _read_shard(self, shard_id: str) -> Shard:
        return read_shard(self.path, shard_id, self.dtype)

    def _rebuild(self) -> None:
        dims = {shard.dim for shard in self._shards.values()}
        if len(dims) > 1:
            raise CacheError(
                f"the embedding cache namespace holds vectors of sizes {sorted(dims)}: the encoder's fingerprint "
                "misses a setting that changes its vectors; delete the folder to start afresh",
                file=self.path,
            )
        self._ordered = list(self._shards.values())
        self._index = DigestIndex([shard.digests for shard in self._ordered])

    def _discard(self, shard_id: str, reason: str) -> None:
        logger.warning(
            "embedding cache: ignoring and deleting shard %s in %s (%s); its texts will be encoded again",
            shard_id,
            self.path,
            reason,
        )
        self._rejected.add(shard_id)
        self._shards.pop(shard_id, None)
        try:
            remove_shard(self.path, shard_id)
        except OSError as err:  # a read-only cache still works; the shard stays ignored in this process
            logger.warning("embedding cache: could not delete shard %s: %s", shard_id, err)

    def contains(self, keys: Sequence[str] | np.ndarray) -> np.ndarray:
        """Which keys (texts, or digests from ``text_digests``) have a vector, without reading any vector.

        A cheap hit test: a row that turns out corrupt still counts here; :meth:`lookup` is the authority.
        """
        digests = as_digests(keys)
        self.refresh()
        return self._index.find(digests) >= 0

    def lookup(self, keys: Sequence[str] | np.ndarray) -> CacheLookup:
        """The cached vectors of ``keys`` (texts, or digests from ``text_digests``) and which keys they cover.

        Every returned row has passed its checksum; a shard found corrupt is deleted and its keys become misses.
        """
        digests = as_digests(keys)
        self.refresh()
        position = self._index.find(digests)
        hit = position >= 0
        hit_at = np.flatnonzero(hit)
        vectors = np.empty((len(hit_at), self.dim or 0), dtype=self.dtype)
        if not len(hit_at):
            return CacheLookup(vectors, hit)
        shard_numbers = self._index.shard[position[hit_at]]
        rows = self._index.row[position[hit_at]]
        by_shard = np.argsort(shard_numbers, kind="stable")
        lost: list[np.ndarray] = []
        for group in np.split(by_shard, np.flatnonzero(np.diff(shard_numbers[by_shard])) + 1):
            shard = self._ordered[shard_numbers[group[0]]]
            group = group[np.argsort(rows[group])]  # read each shard front to back
            try:
                vectors[group] = shard.read_rows(rows[group])
            except CorruptShard as err:
                self._discard(shard.shard_id, str(err))
                lost.append(group)
        if lost:
            lost_at = np.concatenate(lost)
            hit[hit_at[lost_at]] = False
            vectors = np.delete(vectors, lost_at, axis=0)
            self._rebuild()
        return CacheLookup(vectors, hit)

    def writer(self, dim: int, *, rows_per_shard: int = DEFAULT_ROWS_PER_SHARD) -> CacheWriter:
        """A context manager that stores vectors as they are computed: ``with ns.writer(384) as w: w.add(...)``."""
        return CacheWriter(self, dim, rows_per_shard)

    def info(self) -> NamespaceInfo:
        """Size on disk and committed entries, from the manifests alone (nothing verified, nothing loaded)."""
        return namespace_info(self.path)


class EmbeddingCache:
    """Vectors on disk, keyed by everything that changes them; see the module docstring for the layout.

    ``root``: an explicit folder, else ``$EVALKIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/evalkit`` or
    ``~/.cache/evalkit``. Nothing is created until the first write.
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self._namespaces: dict[str, CacheNamespace] = {}
        _check_folders(self.root)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    @property
    def store(self) -> Path:
        return self.root / LAYOUT

    def namespace(
        self,
        fingerprint: Mapping[str, object],
        *,
        role: str,
        prompt: str,
        precision: str,
        dtype: npt.DTypeLike = np.float32,
    ) -> CacheNamespace:
        """The namespace of one encoder setting; the same object for the same key, so its index loads once.

        ``precision`` is the model's compute precision (fp32, bf16, fp16); ``dtype`` the storage type of the
        vectors (float32 by default; float16 halves the disk and is a different namespace).
        """
        key = namespace_record(fingerprint, role=role, prompt=prompt, precision=precision, dtype=np.dtype(dtype).name)
        namespace = namespace_id(key)
        if namespace not in self._namespaces:
            path = self.store / namespace[:2] / namespace
            self._namespaces[namespace] = CacheNamespace(path, namespace, key)
        return self._namespaces[namespace]

    def ragged_namespace(
        self,
        fingerprint: Mapping[str, object],
        *,
        output: str,
        role: str,
        prompt: str,
        precision: str,
        dtype: npt.DTypeLike = np.float32,
    ) -> RaggedNamespace:
        """The namespace of one encoder setting's variable-length rows: ``output`` is ``sparse`` or ``colbert``.

        Keyed like :meth:`namespace` plus the output kind, so a model's sparse and ColBERT rows never mix with each
        other or with its dense vectors; ``dtype`` is how the weights or vectors are stored.
        """
        from evalkit.cache.ragged import RAGGED_OUTPUTS, RaggedNamespace  # ragged builds on this module

        if output not in RAGGED_OUTPUTS:
            raise ValueError(f"ragged rows are one of {', '.join(RAGGED_OUTPUTS)}, not {output!r}")
        key = namespace_record(
            fingerprint, role=role, prompt=prompt, precision=precision, dtype=np.dtype(dtype).name, output=output
        )
        namespace = namespace_id(key)
        if namespace not in self._namespaces:
            path = self.store / namespace[:2] / namespace
            self._namespaces[namespace] = RaggedNamespace(path, namespace, key)
        return self._namespaces[namespace]  # type: ignore[return-value]

    def namespaces(self) -> list[NamespaceInfo]:
        """Every namespace on disk with its key parts and size, read from ``meta.json`` and the manifests."""
        infos = []
        for prefix in sorted(self.store.glob("??")):
            if not prefix.is_dir() or not _is_hex(prefix.name):  # another program's file: not ours, ignored
                continue
            for folder in sorted(prefix.iterdir()):
                if folder.is_dir() and _is_hex(folder.name) and folder.name.startswith(prefix.name):
                    infos.append(namespace_info(folder))
        return infos

    def size(self) -> CacheSize:
        """Bytes on disk, committed vectors and namespaces."""
        infos = self.namespaces()
        return CacheSize(
            bytes=sum(info.bytes for info in infos),
            entries=sum(info.entries for info in infos),
            namespaces=len(infos),
        )


def _is_hex(name: str) -> bool:
    return bool(name) and all(c in "0123456789abcdef" for c in name)


def _check_folders(root: Path) -> None:
    """Refuse up front, in one line, a cache whose folders are files: found at the first write, it would fail a
    run midway (or after its results are written)."""
    for path in (root, root / "embeddings", root / LAYOUT, root / "onnx"):
        if path.exists() and not path.is_dir():
            raise CacheError("the embedding cache needs a folder here, and this is a file (--cache-dir)", file=path)
    existing = root
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise CacheError("the embedding cache folder would be inside a file (--cache-dir)", file=existing)
