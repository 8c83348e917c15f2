"""One shard on disk: flat vectors, their text digests and row checksums, and a manifest that commits them.

A shard ``<id>`` is three files in its namespace folder:

- ``shard-<id>.npy``: the vectors, a plain ``(rows, dim)`` array, so search can memory-map a corpus later;
- ``shard-<id>.idx``: ``rows`` text digests (32 bytes each, in row order), then ``rows`` CRC-32s of the vector
  rows (little-endian uint32);
- ``shard-<id>.json``: the manifest — rows, dim, dtype, the ``.idx`` CRC-32 and the ``.npy`` size.

The manifest is written last (temporary file, fsync, ``os.replace``), so it is the commit point: data files without
a manifest belong to a writer that is still running or died, and are never read. Per-row checksums (not one per
file) because a lookup gathers a few rows from many shards — a small task sampled from a big corpus — and must
verify exactly what it returns without hashing whole shards: CRC-32 of a 384-dim row costs about 0.4 µs.
Variable-length rows have their own shard kind with the same three files (:mod:`evalkit.cache.ragged`).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evalkit.cache.keys import DIGEST_BYTES, FORMAT_VERSION
from evalkit.errors import EvalkitError

SHARD_PREFIX = "shard-"
SUFFIXES = (".npy", ".idx", ".json")
MANIFEST_SUFFIX = ".json"
_CRC_BYTES = 4


class CacheError(EvalkitError):
    """The cache cannot be used as it is on disk (e.g. one namespace holding vectors of two sizes)."""


class CorruptShard(Exception):
    """A committed shard that cannot be trusted (bad checksum, truncated, missing file); its rows are misses."""


def shard_path(folder: Path, shard_id: str, suffix: str) -> Path:
    return folder / f"{SHARD_PREFIX}{shard_id}{suffix}"


def row_checksums(vectors: np.ndarray) -> np.ndarray:
    """CRC-32 of each row's bytes; ``vectors`` must be C-contiguous so each row is one buffer."""
    return np.fromiter((zlib.crc32(row) for row in vectors), dtype=np.uint32, count=len(vectors))


def fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes | np.ndarray) -> None:
    """Write a file that must not exist yet (shard ids are unique) and fsync it."""
    with path.open("xb") as handle:
        if isinstance(data, np.ndarray):
            np.lib.format.write_array(handle, data, allow_pickle=False)
        else:
            handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_shard(folder: Path, shard_id: str, digests: np.ndarray, vectors: np.ndarray) -> None:
    """Write and commit one shard. On an error the uncommitted files are removed and the error is raised."""
    assert digests.shape == (len(vectors), DIGEST_BYTES) and len(vectors) > 0
    vectors = np.ascontiguousarray(vectors)
    npy = shard_path(folder, shard_id, ".npy")
    idx = shard_path(folder, shard_id, ".idx")
    manifest = shard_path(folder, shard_id, MANIFEST_SUFFIX)
    staged = manifest.with_name(f".{manifest.name}.tmp")
    try:
        write_new_file(npy, vectors)
        idx_bytes = np.ascontiguousarray(digests).tobytes() + row_checksums(vectors).astype("<u4").tobytes()
        write_new_file(idx, idx_bytes)
        record = {
            "format": FORMAT_VERSION,
            "rows": len(vectors),
            "dim": int(vectors.shape[1]),
            "dtype": vectors.dtype.str,
            "idx_crc32": zlib.crc32(idx_bytes),
            "npy_bytes": npy.stat().st_size,
        }
        write_new_file(staged, json.dumps(record).encode("ascii"))
        os.replace(staged, manifest)
    except BaseException:
        for path in (staged, npy, idx):
            path.unlink(missing_ok=True)
        raise
    fsync_dir(folder)


def remove_shard(folder: Path, shard_id: str) -> None:
    """Delete a shard, manifest first, so a reader racing with us never sees a manifest without its data."""
    for suffix in (MANIFEST_SUFFIX, ".npy", ".idx"):
        shard_path(folder, shard_id, suffix).unlink(missing_ok=True)


