"""What an evaluator returns: the scores of one split and subset, with the per-item values behind them."""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

from evalkit.errors import DataError, EvalkitError


@dataclass(frozen=True)
class PerItemScores:
    """Per-query (retrieval) or per-pair (STS) values, the raw material of significance tests."""

    item_ids: list[str]
    values: dict[str, np.ndarray]  # name → float64 array aligned with item_ids


@dataclass(frozen=True)
class Ranking:
    """Each query's ranked documents as evalkit scored them (best first, ties as trec_eval breaks them), kept so
    ``--save-run`` can write them as a TREC run file that other tools score the same way."""

    query_ids: list[str]
    doc_ids: list[list[str]]  # per query, best first
    scores: list[np.ndarray]  # per query, aligned with doc_ids


@dataclass(frozen=True)
class SplitOutcome:
    """Scores of one (split, subset), named as mteb names them, and the main score among them.

    ``warnings``: what is valid but degenerate about the data (every judgement grade 0, one label only), so the
    reader of a suspicious number learns why; they are printed and kept in the run record.
    """

    split: str
    hf_subset: str
    languages: tuple[str, ...]
    scores: dict[str, float]
    main_score: float
    per_item: PerItemScores
    timings: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    # the ranked lists behind the scores, for kinds that rank documents: "run", or "first_stage" and "reranked"
    rankings: dict[str, Ranking] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskOutcome:
    """Every split and subset of one task, and the wall time the evaluation took.

    Built before anything of the task is written, so a non-finite main score (a correlation undefined on this
    data) is refused here, naming the task and split: a ``null`` main score is never written.
    """

    task_name: str
    splits: list[SplitOutcome]
    evaluation_time_s: float

    def __post_init__(self) -> None:
        for split in self.splits:
            if not isinstance(split.main_score, (int, float)) or not math.isfinite(split.main_score):
                raise DataError(
                    f"task '{self.task_name}', split '{split.split}', subset '{split.hf_subset}': the main score is "
                    f"{split.main_score} (undefined on this data, e.g. constant gold scores or similarities); "
                    "nothing of this task was written",
                    field="main_score",
                )

    @property
    def warnings(self) -> list[str]:
        """Every split's warnings, each prefixed with its ``split/subset``."""
        return [f"{s.split}/{s.hf_subset}: {message}" for s in self.splits for message in s.warnings]


def require_main_score(main_score: str, computed: Collection[str], task_type: str) -> None:
    """Refuse, before any encoding, a main score this evaluator does not compute (not a KeyError hours later)."""
    if main_score not in computed:
        close = difflib.get_close_matches(main_score, sorted(computed), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise EvalkitError(f"'{main_score}' is not a {task_type} score{hint}", field="main_score")


def qrels_warnings(qrels: dict[str, dict[str, int]]) -> list[str]:
    """Judgements that make every ranking score 0: valid, but worth saying."""
    if qrels and not any(grade > 0 for judged in qrels.values() for grade in judged.values()):
        return ["no judgement has a grade above 0, so every ranking score is 0"]
    return []


def label_warnings(labels: np.ndarray) -> list[str]:
    """A pair-classification split with one label only: accuracy and AP say little about the model."""
    found = sorted({int(label) for label in np.unique(labels)})
    if len(found) == 1:
        return [f"every pair has label {found[0]}: the scores say little about the model"]
    return []
