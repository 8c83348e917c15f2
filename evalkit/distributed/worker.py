"""What runs on a worker: encoding a shard and searching shards. Plain classes and functions, so they are tested
without Ray; :mod:`evalkit.distributed.ray_backend` wraps them as Ray actors and tasks."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.distributed.shard_plan import Shard
from evalkit.distributed.shard_store import ShardStore
from evalkit.errors import EvalkitError
from evalkit.registry.models import ModelSpec
from evalkit.search.dense import TopK, exact_top_k
from evalkit.search.running_top_k import best_first, top_k_columns


@dataclass(frozen=True)
class EncoderSettings:
    """Everything a worker needs to build the driver's encoder and core (the fingerprint is checked against it).

    ``device``, ``precision`` and ``runtime`` are the run's encoding options (this record is the worker's
    :class:`~evalkit.encoders.adapters.EncodingSettings`); ``artifact_dir`` is where derived artefacts (an ONNX
    export) are kept, ``None`` for the worker's cache folder.
    """

    model: ModelSpec
    device: str
    precision: str
    runtime: str
    token_budget: int
    batch_size: int | None
    max_batch_size: int
    fingerprint: Mapping[str, object]
    artifact_dir: str | None = None


@dataclass(frozen=True)
class ShardDone:
    """A worker's report of one shard."""

    key: str
    rows: int
    seconds: float
    worker: str
    computed: bool = True  # False: the shard was already committed (a retried call, or another driver's work)
    tokens: int = 0  # unpadded tokens encoded (0 when not computed): the run record's throughput


class ShardEncoder:
    """One model replica: encodes the shards it is handed and commits them to the store."""

    def __init__(self, settings: EncoderSettings, store: ShardStore) -> None:
        from pathlib import Path

        from evalkit.encoders.adapters import build_encoder

        self.store = store
        artifact_dir = Path(settings.artifact_dir) if settings.artifact_dir is not None else None
        self.encoder = build_encoder(settings.model, settings, artifact_dir=artifact_dir)
        own = dict(self.encoder.fingerprint())
        if _comparable(own) != _comparable(settings.fingerprint):
            raise EvalkitError(
                f"a worker's copy of {settings.model.name} is not the driver's (fingerprints differ: "
                f"{_difference(own, settings.fingerprint)}); its vectors would not be the same"
            )
        self.core = EmbeddingCore(
            token_budget=settings.token_budget,
            batch_size=settings.batch_size,
            max_batch_size=settings.max_batch_size,
            show_progress=False,
        )
        self.name = f"{os.uname().nodename}:{os.getpid()}"

    def encode(self, shard: Shard) -> ShardDone:
        """Compute and commit the shard, unless it is committed already: a call retried after a lost reply, or a
        shard another run finished meanwhile, costs a read, not an encoding."""
        started = time.perf_counter()
        if self.store.verify(shard.key) is not None:  # committed, and its bytes match (a damaged one is removed)
            return ShardDone(shard.key, len(shard.positions), time.perf_counter() - started, self.name, False)
        vectors = self.core.encode_planned(self.encoder, shard.token_ids(), shard.batches)  # type: ignore[arg-type]
        self.store.write(shard.key, vectors)
        tokens = int(shard.token_offsets[-1])
        return ShardDone(shard.key, len(vectors), time.perf_counter() - started, self.name, tokens=tokens)


def _comparable(fingerprint: Mapping[str, object]) -> dict[str, object]:
    """The fingerprint less what is about where a model runs, not what it computes."""
    return {k: v for k, v in fingerprint.items() if k != "device"}


def _difference(a: Mapping[str, object], b: Mapping[str, object]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys[:3])


@dataclass(frozen=True)
class ShardSlice:
    """The documents one shard holds: their global indices (ascending) and the shard row of each."""

    key: str
    docs: np.ndarray  # int64
    rows: np.ndarray  # int64


def search_shards(
    store: ShardStore, slices: Sequence[ShardSlice], queries: np.ndarray, k: int, *, threads: int | None = None
) -> TopK:
    """The top ``k`` of ``queries`` over some shards, with global document indices: one shard in memory at a time.

    Within a shard, documents are searched in ascending global index, so :func:`exact_top_k`'s order for equal
    scores (lower index first) is the global one and the merge keeps it. ``threads``: the CPUs the scheduler gave
    this task (default: all this process may use).
    """
    parts: list[TopK] = []
    for piece in slices:
        vectors = store.open(piece.key)  # checked against its SHA-256; a damaged shard is removed
        if vectors is None:
            raise EvalkitError(
                f"shard {piece.key} is missing or was damaged since it was encoded (removed now); run again to "
                "encode it anew",
                file=store.url,
            )
        in_order = len(piece.rows) == len(vectors) and bool(np.all(piece.rows == np.arange(len(vectors))))
        top = exact_top_k(queries, vectors if in_order else vectors[piece.rows], k, threads=threads)
        parts.append(TopK(indices=piece.docs[top.indices], scores=top.scores))
        del vectors
    return merge(parts, k) if len(parts) > 1 else parts[0]


def merge(parts: Sequence[TopK], k: int) -> TopK:
    """Per query, the best ``k`` of several top-k lists over disjoint documents: best first, ties by index.

    The k best are picked by partition and only they are sorted (as the local search merges its workers); of
    documents tied exactly at the k-th score, those of the smallest index are kept, as in the local search.
    """
    scores = np.concatenate([p.scores for p in parts], axis=1)
    indices = np.concatenate([p.indices for p in parts], axis=1)
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        keep = top_k_columns(scores, k, indices.__getitem__)
        scores, indices = np.take_along_axis(scores, keep, axis=1), np.take_along_axis(indices, keep, axis=1)
    scores, indices = best_first(scores, indices)
    return TopK(indices=np.ascontiguousarray(indices), scores=np.ascontiguousarray(scores))


def describe(done: Sequence[ShardDone]) -> dict[str, Any]:
    """Per worker: shards, rows and seconds; for the run record and the scaling table."""
    by_worker: dict[str, dict[str, float]] = {}
    for item in (d for d in done if d.computed):
        entry = by_worker.setdefault(item.worker, {"shards": 0, "rows": 0, "seconds": 0.0})
        entry["shards"] += 1
        entry["rows"] += item.rows
        entry["seconds"] += item.seconds
    return by_worker
