"""The one task-score rule every report uses: run table, leaderboard, diff, compare, submit, benchmark scores.

A task's score is the mean main score over the (split, subset) cells the task expects. A cell the file lacks, or
whose main score is absent, NaN or not a number, makes the score ``None`` ("missing"), never a mean over the cells
that happen to be there. Which cells a task expects is the caller's context: a benchmark's restricted task object
(``expected_of_task``), an evalkit spec (``expected_of_spec``: the run record's, else the registry's), or, for a
task nothing describes, every cell its file holds (``expected_in_file``). The values are mteb's
(``TaskResult.validate_and_filter_scores(task).get_score()``) whenever every cell is there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

Expected = Mapping[str, Sequence[str]]
"""split → the hf subsets the task expects in it, in the task's order."""

DEFAULT_SUBSET = "default"
_NOT_SCORES = frozenset({"hf_subset", "languages", "main_score", "mteb_version"})


def finite(value: object) -> float | None:
    """A score as a float, or None for anything that is not one finite number (NaN, a string, true, 1e400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def mean_or_none(values: Sequence[float | None]) -> float | None:
    """The plain mean, or None when there is nothing or anything is missing: never a partial mean."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def subset_of(cell: Mapping[str, Any]) -> str:
    """A cell's hf subset; files before mteb 1.11 had one unnamed subset, ``default``."""
    subset = cell.get("hf_subset", DEFAULT_SUBSET)
    return subset if isinstance(subset, str) else str(subset)


def cells_of(scores: Mapping[str, Any], split: str) -> list[Mapping[str, Any]]:
    """The score cells of one split (each a JSON object), in file order; nothing for a split of the wrong shape."""
    cells = scores.get(split) if isinstance(scores, Mapping) else None
    return [cell for cell in cells if isinstance(cell, Mapping)] if isinstance(cells, list) else []


def expected_of_task(task: Any) -> dict[str, tuple[str, ...]]:
    """The cells an mteb task object expects (a benchmark's object may keep fewer splits and subsets).

    An aggregate (CQADupstackRetrieval) has one ``default`` cell per split, whatever its metadata lists, as mteb's
    ``validate_and_filter_scores`` keeps.
    """
    subsets = (DEFAULT_SUBSET,) if getattr(task, "is_aggregate", False) else tuple(task.hf_subsets)
    return {split: subsets for split in task.eval_splits}


def expected_of_spec(eval_splits: Sequence[str], hf_subsets: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The cells of an evalkit task spec: every eval split × every hf subset."""
    return {split: tuple(hf_subsets) for split in eval_splits}


def expected_in_file(scores: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """For a task nothing describes: every cell the file holds (mteb's ``TaskResult.get_score`` over it)."""
    splits = scores if isinstance(scores, Mapping) else {}
    return {split: tuple(dict.fromkeys(subset_of(c) for c in cells_of(splits, split))) for split in splits}


def missing_cells(scores: Mapping[str, Any], expected: Expected) -> list[tuple[str, str]]:
    """(split, subset) cells the task expects that the file does not hold."""
    missing = []
    for split, subsets in expected.items():
        present = {subset_of(cell) for cell in cells_of(scores, split)}
        missing += [(split, subset) for subset in subsets if subset not in present]
    return missing


def task_score(
    scores: Mapping[str, Any], expected: Expected, *, main_score: str | None = None
) -> tuple[float | None, str | None]:
    """(score, None), or (None, why): the rule above. ``scores`` is a TaskResult's ``scores`` (split → cells).

    Cells are averaged in the expected split order and file order within a split (a subset listed twice in a file
    counts twice, as mteb counts it).
    """
    missing = missing_cells(scores, expected)
    if missing:
        split, _ = missing[0]
        subsets = [subset for s, subset in missing if s == split]
        shown = ", ".join(subsets[:5]) + (f" and {len(subsets) - 5} more" if len(subsets) > 5 else "")
        if not cells_of(scores, split):
            return None, f"missing split '{split}'"
        return None, f"split '{split}' lacks subsets {shown}"
    values: list[float] = []
    for split, subsets in expected.items():
        wanted = set(subsets)
        for cell in cells_of(scores, split):
            if subset_of(cell) not in wanted:
                continue
            value = cell.get("main_score")
            where = f"split '{split}' subset '{subset_of(cell)}'"
            if value is None:
                present = sorted(str(k) for k in cell if k not in _NOT_SCORES)
                wanted_name = f" '{main_score}'" if main_score else ""
                return None, f"no main score{wanted_name} for {where} (the file has: {', '.join(present) or 'nothing'})"
            number = finite(value)
            if number is None:
                return None, f"no score for {where}" + ("" if isinstance(value, float) else " (not a number)")
            values.append(number)
    if not values:
        return None, f"no scores for splits {', '.join(expected)}"
    return sum(values) / len(values), None
