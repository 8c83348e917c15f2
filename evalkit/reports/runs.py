"""A run as the comparison commands read it, and the per-item pairing their paired tests run on.

``evalkit run --output DIR`` writes ``DIR/<org>__<model>/<revision>/``. Any of the three levels is accepted as long
as it leads to exactly one revision folder; published MTEB result folders (no per-item scores, no run records) load
too, and are compared on their scores alone. Reading is the one results reader's (``evalkit.results.folders``);
what is left here is aligning two runs' per-item scores, checked row by row (a ``DataError`` names file and line).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.registry.tasks import TaskRegistry
from evalkit.results.folders import Run, read_run
from evalkit.results.record import TaskRecord, is_number
from evalkit.stats.paired import PairedItems

__all__ = [
    "Cell",
    "Numbered",
    "Run",
    "TaskRecord",
    "column_values",
    "load_run",
    "main_score_statistic",
    "paired_cells",
    "per_item_cells",
]


def main_score_statistic(record: TaskRecord) -> tuple[str, str] | None:
    """(per-item column, statistic over items) for the task's main score, as its kind declares it; None for a kind
    that is unknown or has no per-item test. Public so that every reader of per-item scores (paired tests here, the
    leaderboard's rank intervals) resamples the very column and statistic the task is scored by."""
    from evalkit.kinds import get_kind, is_known

    if not is_known(record.task_type):
        return None
    stat = get_kind(record.task_type).per_item_statistic(record.main_score_name)
    return (stat.column, stat.statistic) if stat is not None else None


def load_run(folder: Path | str, registry: TaskRegistry | None = None) -> Run:
    """The run a comparison reads: the one revision folder ``folder`` leads to."""
    return read_run(folder, registry)


Numbered = list[tuple[int, dict[str, Any]]]  # (line, row) of a per-item file
Cell = dict[str, tuple[int, dict[str, Any]]]  # item id → (line, row) of one (split, subset)


def per_item_cells(rows: Numbered, path: Path | None) -> dict[tuple[str, str], Cell]:
    """Per-item rows grouped by (split, subset), each cell keyed by item id, so that two runs (or one run and a
    benchmark's cells) can be aligned item by item; an item scored twice in a cell is a DataError at its line."""
    cells: dict[tuple[str, str], Cell] = {}
    for line, row in rows:
        cell = cells.setdefault((row["split"], row["hf_subset"]), {})
        item = str(row["id"])
        if item in cell:
            raise DataError(f"item '{item[:80]}' is scored twice", file=path, line=line, field="id")
        cell[item] = (line, row)
    return cells


def column_values(cell: Cell, ids: list[str], column: str, path: Path | None) -> np.ndarray:
    """One column of a cell's rows, in ``ids`` order, as the array a paired test or a resample reads; each value a
    finite number, or a DataError at its line (a bad row names its file and line, never a NaN downstream)."""
    values = np.empty(len(ids))
    for index, item in enumerate(ids):
        line, row = cell[item]
        value = row.get(column)
        if not is_number(value) or not math.isfinite(value):
            message = f"'{column}' of item '{item[:80]}' is not a finite number"
            raise DataError(message, file=path, line=line, field=column)
        values[index] = value
    return values


def _usable(
    baseline: TaskRecord, base_rows: Numbered | None, cand_rows: Numbered | None
) -> tuple[str | None, str | None]:
    """(column, None) when both sides have per-item rows holding the main score's column, else (None, why)."""
    if not base_rows or not cand_rows:
        return None, "no per-item scores on " + ("either side" if not base_rows and not cand_rows else "one side")
    main = baseline.main_score_name
    stat = main_score_statistic(baseline)
    column = stat[0] if stat is not None else main
    if stat is None or column not in base_rows[0][1] or column not in cand_rows[0][1]:
        return None, f"per-item scores do not hold '{column}' (main score {main})"
    if stat[1] != "mean" and ("gold" not in base_rows[0][1] or "gold" not in cand_rows[0][1]):
        return None, "per-pair scores lack the gold scores"
    return column, None


def paired_cells(baseline: TaskRecord, candidate: TaskRecord) -> tuple[list[PairedItems] | None, str | None]:
    """Both runs' per-item scores for the task's main score, aligned by (split, subset, item id).

    Returns (cells, None), or (None, why) when a test cannot be run: no per-item scores on a side, a main score
    that is not a mean over items or a correlation over pairs, or a cell of fewer than two items. Raises DataError
    when the items themselves differ (the runs did not score the same queries or pairs: they are not comparable)
    or a row is malformed (a missing or non-finite value, an item scored twice).
    """
    base_rows, cand_rows = baseline.numbered_per_item_rows(), candidate.numbered_per_item_rows()
    column, why = _usable(baseline, base_rows, cand_rows)
    if column is None or base_rows is None or cand_rows is None:
        return None, why
    statistic = main_score_statistic(baseline)[1]  # type: ignore[index]  # _usable found one
    base_path, cand_path = baseline.per_item_file, candidate.per_item_file
    base_cells, cand_cells = per_item_cells(base_rows, base_path), per_item_cells(cand_rows, cand_path)
    if base_cells.keys() != cand_cells.keys():
        raise DataError(
            f"{baseline.name}: the runs scored different splits/subsets ({sorted(base_cells)} vs {sorted(cand_cells)})",
            file=cand_path,
        )
    paired = []
    for key in sorted(base_cells):
        base, cand = base_cells[key], cand_cells[key]
        if base.keys() != cand.keys():
            only = len(base.keys() - cand.keys()) + len(cand.keys() - base.keys())
            raise DataError(
                f"{baseline.name} {key[0]}/{key[1]}: the runs scored different items ({only} not on both sides)",
                file=cand_path,
            )
        if len(base) < 2:
            return None, f"fewer than two items in {key[0]}/{key[1]}"
        ids = sorted(base)
        values = (column_values(base, ids, column, base_path), column_values(cand, ids, column, cand_path))
        if statistic != "mean":  # a correlation with the gold scores over pairs
            gold = column_values(base, ids, "gold", base_path)
            if not np.array_equal(gold, column_values(cand, ids, "gold", cand_path)):
                raise DataError(f"{baseline.name}: the gold scores differ between runs", file=cand_path)
            paired.append(PairedItems(statistic, values[0], values[1], gold))
        else:
            paired.append(PairedItems("mean", values[0], values[1]))
    return paired, None
