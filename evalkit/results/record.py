"""One task's result as evalkit holds it, and the one reader of a result file.

A ``TaskRecord`` is mteb's TaskResult JSON (scores per split and subset) plus, for evalkit runs, the per-item scores
file and the run record beside it (published folders have neither). Every consumer — run table, leaderboard,
diff, compare, submit, benchmark scores, the Python ``Results`` — gets its records from :func:`read_task_record`
(through the folder readers in ``evalkit.results.folders``), and scores them with ``evalkit.results.task_score``.

Everything read here was written by someone else, so it is checked on load: a task name becomes a file name only
when it is one safe component (and the side files it names stay inside the revision folder); scores, per-item rows
and run records of the wrong shape are a ``DataError`` naming the file, line and field, never a crash later on.
Files in an older mteb format are converted by mteb's own loader (``TaskResult.from_disk``), in this one place.
"""

from __future__ import annotations

import gzip
import json
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import DataError
from evalkit.results.layout import EVALKIT_DIR
from evalkit.results.task_score import Expected, expected_in_file, expected_of_spec, subset_of, task_score
from evalkit.safe_paths import ensure_within, safe_component

if TYPE_CHECKING:
    from evalkit.registry.tasks import TaskRegistry

UNKNOWN_TYPE = "unknown"
_CONVERTED_FROM = "1.12.48"  # mteb's from_disk fixes files older than this (and converts those before 1.11)


def short(err: BaseException) -> str:
    """An exception as one short line, for a DataError message."""
    return " ".join(str(err).split())[:200] or type(err).__name__


