"""What every encoder adapter provides, so that batching, ordering and dedup live once, in the core."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from evalkit.core.outputs import EncodedOutput

Role = Literal["query", "document", "symmetric"]
"""Why a text is encoded: the role picks the instruction and is part of what makes a vector."""

OutputKind = Literal["dense", "sparse", "colbert"]
"""What a model gives per text: one vector, term weights over its vocabulary, or one vector per token."""

OUTPUT_KINDS: tuple[OutputKind, ...] = ("dense", "sparse", "colbert")


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


@runtime_checkable
class MultiOutputEncoder(Encoder, Protocol):
    """An encoder whose one forward pass gives several outputs (BGE-M3: dense, sparse and ColBERT vectors).

    ``embed_batch`` still gives the dense vectors (where the model has them), so every dense code path works.
    """

    output_kinds: tuple[OutputKind, ...]
    """The outputs this model can give, e.g. ``("sparse",)`` for SPLADE."""

    def embed_outputs(
        self, token_ids: list[list[int]], outputs: tuple[OutputKind, ...]
    ) -> Mapping[OutputKind, EncodedOutput]:
        """Each requested output for one batch, rows in batch order: dense as ``(n, dim)`` float32, sparse as
        :class:`evalkit.core.outputs.SparseRows`, colbert as :class:`evalkit.core.outputs.MultiVectorRows`."""
        ...