@dataclass(frozen=True)
class Shard:
    """A committed shard as read back: digests and row checksums in memory, vectors left on disk until gathered."""

    shard_id: str
    rows: int
    dim: int
    dtype: np.dtype
    digests: np.ndarray
    row_crc32: np.ndarray
    npy_path: Path
    data_offset: int

    def read_rows(self, rows: np.ndarray) -> np.ndarray:
        """The vectors at ``rows``, each checked against its CRC-32; raises :class:`CorruptShard` on any mismatch.

        The file is mapped per call and unmapped after, because Python's ``mmap`` holds a file descriptor per map
        and a large cache has more shards than a process may open files.
        """
        try:
            mapped = np.memmap(
                self.npy_path, dtype=self.dtype, mode="r", offset=self.data_offset, shape=(self.rows, self.dim)
            )
        except (OSError, ValueError) as err:  # gone, or shorter than at load (mmap refuses)
            raise CorruptShard(f"cannot map {self.npy_path.name}: {err}") from err
        try:
            vectors = np.array(mapped[rows])
        finally:
            del mapped
        bad = np.flatnonzero(row_checksums(vectors) != self.row_crc32[rows])
        if len(bad):
            raise CorruptShard(
                f"{len(bad)} row(s) of {self.npy_path.name} fail their checksum (first: row {rows[bad[0]]})"
            )
        return vectors


def int_field(record: dict[str, object], name: str, *, minimum: int) -> int:
    value = record.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CorruptShard(f"manifest field '{name}' is {value!r}")
    return value


def read_npy_header(npy: Path, npy_bytes: int) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """Shape, Fortran order, dtype and data offset of a ``.npy`` file that must hold ``npy_bytes`` bytes.

    Raises :class:`CorruptShard` on a size mismatch; OSError and ValueError (a bad header) pass through.
    """
    with npy.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size != npy_bytes:
            raise CorruptShard(f".npy holds {size} bytes, expected {npy_bytes}")
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran_order, header_dtype = np.lib.format.read_array_header_1_0(handle)
        else:
            shape, fortran_order, header_dtype = np.lib.format.read_array_header_2_0(handle)
        return shape, fortran_order, header_dtype, handle.tell()


def read_shard(folder: Path, shard_id: str, dtype: np.dtype) -> Shard:
    """Read and check a committed shard of ``dtype`` vectors; raises :class:`CorruptShard` on any failure.

    Checked here: the manifest parses; the ``.idx`` has the right length and CRC; the ``.npy`` has the recorded
    size and a header with the recorded shape and dtype. The vector bytes are checked row by row when gathered.
    """
    try:
        record = json.loads(shard_path(folder, shard_id, MANIFEST_SUFFIX).read_bytes())
        if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION:
            raise CorruptShard("manifest is not a format-1 record")
        rows = int_field(record, "rows", minimum=1)
        dim = int_field(record, "dim", minimum=1)
        idx_crc = int_field(record, "idx_crc32", minimum=0)
        npy_bytes = int_field(record, "npy_bytes", minimum=1)
        if record.get("dtype") != dtype.str:
            raise CorruptShard(f"manifest dtype is {record.get('dtype')!r}, the namespace stores {dtype.str}")

        idx_bytes = shard_path(folder, shard_id, ".idx").read_bytes()
        if len(idx_bytes) != rows * (DIGEST_BYTES + _CRC_BYTES):
            raise CorruptShard(f".idx holds {len(idx_bytes)} bytes, expected {rows * (DIGEST_BYTES + _CRC_BYTES)}")
        if zlib.crc32(idx_bytes) != idx_crc:
            raise CorruptShard(".idx fails its checksum")
        split = rows * DIGEST_BYTES
        digests = np.frombuffer(idx_bytes, dtype=np.uint8, count=split).reshape(rows, DIGEST_BYTES)
        row_crc32 = np.frombuffer(idx_bytes, dtype="<u4", offset=split).astype(np.uint32, copy=False)

        npy = shard_path(folder, shard_id, ".npy")
        shape, fortran_order, header_dtype, offset = read_npy_header(npy, npy_bytes)
    except CorruptShard:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as err:  # missing file, bad JSON, bad .npy header
        raise CorruptShard(str(err)) from err
    if shape != (rows, dim) or fortran_order or header_dtype != dtype:
        raise CorruptShard(f".npy header says {shape} {header_dtype}, manifest says {(rows, dim)} {dtype}")
    if offset + rows * dim * dtype.itemsize != npy_bytes:
        raise CorruptShard(".npy size disagrees with its header")
    return Shard(shard_id, rows, dim, dtype, digests, row_crc32, npy, offset)
