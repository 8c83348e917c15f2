"""A run as the comparison commands read it: one model revision's task results, per-item scores and run records.

``evalkit run --output DIR`` writes ``DIR/<org>__<model>/<revision>/``. Any of the three levels is accepted as long
as it leads to exactly one revision folder; published MTEB result folders (no per-item scores, no run records) load
too, and are compared on their scores alone.

Everything read here was written by someone else, so it is checked on load: a task name becomes a file name only
when it is one safe component (and the side files it names stay inside the revision folder); scores, per-item rows
and run records of the wrong shape are a ``DataError`` naming the file, line and field, never a crash later on.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.registry.tasks import TaskRegistry, default_registry
from evalkit.results.layout import EVALKIT_DIR
from evalkit.safe_paths import ensure_within, safe_component
from evalkit.stats.paired import PairedItems

_CORRELATION = re.compile(r"^(cosine|dot|euclidean|manhattan)_(spearman|pearson)$")


@dataclass(frozen=True)
class TaskRun:
    """One task's result in a run."""

    name: str
    task_type: str
    main_score_name: str
    result: dict[str, Any]  # the TaskResult JSON
    result_file: Path
    per_item_file: Path | None
    record: dict[str, Any] | None  # evalkit's run record, when the run came from evalkit

    @property
    def cells(self) -> dict[tuple[str, str], float]:
        """(split, subset) → main score, for every cell the result holds."""
        found = {}
        for split, entries in self.result.get("scores", {}).items():
            for entry in entries:
                value = entry.get("main_score")
                found[(split, str(entry.get("hf_subset", "default")))] = float(value) if value is not None else math.nan
        return found

    @property
    def score(self) -> float:
        """Mean main score over the cells, as mteb's ``TaskResult.get_score``."""
        values = list(self.cells.values())
        return fmean(values) if values else math.nan

    @property
    def dataset_revision(self) -> str | None:
        return self.result.get("dataset_revision")

    @property
    def data_checksums(self) -> dict[str, str] | None:
        """File name → sha256 of the data the run read (evalkit runs only)."""
        if not self.record:
            return None
        files = self.record.get("data", {}).get("files", [])
        return {Path(f["path"]).name if "/" in f["path"] else f["path"]: f.get("sha256") for f in files}

    @property
    def task_version(self) -> object:
        return (self.record or {}).get("task", {}).get("version")

    def per_item_rows(self) -> list[dict[str, Any]] | None:
        numbered = self.numbered_per_item_rows()
        return None if numbered is None else [row for _, row in numbered]

    def numbered_per_item_rows(self) -> list[tuple[int, dict[str, Any]]] | None:
        """(line number, row) of every per-item row, each checked to name its split, subset and item id."""
        if self.per_item_file is None:
            return None
        rows: list[tuple[int, dict[str, Any]]] = []
        number = 0
        try:
            with gzip.open(self.per_item_file, "rt", encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if line.strip():
                        rows.append((number, _per_item_row(json.loads(line), self.per_item_file, number)))
        except (OSError, EOFError, zlib.error, ValueError, RecursionError) as err:  # ValueError: bad UTF-8 or JSON
            line = number + 1 if isinstance(err, UnicodeDecodeError) else number or None
            raise DataError(f"cannot read per-item scores: {_short(err)}", file=self.per_item_file, line=line) from None
        return rows


@dataclass(frozen=True)
class Run:
    """One model revision's results."""

    folder: Path
    model: str
    revision: str
    settings: dict[str, Any] = field(default_factory=dict)  # model settings from the run records, when there
    tasks: dict[str, TaskRun] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.model}@{self.revision}"


