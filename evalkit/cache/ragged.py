"""Variable-length rows in the cache: sparse term weights and per-token (ColBERT) vectors, one row per text.

A ragged shard ``<id>`` is three files, like a dense one (:mod:`evalkit.cache.shards`), with the same guarantees:

- ``shard-<id>.npy``: every row's items one after the other, a plain ``(items, *item_shape)`` array (for sparse
  rows the items are ``(token_id int32, weight)`` records; for ColBERT rows they are vectors);
- ``shard-<id>.idx``: ``rows`` text digests, then ``rows`` CRC-32s of each row's item bytes, then ``rows + 1``
  item offsets (little-endian int64; row ``r`` is items ``offsets[r]:offsets[r + 1]``);
- ``shard-<id>.json``: the manifest, written last (the commit point), with ``"kind": "ragged"``.

A separate shard kind rather than a generalised dense one, so the dense path reads exactly what it always read.
Offsets live in the ``.idx`` (checked whole at load) so a lookup can gather any rows without touching the others,
and each returned row is verified against its own checksum, as for dense rows.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from evalkit.cache.keys import DIGEST_BYTES, FORMAT_VERSION, as_digests
from evalkit.cache.shards import (
    MANIFEST_SUFFIX,
    CorruptShard,
    fsync_dir,
    int_field,
    read_npy_header,
    shard_path,
    write_new_file,
)
from evalkit.cache.store import CacheNamespace, CacheWriter

RAGGED_KIND = "ragged"
RAGGED_OUTPUTS = ("sparse", "colbert")
"""The outputs stored as ragged rows: sparse term weights, and per-token vectors."""

DEFAULT_MAX_SHARD_BYTES = 256 * 2**20
"""A ragged shard is also cut at this size: 4,096 ColBERT rows of a 1024-dim model would be several GB."""

_CRC_BYTES = 4
_OFFSET_BYTES = 8


def sparse_item_dtype(weight_dtype: np.dtype) -> np.dtype:
    """One sparse item: a vocabulary id and its weight, stored side by side."""
    return np.dtype([("token_id", "<i4"), ("weight", np.dtype(weight_dtype).newbyteorder("<"))])


def take_rows(offsets: np.ndarray, values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``rows`` (in that order, repeats allowed) of a ragged array, as new ``(offsets, values)``."""
    rows = np.asarray(rows, dtype=np.int64)
    starts = offsets[rows]
    lengths = offsets[rows + 1] - starts
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    items = np.repeat(starts - new_offsets[:-1], lengths) + np.arange(new_offsets[-1], dtype=np.int64)
    return new_offsets, values[items]


def row_crc32(offsets: np.ndarray, values: np.ndarray) -> np.ndarray:
    """CRC-32 of each row's item bytes; ``values`` must be C-contiguous (an empty row's CRC is 0)."""
    flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
    item_bytes = values.dtype.itemsize * (int(np.prod(values.shape[1:])) if values.ndim > 1 else 1)
    bounds = offsets * item_bytes
    return np.fromiter(
        (zlib.crc32(flat[bounds[r] : bounds[r + 1]]) for r in range(len(offsets) - 1)),
        dtype=np.uint32,
        count=len(offsets) - 1,
    )


def _descr(dtype: np.dtype) -> Any:
    """A dtype as plain JSON (structured dtypes included), for the manifest."""
    return json.loads(json.dumps(np.lib.format.dtype_to_descr(dtype)))


