"""``Results``: the Python face of a results folder — runs (model, revision) of task records, read or about to be saved.

``evalkit.evaluate`` returns one, ``load_results`` reads any MTEB results folder into one (published folders and
legacy formats included, through the one reader), and the reports (``evalkit.leaderboard``, ``evalkit.diff``) take
one as readily as a folder. Scores come from the one task-score rule, never recomputed here.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import EvalkitError
from evalkit.results.atomic import write_json, write_jsonl_gz
from evalkit.results.folders import Run, model_folders, one_per_task, revision_folders, run_identity, task_files
from evalkit.results.layout import ResultsLayout
from evalkit.results.record import TaskRecord, default_task_registry, is_number, read_object
from evalkit.results.task_score import subset_of

if TYPE_CHECKING:
    import pandas as pd

DATAFRAME_COLUMNS = ("model", "revision", "task", "type", "split", "subset", "metric", "value")
_NOT_METRICS = frozenset({"hf_subset", "languages"})


class SelectionError(EvalkitError):
    """A model, revision or task that the results do not hold, or a choice left ambiguous."""


class Results:
    """One or more runs, each a model revision's task records (``model → revision → task → TaskRecord``)."""

    def __init__(self, runs: Iterable[Run]) -> None:
        self._runs: dict[tuple[str, str], Run] = {}
        for run in runs:
            key = (run.model, run.revision)
            if key in self._runs:
                raise SelectionError(f"two runs of {run.label}", file=run.folder)
            self._runs[key] = run

    @classmethod
    def from_records(cls, records: Iterable[TaskRecord], *, folder: Path | None = None) -> Results:
        """Group records by their model and revision (a record without either is filed as ``unknown``)."""
        grouped: dict[tuple[str, str], dict[str, TaskRecord]] = {}
        for record in records:
            key = (record.model or "unknown", record.revision or "no_revision_available")
            grouped.setdefault(key, {})[record.name] = record
        where = folder or Path("<memory>")
        return cls(Run(folder=where, model=m, revision=r, tasks=tasks) for (m, r), tasks in grouped.items())

    def __repr__(self) -> str:
        return f"Results({', '.join(run.label for run in self._runs.values())})"

    @property
    def runs(self) -> list[Run]:
        return list(self._runs.values())

    @property
    def models(self) -> list[str]:
        return sorted({model for model, _ in self._runs})

    @property
    def tasks(self) -> list[str]:
        return sorted({name for run in self._runs.values() for name in run.tasks})

    def run(self, model: str | None = None, revision: str | None = None) -> Run:
        """The one run that ``model`` and ``revision`` select (either may be left out when only one fits)."""
        fits = [run for (m, r), run in self._runs.items() if model in (None, m) and revision in (None, r)]
        if len(fits) == 1:
            return fits[0]
        choices = ", ".join(run.label for run in self._runs.values()) or "none"
        if not fits:
            raise SelectionError(f"no run of model {model!r} revision {revision!r} (runs: {choices})", field="model")
        raise SelectionError(f"several runs fit; choose one with model=/revision= (runs: {choices})", field="model")

    def main_scores(self, model: str | None = None, revision: str | None = None) -> dict[str, float | None]:
        """Task → score by the one rule (None: a cell missing or NaN), for the one run selected."""
        run = self.run(model, revision)
        return {name: run.tasks[name].main_score for name in sorted(run.tasks)}

    def to_dataframe(self) -> pd.DataFrame:
        """Every numeric metric of every cell, long format (``DATAFRAME_COLUMNS``); a null score has no row."""
        import pandas as pd

        rows = [
            (run.model, run.revision, record.name, record.task_type, split, subset_of(cell), metric, float(value))
            for run in self._runs.values()
            for record in run.tasks.values()
            for split, cells in record.scores.items()
            for cell in cells
            for metric, value in cell.items()
            if metric not in _NOT_METRICS and is_number(value)
        ]
        return pd.DataFrame(rows, columns=list(DATAFRAME_COLUMNS))

    def per_item(self, task: str, model: str | None = None, revision: str | None = None) -> pd.DataFrame:
        """The task's per-item scores (split, subset, id, then one column per score); evalkit runs only."""
        import pandas as pd

        run = self.run(model, revision)
        if task not in run.tasks:
            known = ", ".join(sorted(run.tasks))
            raise SelectionError(f"no task {task!r} in {run.label} (tasks: {known})", field="task")
        rows = run.tasks[task].per_item_rows()
        if rows is None:
            raise SelectionError(f"{task} in {run.label} has no per-item scores (published results have none)")
        frame = pd.DataFrame(rows).rename(columns={"hf_subset": "subset"})
        first = [c for c in ("split", "subset", "id") if c in frame.columns]
        return frame[first + [c for c in frame.columns if c not in first]]

    def save(self, folder: Path | str) -> list[Path]:
        """Write every run in the MTEB layout (``<folder>/<org>__<model>/<revision>/<Task>.json``, an experiment in
        ``<revision>/experiments/<name>/``, model_meta.json, evalkit/ side files), each file atomically. Returns the
        files written."""
        written: list[Path] = []
        for run in self._runs.values():
            revision = run.revision.removesuffix(f"+{run.experiment}") if run.experiment else run.revision
            layout = ResultsLayout(Path(folder), run.model.replace("/", "__"), revision, run.experiment)
            for name, record in sorted(run.tasks.items()):
                written.append(_write(layout.task_result(name), record.result))
                rows = record.per_item_rows()
                if rows is not None:
                    write_jsonl_gz(layout.per_item(name), rows)
                    written.append(layout.per_item(name))
                if record.record is not None:
                    written.append(_write(layout.run_record(name), record.record))
            written.append(_write(layout.model_meta, _model_meta(run, revision)))
        return written


def _write(path: Path, obj: Any) -> Path:
    write_json(path, obj)
    return path


def _model_meta(run: Run, revision: str) -> dict[str, Any]:
    """The run's own model_meta.json when it came from a folder (an experiment's ``experiment_kwargs`` kept),
    else name and revision (what mteb requires)."""
    source = run.folder / "model_meta.json"
    meta = read_object(source, "model metadata") if source.is_file() else {}
    return {**meta, "name": run.model, "revision": revision}


def load_results(
    folder: Path | str | Sequence[Path | str],
    *,
    models: Sequence[str] | None = None,
    tasks: Sequence[str] | None = None,
) -> Results:
    """Read any MTEB results folder (a root, a model folder or a revision folder; published ones and legacy formats
    too): a run per revision folder and per experiment (labelled ``<revision>+<experiment>``), optionally only
    ``models`` (names or ``org__model`` folders) and ``tasks``."""
    from evalkit.results.folders import read_revision

    paths = [folder] if isinstance(folder, (str, Path)) else list(folder)
    registry = default_task_registry()
    runs = []
    for run_dir in revision_folders(model_folders([Path(p) for p in paths])):
        model, revision, experiment = run_identity(run_dir)
        model_folder = (run_dir.parents[2] if experiment else run_dir.parent).name
        if models is not None and model not in models and model_folder not in models:
            continue
        records = read_revision(run_dir, registry, unique=False) if task_files(run_dir) else []
        kept = {name: r for name, r in one_per_task(records).items() if tasks is None or name in tasks}
        label = f"{revision}+{experiment}" if experiment else revision
        runs.append(Run(folder=run_dir, model=model, revision=label, tasks=kept, experiment=experiment))
    return Results(runs)
