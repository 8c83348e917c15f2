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
    finite = np.isfinite(norms[:, 0])
    if not finite.all():
        row = first_row + int(np.argmin(finite))
        raise EvalkitError(f"{what} vector {row} has NaN or infinite values (or a norm beyond float range)")
    return unit


def _normalized(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    vectors = np.asarray(vectors, dtype=np.result_type(vectors.dtype, np.float32))
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, _MIN_NORM)).astype(np.float32, copy=False), norms
