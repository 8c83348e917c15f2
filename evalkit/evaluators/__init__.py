"""Evaluators: one module per task type, from loaded data and an encoder to scores with per-item values kept."""

from __future__ import annotations

from collections.abc import Callable

from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import SplitOutcome, TaskOutcome
from evalkit.evaluators.pair_classification import evaluate_pair_classification
from evalkit.evaluators.reranking import evaluate_reranking
from evalkit.records import (
    AnswerRetrievalSplit,
    NativeSplit,
    PairLabelSplit,
    PairSplit,
    RerankingSplit,
    RetrievalSplit,
    Split,
)
from evalkit.registry.tasks import MTEB_NATIVE_TYPES

SPLIT_RECORD_BY_TYPE: dict[str, type] = {
    "Retrieval": RetrievalSplit,
    "STS": PairSplit,
    "PairClassification": PairLabelSplit,
    "Reranking": RerankingSplit,
    "AnswerRetrieval": AnswerRetrievalSplit,  # scored per task, not per split: evaluate_answer_retrieval_task
    **{task_type: NativeSplit for task_type in MTEB_NATIVE_TYPES},
}
OWN_EVALUATORS: dict[str, Callable[..., SplitOutcome]] = {
    "PairClassification": evaluate_pair_classification,
    "Reranking": evaluate_reranking,
}
"""Evaluators with the common signature, for the types evalkit scores itself besides Retrieval and STS."""
EVALUATED_TYPES = tuple(SPLIT_RECORD_BY_TYPE)


def check_split_type(task_type: str, split: Split, task_name: str) -> None:
    """A loader must hand an evaluator the record its type expects."""
    expected = SPLIT_RECORD_BY_TYPE[task_type]
    if not isinstance(split, expected):
        raise EvalkitError(f"task '{task_name}': expected {expected.__name__} data, got {type(split).__name__}")


__all__ = ["EVALUATED_TYPES", "OWN_EVALUATORS", "SplitOutcome", "TaskOutcome", "check_split_type"]
