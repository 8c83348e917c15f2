"""``--backend ray``: corpus encoding and search spread over a Ray cluster.

Ray schedules, restarts and moves the work; evalkit decides what a unit of work is. The driver (the ``evalkit run``
process) deduplicates and tokenizes the corpus, plans shards exactly as the local core would batch them
(:mod:`evalkit.distributed.shard_plan`), skips every shard already committed to the shard store, and hands the rest
to a pool of actors, one model replica each (one GPU each where the cluster has GPUs). A worker commits each shard
to the store as it finishes it; the driver never receives vectors. Search is then a few Ray tasks per worker, each
the queries against a run of shards (one shard in memory at a time), top k — and the driver merges their lists.

Losing a worker loses only its shard in flight: the actors restart (on any node with room, or on the same node
when it comes back) and their unfinished calls are retried; a whole run killed and started again finds the
committed shards and does not compute them again.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from evalkit.cache.keys import namespace_id, namespace_record
from evalkit.core import EmbeddingCore
from evalkit.core.embed import dedup
from evalkit.distributed.shard_plan import SHARD_SIZE, Shard, plan_shards
from evalkit.distributed.shard_store import ShardStore
from evalkit.distributed.worker import (
    EncoderSettings,
    ShardDone,
    ShardEncoder,
    ShardSlice,
    describe,
    merge,
    search_shards,
)
from evalkit.encoders.adapters import Encoding, EncodingSettings
from evalkit.encoders.protocol import Encoder, Role
from evalkit.errors import EvalkitError
from evalkit.registry.models import ModelSpec
from evalkit.search.dense import TopK
from evalkit.search.normalize import finite_unit_rows

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShardedCorpus:
    """A corpus encoded into the shard store: where each document's vector is, never the vectors themselves."""

    store: ShardStore
    keys: list[str]  # shard number → key
    shard_of: np.ndarray  # document → shard number (int32)
    row_of: np.ndarray  # document → row in its shard (int64)
    dim: int

    def __len__(self) -> int:
        return len(self.shard_of)

    def slices(self) -> list[ShardSlice]:
        """Per shard, its documents in ascending order and their rows."""
        order = np.argsort(self.shard_of, kind="stable")
        bounds = np.searchsorted(self.shard_of[order], np.arange(len(self.keys) + 1))
        return [
            ShardSlice(key, order[a:b], self.row_of[order[a:b]])
            for key, a, b in zip(self.keys, bounds[:-1], bounds[1:], strict=True)
            if b > a
        ]


