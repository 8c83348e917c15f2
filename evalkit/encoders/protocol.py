"""What every encoder adapter provides, so that batching, ordering, dedup and caching live once, in the core.

A model meets the core at one of three levels, and says which in its :class:`Capabilities`:

- ``tokens``: the core tokenizes, sorts by length, batches by a budget of padded tokens and calls ``embed_batch``
  (a local transformers model: :class:`Encoder`);
- ``texts``: the model takes raw texts (an API, a user's callable, an object's own ``encode``); the core batches
  by a count of texts (:class:`TextEncoder`);
- ``pairs``: the model scores (query, document) pairs (a cross-encoder); the core dedups, batches and caches over
  pairs (:class:`PairScorer`).

The core reads the declaration, never probes attributes: a new kind of model is a new declaration, not a new
``hasattr`` somewhere downstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from evalkit.core.outputs import EncodedOutput

Role = Literal["query", "document", "symmetric"]
"""Why a text is encoded: the role picks the instruction and is part of what makes a vector."""

OutputKind = Literal["dense", "sparse", "colbert"]
"""What a model gives per text: one vector, term weights over its vocabulary, or one vector per token."""

OUTPUT_KINDS: tuple[OutputKind, ...] = ("dense", "sparse", "colbert")

Level = Literal["tokens", "texts", "pairs", "lexical"]
"""Where the core meets the model: token ids, raw texts, (query, document) pairs, or not at all (``lexical``: a
retriever that ranks texts itself, such as BM25; it never goes through the core)."""

LEVELS: tuple[Level, ...] = ("tokens", "texts", "pairs", "lexical")


@dataclass(frozen=True)
class Capabilities:
    """What a model gives and how the core drives it, declared once by the adapter.

    ``outputs``: the per-text outputs it can give (empty for a pair scorer, whose output is one score per pair).
    ``replicas``: model copies the core spreads batches over (one per device). ``cacheable``: whether its
    ``fingerprint()`` names its vectors safely — ``False`` for an opaque callable, whose results are then never
    cached (an unknown function can change between calls without any sign).
    """

    outputs: tuple[OutputKind, ...] = ("dense",)
    level: Level = "tokens"
    replicas: int = 1
    cacheable: bool = True

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {self.level!r}")
        unknown = [kind for kind in self.outputs if kind not in OUTPUT_KINDS]
        if unknown:
            raise ValueError(f"unknown output(s) {unknown}; known: {', '.join(OUTPUT_KINDS)}")
        if self.replicas < 1:
            raise ValueError(f"replicas must be at least 1, got {self.replicas}")


TOKEN_DENSE = Capabilities()
"""The common case: a local model giving one dense vector per text from token ids."""

PAIR_SCORES = Capabilities(outputs=(), level="pairs")
"""A cross-encoder: one relevance score per (query, document) pair."""


@runtime_checkable
class Encoder(Protocol):
    """A model seen by the embedding core at the ``tokens`` level: texts → token ids → vectors.

    Tokenizing is separate from the forward pass so the core can tokenize once, sort by length and batch.
    Adapters declare ``capabilities``; one written to the first version of this protocol (without it) is read as
    :data:`TOKEN_DENSE`, its ``output_kinds`` (if any) as its outputs — see :func:`capabilities_of`.
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


@runtime_checkable
class MultiOutputEncoder(Encoder, Protocol):
    """An encoder whose one forward pass gives several outputs (BGE-M3: dense, sparse and ColBERT vectors).

    ``embed_batch`` still gives the dense vectors (where the model has them), so every dense code path works.
    """

    output_kinds: tuple[OutputKind, ...]
    """The outputs this model can give, e.g. ``("sparse",)`` for SPLADE (mirrored in ``capabilities.outputs``)."""

    def embed_outputs(
        self, token_ids: list[list[int]], outputs: tuple[OutputKind, ...]
    ) -> Mapping[OutputKind, EncodedOutput]:
        """Each requested output for one batch, rows in batch order: dense as ``(n, dim)`` float32, sparse as
        :class:`evalkit.core.outputs.SparseRows`, colbert as :class:`evalkit.core.outputs.MultiVectorRows`."""
        ...


@runtime_checkable
class TextEncoder(Protocol):
    """A model that takes raw texts (``capabilities.level == "texts"``): an embedding API, a callable, an object's
    own ``encode``. The core still dedups, caches and batches (by a count of texts: there are no tokens)."""

    name: str
    capabilities: Capabilities

    def prepare(self, texts: list[str], prompt: str) -> list[str]:
        """Apply a resolved prompt to raw texts (an object with prompts of its own gets ``""`` here)."""
        ...

    def embed_texts(self, texts: list[str], role: Role) -> np.ndarray:
        """Dense vectors (float32, ``(len(texts), dim)``) for one batch of distinct texts, in their order."""
        ...

    def fingerprint(self) -> dict[str, object]:
        """What names this model's vectors in the cache (unused when ``capabilities.cacheable`` is false)."""
        ...


@runtime_checkable
class PairScorer(Protocol):
    """A model that scores (query, document) pairs (``capabilities.level == "pairs"``), e.g. a cross-encoder.

    ``tokenize_pairs`` gives token ids (the core then batches by the token budget, as for texts); a scorer without
    a tokenizer of its own returns one pseudo-token per pair and the batches are then counts of pairs.
    """

    name: str
    capabilities: Capabilities

    def tokenize_pairs(self, pairs: list[tuple[str, str]]) -> list[list[int]]:
        """Token ids per pair, truncated as the model wants (the document first), unpadded."""
        ...

    def score_batch(self, token_ids: list[list[int]]) -> np.ndarray:
        """One float32 relevance score per pair of the batch, shape ``(n,)``."""
        ...

    def fingerprint(self) -> dict[str, object]:
        """Everything that changes a score besides the pair: weights hash, revision, settings."""
        ...


def capabilities_of(model: object) -> Capabilities:
    """A model's declared capabilities; the one place a model written before they existed is read: a token-level
    encoder of dense vectors, or of its ``output_kinds``."""
    declared = getattr(model, "capabilities", None)
    if isinstance(declared, Capabilities):
        return declared
    return Capabilities(outputs=tuple(getattr(model, "output_kinds", ("dense",))), level="tokens")


__all__ = [
    "LEVELS",
    "OUTPUT_KINDS",
    "PAIR_SCORES",
    "TOKEN_DENSE",
    "Capabilities",
    "Encoder",
    "Level",
    "MultiOutputEncoder",
    "OutputKind",
    "PairScorer",
    "Role",
    "TextEncoder",
    "capabilities_of",
]
