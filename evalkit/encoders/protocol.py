"""What every encoder adapter provides, so that batching, ordering and dedup live once, in the core."""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import numpy as np

Role = Literal["query", "document", "symmetric"]
"""Why a text is encoded: the role picks the instruction and is part of what makes a vector."""


@runtime_checkable
class Encoder(Protocol):
    """A model seen by the embedding core: texts → token ids → vectors.

    Tokenizing is separate from the forward pass so the core can tokenize once, sort by length and batch.
    """

    name: str

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        """Apply a resolved prompt (instruction) to raw texts; most models prepend it."""
        ...

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        """Token ids per text, truncated to the model's max length, unpadded."""
        ...

    def embed_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        """Vectors (float32, shape ``(len(token_ids), dim)``) for one batch; the adapter pads it."""
        ...

    def fingerprint(self) -> dict[str, object]:
        """Everything that changes a vector besides the text and role: weights hash, revision, settings."""
        ...