@dataclass
class RayBackend:
    """A connection to a Ray cluster (``address``) or a local one started here (``address=None``)."""

    store_url: str
    address: str | None = None
    workers: int | None = None  # model replicas; None: one per GPU, else one per ``cpus_per_worker`` CPUs
    cpus_per_worker: int = 1
    shard_size: int = SHARD_SIZE
    show_progress: bool = True
    settings: EncoderSettings | None = None  # the driver's encoder, as workers rebuild it (see encoder_settings)
    stats: dict[str, Any] = field(default_factory=lambda: {"shards_encoded": 0, "shards_reused": 0, "workers": {}})

    def __post_init__(self) -> None:
        try:
            import ray
        except ImportError:
            raise EvalkitError("--backend ray needs Ray: pip install 'evalkit[ray]'") from None
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
            if self.address:
                ray.init(address=self.address, **kwargs)
            else:
                ray.init(include_dashboard=False, **kwargs)
        self.store = ShardStore(self.store_url)
        self._actors: list[Any] = []

    def record(self) -> dict[str, Any]:
        """What the run record keeps of the backend."""
        return {
            "backend": "ray",
            "address": self.address,
            "store": self.store.url,
            "shard_size": self.shard_size,
            **self.stats,
        }

    # -- encoding ---------------------------------------------------------------------------------------------
    def encode_corpus(
        self,
        core: EmbeddingCore,
        encoder: Encoder,
        texts: list[str],
        role: Role,
        *,
        prompt: str = "",
    ) -> ShardedCorpus:
        """Every text's vector committed to the shard store (computed only where no shard holds it yet)."""
        settings = self.settings
        if settings is None:
            raise EvalkitError("the Ray backend has no encoder settings (set RayBackend.settings)")
        distinct, inverse = dedup(encoder.prepare(texts, prompt))
        fingerprint = dict(settings.fingerprint)
        precision = str(fingerprint.get("precision", "fp32"))
        namespace = namespace_id(namespace_record(fingerprint, role=role, prompt=prompt, precision=precision))
        shard_of = np.zeros(len(distinct), dtype=np.int32)
        row_of = np.zeros(len(distinct), dtype=np.int64)
        keys: list[str] = []
        committed = self.store.committed_keys()  # one listing, before planning: the plan is made as work goes out

        def pending() -> Iterator[Shard]:
            for shard in plan_shards(core, encoder, distinct, namespace, self.shard_size):
                keys.append(shard.key)
                shard_of[shard.positions] = shard.number
                row_of[shard.positions] = np.arange(len(shard.positions))
                if shard.key in committed and self.store.verify(shard.key) is not None:  # damaged: removed, redone
                    self.stats["shards_reused"] += 1
                    progress.update(len(shard.positions))
                else:
                    yield shard

        progress = tqdm(
            total=len(distinct), desc="encoding corpus on Ray", unit="text",
            disable=None if self.show_progress else True,
        )  # fmt: skip
        tokens_before = core.stats.get("tokens", 0)  # planning counts every text's tokens, computed or not
        with progress:
            done = self._encode(settings, pending(), progress)
        core.stats["tokens"] = tokens_before
        count_worker_encoding(core.stats, done, reused=len(distinct) - sum(d.rows for d in done if d.computed))
        self.stats["shards_encoded"] += sum(d.computed for d in done)
        self.stats["shards_reused"] += sum(not d.computed for d in done)
        for worker, entry in describe(done).items():
            total = self.stats["workers"].setdefault(worker, {"shards": 0, "rows": 0, "seconds": 0.0})
            for name, value in entry.items():
                total[name] += value
        first = self.store.info(keys[0]) if keys else None
        return ShardedCorpus(self.store, keys, shard_of[inverse], row_of[inverse], first.dim if first else 0)

    def _encode(self, settings: EncoderSettings, shards: Iterator[Shard], progress: Any) -> list[ShardDone]:
        """Hand shards out as they are planned, ``IN_FLIGHT_PER_WORKER`` per replica at most: the driver tokenizes
        the next shards while the workers encode, and holds the tokens of only the shards in flight."""
        import ray

        done: list[ShardDone] = []
        first = next(shards, None)
        if first is None:
            return done
        actors = self._pool(settings)
        load = dict.fromkeys(range(len(actors)), 0)
        in_flight: dict[Any, int] = {}  # call → actor number

        def collect_one() -> None:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            result = ray.get(ready[0])
            load[in_flight.pop(ready[0])] -= 1
            done.append(result)
            progress.update(result.rows)

        try:
            for shard in itertools.chain([first], shards):
                while len(in_flight) >= IN_FLIGHT_PER_WORKER * len(actors):
                    collect_one()
                number = min(load, key=load.__getitem__)
                in_flight[actors[number].encode.remote(shard)] = number
                load[number] += 1
            while in_flight:
                collect_one()
        finally:
            self.close()  # the replicas hold the workers' CPUs (or GPUs), which the search tasks need next
        return done

    def _pool(self, settings: EncoderSettings) -> list[Any]:
        """The model replicas, one per worker slot."""
        import ray

        gpus = int(ray.cluster_resources().get("GPU", 0)) if settings.device != "cpu" else 0
        count = self.workers or gpus or self._slots()
        options: dict[str, Any] = {
            "num_cpus": self.cpus_per_worker,
            "num_gpus": 1 if gpus else 0,
            "max_restarts": -1,  # a lost worker comes back where there is room (or when its node does) ...
            "max_task_retries": -1,  # ... and takes up the shard it was on
        }
        device = "cuda" if gpus else "cpu"
        actor_settings = EncoderSettings(**{**settings.__dict__, "device": device})
        remote = ray.remote(ShardEncoder).options(**options)
        self._actors = [remote.remote(actor_settings, self.store) for _ in range(count)]
        return self._actors

    # -- search -----------------------------------------------------------------------------------------------
    def top_k(self, queries: np.ndarray, corpus: ShardedCorpus, k: int) -> TopK:
        """Exact cosine top-k: Ray tasks over runs of shards, merged here; no process holds more than one shard."""
        import ray

        queries = finite_unit_rows(queries, what="query")
        k = max(0, min(int(k), len(corpus)))
        if k == 0 or len(queries) == 0:
            return TopK(np.zeros((len(queries), k), dtype=np.int64), np.zeros((len(queries), k), dtype=np.float32))
        started = time.perf_counter()
        search = ray.remote(search_shards).options(num_cpus=self.cpus_per_worker, max_retries=-1)
        shared = ray.put(queries)
        pending = [
            search.remote(self.store, group, shared, k, threads=self.cpus_per_worker)
            for group in task_groups(corpus.slices(), self._slots())
        ]
        top: TopK | None = None
        while pending:  # merged as they come: the driver holds two top-k lists, not one per shard
            ready, pending = ray.wait(pending, num_returns=1)
            part = ray.get(ready[0])
            top = part if top is None else merge([top, part], k)
        assert top is not None
        self.stats["search_s"] = self.stats.get("search_s", 0.0) + time.perf_counter() - started
        return top

    def _slots(self) -> int:
        """How many search tasks the cluster runs at once."""
        import ray

        cpus = int(ray.cluster_resources().get("CPU", 1))
        return self.workers or max(1, cpus // self.cpus_per_worker)

    def close(self) -> None:
        import ray

        for actor in self._actors:
            ray.kill(actor)
        self._actors = []


def encoder_settings(
    model: ModelSpec,
    encoder: Encoder,
    core: EmbeddingCore,
    encoding: EncodingSettings | None = None,
    *,
    device: str | None = None,
    precision: str | None = None,
    runtime: str | None = None,
    artifact_dir: Path | None = None,
) -> EncoderSettings:
    """What a worker needs to rebuild the driver's encoder and batching: every encoding option of the run (pass
    the run's ``encoding``; the keywords are the first version's and override it), and the driver's fingerprint,
    which the worker checks its own against."""
    base = encoding if encoding is not None else Encoding()
    return EncoderSettings(
        model=model,
        device=device if device is not None else base.device,
        precision=precision if precision is not None else base.precision,
        runtime=runtime if runtime is not None else base.runtime,
        token_budget=core.token_budget,
        batch_size=core.batch_size,
        max_batch_size=core.max_batch_size,
        fingerprint=dict(encoder.fingerprint()),
        artifact_dir=str(artifact_dir) if artifact_dir is not None else None,
    )


def count_worker_encoding(stats: dict[str, Any], done: list[ShardDone], *, reused: int) -> None:
    """Add the workers' encoding to the driver core's counters (``stats``), which the run record's ``throughput``
    reads: texts and unpadded tokens computed, ``reused`` texts as cached (their shards were committed already),
    and the workers' seconds, summed over workers (busy time, not wall time: with several workers the summed time
    exceeds the wall time, and texts/s is per worker); ``worker_encode_ns`` says how much of ``encode_ns`` that is."""
    computed = [d for d in done if d.computed]
    worker_ns = int(sum(d.seconds for d in computed) * 1e9)
    stats["encoded"] = stats.get("encoded", 0) + sum(d.rows for d in computed)
    stats["cached"] = stats.get("cached", 0) + reused
    stats["tokens"] = stats.get("tokens", 0) + sum(d.tokens for d in computed)
    stats["encode_ns"] = stats.get("encode_ns", 0) + worker_ns
    stats["worker_encode_ns"] = stats.get("worker_encode_ns", 0) + worker_ns


IN_FLIGHT_PER_WORKER = 2
"""Shards queued at a replica: one it works on and the next, so it never waits for the driver between shards."""

TASKS_PER_SLOT = 2
"""Search tasks per worker slot: enough that a slow or lost worker does not hold up the end, few enough that the
driver merges a handful of top-k lists, not one per shard."""


def task_groups(slices: list[ShardSlice], slots: int) -> list[list[ShardSlice]]:
    """The shards cut into about ``TASKS_PER_SLOT × slots`` runs of consecutive shards, one search task each."""
    count = max(1, min(len(slices), TASKS_PER_SLOT * slots))
    bounds = np.linspace(0, len(slices), count + 1).round().astype(int)
    return [slices[a:b] for a, b in itertools.pairwise(bounds) if b > a]
