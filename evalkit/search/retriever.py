"""One retriever interface: index a corpus, search it with queries, give exact scores, describe itself.

Every way a run retrieves — dense, sparse, ColBERT, a hybrid of one model's heads or of two models, BM25, a
cross-encoder stage over a first stage, the Ray backend — is one :class:`Retriever`, built once per run by
:func:`evalkit.search.build.build_retriever`, where every compatibility check lives. The evaluators ask it to
index and search and never look at what kind of model is behind it (mteb's ``SearchEncoderWrapper`` seam).

A corpus is indexed once per content, not per Python object: :func:`texts_digest` names what was indexed (the
texts and whatever else changes the index, such as the document prompt), and indexing the same content again is
free, so two splits or two tasks over the same documents encode them once. Only the latest corpus is held: a
new one replaces it (released before the new one is encoded), so memory never holds two corpora.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from evalkit.core import EmbeddingCore
from evalkit.core.outputs import EncodedOutputs
from evalkit.encoders.protocol import OutputKind, Role
from evalkit.search.dense import TopK

Encoded = np.ndarray | EncodedOutputs
"""Encoded texts: plain dense vectors (dense retrieval, ``core.encode``), else each output the retrieval needs."""


@runtime_checkable
class Retriever(Protocol):
    """What a run retrieves with. ``index`` then ``search``; ``scores`` refers to the last ``search``'s queries."""

    def index(self, corpus_texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        """Encode or index a corpus; the same content (texts, prompt, languages) indexed again costs nothing."""
        ...

    def search(
        self, query_texts: Sequence[str], k: int, *, prompt: str = "", languages: Sequence[str] = (), desc: str = ""
    ) -> TopK:
        """Per query, its best ``k`` documents of the indexed corpus: best first, equal scores by index, index -1
        and score -inf in the slots of a query with fewer results (some retrievers use a depth of their own)."""
        ...

    def scores(self, candidates: Sequence[np.ndarray]) -> list[np.ndarray]:
        """This retriever's exact score of each candidate document (``candidates[row]``: corpus indices) for each
        query of the last search — what a weighted fusion needs for documents outside this retriever's top k."""
        ...

    def describe(self) -> dict[str, Any]:
        """What the run record keeps; its ``"tag"`` is what this retrieval adds to the revision folder's name."""
        ...


class Encodings(Protocol):
    """A model's encodings of the current corpus and the latest queries, each side keyed by content digest
    (:class:`ModelEncodings` through the core; BM25's term weights, ``evalkit.search.stages.LexicalRows``)."""

    corpus: Encoded | None
    queries: Encoded | None
    corpus_key: str | None
    query_key: str | None

    def index(self, texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None: ...

    def encode_queries(
        self, texts: Sequence[str], *, prompt: str = "", desc: str = "", languages: Sequence[str] = ()
    ) -> None: ...


def texts_digest(texts: Sequence[str], *context: object) -> str:
    """A content digest of ``texts`` in order (each length-prefixed, so no two lists collide) and ``context``."""
    digest = hashlib.sha256()
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    digest.update(repr(context).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def dense_rows(encoded: Encoded) -> np.ndarray:
    """The dense vectors of encoded texts (plain vectors, or the ``dense`` output)."""
    return encoded if isinstance(encoded, np.ndarray) else encoded["dense"]  # type: ignore[return-value]


@dataclass
class ModelEncodings:
    """One model's encodings of the current corpus and the latest queries, from the core (dedup, batching, cache).

    ``outputs=None`` encodes plain dense vectors (``core.encode``, the default dense path); otherwise each listed
    output comes from one forward pass (``core.encode_outputs``), shared by every retriever over this model (the
    dense, sparse and ColBERT retrievers of a BGE-M3 hybrid read one encoding). ``use_prompts=False`` is a second
    model of a hybrid: the main model's instructions are not its own. Both sides are keyed by content digest.
    """

    encoder: Any
    core: EmbeddingCore
    outputs: tuple[OutputKind, ...] | None = None
    use_prompts: bool = True
    label: str = ""  # progress-bar suffix ("sparse" for a second model)
    corpus: Encoded | None = None
    queries: Encoded | None = None
    corpus_key: str | None = None
    query_key: str | None = None

    def index(self, texts: Sequence[str], *, prompt: str = "", languages: Sequence[str] = ()) -> None:
        prompt = prompt if self.use_prompts else ""
        key = texts_digest(texts, "document", prompt)
        if key == self.corpus_key:
            return
        self.corpus = self.corpus_key = None  # released before the next corpus is encoded
        self.corpus = self._encode(
            list(texts), "document", prompt, f"document {self.label}" if self.label else "corpus"
        )
        self.corpus_key = key

    def encode_queries(
        self, texts: Sequence[str], *, prompt: str = "", desc: str = "", languages: Sequence[str] = ()
    ) -> None:
        prompt = prompt if self.use_prompts else ""
        key = texts_digest(texts, "query", prompt, self.corpus_key)
        if key == self.query_key:
            return
        self.queries = self._encode(list(texts), "query", prompt, f"query {self.label}" if self.label else desc)
        self.query_key = key

    def _encode(self, texts: list[str], role: Role, prompt: str, desc: str) -> Encoded:
        if self.outputs is None:
            return self.core.encode(self.encoder, texts, role, prompt=prompt, desc=desc)
        return dict(self.core.encode_outputs(self.encoder, texts, role, outputs=self.outputs, prompt=prompt, desc=desc))


__all__ = ["Encoded", "Encodings", "ModelEncodings", "Retriever", "dense_rows", "texts_digest"]
