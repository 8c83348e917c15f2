"""What an encoder gives per text besides one vector: sparse term weights and per-token (multi-vector) rows.

Both are ragged — a different number of items per text — so they are stored flat, as search and the cache want
them: ``offsets`` (``n + 1`` int64) and ``values``, row ``i`` being ``values[offsets[i]:offsets[i + 1]]``. A
sparse row's items are ``(token_id, weight)`` records sorted by token id (the CSR layout scipy takes as is); a
multi-vector row's items are vectors, one per token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar, Union

import numpy as np

from evalkit.cache.ragged import sparse_item_dtype, take_rows
from evalkit.encoders.protocol import OutputKind

SPARSE_ITEM = sparse_item_dtype(np.dtype(np.float32))
"""A sparse item as stored and returned: ``token_id`` int32, ``weight`` float32."""

R = TypeVar("R", bound="RaggedRows")


@dataclass(frozen=True)
class RaggedRows:
    """Rows of different lengths, flat: row ``i`` is ``values[offsets[i]:offsets[i + 1]]``."""

    offsets: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        offsets = self.offsets
        if offsets.ndim != 1 or len(offsets) < 1 or offsets[0] != 0 or offsets[-1] != len(self.values):
            raise ValueError(f"offsets must run from 0 to {len(self.values)}, one more than the rows")

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        """Items per row."""
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        """Row ``i``'s items (a view)."""
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def take(self: R, rows: np.ndarray | Sequence[int]) -> R:
        """Rows ``rows`` in that order (repeats allowed), as a new object of the same kind."""
        offsets, values = take_rows(self.offsets, self.values, np.asarray(rows, dtype=np.int64))
        return type(self)(offsets, values)

    @classmethod
    def concat(cls: type[R], parts: Sequence[R]) -> R:
        """The rows of ``parts`` one after the other (at least one part)."""
        if len(parts) == 1:
            return parts[0]
        lengths = np.concatenate([part.lengths for part in parts])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, np.concatenate([part.values for part in parts]))

    @classmethod
    def from_lengths(cls: type[R], lengths: np.ndarray, values: np.ndarray) -> R:
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, values)


class SparseRows(RaggedRows):
    """Per text, the vocabulary ids with a non-zero weight, ascending, and their weights (float32)."""

    @classmethod
    def from_arrays(cls, offsets: np.ndarray, token_ids: np.ndarray, weights: np.ndarray) -> SparseRows:
        values = np.empty(len(token_ids), dtype=SPARSE_ITEM)
        values["token_id"] = token_ids
        values["weight"] = weights
        return cls(np.asarray(offsets, dtype=np.int64), values)

    @classmethod
    def empty(cls, n_rows: int = 0) -> SparseRows:
        return cls(np.zeros(n_rows + 1, dtype=np.int64), np.empty(0, dtype=SPARSE_ITEM))

    @property
    def token_ids(self) -> np.ndarray:
        return self.values["token_id"]

    @property
    def weights(self) -> np.ndarray:
        return self.values["weight"]

    def as_dicts(self) -> list[dict[int, float]]:
        """``{token_id: weight}`` per text, FlagEmbedding's ``lexical_weights`` shape (for people and tests)."""
        return [
            dict(zip(self.row(i)["token_id"].tolist(), self.row(i)["weight"].tolist(), strict=True))
            for i in range(len(self))
        ]


class MultiVectorRows(RaggedRows):
    """Per text, one vector per kept token (ColBERT-style): ``values`` is ``(total tokens, dim)`` float32."""

    @classmethod
    def empty(cls, n_rows: int = 0, dim: int = 0) -> MultiVectorRows:
        return cls(np.zeros(n_rows + 1, dtype=np.int64), np.empty((0, dim), dtype=np.float32))

    @property
    def dim(self) -> int:
        return int(self.values.shape[1]) if self.values.ndim == 2 else 0


EncodedOutput = Union[np.ndarray, SparseRows, MultiVectorRows]  # noqa: UP007 - a runtime alias, py3.10 included
"""One output for a list of texts: dense ``(n, dim)`` float32 vectors, or ragged rows."""

EncodedOutputs = Mapping[OutputKind, EncodedOutput]
"""What :meth:`evalkit.core.EmbeddingCore.encode_outputs` returns: each requested output, rows in input order."""

RAGGED_TYPES: dict[str, type[RaggedRows]] = {"sparse": SparseRows, "colbert": MultiVectorRows}


def select_rows(output: EncodedOutput, rows: np.ndarray) -> EncodedOutput:
    """Rows ``rows`` of any output, in that order."""
    return output[rows] if isinstance(output, np.ndarray) else output.take(rows)


def concat_rows(parts: Sequence[EncodedOutput]) -> EncodedOutput:
    """Rows of several batches of one output, one after the other."""
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)  # type: ignore[arg-type]
    return type(parts[0]).concat(parts)  # type: ignore[arg-type]


def empty_output(kind: OutputKind) -> EncodedOutput:
    """An output for no text at all."""
    if kind == "dense":
        return np.zeros((0, 0), dtype=np.float32)
    return SparseRows.empty() if kind == "sparse" else MultiVectorRows.empty()


__all__ = [
    "SPARSE_ITEM",
    "EncodedOutput",
    "EncodedOutputs",
    "MultiVectorRows",
    "RaggedRows",
    "SparseRows",
    "concat_rows",
    "empty_output",
    "select_rows",
]
