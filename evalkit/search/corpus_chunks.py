"""The corpus as a stream of row chunks: one array or a sequence of shard arrays, never gathered into one.

Search reads corpus vectors chunk by chunk so that its memory does not grow with the corpus. The vectors usually
come memory-mapped from the on-disk cache (``np.load(..., mmap_mode="r")``, one array per shard); every chunk is
a view, so nothing is copied until the chunk is normalised.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class CorpusChunk:
    """Rows ``[start, start + len(vectors))`` of the corpus, in corpus-wide numbering."""

    start: int
    vectors: np.ndarray


class CorpusChunks:
    """A corpus of one or more 2-D arrays (shards) with the same width, read in chunks of at most ``chunk_rows``.

    Chunk boundaries depend only on the shard sizes and ``chunk_rows``, never on how many threads read them,
    so the float32 scores (whose last bit depends on the shapes BLAS sees) are the same for any thread count.
    """

    def __init__(self, corpus_vectors: np.ndarray | Sequence[np.ndarray], chunk_rows: int) -> None:
        if chunk_rows < 1:
            raise ValueError(f"doc_chunk must be at least 1, got {chunk_rows}")
        if isinstance(corpus_vectors, np.ndarray):
            shards = [corpus_vectors]
        elif isinstance(corpus_vectors, Sequence) and all(isinstance(s, np.ndarray) for s in corpus_vectors):
            shards = list(corpus_vectors)
        else:  # anything else array-like (nested lists, a tensor) is one array
            shards = [np.asarray(corpus_vectors)]
        for number, shard in enumerate(shards):
            if not isinstance(shard, np.ndarray) or shard.ndim != 2:
                raise ValueError(f"corpus shard {number} is not a 2-D array")
        dims = {shard.shape[1] for shard in shards if len(shard)}
        if len(dims) > 1:
            raise ValueError(f"corpus shards have different widths: {sorted(dims)}")
        self.shards = shards
        self.chunk_rows = chunk_rows
        self.n_rows = sum(len(shard) for shard in shards)
        self.dim = dims.pop() if dims else (shards[0].shape[1] if shards else 0)

    def __iter__(self) -> Iterator[CorpusChunk]:
        start = 0
        for shard in self.shards:
            for row in range(0, len(shard), self.chunk_rows):
                yield CorpusChunk(start + row, shard[row : row + self.chunk_rows])
            start += len(shard)

    def read_rows(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Rows ``[start, stop)`` in corpus-wide numbering, copied into ``out`` (across shard boundaries, cast to
        ``out``'s dtype); the pages read from a memory-mapped shard are released once copied."""
        if not 0 <= start <= stop <= self.n_rows or len(out) != stop - start:
            raise ValueError(f"rows [{start}, {stop}) do not fit a corpus of {self.n_rows} rows and {len(out)} slots")
        offset = 0
        for shard in self.shards:
            first, last = max(start - offset, 0), min(stop - offset, len(shard))
            if first < last:
                piece = shard[first:last]
                np.copyto(out[offset + first - start : offset + last - start], piece, casting="same_kind")
                release_pages(piece)
            offset += len(shard)
        return out


class ChunkReader:
    """Reads chunks of a read-only memory-mapped ``.npy`` shard with plain file reads into one reused buffer.

    Touching a mapped chunk costs a page fault per few pages, and the pages must then be unmapped again
    (:func:`release_pages`); reading the same bytes from the page cache into a buffer measured twice as fast for a
    4,096 × 384 chunk, and maps nothing. Anything else (a plain array, a copy-on-write map, a non-contiguous
    view, a failed read) is handed back as it is. Use one reader per thread; the returned array is overwritten by
    the next :meth:`read`.
    """

    def __init__(self) -> None:
        self._buffer = np.empty(0, dtype=np.uint8)
        self._files: dict[str, int] = {}

    def read(self, chunk: np.ndarray) -> np.ndarray:
        """The chunk's values: read into the buffer where it is a read-only map, else the chunk itself."""
        place = _file_place(chunk)
        if place is None:
            return chunk
        filename, position = place
        if self._buffer.size < chunk.nbytes:
            self._buffer = np.empty(chunk.nbytes, dtype=np.uint8)
        out = self._buffer[: chunk.nbytes]
        try:
            if filename not in self._files:
                self._files[filename] = os.open(filename, os.O_RDONLY)
            done = 0
            while done < chunk.nbytes:
                got = os.preadv(self._files[filename], [out[done:]], position + done)
                if got <= 0:
                    return chunk
                done += got
        except OSError:  # the file went away or cannot be read: the map still can
            return chunk
        return out.view(chunk.dtype).reshape(chunk.shape)

    def close(self) -> None:
        """Close the files opened for reading."""
        for handle in self._files.values():
            os.close(handle)
        self._files.clear()


def _file_place(chunk: np.ndarray) -> tuple[str, int] | None:
    """The file and byte position a read-only, C-contiguous memory-mapped chunk was mapped from."""
    mapped = getattr(chunk, "_mmap", None)
    filename = getattr(chunk, "filename", None)
    if getattr(chunk, "mode", None) != "r" or not isinstance(mapped, mmap.mmap) or not filename:
        return None
    if chunk.size == 0 or not chunk.flags.c_contiguous or not hasattr(os, "preadv"):
        return None
    try:
        begin = chunk.ctypes.data - np.frombuffer(mapped, dtype=np.uint8).ctypes.data
    except ValueError:  # a closed map
        return None
    offset = int(getattr(chunk, "offset", 0))
    return str(filename), offset - offset % mmap.ALLOCATIONGRANULARITY + begin


def release_pages(chunk: np.ndarray) -> None:
    """Unmap the pages of a chunk of a read-only memory map once it has been searched.

    Pages of a file mapping that were read count towards the process's resident memory until unmapped, so
    without this a search over a memory-mapped corpus would look (in ``top`` or ``ru_maxrss``) as if it held the
    whole corpus, and on a busy machine would keep it mapped. The pages stay in the kernel's page cache, so a
    second pass reads them again without disk I/O. Only read-only maps (``mode="r"``) are released: their pages
    can always be read back unchanged, whereas a copy-on-write map (``mode="c"``) may hold private edits.
    Anything else (a plain array, an unknown platform) is left alone.
    """
    mapped = getattr(chunk, "_mmap", None)
    if getattr(chunk, "mode", None) != "r" or not isinstance(mapped, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    if chunk.size == 0 or not chunk.flags.c_contiguous:
        return
    try:
        begin = chunk.ctypes.data - np.frombuffer(mapped, dtype=np.uint8).ctypes.data
        first_page = begin - begin % mmap.PAGESIZE
        mapped.madvise(mmap.MADV_DONTNEED, first_page, begin + chunk.nbytes - first_page)
    except (OSError, ValueError):  # a closed map, or a kernel that refuses: releasing is only an optimisation
        pass
