"""Evaluators: one module per task type, from loaded data and an encoder to scores with per-item values kept."""

from __future__ import annotations

from evalkit.errors import EvalkitError
from evalkit.evaluators.outcome import SplitOutcome
from evalkit.records import PairSplit, RetrievalSplit, Split

EVALUATED_TYPES = ("Retrieval", "STS")


def check_split_type(task_type: str, split: Split, task_name: str) -> None:
    """A loader must hand an evaluator the record its type expects."""
    expected = {"Retrieval": RetrievalSplit, "STS": PairSplit}.get(task_type)
    if expected is None:
        raise EvalkitError(
            f"task '{task_name}' is of type {task_type}, which this evalkit does not evaluate yet "
            f"(evaluated: {', '.join(EVALUATED_TYPES)})"
        )
    if not isinstance(split, expected):
        raise EvalkitError(f"task '{task_name}': expected {expected.__name__} data, got {type(split).__name__}")


__all__ = ["EVALUATED_TYPES", "SplitOutcome", "check_split_type"]
