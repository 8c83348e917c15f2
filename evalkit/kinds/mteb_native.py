"""The types mteb's own evaluators score (Classification, MultilabelClassification, Clustering, BitextMining,
Summarization): protocols (a classifier, k-means, their seeds), not metrics, so evalkit feeds mteb's evaluator
through its embedding core and never rewrites it (``evalkit.evaluators.mteb_native``). They share one reader
and one evaluator; each differs only in its main score, its columns and whether it trains on a split.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from evalkit.kinds.kind import TaskKind
from evalkit.loaders.hub import load_native_from_hub
from evalkit.loaders.mirror import each_subset
from evalkit.loaders.native import read_native_subset
from evalkit.records import NativeSplit

if TYPE_CHECKING:
    from evalkit.evaluators.outcome import SplitOutcome
    from evalkit.pipeline.models import RunModels
    from evalkit.records import TaskData
    from evalkit.registry.tasks import TaskSpec


def evaluate_with_mteb_task(
    kind: TaskKind, spec: TaskSpec, data: TaskData, models: RunModels, *, search_backend: str
) -> list[SplitOutcome]:
    from evalkit.evaluators.mteb_native import evaluate_native_task

    return evaluate_native_task(spec, data, models)


def native_kind(
    name: str, main_score: str, *, columns: tuple[str, ...] | None = None, trains: bool = False
) -> TaskKind:
    """A type scored by mteb's evaluator: ``columns`` where mteb's task does not name them in ``*column_name``
    attributes, ``trains`` where the protocol fits on the task's training split too."""
    return TaskKind(
        name=name,
        split_type=NativeSplit,
        default_main_score=main_score,
        evaluate=evaluate_with_mteb_task,
        read_mirror=each_subset(partial(read_native_subset, columns=columns, trains=trains)),
        read_hub=partial(load_native_from_hub, trains=trains),
        description="scored by mteb's own evaluator",
    )


CLASSIFICATION = native_kind("Classification", "accuracy", trains=True)
MULTILABEL_CLASSIFICATION = native_kind("MultilabelClassification", "accuracy", trains=True)
CLUSTERING = native_kind("Clustering", "v_measure")
BITEXT_MINING = native_kind("BitextMining", "f1", columns=("sentence1", "sentence2"))
SUMMARIZATION = native_kind("Summarization", "cosine_spearman")
