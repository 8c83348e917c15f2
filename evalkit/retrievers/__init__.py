"""Retrievers that rank documents without vectors (lexical search such as BM25).

A lexical retriever is not an embedding model: it sees the corpus and the queries at once and returns the same
:class:`~evalkit.search.dense.TopK` record dense search returns, so the metrics that follow cannot tell them apart.
``load_encoder`` returns one for a registry model whose adapter is lexical; an evaluator tells the two kinds apart
with ``isinstance(model, LexicalRetriever)`` and calls :meth:`LexicalRetriever.top_k` instead of encoding.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from evalkit.search.dense import TopK


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


__all__ = ["LexicalRetriever"]
