"""Small on-disk memos of facts that are slow to derive and cheap to check: what a warm run reads instead of
importing mteb, torch or transformers to ask them again (a task's metadata, a model's resolved settings and
fingerprint).

A memo is exact or absent. Its key hashes everything the fact depends on: evalkit's version and a stamp of its own
files (size and modification time of every file of the package, so an edited checkout never reads a memo of other
code), the versions of the libraries the fact came from, and the caller's parts (names, settings, stat signatures of
the files it read). A memo file holds its key and a SHA-256 of its payload: a file that is truncated, edited, of
another key or of another format is ignored, and the caller derives the fact again and rewrites it. Writes are
atomic (temporary file, ``os.replace``); a folder that cannot be written only means the next run derives again.

Values are plain JSON plus tuples and paths, tagged so they come back as the same types (``decode(encode(v)) == v``
is checked before a memo is written; a value that does not round-trip is simply not memoised).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path, PurePath
from typing import Any

logger = logging.getLogger(__name__)

MEMO_FORMAT = 1
MEMO_FOLDER = "memo"
MEMO_MAX_BYTES = 16 * 2**20  # a memo is kilobytes; anything larger is not one of ours
_PACKAGE = Path(__file__).resolve().parents[1]


@cache
def code_stamp() -> str:
    """evalkit's version and the size and modification time of every file of its package (code and YAML): a memo
    written by other code (an upgrade, an edited checkout) is never read. About 250 ``stat`` calls."""
    from evalkit import __version__

    digest = hashlib.sha256(f"evalkit {__version__}\0".encode())
    for folder, dirs, files in os.walk(_PACKAGE):  # top-down, so pruning ``dirs`` skips the bytecode folders
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if ".pyc" in name or ".pyo" in name or name.startswith("."):
                continue
            path = os.path.join(folder, name)
            with contextlib.suppress(OSError):
                stat = os.stat(path)
                digest.update(f"{os.path.relpath(path, _PACKAGE)}\0{stat.st_size}\0{stat.st_mtime_ns}\0".encode())
    return digest.hexdigest()


def stat_signature(paths: Iterable[Path]) -> list[list[Any]] | None:
    """Device, inode, size, modification and change time (ns) of each file, as git's index checks a file unchanged
    without reading it; None when one is missing. ``st_ctime`` cannot be set by a user: a file rewritten with its
    old size and modification time restored still changes it."""
    signature = []
    for path in paths:
        try:
            stat = os.stat(path)
        except OSError:
            return None
        signature.append([str(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns])
    return signature


def memo_key(kind: str, parts: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of the kind, the memo format, :func:`code_stamp` and the caller's parts."""
    record = {"format": MEMO_FORMAT, "kind": kind, "code": code_stamp(), "parts": encode(dict(parts))}
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def encode(value: Any) -> Any:
    """``value`` as JSON data with tuples, paths and dicts tagged; TypeError for anything else."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, tuple):
        return {"t": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, PurePath):
        return {"p": str(value)}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"d": {k: encode(v) for k, v in value.items()}}
    raise TypeError(f"a memo holds JSON data, tuples and paths, not {type(value).__name__}")


def decode(value: Any) -> Any:
    """The inverse of :func:`encode`; ValueError on a shape :func:`encode` never writes."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        if tag == "t" and isinstance(inner, list):
            return tuple(decode(v) for v in inner)
        if tag == "p" and isinstance(inner, str):
            return Path(inner)
        if tag == "d" and isinstance(inner, dict):
            return {k: decode(v) for k, v in inner.items()}
    raise ValueError("not a memo value")


def _payload_bytes(encoded: Any) -> bytes:
    return json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()


_RUN_CACHE_ROOT: ContextVar[Path | None] = ContextVar("evalkit_run_cache_root", default=None)