def read_json(path: Path, what: str = "JSON") -> Any:
    """Any JSON document, or a DataError naming the file (and line): bad UTF-8, bad JSON, too deep, unreadable."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"cannot read {what}: {err.msg}", file=path, line=err.lineno) from None
    except (OSError, ValueError, RecursionError) as err:
        raise DataError(f"cannot read {what}: {short(err)}", file=path) from None


def read_object(path: Path, what: str = "JSON") -> dict[str, Any]:
    """A JSON object, or a DataError naming the file."""
    data = read_json(path, what)
    if not isinstance(data, dict):
        raise DataError(f"{what}: expected a JSON object, not {type(data).__name__}", file=path)
    return data


def is_number(value: object) -> bool:
    """A JSON number a float can hold (NaN and infinities included; bool and 1e400-sized ints not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        float(value)
    except OverflowError:
        return False
    return True


@dataclass(frozen=True)
class TaskRecord:
    """One task's result: the TaskResult JSON, and evalkit's side files when the run came from evalkit."""

    name: str
    task_type: str
    main_score_name: str
    result: dict[str, Any]  # the TaskResult JSON, converted to the current format
    result_file: Path | None
    per_item_file: Path | None = None
    record: dict[str, Any] | None = None  # evalkit's run record
    model: str | None = None
    revision: str | None = None
    spec_cells: Expected | None = None  # the registry's cells for the task, when the registry knows it

    @property
    def scores(self) -> dict[str, Any]:
        return self.result.get("scores", {})

    @property
    def cells(self) -> dict[tuple[str, str], float | None]:
        """(split, subset) → main score as written (None when absent), for every cell the file holds."""
        return {
            (split, subset_of(entry)): entry.get("main_score")
            for split, entries in self.scores.items()
            for entry in entries
        }

    @property
    def expected(self) -> Expected:
        """The cells the task expects outside a benchmark: the run's spec, else the registry's, else the file's."""
        task = (self.record or {}).get("task", {})
        splits, subsets = task.get("eval_splits"), task.get("hf_subsets")
        if _strings(splits) and _strings(subsets):
            return expected_of_spec(splits, subsets)
        return self.spec_cells if self.spec_cells is not None else expected_in_file(self.scores)

    def score(self, expected: Expected | None = None) -> tuple[float | None, str | None]:
        """(score, None) or (None, why) by the one rule, over ``expected`` (default: :attr:`expected`)."""
        return task_score(self.scores, self.expected if expected is None else expected, main_score=self.main_score_name)

    @property
    def main_score(self) -> float | None:
        return self.score()[0]

    @property
    def mteb_version(self) -> str | None:
        version = self.result.get("mteb_version")
        return version if isinstance(version, str) else None

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
            raise DataError(f"cannot read per-item scores: {short(err)}", file=self.per_item_file, line=line) from None
        return rows


def _strings(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _per_item_row(row: object, path: Path, line: int) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise DataError("a per-item row must be a JSON object", file=path, line=line)
    for key in ("split", "hf_subset", "id"):
        value = row.get(key)
        if not isinstance(value, str) and not (key == "id" and type(value) is int):
            raise DataError(f"a per-item row needs a string '{key}'", file=path, line=line, field=key)
    return row


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
            if value is not None and not is_number(value):
                message = f"the main score ({type(value).__name__}) is not a number"
                raise DataError(message, file=path, field=f"{where}.main_score")


def _check_record(path: Path, record: dict[str, Any]) -> None:
    """The parts of a run record the reports read: model settings, task version and the data checksums."""
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


def _needs_conversion(data: dict[str, Any]) -> bool:
    """A file mteb's loader would change: the pre-1.11 layout, or a version whose scores mteb fixes on load."""
    from packaging.version import InvalidVersion, Version

    if "task_name" not in data or not isinstance(data.get("scores"), dict):
        return True
    version = data.get("mteb_version")
    if version is None:
        return False  # mteb reads such a file as it is
    try:
        return Version(str(version)) < Version(_CONVERTED_FROM)
    except InvalidVersion:
        return True


def _converted(path: Path, data: dict[str, Any]) -> dict[str, Any]:
    """A TaskResult in an older mteb format, converted by mteb's own loader (it knows every past format)."""
    import mteb

    try:
        with warnings.catch_warnings():  # mteb warns about conversions; the score rule says what matters per task
            warnings.simplefilter("ignore")
            result = mteb.TaskResult.from_disk(Path(path))
    except Exception as err:  # mteb raises anything from KeyError to pydantic errors on a bad file
        raise DataError(f"not an MTEB task result: {short(err)}", file=path) from None
    upgraded = json.loads(result.model_dump_json())
    upgraded.setdefault("dataset_revision", data.get("dataset_revision"))
    return upgraded


def _side_file(revision_dir: Path, name: str, suffix: str, source: Path) -> Path:
    """``<revision>/evalkit/<name><suffix>``, the name checked as one component inside the revision folder."""
    file_name = safe_component(f"{name}{suffix}", what="side file name", file=source, field="task_name")
    return ensure_within(revision_dir, revision_dir / EVALKIT_DIR / file_name, what="side file")


def default_task_registry() -> TaskRegistry:
    """The registry a reader uses when none is given (one per folder read, not per file)."""
    from evalkit.registry.tasks import default_registry

    return default_registry()


def _describe(name: str, registry: TaskRegistry | None) -> tuple[str, str, Expected | None]:
    """(type, main score name, cells) from the registry; a task it does not know is scored on its file's cells."""
    registry = registry or default_task_registry()
    try:
        spec = registry.get(name)
    except Exception:  # a task this mteb does not know: compare it on the score its file names
        return UNKNOWN_TYPE, "main_score", None
    return spec.type, spec.main_score, expected_of_spec(spec.eval_splits, spec.hf_subsets)


def read_task_record(
    path: Path,
    *,
    model: str | None = None,
    revision: str | None = None,
    registry: TaskRegistry | None = None,
) -> TaskRecord:
    """Read ``<Task>.json`` and, beside it in ``evalkit/``, its per-item scores and run record when there."""
    path = Path(path)
    revision_dir = path.parent
    data = read_object(path, "task result")
    if _needs_conversion(data):
        data = _converted(path, data)
    name = safe_component(data.get("task_name"), what="task name", file=path, field="task_name")
    if not isinstance(data.get("scores"), dict):
        raise DataError("'scores' must be a JSON object", file=path, field="scores")
    _check_scores(path, data["scores"])
    per_item = _side_file(revision_dir, name, ".per_item.jsonl.gz", path)
    record_path = _side_file(revision_dir, name, ".run.json", path)
    record = read_object(record_path, "run record") if record_path.is_file() else None
    if record is not None:
        _check_record(record_path, record)
    task_type, main_score, cells = _describe(name, registry)
    return TaskRecord(
        name=name,
        task_type=task_type,
        main_score_name=main_score,
        result=data,
        result_file=path,
        per_item_file=per_item if per_item.is_file() else None,
        record=record,
        model=model,
        revision=revision,
        spec_cells=cells,
    )


def record_from_mteb(result: Any, *, registry: TaskRegistry | None = None) -> TaskRecord:
    """A record for an in-memory ``mteb.TaskResult`` (no file, no side files), scored like any other."""
    data = json.loads(result.model_dump_json())
    name = safe_component(data.get("task_name"), what="task name", field="task_name")
    task_type, main_score, cells = _describe(name, registry)
    return TaskRecord(name, task_type, main_score, data, None, spec_cells=cells)
