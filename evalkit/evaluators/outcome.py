"""What an evaluator returns: the scores of one split and subset, with the per-item values behind them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class PerItemScores:
    """Per-query (retrieval) or per-pair (STS) values, the raw material of significance tests."""

    item_ids: list[str]
    values: dict[str, np.ndarray]  # name → float64 array aligned with item_ids


@dataclass(frozen=True)
class SplitOutcome:
    """Scores of one (split, subset), named as mteb names them, and the main score among them."""

    split: str
    hf_subset: str
    languages: tuple[str, ...]
    scores: dict[str, float]
    main_score: float
    per_item: PerItemScores
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutcome:
    """Every split and subset of one task, and the wall time the evaluation took."""

    task_name: str
    splits: list[SplitOutcome]
    evaluation_time_s: float
