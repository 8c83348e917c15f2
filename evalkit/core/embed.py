"""The embedding core: dedup, tokenize once, sort by length, batch, restore the input order.

Sorting by length keeps padding (wasted compute) small; dedup means a text that appears twice — a corpus shared
by splits, a sentence in many STS pairs — is encoded once. Later versions add token budgets, caching, precision
and devices here, once, for every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from evalkit.encoders.protocol import Encoder, Role


def dedup(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Distinct texts in first-seen order, and for each input the index of its distinct text."""
    index_of: dict[str, int] = {}
    inverse = np.fromiter((index_of.setdefault(t, len(index_of)) for t in texts), dtype=np.int64, count=len(texts))
    return list(index_of), inverse


def length_sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (so a memory error shows up at once)."""
    order = np.argsort(-lengths, kind="stable")
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


@dataclass
class EmbeddingCore:
    """Turns texts into vectors through any encoder adapter."""

    batch_size: int = 32
    show_progress: bool = True

    def encode(self, encoder: Encoder, texts: list[str], role: Role, *, prompt: str = "", desc: str = "") -> np.ndarray:
        """Vectors for ``texts`` in input order (float32, one row per input, duplicates included).

        ``prompt`` is the instruction already resolved for this task and role (see ``evalkit.encoders.prompts``).
        """
        distinct, inverse = dedup(encoder.prepare(texts, prompt))
        if not distinct:
            return np.zeros((0, 0), dtype=np.float32)
        token_ids = encoder.tokenize(distinct)
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        batches = length_sorted_batches(lengths, self.batch_size)
        vectors: np.ndarray | None = None
        progress = tqdm(
            total=len(distinct),
            desc=desc or f"encoding {role}s",
            unit="text",
            disable=None if self.show_progress else True,  # None: shown on a terminal, silent in logs
        )
        with progress:
            for batch in batches:
                batch_vectors = encoder.embed_batch([token_ids[i] for i in batch])
                if vectors is None:
                    vectors = np.empty((len(distinct), batch_vectors.shape[1]), dtype=np.float32)
                vectors[batch] = batch_vectors
                progress.update(len(batch))
        assert vectors is not None
        return vectors[inverse]
