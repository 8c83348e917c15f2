"""The embedding core: dedup, cache lookup, tokenize, token-budget batches, restore the input order.

Every encoder goes through here, so speed work lands once for all of them:
- a text that appears twice (a corpus shared by splits, a sentence in many STS pairs) is encoded once;
- texts already in the embedding cache are not encoded at all, and new vectors are written to it chunk by chunk,
  so a killed run loses at most the chunk it was in;
- the next chunk is tokenized in a background thread while the model works on the current one;
- batches are sized by a budget of padded tokens over length-sorted texts, and an out-of-memory error halves the
  budget and retries instead of failing the run.

``encode`` gives dense vectors; ``encode_outputs`` gives any of an encoder's outputs (dense, sparse, colbert) from
one forward pass per text, each output cached in its own namespace, through the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import numpy as np
from tqdm.auto import tqdm

from evalkit.cache import CacheNamespace, CacheWriter, EmbeddingCache, RaggedNamespace, text_digests
from evalkit.core.batching import fixed_size_batches, token_budget_batches
from evalkit.core.outputs import (
    RAGGED_TYPES,
    EncodedOutput,
    RaggedRows,
    concat_rows,
    empty_output,
    select_rows,
)
from evalkit.encoders.protocol import OUTPUT_KINDS, Encoder, OutputKind, Role
from evalkit.errors import EvalkitError

logger = logging.getLogger(__name__)

T = TypeVar("T")
Outputs = dict[OutputKind, EncodedOutput]


def dedup(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and for each input the index of its distinct text."""
    index_of: dict[str, int] = {}
    inverse = np.fromiter((index_of.setdefault(t, len(index_of)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index_of), inverse


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (kept for callers of the first version)."""
    return fixed_size_batches(lengths, batch_size)


def is_out_of_memory(err: BaseException) -> bool:
    """CUDA's OutOfMemoryError, a host MemoryError, or torch's CPU allocator giving up."""
    if isinstance(err, MemoryError):
        return True
    message = str(err).lower()
    return "out of memory" in message or "can't allocate memory" in message or "cannot allocate memory" in message


@dataclass
class EmbeddingCore:
    """Turns texts into vectors through any encoder adapter.

    ``token_budget`` bounds the padded tokens of one forward pass; ``batch_size``, when set, makes fixed-count
    batches instead (as sentence-transformers does), for comparisons. ``chunk_size`` is the unit of cache writes
    and of tokenization overlap.
    """

    token_budget: int = 4096
    max_batch_size: int = 256
    batch_size: int | None = None
    chunk_size: int = 4096
    show_progress: bool = True
    cache: EmbeddingCache | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"encoded": 0, "cached": 0, "oom_retries": 0})

    def encode(self, encoder: Encoder, texts: list[str], role: Role, *, prompt: str = "", desc: str = "") -> np.ndarray:
        """Vectors for ``texts`` in input order (float32, one row per input, duplicates included).

        ``prompt`` is the instruction already resolved for this task and role (see ``evalkit.encoders.prompts``).
        """
        distinct, inverse = dedup(encoder.prepare(texts, prompt))
        if not distinct:
            return np.zeros((0, 0), dtype=np.float32)
        namespace = None
        if self.cache is not None:
            fingerprint = encoder.fingerprint()
            precision = str(fingerprint.get("precision", "fp32"))
            namespace = self.cache.namespace(fingerprint, role=role, prompt=prompt, precision=precision)
        vectors = self._vectors(encoder, distinct, namespace, desc=desc or f"encoding {role}s")
        return vectors[inverse]

    def encode_outputs(
        self,
        encoder: Encoder,
        texts: list[str],
        role: Role,
        *,
        outputs: Sequence[OutputKind],
        prompt: str = "",
        desc: str = "",
    ) -> Outputs:
        """Each requested output for ``texts``, rows in input order (duplicates included), from one forward pass.

        Dense alone is exactly :meth:`encode`. Otherwise each output is looked up in its own cache namespace, and
        a text missing from any of them is encoded once with every output still missing, so a later run asking
        for one more output than the first re-encodes only what it lacks.
        """
        kinds = checked_outputs(encoder, outputs)
        if kinds == ("dense",):
            return {"dense": self.encode(encoder, texts, role, prompt=prompt, desc=desc)}
        distinct, inverse = dedup(encoder.prepare(texts, prompt))
        if not distinct:
            return {kind: empty_output(kind) for kind in kinds}
        namespaces = None
        if self.cache is not None:
            fingerprint = encoder.fingerprint()
            precision = str(fingerprint.get("precision", "fp32"))
            namespaces = {
                kind: (
                    self.cache.namespace(fingerprint, role=role, prompt=prompt, precision=precision)
                    if kind == "dense"
                    else self.cache.ragged_namespace(
                        fingerprint, output=kind, role=role, prompt=prompt, precision=precision
                    )
                )
                for kind in kinds
            }
        found = self._outputs(encoder, distinct, kinds, namespaces, desc=desc or f"encoding {role}s")
        return {kind: select_rows(found[kind], inverse) for kind in kinds}

    def _outputs(
        self,
        encoder: Encoder,
        distinct: list[str],
        kinds: tuple[OutputKind, ...],
        namespaces: dict[OutputKind, CacheNamespace] | None,
        *,
        desc: str,
    ) -> Outputs:
        """Outputs of distinct texts: cached rows read per output, the texts missing any encoded once, cached."""
        digests = text_digests(distinct) if namespaces is not None else None
        hit: dict[OutputKind, np.ndarray] = {}
        parts: dict[OutputKind, list[tuple[np.ndarray, EncodedOutput]]] = {kind: [] for kind in kinds}
        for kind in kinds:
            hit[kind] = np.zeros(len(distinct), dtype=bool)
            if namespaces is not None:
                found = namespaces[kind].lookup(digests)
                hit[kind] = found.hit
                if found.hit.any():
                    parts[kind].append((np.flatnonzero(found.hit), _cached_output(kind, found)))
        missing = np.flatnonzero(~np.logical_and.reduce([hit[kind] for kind in kinds]))
        computed = tuple(kind for kind in kinds if not hit[kind].all())
        self.stats["cached"] += len(distinct) - len(missing)
        self.stats["encoded"] += len(missing)
        writers: dict[OutputKind, CacheWriter] = {}
        encode = partial(self._encode_tokenized_outputs, outputs=computed)
        progress = tqdm(total=len(missing), desc=desc, unit="text", disable=None if self.show_progress else True)
        try:
            with progress:
                chunks = self._encode_chunks(encoder, [distinct[i] for i in missing], missing, encode)
                for chunk, chunk_outputs in chunks:
                    for kind in computed:
                        new = np.flatnonzero(~hit[kind][chunk])  # a row already cached stays as cached
                        rows = select_rows(chunk_outputs[kind], new)
                        parts[kind].append((chunk[new], rows))
                        if namespaces is not None and len(new):
                            if kind not in writers:
                                writers[kind] = _open_writer(namespaces[kind], rows)
                            _add_rows(writers[kind], digests[chunk[new]], rows)
                            writers[kind].flush()  # durable now: a killed run recomputes at most this chunk
                    progress.update(len(chunk))
        finally:
            for writer in writers.values():
                writer.close()
        merged: Outputs = {}
        for kind in kinds:
            positions = np.concatenate([where for where, _ in parts[kind]])
            merged[kind] = select_rows(concat_rows([rows for _, rows in parts[kind]]), np.argsort(positions))
        return merged

    def _vectors(
        self, encoder: Encoder, distinct: list[str], namespace: CacheNamespace | None, *, desc: str
    ) -> np.ndarray:
        """Vectors of distinct texts: cached ones read, the rest encoded chunk by chunk and cached as they finish."""
        digests = text_digests(distinct) if namespace is not None else None
        hits, hit_mask = namespace.lookup(digests) if namespace is not None else (None, np.zeros(len(distinct), bool))
        missing = np.flatnonzero(~hit_mask)
        self.stats["cached"] += len(distinct) - len(missing)
        self.stats["encoded"] += len(missing)
        out: np.ndarray | None = None
        if hits is not None and len(hits):
            out = np.empty((len(distinct), hits.shape[1]), dtype=np.float32)
            out[hit_mask] = hits
        writer = None
        progress = tqdm(total=len(missing), desc=desc, unit="text", disable=None if self.show_progress else True)
        try:
            with progress:
                for chunk, chunk_vectors in self._encode_chunks(encoder, [distinct[i] for i in missing], missing):
                    if out is None:
                        out = np.empty((len(distinct), chunk_vectors.shape[1]), dtype=np.float32)
                    out[chunk] = chunk_vectors
                    if namespace is not None:
                        writer = writer or namespace.writer(chunk_vectors.shape[1]).__enter__()
                        writer.add(digests[chunk], chunk_vectors)
                        writer.flush()  # durable now: a killed run recomputes at most the chunk in flight
                    progress.update(len(chunk))
        finally:
            if writer is not None:
                writer.close()
        assert out is not None
        return out

    def _encode_chunks(
        self,
        encoder: Encoder,
        texts: list[str],
        positions: np.ndarray,
        encode: Callable[[Encoder, list[list[int]]], T] | None = None,
    ) -> Iterator[tuple[np.ndarray, T]]:
        """(positions, vectors) per chunk; the next chunk is tokenized while this one is encoded.

        ``encode`` turns a chunk's token ids into its result (dense vectors by default).
        """
        encode = encode or self._encode_tokenized  # type: ignore[assignment]
        starts = range(0, len(texts), self.chunk_size)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-tokenize") as pool:
            pending: Future[list[list[int]]] | None = None
            for number, start in enumerate(starts):
                if pending is None:
                    pending = pool.submit(encoder.tokenize, texts[start : start + self.chunk_size])
                token_ids = pending.result()
                following = start + self.chunk_size
                pending = (
                    pool.submit(encoder.tokenize, texts[following : following + self.chunk_size])
                    if number + 1 < len(starts)
                    else None
                )
                yield positions[start : start + len(token_ids)], encode(encoder, token_ids)

    def _encode_tokenized(self, encoder: Encoder, token_ids: list[list[int]]) -> np.ndarray:
        return self.encode_planned(encoder, token_ids, self.plan_batches(token_ids))

    def encode_planned(self, encoder: Encoder, token_ids: list[list[int]], batches: list[np.ndarray]) -> np.ndarray:
        """Dense vectors of tokenized texts computed in the given batches, rows in ``token_ids`` order.

        The batches a chunk gets here (:meth:`plan_batches`) fix a vector's last bits; a distributed worker runs a
        shard of the same batches through this, so its vectors equal the local core's exactly.
        """
        results = self._run_batches(encoder, token_ids, batches)
        vectors = np.empty((len(token_ids), results[0][1].shape[1]), dtype=np.float32)
        for batch, batch_vectors in results:
            vectors[batch] = batch_vectors
        return vectors

    def _encode_tokenized_outputs(
        self, encoder: Encoder, token_ids: list[list[int]], *, outputs: tuple[OutputKind, ...]
    ) -> Outputs:
        """:meth:`_encode_tokenized` for several outputs: same batches, rows put back in chunk order."""
        embed = partial(_embed_outputs, outputs=outputs)
        results = self._run_batches(encoder, token_ids, self.plan_batches(token_ids), embed, _concat_outputs)
        order = np.argsort(np.concatenate([batch for batch, _ in results]))
        return {
            kind: select_rows(concat_rows([batch_outputs[kind] for _, batch_outputs in results]), order)
            for kind in outputs
        }

    def plan_batches(self, token_ids: list[list[int]]) -> list[np.ndarray]:
        """The forward passes of one chunk: index groups over length-sorted texts, by token budget or count."""
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        if self.batch_size is not None:
            return fixed_size_batches(lengths, self.batch_size)
        return token_budget_batches(lengths, self.token_budget, self.max_batch_size)

    def _run_batches(
        self,
        encoder: Encoder,
        token_ids: list[list[int]],
        batches: list[np.ndarray],
        embed: Callable[[Encoder, list[list[int]]], Any] | None = None,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> list[tuple[np.ndarray, Any]]:
        """(batch, result) per batch, on every replica of the encoder at once."""
        replicas = getattr(encoder, "replicas", None) or [encoder]
        if len(replicas) == 1:
            return self._embed_batches(replicas[0], token_ids, batches, embed, join)
        # One thread per device, batches dealt round-robin (longest first, so the load stays even).
        with ThreadPoolExecutor(max_workers=len(replicas), thread_name_prefix="evalkit-device") as pool:
            shares = [batches[r :: len(replicas)] for r in range(len(replicas))]
            futures = [
                pool.submit(self._embed_batches, rep, token_ids, share, embed, join)
                for rep, share in zip(replicas, shares, strict=True)
            ]
            return [item for future in futures for item in future.result()]

    def _embed_batches(
        self,
        encoder: Encoder,
        token_ids: list[list[int]],
        batches: list[np.ndarray],
        embed: Callable[[Encoder, list[list[int]]], Any] | None = None,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> list[tuple[np.ndarray, Any]]:
        return [
            (batch, self._embed_with_backoff(encoder, [token_ids[i] for i in batch], embed, join)) for batch in batches
        ]

    def _embed_with_backoff(
        self,
        encoder: Encoder,
        batch: list[list[int]],
        embed: Callable[[Encoder, list[list[int]]], Any] | None = None,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> Any:
        """One forward pass; on out-of-memory, halve the budget for the rest of the run and split this batch.

        ``embed`` runs the pass (``encoder.embed_batch`` by default) and ``join`` puts two halves back together
        (``np.concatenate`` by default).
        """
        try:
            return encoder.embed_batch(batch) if embed is None else embed(encoder, batch)
        except (MemoryError, RuntimeError) as err:
            if not is_out_of_memory(err) or len(batch) == 1:
                raise
            _release_device_memory()
            self.stats["oom_retries"] += 1
            self.token_budget = max(1, self.token_budget // 2)
            if self.batch_size is not None:
                self.batch_size = max(1, self.batch_size // 2)
            logger.warning("out of memory on a batch of %d; token budget now %d", len(batch), self.token_budget)
            half = len(batch) // 2
            halves = [
                self._embed_with_backoff(encoder, batch[:half], embed, join),
                self._embed_with_backoff(encoder, batch[half:], embed, join),
            ]
            return np.concatenate(halves) if join is None else join(halves)


def checked_outputs(encoder: Encoder, outputs: Sequence[OutputKind]) -> tuple[OutputKind, ...]:
    """The requested outputs, each once, after checking that the encoder gives them (a clear error otherwise)."""
    kinds = tuple(dict.fromkeys(outputs))
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise EvalkitError(f"unknown output(s) {unknown or list(outputs)}; known: {', '.join(OUTPUT_KINDS)}")
    available = encoder_outputs(encoder)
    lacking = [kind for kind in kinds if kind not in available]
    if lacking:
        raise EvalkitError(
            f"model '{encoder.name}' gives {', '.join(available)} output(s), not {', '.join(lacking)}",
            field="retrieval",
        )
    return kinds


def encoder_outputs(encoder: Encoder) -> tuple[OutputKind, ...]:
    """What an encoder (or the first of its replicas) can give: ``output_kinds``, else dense vectors only."""
    first = (getattr(encoder, "replicas", None) or [encoder])[0]
    return tuple(getattr(first, "output_kinds", ("dense",)))


def _embed_outputs(encoder: Encoder, batch: list[list[int]], *, outputs: tuple[OutputKind, ...]) -> Outputs:
    if outputs == ("dense",) and not hasattr(encoder, "embed_outputs"):
        return {"dense": encoder.embed_batch(batch)}
    return dict(encoder.embed_outputs(batch, outputs))  # type: ignore[attr-defined]


def _concat_outputs(halves: list[Outputs]) -> Outputs:
    return {kind: concat_rows([half[kind] for half in halves]) for kind in halves[0]}


def _cached_output(kind: OutputKind, found: Any) -> EncodedOutput:
    """A lookup's rows as the output type the core hands out."""
    if kind == "dense":
        return found.vectors
    return RAGGED_TYPES[kind](found.offsets, found.values)


def _open_writer(namespace: CacheNamespace, rows: EncodedOutput) -> CacheWriter:
    if isinstance(namespace, RaggedNamespace):
        assert isinstance(rows, RaggedRows)
        return namespace.writer(rows.values.shape[1:]).__enter__()
    assert isinstance(rows, np.ndarray)
    return namespace.writer(rows.shape[1]).__enter__()


def _add_rows(writer: CacheWriter, digests: np.ndarray, rows: EncodedOutput) -> None:
    if isinstance(rows, RaggedRows):
        writer.add(digests, rows.offsets, rows.values)  # type: ignore[call-arg]
    else:
        writer.add(digests, rows)


def _release_device_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency; adapters without it still work
        pass


__all__ = ["EmbeddingCore", "checked_outputs", "dedup", "encoder_outputs", "is_out_of_memory", "length_sorted_batches"]
