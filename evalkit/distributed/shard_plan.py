"""How a corpus is cut into shards so that a worker's vectors are bit-for-bit the local backend's.

A vector's last bits depend on the batch it was computed in (the padded length, the shapes of the matrix
products). So shards are not cut from the texts directly: the local core's own plan is followed — distinct texts in
first-seen order, chunks of ``chunk_size``, each chunk's texts sorted by token length into token-budget batches —
and a shard is a run of consecutive batches of one chunk, about ``shard_size`` texts. A worker runs exactly those
batches, so it computes what the local core computes.

The driver tokenizes (it needs the lengths to batch) and ships the token ids with the shard, so no worker
tokenizes again; a plan is made chunk by chunk, so the driver never holds more than one chunk's tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.distributed.shard_store import shard_key
from evalkit.encoders.protocol import Encoder

SHARD_SIZE = 1024
"""Texts per shard: small enough that a lost worker costs little, large enough that the per-shard overhead (a
store write, a scheduling round trip) is noise next to encoding a thousand passages."""


@dataclass(frozen=True)
class Shard:
    """One unit of work: rows in the order the vectors are stored, and the batches to compute them in."""

    number: int
    key: str
    positions: np.ndarray  # int64: each row's index among the distinct texts
    token_offsets: np.ndarray  # int64, rows + 1
    token_values: np.ndarray  # int32: the rows' token ids, flat
    batches: list[np.ndarray]  # row indices of each forward pass, as the local core forms them

    def token_ids(self) -> list[list[int]]:
        bounds = zip(self.token_offsets[:-1], self.token_offsets[1:], strict=True)
        return [self.token_values[a:b].tolist() for a, b in bounds]


def plan_shards(
    core: EmbeddingCore, encoder: Encoder, distinct: list[str], namespace: str, shard_size: int = SHARD_SIZE
) -> Iterator[Shard]:
    """The shards of ``distinct`` texts (already prepared with their prompt and deduplicated), in order."""
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    number = 0
    for start in range(0, len(distinct), core.chunk_size):
        chunk = distinct[start : start + core.chunk_size]
        token_ids = encoder.tokenize(chunk)
        batches = core.plan_batches(token_ids)
        group: list[np.ndarray] = []
        for index, batch in enumerate(batches):
            group.append(batch)
            if sum(len(b) for b in group) >= shard_size or index == len(batches) - 1:
                yield _shard(number, namespace, chunk, start, token_ids, group)
                number += 1
                group = []


def _shard(
    number: int, namespace: str, chunk: list[str], start: int, token_ids: list[list[int]], batches: list[np.ndarray]
) -> Shard:
    rows = np.concatenate(batches)  # chunk positions, in stored order
    lengths = np.fromiter((len(token_ids[i]) for i in rows), dtype=np.int64, count=len(rows))
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter((t for i in rows for t in token_ids[i]), dtype=np.int32, count=int(offsets[-1]))
    local_batches, first = [], 0
    for batch in batches:
        local_batches.append(np.arange(first, first + len(batch)))
        first += len(batch)
    return Shard(
        number=number,
        key=shard_key(namespace, [chunk[i] for i in rows]),
        positions=rows.astype(np.int64) + start,
        token_offsets=offsets,
        token_values=values,
        batches=local_batches,
    )