def _short(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__


def _per_item_row(row: object, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DataError("a per-item row must be a JSON object", file=path, line=line)
    for key in ("split", "hf_subset", "id"):
        value = row.get(key)
        if not isinstance(value, str) and not (key == "id" and type(value) is int):
            raise DataError(f"a per-item row needs a string '{key}'", file=path, line=line, field=key)
    return row


def _revision_folder(folder: Path) -> Path:
    """Walk down from an output root or a model folder to the single revision folder it holds."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a results folder", file=folder)
    current = folder
    try:
        for _ in range(3):
            if any(p.suffix == ".json" and p.name != "model_meta.json" for p in current.iterdir()):
                return current
            children = sorted(p for p in current.iterdir() if p.is_dir() and p.name != EVALKIT_DIR)
            if len(children) != 1:
                found = ", ".join(p.name for p in children) or "nothing"
                raise DataError(f"expected one model or revision folder here, found: {found}", file=current)
            current = ensure_within(folder, children[0], what="folder")
    except OSError as err:
        raise DataError(f"cannot list the folder: {_short(err)}", file=current) from None
    raise DataError("no task result files (<Task>.json) found", file=folder)


def read_json(path: Path, what: str = "JSON") -> Any:
    """Any JSON document, or a DataError naming the file (and line): bad UTF-8, bad JSON, too deep, unreadable."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"cannot read {what}: {err.msg}", file=path, line=err.lineno) from None
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(f"cannot read {what}: {_short(err)}", file=path) from None


def _read_json(path: Path, what: str = "JSON") -> dict[str, Any]:
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise DataError(f"{what}: expected a JSON object, not {type(data).__name__}", file=path)
    return data


def _identity(revision_dir: Path) -> tuple[str, str]:
    meta = revision_dir / "model_meta.json"
    if meta.is_file():
        data = _read_json(meta, "model metadata")
        for key in ("name", "revision"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise DataError(f"'{key}' must be a string", file=meta, field=key)
        if data.get("name"):
            return data["name"], data.get("revision") or revision_dir.name
    return revision_dir.parent.name.replace("__", "/"), revision_dir.name


def _check_scores(path: Path, scores: dict[str, Any]) -> None:
    """Every cell an object with a string subset (once per split) and a numeric or null main score."""
    for split, entries in scores.items():
        if not isinstance(entries, list):
            raise DataError("expected a list of score cells", file=path, field=f"scores.{split}")
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            where = f"scores.{split}[{index}]"
            if not isinstance(entry, dict):
                raise DataError("a score cell must be a JSON object", file=path, field=where)
            subset = entry.get("hf_subset", "default")
            if not isinstance(subset, str) or subset in seen:
                raise DataError("'hf_subset' must be a string, once per split", file=path, field=f"{where}.hf_subset")
            seen.add(subset)
            value = entry.get("main_score")
            if value is not None and not _is_number(value):
                message = f"the main score ({type(value).__name__}) is not a number"
                raise DataError(message, file=path, field=f"{where}.main_score")


def _is_number(value: object) -> bool:
    """A JSON number a float can hold (NaN and infinities included; bool and 1e400-sized ints not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


def _check_record(path: Path, record: dict[str, Any]) -> None:
    """The parts of a run record the comparison reads: model settings, task version and the data checksums."""
    for key in ("model", "task", "data"):
        if not isinstance(record.get(key, {}), dict):
            raise DataError(f"'{key}' must be a JSON object", file=path, field=key)
    files = record.get("data", {}).get("files", [])
    if not isinstance(files, list):
        raise DataError("expected a list of files", file=path, field="data.files")
    for index, entry in enumerate(files):
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise DataError("a data file needs a string 'path'", file=path, field=f"data.files[{index}]")
        if entry.get("sha256") is not None and not isinstance(entry["sha256"], str):
            raise DataError("'sha256' must be a string", file=path, field=f"data.files[{index}].sha256")


def _side_file(revision_dir: Path, name: str, suffix: str, source: Path) -> Path:
    """``<revision>/evalkit/<name><suffix>``, the name checked as one component inside the revision folder."""
    file_name = safe_component(f"{name}{suffix}", what="side file name", file=source, field="task_name")
    return ensure_within(revision_dir, revision_dir / EVALKIT_DIR / file_name, what="side file")


def _upgrade_legacy(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A TaskResult in an older mteb format, converted by mteb's own loader (it knows every past format)."""
    import mteb

    try:
        result = mteb.TaskResult.from_disk(path)
    except Exception as err:  # mteb raises anything from KeyError to pydantic errors on a bad file
        raise DataError(f"not an MTEB task result: {' '.join(str(err).split())[:200]}", file=path) from None
    upgraded = json.loads(result.model_dump_json())
    upgraded.setdefault("dataset_revision", data.get("dataset_revision"))
    return upgraded


def load_run(folder: Path | str, registry: TaskRegistry | None = None) -> Run:
    revision_dir = _revision_folder(Path(folder))
    registry = registry or default_registry()
    model, revision = _identity(revision_dir)
    tasks: dict[str, TaskRun] = {}
    settings: dict[str, Any] = {}
    for path in sorted(revision_dir.glob("*.json")):
        if path.name == "model_meta.json":
            continue
        ensure_within(revision_dir, path, what="task result file")
        data = _read_json(path, "task result")
        if "task_name" not in data or not isinstance(data.get("scores"), dict):
            data = _upgrade_legacy(path, data)
        name = safe_component(data.get("task_name"), what="task name", file=path, field="task_name")
        if name in tasks:
            raise DataError(f"a second result file for task '{name}'", file=path, field="task_name")
        _check_scores(path, data["scores"])
        try:
            spec = registry.get(name)
            task_type, main_score = spec.type, spec.main_score
        except Exception:  # a task this mteb does not know: compare it on the score its file names
            task_type, main_score = "unknown", "main_score"
        per_item = _side_file(revision_dir, name, ".per_item.jsonl.gz", path)
        record_path = _side_file(revision_dir, name, ".run.json", path)
        record = _read_json(record_path, "run record") if record_path.is_file() else None
        if record is not None:
            _check_record(record_path, record)
        if record and not settings:
            settings = {k: v for k, v in record.get("model", {}).items() if k not in {"model", "weights_sha256"}}
        tasks[name] = TaskRun(
            name=name,
            task_type=task_type,
            main_score_name=main_score,
            result=data,
            result_file=path,
            per_item_file=per_item if per_item.is_file() else None,
            record=record,
        )
    if not tasks:
        raise DataError("no task result files (<Task>.json) found", file=revision_dir)
    return Run(folder=revision_dir, model=model, revision=revision, settings=settings, tasks=tasks)


Numbered = list[tuple[int, dict[str, Any]]]  # (line, row) of a per-item file
Cell = dict[str, tuple[int, dict[str, Any]]]  # item id → (line, row) of one (split, subset)


def _grouped(rows: Numbered, path: Path | None) -> dict[tuple[str, str], Cell]:
    cells: dict[tuple[str, str], Cell] = {}
    for line, row in rows:
        cell = cells.setdefault((row["split"], row["hf_subset"]), {})
        item = str(row["id"])
        if item in cell:
            raise DataError(f"item '{item[:80]}' is scored twice", file=path, line=line, field="id")
        cell[item] = (line, row)
    return cells


def _values(cell: Cell, ids: list[str], column: str, path: Path | None) -> np.ndarray:
    """One column of the rows, in ``ids`` order; each value a finite number, or a DataError at its line."""
    values = np.empty(len(ids))
    for index, item in enumerate(ids):
        line, row = cell[item]
        value = row.get(column)
        if not _is_number(value) or not math.isfinite(value):
            message = f"'{column}' of item '{item[:80]}' is not a finite number"
            raise DataError(message, file=path, line=line, field=column)
        values[index] = value
    return values


def _usable(baseline: TaskRun, base_rows: Numbered | None, cand_rows: Numbered | None) -> tuple[str | None, str | None]:
    """(column, None) when both sides have per-item rows holding the main score's column, else (None, why)."""
    if not base_rows or not cand_rows:
        return None, "no per-item scores on " + ("either side" if not base_rows and not cand_rows else "one side")
    main = baseline.main_score_name
    correlation = _CORRELATION.match(main)
    column = correlation.group(1) if correlation else main
    if column not in base_rows[0][1] or column not in cand_rows[0][1]:
        return None, f"per-item scores do not hold '{column}' (main score {main})"
    if correlation and ("gold" not in base_rows[0][1] or "gold" not in cand_rows[0][1]):
        return None, "per-pair scores lack the gold scores"
    return column, None


def paired_cells(baseline: TaskRun, candidate: TaskRun) -> tuple[list[PairedItems] | None, str | None]:
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
    correlation = _CORRELATION.match(baseline.main_score_name)
    base_path, cand_path = baseline.per_item_file, candidate.per_item_file
    base_cells, cand_cells = _grouped(base_rows, base_path), _grouped(cand_rows, cand_path)
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
        values = (_values(base, ids, column, base_path), _values(cand, ids, column, cand_path))
        if correlation:
            gold = _values(base, ids, "gold", base_path)
            if not np.array_equal(gold, _values(cand, ids, "gold", cand_path)):
                raise DataError(f"{baseline.name}: the gold scores differ between runs", file=cand_path)
            paired.append(PairedItems(correlation.group(2), values[0], values[1], gold))
        else:
            paired.append(PairedItems("mean", values[0], values[1]))
    return paired, None
