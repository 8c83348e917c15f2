"""A run as the comparison commands read it: one model revision's task results, per-item scores and run records.

``evalkit run --output DIR`` writes ``DIR/<org>__<model>/<revision>/``. Any of the three levels is accepted as long
as it leads to exactly one revision folder; published MTEB result folders (no per-item scores, no run records) load
too, and are compared on their scores alone.
"""

from __future__ import annotations

import gzip
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.registry.tasks import TaskRegistry, default_registry
from evalkit.results.layout import EVALKIT_DIR
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
        if self.per_item_file is None:
            return None
        try:
            with gzip.open(self.per_item_file, "rt", encoding="utf-8") as handle:
                return [json.loads(line) for line in handle if line.strip()]
        except (OSError, EOFError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read per-item scores: {err}", file=self.per_item_file) from None


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


def _revision_folder(folder: Path) -> Path:
    """Walk down from an output root or a model folder to the single revision folder it holds."""
    current = folder
    for _ in range(3):
        if any(p.suffix == ".json" and p.name != "model_meta.json" for p in current.iterdir()):
            return current
        children = sorted(p for p in current.iterdir() if p.is_dir() and p.name != EVALKIT_DIR)
        if len(children) != 1:
            found = ", ".join(p.name for p in children) or "nothing"
            raise DataError(f"expected one model or revision folder here, found: {found}", file=current)
        current = children[0]
    raise DataError("no task result files (<Task>.json) found", file=folder)


def _identity(revision_dir: Path) -> tuple[str, str]:
    meta = revision_dir / "model_meta.json"
    if meta.is_file():
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DataError(f"cannot read model metadata: {err}", file=meta) from None
        if isinstance(data, dict) and data.get("name"):
            return str(data["name"]), str(data.get("revision") or revision_dir.name)
    return revision_dir.parent.name.replace("__", "/"), revision_dir.name


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read JSON: {err}", file=path) from None
    if not isinstance(data, dict):
        raise DataError("expected a JSON object", file=path)
    return data


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
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a results folder", file=folder)
    registry = registry or default_registry()
    revision_dir = _revision_folder(folder)
    model, revision = _identity(revision_dir)
    tasks: dict[str, TaskRun] = {}
    settings: dict[str, Any] = {}
    for path in sorted(revision_dir.glob("*.json")):
        if path.name == "model_meta.json":
            continue
        data = _read_json(path)
        if "task_name" not in data or not isinstance(data.get("scores"), dict):
            data = _upgrade_legacy(path, data)
        name = str(data["task_name"])
        try:
            spec = registry.get(name)
            task_type, main_score = spec.type, spec.main_score
        except Exception:  # a task this mteb does not know: compare it on the score its file names
            task_type, main_score = "unknown", "main_score"
        side = revision_dir / EVALKIT_DIR
        per_item = side / f"{name}.per_item.jsonl.gz"
        record_path = side / f"{name}.run.json"
        record = _read_json(record_path) if record_path.is_file() else None
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


def paired_cells(baseline: TaskRun, candidate: TaskRun) -> tuple[list[PairedItems] | None, str | None]:
    """Both runs' per-item scores for the task's main score, aligned by (split, subset, item id).

    Returns (cells, None), or (None, why) when a test cannot be run: no per-item scores on a side, or a main score
    that is not a mean over items or a correlation over pairs. Raises DataError when the items themselves differ
    (the runs did not score the same queries or pairs: they are not comparable).
    """
    base_rows, cand_rows = baseline.per_item_rows(), candidate.per_item_rows()
    if not base_rows or not cand_rows:
        return None, "no per-item scores on " + ("either side" if not base_rows and not cand_rows else "one side")
    main = baseline.main_score_name
    correlation = _CORRELATION.match(main)
    column = correlation.group(1) if correlation else main
    if column not in base_rows[0] or column not in cand_rows[0]:
        return None, f"per-item scores do not hold '{column}' (main score {main})"
    if correlation and ("gold" not in base_rows[0] or "gold" not in cand_rows[0]):
        return None, "per-pair scores lack the gold scores"

    def grouped(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        cells: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for row in rows:
            cells.setdefault((str(row["split"]), str(row["hf_subset"])), {})[str(row["id"])] = row
        return cells

    base_cells, cand_cells = grouped(base_rows), grouped(cand_rows)
    if base_cells.keys() != cand_cells.keys():
        raise DataError(
            f"{baseline.name}: the runs scored different splits/subsets ({sorted(base_cells)} vs {sorted(cand_cells)})",
            file=candidate.per_item_file,
        )
    paired = []
    for key in sorted(base_cells):
        base, cand = base_cells[key], cand_cells[key]
        if base.keys() != cand.keys():
            only = len(base.keys() - cand.keys()) + len(cand.keys() - base.keys())
            raise DataError(
                f"{baseline.name} {key[0]}/{key[1]}: the runs scored different items ({only} not on both sides)",
                file=candidate.per_item_file,
            )
        ids = sorted(base)
        values = (np.array([float(base[i][column]) for i in ids]), np.array([float(cand[i][column]) for i in ids]))
        if correlation:
            gold = np.array([float(base[i]["gold"]) for i in ids])
            if not np.array_equal(gold, np.array([float(cand[i]["gold"]) for i in ids])):
                raise DataError(f"{baseline.name}: the gold scores differ between runs", file=candidate.per_item_file)
            paired.append(PairedItems(correlation.group(2), values[0], values[1], gold))
        else:
            paired.append(PairedItems("mean", values[0], values[1]))
    return paired, None
