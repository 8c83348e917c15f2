"""The plain records every stage passes on: what a loader gives and what an evaluator takes.

They hold columns (parallel lists and arrays), not dicts of dicts, so the hot paths can work on arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Corpus:
    """Documents of a retrieval split, in file order. ``titles[i]`` is ``""`` when the document has none."""

    ids: list[str]
    titles: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class Queries:
    """Queries of a retrieval split, in file order."""

    ids: list[str]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.ids)


Qrels = dict[str, dict[str, int]]
"""Relevance judgements: ``qrels[query_id][doc_id] = grade``. Grades ≤ 0 are judged non-relevant."""


@dataclass(frozen=True)
class RetrievalSplit:
    """One split of a retrieval task: the corpus, the queries that have judgements, and the judgements."""

    corpus: Corpus
    queries: Queries
    qrels: Qrels


@dataclass(frozen=True)
class PairSplit:
    """One split of an STS task: sentence pairs and their gold similarity, in file order."""

    texts1: list[str]
    texts2: list[str]
    scores: np.ndarray  # float64, shape (n,)

    def __len__(self) -> int:
        return len(self.texts1)


Split = RetrievalSplit | PairSplit


@dataclass(frozen=True)
class SourceFile:
    """A file a loader read, with its checksum, so a result can say exactly which data produced it."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class TaskData:
    """A task's loaded data: ``splits[hf_subset][split_name]``, plus where it came from."""

    task_name: str
    splits: dict[str, dict[str, Split]]
    origin: str  # "mirror:<dir>" or "hub:<path>@<revision>"
    source_files: list[SourceFile] = field(default_factory=list)
