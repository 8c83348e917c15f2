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


@dataclass(frozen=True)
class NativeSplit:
    """A split of a task type that mteb's own evaluator scores (classification, clustering, bitext mining, ...).

    ``dataset`` is a ``datasets.Dataset`` with mteb's column names for the task; evalkit only feeds it, through
    its embedding core, to mteb's protocol (logistic regression, k-means, their seeds), never re-implementing it.
    """

    dataset: object


@dataclass(frozen=True)
class PairLabelSplit:
    """One split of a pair-classification task: sentence pairs and a 0/1 label each, in file order.

    Label 1 means the pair belongs together (duplicate, paraphrase, entailment), as mteb's ``labels`` column.
    """

    texts1: list[str]
    texts2: list[str]
    labels: np.ndarray  # int64, 0 or 1, shape (n,)

    def __len__(self) -> int:
        return len(self.texts1)


@dataclass(frozen=True)
class RerankingSplit:
    """One split of a reranking task: each query's given candidates, to be put in order by the model.

    ``candidates[i]`` holds the doc ids of ``queries.ids[i]`` (distinct, in the order given); every id is in
    ``corpus``. ``qrels`` judges candidates (and may judge other docs, which still count as relevant ones missed).
    """

    queries: Queries
    candidates: list[list[str]]
    corpus: Corpus
    qrels: Qrels

    def __len__(self) -> int:
        return len(self.queries)


@dataclass(frozen=True)
class AnswerRetrievalSplit:
    """One language of an open-domain QA retrieval set (MKQA): questions, their answer strings, and the passages.

    There are no relevance judgements: a passage is relevant when it contains one of the question's answers
    (``evalkit.metrics.has_answer``). ``answers[i]`` belongs to ``queries.ids[i]`` and holds at least one string.
    Every language of a task shares one ``corpus`` object, so its vectors are computed once for all of them.
    """

    corpus: Corpus
    queries: Queries
    answers: list[tuple[str, ...]]

    def __len__(self) -> int:
        return len(self.queries)


Split = RetrievalSplit | PairSplit | PairLabelSplit | RerankingSplit | NativeSplit | AnswerRetrievalSplit
"""Any one split a loader gives; which one follows from the task type (its kind's ``split_type``, ``evalkit.kinds``)."""
