"""Evaluators: one module per task type, from loaded data and an encoder to scores with per-item values kept."""

from __future__ import annotations

from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import SplitOutcome, TaskOutcome
from evalkit.records import PairSplit, RetrievalSplit, Split

SPLIT_RECORD_BY_TYPE: dict[str, type] = {"Retrieval": RetrievalSplit, "STS": PairSplit}
EVALUATED_TYPES = tuple(SPLIT_RECORD_BY_TYPE)


def check_split_type(task_type: str, split: Split, task_name: str) -> None:
    """A loader must hand an evaluator the record its type expects."""
    expected = SPLIT_RECORD_BY_TYPE[task_type]
    if not isinstance(split, expected):
        raise EvalkitError(f"task '{task_name}': expected {expected.__name__} data, got {type(split).__name__}")


__all__ = ["EVALUATED_TYPES", "SplitOutcome", "TaskOutcome", "check_split_type"]