def write_ragged_shard(
    folder: Path, shard_id: str, digests: np.ndarray, offsets: np.ndarray, values: np.ndarray
) -> None:
    """Write and commit one ragged shard. On an error the uncommitted files are removed and the error is raised."""
    rows = len(offsets) - 1
    assert digests.shape == (rows, DIGEST_BYTES) and rows > 0 and offsets[0] == 0 and offsets[-1] == len(values)
    values = np.ascontiguousarray(values)
    offsets = np.ascontiguousarray(offsets, dtype="<i8")
    npy = shard_path(folder, shard_id, ".npy")
    idx = shard_path(folder, shard_id, ".idx")
    manifest = shard_path(folder, shard_id, MANIFEST_SUFFIX)
    staged = manifest.with_name(f".{manifest.name}.tmp")
    try:
        write_new_file(npy, values)
        idx_bytes = (
            np.ascontiguousarray(digests).tobytes()
            + row_crc32(offsets, values).astype("<u4").tobytes()
            + offsets.tobytes()
        )
        write_new_file(idx, idx_bytes)
        record = {
            "format": FORMAT_VERSION,
            "kind": RAGGED_KIND,
            "rows": rows,
            "items": len(values),
            "item_shape": list(values.shape[1:]),
            "dtype": _descr(values.dtype),
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


@dataclass(frozen=True)
class RaggedShard:
    """A committed ragged shard: digests, row checksums and offsets in memory, items left on disk until gathered."""

    shard_id: str
    rows: int
    items: int
    item_shape: tuple[int, ...]
    dtype: np.dtype
    digests: np.ndarray
    row_crc32: np.ndarray
    offsets: np.ndarray
    npy_path: Path
    data_offset: int

    @property
    def dim(self) -> int:
        """Numbers per item (the vector size of ColBERT rows, 1 for sparse records): one namespace, one size."""
        return int(np.prod(self.item_shape)) if self.item_shape else 1

    def read_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(offsets, values)`` of ``rows`` in that order, each checked against its CRC-32.

        Raises :class:`CorruptShard` on any mismatch. Mapped per call, as dense shards are (file descriptors).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.offsets[rows + 1].sum() == self.offsets[rows].sum():  # only empty rows: nothing to map
            offsets = np.zeros(len(rows) + 1, dtype=np.int64)
            values = np.empty((0, *self.item_shape), dtype=self.dtype)
        else:
            try:
                mapped = np.memmap(
                    self.npy_path,
                    dtype=self.dtype,
                    mode="r",
                    offset=self.data_offset,
                    shape=(self.items, *self.item_shape),
                )
            except (OSError, ValueError) as err:
                raise CorruptShard(f"cannot map {self.npy_path.name}: {err}") from err
            try:
                offsets, values = take_rows(self.offsets, mapped, rows)
                values = np.array(values)
            finally:
                del mapped
        bad = np.flatnonzero(row_crc32(offsets, values) != self.row_crc32[rows])
        if len(bad):
            raise CorruptShard(
                f"{len(bad)} row(s) of {self.npy_path.name} fail their checksum (first: row {rows[bad[0]]})"
            )
        return offsets, values


def _ragged_manifest(folder: Path, shard_id: str, dtype: np.dtype) -> tuple[int, int, int, int, tuple[int, ...]]:
    """A ragged shard's manifest checked: rows, items, the .idx checksum, the .npy size and the item shape."""
    record = json.loads(shard_path(folder, shard_id, MANIFEST_SUFFIX).read_bytes())
    if not isinstance(record, dict) or record.get("format") != FORMAT_VERSION:
        raise CorruptShard("manifest is not a format-1 record")
    if record.get("kind") != RAGGED_KIND:
        raise CorruptShard(f"manifest kind is {record.get('kind')!r}, expected {RAGGED_KIND!r}")
    rows = int_field(record, "rows", minimum=1)
    items = int_field(record, "items", minimum=0)
    idx_crc = int_field(record, "idx_crc32", minimum=0)
    npy_bytes = int_field(record, "npy_bytes", minimum=1)
    shape = record.get("item_shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n > 0 for n in shape):
        raise CorruptShard(f"manifest field 'item_shape' is {shape!r}")
    if record.get("dtype") != _descr(dtype):
        raise CorruptShard(f"manifest dtype is {record.get('dtype')!r}, the namespace stores {_descr(dtype)!r}")
    return rows, items, idx_crc, npy_bytes, tuple(shape)


def read_ragged_shard(folder: Path, shard_id: str, dtype: np.dtype) -> RaggedShard:
    """Read and check a committed ragged shard of ``dtype`` items; raises :class:`CorruptShard` on any failure."""
    try:
        rows, items, idx_crc, npy_bytes, item_shape = _ragged_manifest(folder, shard_id, dtype)
        idx_bytes = shard_path(folder, shard_id, ".idx").read_bytes()
        expected = rows * (DIGEST_BYTES + _CRC_BYTES) + (rows + 1) * _OFFSET_BYTES
        if len(idx_bytes) != expected:
            raise CorruptShard(f".idx holds {len(idx_bytes)} bytes, expected {expected}")
        if zlib.crc32(idx_bytes) != idx_crc:
            raise CorruptShard(".idx fails its checksum")
        split = rows * DIGEST_BYTES
        digests = np.frombuffer(idx_bytes, dtype=np.uint8, count=split).reshape(rows, DIGEST_BYTES)
        row_crc = np.frombuffer(idx_bytes, dtype="<u4", offset=split, count=rows).astype(np.uint32, copy=False)
        offsets = np.frombuffer(idx_bytes, dtype="<i8", offset=split + rows * _CRC_BYTES).astype(np.int64)
        if offsets[0] != 0 or offsets[-1] != items or (np.diff(offsets) < 0).any():
            raise CorruptShard(".idx offsets are not a partition of the items")
        npy = shard_path(folder, shard_id, ".npy")
        header_shape, fortran_order, header_dtype, data_offset = read_npy_header(npy, npy_bytes)
    except CorruptShard:
        raise
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise CorruptShard(str(err)) from err
    if header_shape != (items, *item_shape) or fortran_order or header_dtype != dtype:
        raise CorruptShard(f".npy header says {header_shape} {header_dtype}, manifest says {(items, *item_shape)}")
    if data_offset + items * int(np.prod(item_shape)) * dtype.itemsize != npy_bytes:
        raise CorruptShard(".npy size disagrees with its header")
    return RaggedShard(shard_id, rows, items, item_shape, dtype, digests, row_crc, offsets, npy, data_offset)


class RaggedLookup(NamedTuple):
    """What a ragged lookup found: row ``k`` of ``(offsets, values)`` belongs to the k-th True entry of ``hit``."""

    offsets: np.ndarray
    """``hit.sum() + 1`` item offsets (int64)."""
    values: np.ndarray
    """The rows' items, one after the other."""
    hit: np.ndarray
    """One bool per key asked for."""


class RaggedNamespace(CacheNamespace):
    """The ragged rows of one encoder setting and output (sparse or colbert), keyed by text digest.

    Everything but the shard format is the dense namespace's: refresh, leftover cleaning, corrupt-shard removal.
    """

    @property
    def output(self) -> str:
        return str(self.key["output"])

    @property
    def dtype(self) -> np.dtype:
        """The item type: ``(token_id, weight)`` records for sparse rows, the vector dtype for ColBERT rows."""
        stored = np.dtype(self.key["dtype"]).newbyteorder("<")
        return sparse_item_dtype(stored) if self.output == "sparse" else stored

    def _read_shard(self, shard_id: str) -> RaggedShard:  # type: ignore[override]
        return read_ragged_shard(self.path, shard_id, self.dtype)

    def lookup(self, keys: Sequence[str] | np.ndarray) -> RaggedLookup:  # type: ignore[override]
        """The cached rows of ``keys`` (texts, or digests) and which keys they cover; every row checksum-verified."""
        digests = as_digests(keys)
        self.refresh()
        position = self._index.find(digests)
        hit = position >= 0
        hit_at = np.flatnonzero(hit)
        shard_numbers = self._index.shard[position[hit_at]]
        rows = self._index.row[position[hit_at]]
        by_shard = np.argsort(shard_numbers, kind="stable")
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (positions in hit_at, offsets, values)
        lost: list[np.ndarray] = []
        groups = np.split(by_shard, np.flatnonzero(np.diff(shard_numbers[by_shard])) + 1) if len(hit_at) else []
        for group in groups:
            shard = self._ordered[shard_numbers[group[0]]]
            group = group[np.argsort(rows[group])]  # read each shard front to back
            try:
                offsets, values = shard.read_rows(rows[group])
            except CorruptShard as err:
                self._discard(shard.shard_id, str(err))
                lost.append(group)
                continue
            parts.append((group, offsets, values))
        if lost:
            hit[hit_at[np.concatenate(lost)]] = False
            self._rebuild()
        return RaggedLookup(*_in_position_order(parts, self._empty_values()), hit)

    def _empty_values(self) -> np.ndarray:
        item_shape = self._ordered[0].item_shape if self._ordered else ()
        return np.empty((0, *item_shape), dtype=self.dtype)

    def writer(  # type: ignore[override]
        self,
        item_shape: tuple[int, ...],
        *,
        rows_per_shard: int = 4096,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
    ) -> RaggedWriter:
        """Stores rows as they are computed: ``with ns.writer((128,)) as w: w.add(keys, offsets, values)``."""
        return RaggedWriter(self, tuple(item_shape), rows_per_shard, max_shard_bytes)


def _in_position_order(
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], empty: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Merge per-shard results (each for some positions) into one ragged array ordered by position."""
    if not parts:
        return np.zeros(1, dtype=np.int64), empty
    positions = np.concatenate([group for group, _, _ in parts])
    lengths = np.concatenate([np.diff(offsets) for _, offsets, _ in parts])
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.concatenate([values for _, _, values in parts])
    return take_rows(offsets, values, np.argsort(positions))


class RaggedWriter(CacheWriter):
    """Buffers ragged rows and commits them a shard at a time (by row count or bytes, whichever comes first)."""

    def __init__(
        self, namespace: RaggedNamespace, item_shape: tuple[int, ...], rows_per_shard: int, max_shard_bytes: int
    ) -> None:
        super().__init__(namespace, int(np.prod(item_shape)) if item_shape else 1, rows_per_shard)
        self.item_shape = item_shape
        self.max_shard_bytes = max_shard_bytes
        self._lengths: list[np.ndarray] = []

    def add(self, keys: Sequence[str] | np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:  # type: ignore[override]
        """Store row ``i`` (``values[offsets[i]:offsets[i + 1]]``) for ``keys[i]`` (texts, or digests)."""
        if self._lock is None:
            raise RuntimeError("use the writer as a context manager: with namespace.writer(shape) as writer: ...")
        digests = as_digests(keys)
        offsets = np.asarray(offsets, dtype=np.int64)
        values = np.asarray(values)
        if len(offsets) != len(digests) + 1 or offsets[0] != 0 or offsets[-1] != len(values):
            raise ValueError(f"expected {len(digests) + 1} offsets from 0 to {len(values)}")
        if values.shape[1:] != self.item_shape:
            raise ValueError(f"expected items of shape {self.item_shape}, got {values.shape[1:]}")
        if not len(digests):
            return
        self._digests.append(digests.copy())
        self._lengths.append(np.diff(offsets))
        self._vectors.append(values.astype(self.namespace.dtype))
        self._buffered += len(digests)
        if self._buffered >= self.rows_per_shard or self._buffered_bytes() >= self.max_shard_bytes:
            self._commit(full_shards_only=True)

    def _buffered_bytes(self) -> int:
        return sum(values.nbytes for values in self._vectors)

    def _commit(self, *, full_shards_only: bool) -> None:
        digests = np.concatenate(self._digests)
        lengths = np.concatenate(self._lengths)
        values = np.concatenate(self._vectors)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        row_bytes = values.dtype.itemsize * (int(np.prod(self.item_shape)) if self.item_shape else 1)
        limit = max(1, self.max_shard_bytes // row_bytes)  # items per shard
        start = 0
        while start < len(digests):
            # A shard ends after rows_per_shard rows or before `limit` items, whichever comes first (one row at least).
            within = int(np.searchsorted(offsets, offsets[start] + limit, "right")) - 1
            stop = min(len(digests), start + self.rows_per_shard, max(within, start + 1))
            full = stop < len(digests) or stop - start == self.rows_per_shard or offsets[stop] - offsets[start] >= limit
            if full_shards_only and not full:
                break
            shard_id = f"{self.writer_id}-{self.shards_written:06d}"
            write_ragged_shard(
                self.namespace.path,
                shard_id,
                digests[start:stop],
                offsets[start : stop + 1] - offsets[start],
                values[offsets[start] : offsets[stop]],
            )
            self.rows_written += stop - start
            self.shards_written += 1
            start = stop
            # Keep the buffer consistent after each shard, so a failed write loses nothing that was not committed.
            self._digests, self._lengths = [digests[start:]], [lengths[start:]]
            self._vectors = [values[offsets[start] :]]
            self._buffered = len(digests) - start
        if not self._buffered:
            self._digests, self._lengths, self._vectors = [], [], []
