"""The embedding core: dedup, cache lookup, tokenize, token-budget batches, restore the input order.

Every model goes through here, so speed work lands once for all of them:
- a text that appears twice (a corpus shared by splits, a sentence in many STS pairs) is encoded once;
- texts already in the embedding cache are not encoded at all, and new vectors are written to it chunk by chunk,
  so a killed run loses at most the chunk it was in;
- the next chunk is tokenized in a background thread while the model works on the current one;
- batches are sized by a budget of padded tokens over length-sorted texts, and an out-of-memory error halves the
  budget and retries instead of failing the run.

A model declares the level it is met at (:class:`evalkit.encoders.protocol.Capabilities`): token ids (the steps
above), raw texts (an API or a user's callable: batches of ``batch_size`` or ``max_batch_size`` texts, no tokens),
or (query, document) pairs (:meth:`EmbeddingCore.score_pairs`: dedup, batches and cache over pairs). A model that
cannot be cached (an opaque callable) is encoded every time, never keyed by a guess.

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

from evalkit.cache import CacheNamespace, EmbeddingCache, text_digests
from evalkit.core.batching import (
    fixed_size_batches,
    is_out_of_memory,
    release_device_memory,
    token_budget_batches,
)
from evalkit.core.multi_output import Outputs, encode_outputs_of_distinct
from evalkit.core.outputs import empty_output, select_rows
from evalkit.core.pairs import PAIR_ROLE, dedup_pairs, pair_digests
from evalkit.encoders.protocol import (
    OUTPUT_KINDS,
    Capabilities,
    Encoder,
    OutputKind,
    PairScorer,
    Role,
    TextEncoder,
    capabilities_of,
)
from evalkit.errors import EvalkitError
from evalkit.progress import BatchBar

logger = logging.getLogger(__name__)

T = TypeVar("T")
Model = Encoder | TextEncoder


def dedup(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and for each input the index of its distinct text."""
    index_of: dict[str, int] = {}
    inverse = np.fromiter((index_of.setdefault(t, len(index_of)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index_of), inverse


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (kept for callers of the first version)."""
    return fixed_size_batches(lengths, batch_size)


@dataclass
class EmbeddingCore:
    """Turns texts into vectors (and pairs into scores) through any encoder adapter.

    ``token_budget`` bounds the padded tokens of one forward pass; ``batch_size``, when set, makes fixed-count
    batches instead (as sentence-transformers does), for comparisons, and is the batch of a text-level model.
    ``chunk_size`` is the unit of cache writes and of tokenization overlap.
    """

    token_budget: int = 4096
    max_batch_size: int = 256
    batch_size: int | None = None
    chunk_size: int = 4096
    show_progress: bool = True
    cache: EmbeddingCache | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"encoded": 0, "cached": 0, "oom_retries": 0})
    on_batch: Callable[[int], None] | None = field(default=None, repr=False, compare=False)  # per forward pass

    def encode(self, encoder: Model, texts: list[str], role: Role, *, prompt: str = "", desc: str = "") -> np.ndarray:
        """Vectors for ``texts`` in input order (float32, one row per input, duplicates included).

        ``prompt`` is the instruction already resolved for this task and role (see ``evalkit.encoders.prompts``).
        """
        capabilities = _vector_capabilities(encoder)
        distinct, inverse = dedup(encoder.prepare(texts, prompt))
        if not distinct:
            return np.zeros((0, 0), dtype=np.float32)
        namespace = self._namespace(encoder, capabilities, role=role, prompt=prompt)
        if capabilities.level == "texts":
            chunks = partial(self._text_chunks, encoder, role=role)
        else:
            chunks = partial(self.encode_chunks, encoder)
        vectors = self._vectors(distinct, text_digests, namespace, chunks, desc=desc or f"encoding {role}s")
        return vectors[inverse]

    def encode_outputs(
        self,
        encoder: Model,
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
        capabilities = capabilities_of(encoder)
        if self.cache is not None and capabilities.cacheable:
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
        found = encode_outputs_of_distinct(
            self, encoder, distinct, kinds, namespaces, desc=desc or f"encoding {role}s"  # type: ignore[arg-type]
        )
        return {kind: select_rows(found[kind], inverse) for kind in kinds}

    def score_pairs(
        self, scorer: PairScorer, queries: Sequence[str], documents: Sequence[str], *, desc: str = "scoring pairs"
    ) -> np.ndarray:
        """One float32 score per (query, document) pair, in input order: a pair seen twice is scored once, a pair
        in the cache is not scored, the rest go in token-budget batches (pairs tokenized by the scorer)."""
        capabilities = capabilities_of(scorer)
        if capabilities.level != "pairs":
            raise EvalkitError(f"model '{scorer.name}' is not a pair scorer (it works on {capabilities.level})")
        distinct, inverse = dedup_pairs(queries, documents)
        if not distinct:
            return np.zeros(0, dtype=np.float32)
        namespace = self._namespace(scorer, capabilities, role=PAIR_ROLE, prompt="")
        chunks = partial(self.encode_chunks, scorer, encode=self._score_tokenized, tokenize=scorer.tokenize_pairs)
        scores = self._vectors(distinct, pair_digests, namespace, chunks, desc=desc)
        return scores[inverse, 0]

    def _namespace(self, model: Any, capabilities: Capabilities, *, role: str, prompt: str) -> CacheNamespace | None:
        """The cache namespace of this model, role and prompt; none without a cache or for an uncacheable model."""
        if self.cache is None or not capabilities.cacheable:
            return None
        fingerprint = model.fingerprint()
        precision = str(fingerprint.get("precision", "fp32"))
        return self.cache.namespace(fingerprint, role=role, prompt=prompt, precision=precision)

    def _vectors(
        self,
        distinct: list[Any],
        digest: Callable[[list[Any]], np.ndarray],
        namespace: CacheNamespace | None,
        chunks: Callable[[list[Any], np.ndarray], Iterator[tuple[np.ndarray, np.ndarray]]],
        *,
        desc: str,
    ) -> np.ndarray:
        """Rows of distinct items (texts or pairs): cached ones read, the rest computed chunk by chunk by ``chunks``
        and cached as each chunk finishes."""
        digests = digest(distinct) if namespace is not None else None
        hits, hit_mask = namespace.lookup(digests) if namespace is not None else (None, np.zeros(len(distinct), bool))
        missing = np.flatnonzero(~hit_mask)
        self.stats["cached"] += len(distinct) - len(missing)
        self.stats["encoded"] += len(missing)
        out: np.ndarray | None = None
        if hits is not None and len(hits):
            out = np.empty((len(distinct), hits.shape[1]), dtype=np.float32)
            out[hit_mask] = hits
        writer = None
        try:
            with BatchBar(self, len(missing), desc) as progress:
                for chunk, chunk_vectors in chunks([distinct[i] for i in missing], missing):
                    if out is None:
                        out = np.empty((len(distinct), chunk_vectors.shape[1]), dtype=np.float32)
                    out[chunk] = chunk_vectors
                    if namespace is not None:
                        writer = writer or namespace.writer(chunk_vectors.shape[1]).__enter__()
                        writer.add(digests[chunk], chunk_vectors)
                        writer.flush()  # durable now: a killed run recomputes at most the chunk in flight
                    progress.chunk_done(len(chunk))
        finally:
            if writer is not None:
                writer.close()
        assert out is not None
        return out

    def encode_chunks(
        self,
        encoder: Any,
        items: list[Any],
        positions: np.ndarray,
        encode: Callable[[Any, list[list[int]]], T] | None = None,
        *,
        tokenize: Callable[[list[Any]], list[list[int]]] | None = None,
    ) -> Iterator[tuple[np.ndarray, T]]:
        """(positions, result) per chunk; the next chunk is tokenized while this one is encoded.

        ``encode`` turns a chunk's token ids into its result (dense vectors by default); ``tokenize`` turns a chunk
        of items into token ids (``encoder.tokenize`` by default; a pair scorer's ``tokenize_pairs``).
        """
        encode = encode or self._encode_tokenized  # type: ignore[assignment]
        tokenize = tokenize or encoder.tokenize
        starts = range(0, len(items), self.chunk_size)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="evalkit-tokenize") as pool:
            pending: Future[list[list[int]]] | None = None
            for number, start in enumerate(starts):
                if pending is None:
                    pending = pool.submit(tokenize, items[start : start + self.chunk_size])
                token_ids = pending.result()
                following = start + self.chunk_size
                pending = (
                    pool.submit(tokenize, items[following : following + self.chunk_size])
                    if number + 1 < len(starts)
                    else None
                )
                yield positions[start : start + len(token_ids)], encode(encoder, token_ids)  # type: ignore[misc]

    def _text_chunks(
        self, encoder: TextEncoder, texts: list[str], positions: np.ndarray, *, role: Role
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions, vectors) per chunk of a text-level model: batches of a count of texts, in input order."""
        size = self.batch_size or self.max_batch_size
        embed = partial(_embed_texts, role=role)
        for start in range(0, len(texts), self.chunk_size):
            chunk = texts[start : start + self.chunk_size]
            parts = [
                self.embed_with_backoff(encoder, chunk[offset : offset + size], embed)
                for offset in range(0, len(chunk), size)
            ]
            yield positions[start : start + len(chunk)], np.concatenate(parts).astype(np.float32, copy=False)

    def _encode_tokenized(self, encoder: Encoder, token_ids: list[list[int]]) -> np.ndarray:
        return self.encode_planned(encoder, token_ids, self.plan_batches(token_ids))

    def _score_tokenized(self, scorer: PairScorer, token_ids: list[list[int]]) -> np.ndarray:
        """A chunk of tokenized pairs scored in the core's batches, as a ``(n, 1)`` column (cached as vectors)."""
        return self.encode_planned(scorer, token_ids, self.plan_batches(token_ids), _score_column)  # type: ignore[arg-type]

    def encode_planned(
        self,
        encoder: Encoder,
        token_ids: list[list[int]],
        batches: list[np.ndarray],
        embed: Callable[[Any, list[list[int]]], np.ndarray] | None = None,
    ) -> np.ndarray:
        """Dense vectors of tokenized texts computed in the given batches, rows in ``token_ids`` order.

        The batches a chunk gets here (:meth:`plan_batches`) fix a vector's last bits; a distributed worker runs a
        shard of the same batches through this, so its vectors equal the local core's exactly.
        """
        results = self.run_batches(encoder, token_ids, batches, embed)
        vectors = np.empty((len(token_ids), results[0][1].shape[1]), dtype=np.float32)
        for batch, batch_vectors in results:
            vectors[batch] = batch_vectors
        return vectors

    def plan_batches(self, token_ids: list[list[int]]) -> list[np.ndarray]:
        """The forward passes of one chunk: index groups over length-sorted texts, by token budget or count."""
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        self.stats["tokens"] = self.stats.get("tokens", 0) + int(lengths.sum())  # unpadded, for the run record
        if self.batch_size is not None:
            return fixed_size_batches(lengths, self.batch_size)
        return token_budget_batches(lengths, self.token_budget, self.max_batch_size)

    def run_batches(
        self,
        encoder: Any,
        token_ids: list[list[int]],
        batches: list[np.ndarray],
        embed: Callable[[Any, list[list[int]]], Any] | None = None,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> list[tuple[np.ndarray, Any]]:
        """(batch, result) per batch, on every replica the encoder declares at once."""
        replicas = encoder.replicas if capabilities_of(encoder).replicas > 1 else [encoder]
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
        encoder: Any,
        token_ids: list[list[int]],
        batches: list[np.ndarray],
        embed: Callable[[Any, list[list[int]]], Any] | None = None,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> list[tuple[np.ndarray, Any]]:
        return [
            (batch, self.embed_with_backoff(encoder, [token_ids[i] for i in batch], embed, join)) for batch in batches
        ]

    def embed_with_backoff(
        self,
        encoder: Any,
        batch: list[Any],
        embed: Callable[[Any, list[Any]], Any] | None = None,
        join: Callable[[list[Any]], Any] | None = None,
    ) -> Any:
        """One forward pass; on out-of-memory, halve the budget for the rest of the run and split this batch.

        ``embed`` runs the pass (``encoder.embed_batch`` by default) and ``join`` puts two halves back together
        (``np.concatenate`` by default).
        """
        try:
            result = encoder.embed_batch(batch) if embed is None else embed(encoder, batch)
        except (MemoryError, RuntimeError) as err:
            if not is_out_of_memory(err) or len(batch) == 1:
                raise
            release_device_memory()
            self.stats["oom_retries"] += 1
            self.token_budget = max(1, self.token_budget // 2)
            if self.batch_size is not None:
                self.batch_size = max(1, self.batch_size // 2)
            logger.warning("out of memory on a batch of %d; token budget now %d", len(batch), self.token_budget)
            half = len(batch) // 2
            halves = [
                self.embed_with_backoff(encoder, batch[:half], embed, join),
                self.embed_with_backoff(encoder, batch[half:], embed, join),
            ]
            return np.concatenate(halves) if join is None else join(halves)
        if self.on_batch is not None:  # the progress bar moves per pass (each half of a split reports itself)
            self.on_batch(len(batch))
        return result


def checked_outputs(encoder: Any, outputs: Sequence[OutputKind]) -> tuple[OutputKind, ...]:
    """The requested outputs, each once, after checking that the encoder gives them (a clear error otherwise)."""
    kinds = tuple(dict.fromkeys(outputs))
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise EvalkitError(f"unknown output(s) {unknown or list(outputs)}; known: {', '.join(OUTPUT_KINDS)}")
    available = encoder_outputs(encoder)
    lacking = [kind for kind in kinds if kind not in available]
    if lacking:
        raise EvalkitError(
            f"model '{encoder.name}' gives {', '.join(available) or 'no per-text'} output(s), not {', '.join(lacking)}",
            field="retrieval",
        )
    return kinds


def encoder_outputs(encoder: Any) -> tuple[OutputKind, ...]:
    """What a model declares it can give per text (``capabilities.outputs``)."""
    return capabilities_of(encoder).outputs


def _vector_capabilities(encoder: Any) -> Capabilities:
    """The capabilities of a model asked for vectors, which must be a token- or text-level one."""
    capabilities = capabilities_of(encoder)
    if capabilities.level not in ("tokens", "texts"):
        raise EvalkitError(f"model '{encoder.name}' gives no vectors of texts (it works on {capabilities.level})")
    return capabilities


def _embed_texts(encoder: TextEncoder, texts: list[str], *, role: Role) -> np.ndarray:
    vectors = np.asarray(encoder.embed_texts(texts, role), dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(texts):
        raise EvalkitError(
            f"model '{encoder.name}' gave an array of shape {vectors.shape} for {len(texts)} texts; expected "
            f"({len(texts)}, dim)"
        )
    return vectors


def _score_column(scorer: PairScorer, token_ids: list[list[int]]) -> np.ndarray:
    return np.asarray(scorer.score_batch(token_ids), dtype=np.float32).reshape(-1, 1)


__all__ = ["EmbeddingCore", "checked_outputs", "dedup", "encoder_outputs", "is_out_of_memory", "length_sorted_batches"]