@contextlib.contextmanager
def run_cache_root(cache_root: Path | None) -> Iterator[None]:
    """Within, :func:`memo_root` called without a folder (model resolution, task metadata, parsed corpora, torch
    facts) uses ``cache_root``: a run that names ``--cache-dir`` (or, with the cache off, its scratch folder) writes
    no memo in the default cache folder, which may be a read-only home or outside a sandbox. ``None``: no change."""
    token = _RUN_CACHE_ROOT.set(cache_root) if cache_root is not None else None
    try:
        yield
    finally:
        if token is not None:
            _RUN_CACHE_ROOT.reset(token)


class DeferredMemos:
    """Memo writes held back until :meth:`flush`: a run derives facts (task metadata, the resolved model) while it
    is still checking its inputs, and a run refused there must leave no folder behind, the cache folder included."""

    def __init__(self) -> None:
        self.active = True
        self._writes: list[tuple[Path, bytes]] = []

    def hold(self, path: Path, data: bytes) -> None:
        self._writes.append((path, data))

    def flush(self) -> None:
        """The inputs passed their checks: write what was held (each atomically), and write directly from now on."""
        self.active = False
        writes, self._writes = self._writes, []
        for path, data in writes:
            _write_file(path, data)


_DEFERRED: ContextVar[DeferredMemos | None] = ContextVar("evalkit_deferred_memos", default=None)


@contextlib.contextmanager
def deferred_memos() -> Iterator[DeferredMemos]:
    """Within, memo writes wait for the yielded object's ``flush``; writes never flushed (the run was refused) are
    dropped, which only means the next run derives those facts again."""
    deferred = DeferredMemos()
    token = _DEFERRED.set(deferred)
    try:
        yield deferred
    finally:
        _DEFERRED.reset(token)


def memo_root(cache_root: Path | None = None) -> Path:
    """``<evalkit cache>/memo``: the embedding cache's folder (``--cache-dir``, ``EVALKIT_CACHE_DIR``, ...); with no
    folder given, the run's (:func:`run_cache_root`), else the default one."""
    if cache_root is None:
        cache_root = _RUN_CACHE_ROOT.get()
    if cache_root is None:
        from evalkit.cache.store import default_cache_dir

        cache_root = default_cache_dir()
    return cache_root / MEMO_FOLDER


def memo_path(root: Path, kind: str, key: str) -> Path:
    """A name evalkit makes from the key (hex), never one read from a file."""
    return root / kind / f"{key[:40]}.json"


def read_memo(root: Path, kind: str, key: str) -> tuple[bool, Any]:
    """``(True, value)`` when a sound memo of ``key`` exists, else ``(False, None)`` (missing, damaged, other key)."""
    path = memo_path(root, kind, key)
    try:
        if path.stat().st_size > MEMO_MAX_BYTES:
            return False, None
        record = json.loads(path.read_bytes())
        if not isinstance(record, dict) or record.get("format") != MEMO_FORMAT or record.get("key") != key:
            return False, None
        encoded = record.get("value")
        if record.get("sha256") != hashlib.sha256(_payload_bytes(encoded)).hexdigest():
            logger.info("memo %s fails its checksum; deriving again", path)
            return False, None
        return True, decode(encoded)
    except (OSError, ValueError, TypeError, RecursionError, UnicodeDecodeError):
        return False, None


def write_memo(root: Path, kind: str, key: str, value: Any) -> bool:
    """Remember ``value`` under ``key`` atomically; False (nothing written) when it does not round-trip exactly or
    the folder cannot be written."""
    try:
        encoded = encode(value)
        if decode(encoded) != value:
            return False
        payload = _payload_bytes(encoded)
    except (TypeError, ValueError):
        return False
    record = {"format": MEMO_FORMAT, "key": key, "sha256": hashlib.sha256(payload).hexdigest(), "value": encoded}
    path, data = memo_path(root, kind, key), json.dumps(record, sort_keys=True).encode("ascii")
    deferred = _DEFERRED.get()
    if deferred is not None and deferred.active:
        deferred.hold(path, data)
        return True
    return _write_file(path, data)


def _write_file(path: Path, data: bytes) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)
    except OSError as err:
        logger.info("cannot write memo %s (%s)", path, err)
        return False
    return True


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader (or a crash) sees the old file or the whole new one."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
