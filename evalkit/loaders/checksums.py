"""Checksums of the files a loader read, so a result records exactly which bytes produced it."""

from __future__ import annotations

import hashlib
from pathlib import Path

from evalkit.records import SourceFile

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    """A file's SHA-256 (hex), streamed: data files, weights and exported graphs are all hashed this one way."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def source_file(path: Path) -> SourceFile:
    """The absolute path, SHA-256 and size of ``path``, streamed so a large corpus stays out of memory."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return SourceFile(path=str(path.resolve()), sha256=digest.hexdigest(), size=size)
