"""Unit-length rows, so that a dot product is the cosine similarity.

Search normalises one corpus chunk at a time (never the whole corpus, which would copy it) with the same
row-wise arithmetic as :func:`l2_normalized`, so a chunk's unit rows are bit-for-bit those of the whole array.
"""

from __future__ import annotations

import numpy as np

from evalkit.errors import EvalkitError

_MIN_NORM = 1e-12
"""Rows shorter than this are divided by it instead: a zero vector stays zero and scores 0 against everything."""


def l2_normalized(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as float32.

    Half-precision input (a float16 cache) is computed in float32: float16 squares overflow at 256 and would
    make long vectors zero.
    """
    return _normalized(np.asarray(vectors))[0]


def finite_unit_rows(vectors: np.ndarray, *, what: str, first_row: int = 0) -> np.ndarray:
    """:func:`l2_normalized`, refusing a row that is not finite.

    A NaN row would score NaN, which no comparison ranks, so a top-k would silently skip or keep it depending
    on where it sits; the norms are at hand, so the check costs one pass over ``len(vectors)`` numbers.
    ``first_row`` numbers the rows in the error message (the chunk's place in the corpus).
    """
    unit, norms = _normalized(np.asarray(vectors))
    _check_finite(norms, what, first_row)
    return unit


class ChunkNormalizer:
    """:func:`finite_unit_rows` for one chunk after another, written into buffers reused from chunk to chunk.

    Two fresh chunk-sized arrays per chunk (the squares and the result) are returned to the operating system and
    mapped again by the allocator, and those page faults measured as much as the normalising itself over a large
    corpus. The arithmetic is :func:`l2_normalized`'s step for step (``np.linalg.norm`` squares, sums each row
    and takes the root), so the rows are bit for bit the same; non-float32 chunks simply go through it. The
    returned array is overwritten by the next call.
    """

    def __init__(self) -> None:
        self._squares = self._unit = np.empty((0, 0), dtype=np.float32)

    def __call__(self, vectors: np.ndarray, *, what: str, first_row: int = 0) -> np.ndarray:
        if vectors.dtype != np.float32 or vectors.ndim != 2:
            return finite_unit_rows(vectors, what=what, first_row=first_row)
        rows, dim = vectors.shape
        if self._unit.shape[0] < rows or self._unit.shape[1] != dim:
            self._squares = np.empty((rows, dim), dtype=np.float32)
            self._unit = np.empty((rows, dim), dtype=np.float32)
        squares = np.multiply(vectors, vectors, out=self._squares[:rows])
        norms = np.sqrt(np.add.reduce(squares, axis=1, keepdims=True))
        _check_finite(norms, what, first_row)
        return np.divide(vectors, np.maximum(norms, _MIN_NORM), out=self._unit[:rows])


def _check_finite(norms: np.ndarray, what: str, first_row: int) -> None:
    finite = np.isfinite(norms[:, 0])
    if not finite.all():
        row = first_row + int(np.argmin(finite))
        raise EvalkitError(f"{what} vector {row} has NaN or infinite values (or a norm beyond float range)")


def _normalized(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    vectors = np.asarray(vectors, dtype=np.result_type(vectors.dtype, np.float32))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, _MIN_NORM)).astype(np.float32, copy=False), norms
