"""Retrievers that rank documents without vectors (lexical search such as BM25).

A lexical retriever is not an embedding model: it sees the corpus and the queries at once and returns the same
:class:`~evalkit.search.dense.TopK` record dense search returns, so the metrics that follow cannot tell them apart.
``build_encoder`` returns one for a registry model whose adapter is lexical, declaring
:data:`LEXICAL_CAPABILITIES` (``capabilities.level == "lexical"``: it never goes through the embedding core, and
gives sparse rows where it has a sparse form); code downstream reads that declaration, not the object's type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from evalkit.encoders.protocol import Capabilities
from evalkit.search.dense import TopK

LEXICAL_CAPABILITIES = Capabilities(outputs=("sparse",), level="lexical")
"""What a lexical retriever declares: it ranks texts itself, and can give its sparse form for a hybrid."""


@runtime_checkable
class LexicalRetriever(Protocol):
    """A model that ranks a corpus for queries directly from their texts."""

    name: str

    def top_k(self, corpus_texts: list[str], query_texts: list[str], k: int, *, languages: Sequence[str] = ()) -> TopK:
        """Per query, the ``k`` best documents (all of them if the corpus is smaller): best first, equal scores by
        document index, scores float32.

        ``languages`` are the task subset's languages (``eng-Latn``); they pick the stopwords, stemmer and
        tokenizer as mteb picks them. Empty means English, mteb's fallback too.
        """
        ...

    def fingerprint(self) -> dict[str, object]:
        """Everything that changes a score besides the texts: the parameters and the library version."""
        ...


__all__ = ["LEXICAL_CAPABILITIES", "LexicalRetriever"]
