"""The embedding core: dedup, cache lookup, tokenize, token-budget batches, restore the input order.

Every encoder goes through here, so speed work lands once for all of them:
- a text that appears twice (a corpus shared by splits, a sentence in many STS pairs) is encoded once;
- texts already in the embedding cache are not encoded at all, and new vectors are written to it chunk by chunk,
  so a killed run loses at most the chunk it was in;
- the next chunk is tokenized in a background thread while the model works on the current one;
- batches are sized by a budget of padded tokens over length-sorted texts, and an out-of-memory error halves the
  budget and retries instead of failing the run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from evalkit.cache import CacheNamespace, EmbeddingCache, text_digests
from evalkit.core.batching import fixed_size_batches, token_budget_batches
from evalkit.encoders.protocol import Encoder, Role

logger = logging.getLogger(__name__)


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
        self, encoder: Encoder, texts: list[str], positions: np.ndarray
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(positions, vectors) per chunk; the next chunk is tokenized while this one is encoded."""
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
                yield positions[start : start + len(token_ids)], self._encode_tokenized(encoder, token_ids)

    def _encode_tokenized(self, encoder: Encoder, token_ids: list[list[int]]) -> np.ndarray:
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        if self.batch_size is not None:
            batches = fixed_size_batches(lengths, self.batch_size)
        else:
            batches = token_budget_batches(lengths, self.token_budget, self.max_batch_size)
        replicas = getattr(encoder, "replicas", None) or [encoder]
        if len(replicas) == 1:
            results = self._embed_batches(replicas[0], token_ids, batches)
        else:  # one thread per device, batches dealt round-robin (longest first, so the load stays even)
            with ThreadPoolExecutor(max_workers=len(replicas), thread_name_prefix="evalkit-device") as pool:
                shares = [batches[r :: len(replicas)] for r in range(len(replicas))]
                futures = [
                    pool.submit(self._embed_batches, rep, token_ids, share)
                    for rep, share in zip(replicas, shares, strict=True)
                ]
                results = [item for future in futures for item in future.result()]
        vectors = np.empty((len(token_ids), results[0][1].shape[1]), dtype=np.float32)
        for batch, batch_vectors in results:
            vectors[batch] = batch_vectors
        return vectors

    def _embed_batches(
        self, encoder: Encoder, token_ids: list[list[int]], batches: list[np.ndarray]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        return [(batch, self._embed_with_backoff(encoder, [token_ids[i] for i in batch])) for batch in batches]

    def _embed_with_backoff(self, encoder: Encoder, batch: list[list[int]]) -> np.ndarray:
        """One forward pass; on out-of-memory, halve the budget for the rest of the run and split this batch."""
        try:
            return encoder.embed_batch(batch)
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
            return np.concatenate(
                [self._embed_with_backoff(encoder, batch[:half]), self._embed_with_backoff(encoder, batch[half:])]
            )


def _release_device_memory() -> None:
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency; adapters without it still work
        pass


__all__ = ["EmbeddingCore", "dedup", "is_out_of_memory", "length_sorted_batches"]
