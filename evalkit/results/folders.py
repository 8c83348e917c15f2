"""Results folders, read with the one record reader: a revision folder, a model folder, or a results root.

``evalkit run --output DIR`` writes ``DIR/<org>__<model>/<revision>/``, and a run with changed settings (an
experiment) ``.../<revision>/experiments/<name>/`` as mteb 2.26 stores one; the embeddings-benchmark/results
repository has the same layout under ``results/``. A *run* is one revision or experiment folder (:func:`read_run`);
a *model* is a model folder whose revisions are joined one file per task by mteb's rule, experiments left out as
mteb leaves them out (:func:`read_model_folder`); a root is walked down to its model folders (:func:`model_folders`).
An experiment run is labelled ``<revision>+<experiment>`` (its ``revision`` here: a label, never a path), so every
report names it. No link leads out of the folder given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evalkit.errors import DataError
from evalkit.results.layout import EVALKIT_DIR, EXPERIMENTS_DIR
from evalkit.results.record import TaskRecord, default_task_registry, read_object, read_task_record, short
from evalkit.safe_paths import ensure_within

if TYPE_CHECKING:
    from packaging.version import Version

    from evalkit.registry.tasks import TaskRegistry

NO_REVISION = frozenset({"", "no_revision_available", "external"})


@dataclass(frozen=True)
class Run:
    """One model revision's results: a revision folder's task records."""

    folder: Path
    model: str
    revision: str  # the revision, or ``<revision>+<experiment>`` for an experiment run
    settings: dict[str, Any] = field(default_factory=dict)  # model settings from the run records, when there
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    experiment: str | None = None  # mteb's experiment name; None: the model's own settings

    @property
    def label(self) -> str:
        return f"{self.model}@{self.revision}"


def task_files(folder: Path) -> list[Path]:
    """The ``<Task>.json`` files of a folder; one that links outside it is refused (never read)."""
    try:
        files = sorted(p for p in folder.glob("*.json") if p.name != "model_meta.json" and p.is_file())
    except OSError as err:
        raise DataError(f"cannot list the folder: {short(err)}", file=folder) from None
    return [ensure_within(folder, p, what="task result file") for p in files]


def has_task_files(folder: Path) -> bool:
    return any(p.suffix == ".json" and p.name != "model_meta.json" for p in folder.iterdir() if p.is_file())


def is_experiment_folder(folder: Path) -> bool:
    """``<revision>/experiments/<name>/``: a run of the model with changed settings (mteb's experiments)."""
    return folder.parent.name == EXPERIMENTS_DIR


def run_identity(run_dir: Path) -> tuple[str, str, str | None]:
    """Model name, revision and experiment name of a revision or experiment folder: name and revision from
    ``model_meta.json``, else from the path, as mteb's reader does; the experiment by its folder (the name mteb
    gives its ``experiment_kwargs`` when evalkit or mteb wrote it).

    All three are labels here, never paths (the renderers escape them): any string is accepted, anything else
    refused."""
    meta = run_dir / "model_meta.json"
    experiment = run_dir.name if is_experiment_folder(run_dir) else None
    revision_dir = run_dir.parent.parent if experiment else run_dir
    name, revision = None, None
    if meta.is_file():
        data = read_object(meta, "model metadata")
        for key in ("name", "revision"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise DataError(f"'{key}' must be a string", file=meta, field=key)
        name, revision = data.get("name"), data.get("revision")
    return name or revision_dir.parent.name.replace("__", "/"), revision or revision_dir.name, experiment


def identity(run_dir: Path) -> tuple[str, str]:
    """Model name and revision label (``<revision>+<experiment>`` for an experiment) of a run folder."""
    name, revision, experiment = run_identity(run_dir)
    return name, f"{revision}+{experiment}" if experiment else revision


def revision_folder(folder: Path) -> Path:
    """Walk down from an output root, a model folder or a revision folder to the single run folder it holds (a
    revision folder with its own results, else its one experiment)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a results folder", file=folder)
    current = folder
    try:
        for _ in range(5):  # root / model / revision / experiments / experiment
            if any(p.suffix == ".json" and p.name != "model_meta.json" for p in current.iterdir()):
                return current
            children = sorted(p for p in current.iterdir() if p.is_dir() and p.name != EVALKIT_DIR)
            if len(children) != 1:
                found = ", ".join(p.name for p in children) or "nothing"
                raise DataError(f"expected one model or revision folder here, found: {found}", file=current)
            current = ensure_within(folder, children[0], what="folder")
    except OSError as err:
        raise DataError(f"cannot list the folder: {short(err)}", file=current) from None
    raise DataError("no task result files (<Task>.json) found", file=folder)


def read_revision(revision_dir: Path, registry: TaskRegistry | None = None, *, unique: bool = True) -> list[TaskRecord]:
    """Every task record of one revision folder, in file-name order. ``unique``: a task twice is refused (a run);
    else both are kept for :func:`one_per_task` to choose (published folders hold renamed tasks' old files)."""
    model, revision = identity(revision_dir)
    registry = registry or default_task_registry()
    records: list[TaskRecord] = []
    for path in task_files(revision_dir):
        record = read_task_record(path, model=model, revision=revision, registry=registry)
        if unique and any(r.name == record.name for r in records):
            raise DataError(f"a second result file for task '{record.name}'", file=path, field="task_name")
        records.append(record)
    return records


def read_run(folder: Path | str, registry: TaskRegistry | None = None) -> Run:
    """The run in ``folder`` (an output root, model folder or revision folder leading to one revision)."""
    revision_dir = revision_folder(Path(folder))
    records = read_revision(revision_dir, registry)
    if not records:
        raise DataError("no task result files (<Task>.json) found", file=revision_dir)
    settings: dict[str, Any] = {}
    for record in records:
        if record.record:
            model = record.record.get("model", {})
            settings = {k: v for k, v in model.items() if k not in {"model", "weights_sha256"}}
            break
    model, revision = identity(revision_dir)
    return Run(
        folder=revision_dir,
        model=model,
        revision=revision,
        settings=settings,
        tasks={r.name: r for r in sorted(records, key=lambda r: r.result_file or Path())},
        experiment=run_identity(revision_dir)[2],
    )


def read_model_folder(folder: Path | str, registry: TaskRegistry | None = None) -> list[TaskRecord]:
    """Every task record of a model: ``folder`` is a revision folder, or a model folder holding revision folders.

    With several revision folders a task can have several files; one is kept per task by mteb's
    ``BenchmarkResults.join_revisions`` rule: a file with scores, then the model's main revision (mteb's registry),
    then a file that records an mteb version, then a real revision over ``no_revision_available``, then the newest
    mteb version. Remaining ties go to the most recently modified file. Returned sorted by task name.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a results folder", file=folder)
    registry = registry or default_task_registry()
    revision_dirs = [folder] if task_files(folder) else [d for d in sorted(folder.iterdir()) if d.is_dir()]
    for revision_dir in revision_dirs:
        ensure_within(folder, revision_dir, what="revision folder")
    records: list[TaskRecord] = []
    for revision_dir in revision_dirs:
        if task_files(revision_dir):
            records.extend(read_revision(revision_dir, registry, unique=False))
    if not records:
        found = "only experiments (read them one by one, or a row each)" if _has_runs(folder) else "none"
        raise DataError(f"no task result files (<Task>.json) here or in its revision folders: {found}", file=folder)
    return sorted(one_per_task(records).values(), key=lambda r: r.name)


@cache
def _main_revision(model: str | None) -> str | None:
    if model is None:
        return None
    import mteb

    try:
        return mteb.get_model_meta(model).revision
    except Exception:  # unknown to mteb's registry: no main revision to prefer
        return None


def _parse_version(text: str | None) -> Version | None:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(text) if text else None
    except (InvalidVersion, TypeError):
        return None


def _preference(record: TaskRecord) -> tuple[Any, ...]:
    from packaging.version import Version

    version = _parse_version(record.mteb_version)
    path = record.result_file
    mtime = path.stat().st_mtime if path is not None and path.exists() else 0.0
    return (
        bool(record.scores),
        record.revision not in NO_REVISION and record.revision == _main_revision(record.model),
        version is not None,
        record.revision not in NO_REVISION,
        version or Version("0"),
        mtime,
        str(path),
    )


def one_per_task(records: Sequence[TaskRecord]) -> dict[str, TaskRecord]:
    """One record per task name, chosen by :func:`read_model_folder`'s rule."""
    by_task: dict[str, list[TaskRecord]] = {}
    for record in records:
        by_task.setdefault(record.name, []).append(record)
    return {name: group[0] if len(group) == 1 else max(group, key=_preference) for name, group in by_task.items()}


def experiment_folders(revision_dir: Path) -> list[Path]:
    """The experiment runs of a revision folder (``experiments/<name>/`` holding task files)."""
    experiments = revision_dir / EXPERIMENTS_DIR
    if not experiments.is_dir():
        return []
    return sorted(
        ensure_within(revision_dir, child, what="experiment folder")
        for child in experiments.iterdir()
        if child.is_dir() and has_task_files(child)
    )


def run_folders(revision_dir: Path) -> list[Path]:
    """The runs of one revision folder: its own results, if any, then its experiments."""
    return ([revision_dir] if has_task_files(revision_dir) else []) + experiment_folders(revision_dir)


def _has_runs(folder: Path) -> bool:
    return any(child.is_dir() and run_folders(child) for child in folder.iterdir())


def _is_model_folder(folder: Path) -> bool:
    return folder.name != EXPERIMENTS_DIR and _has_runs(folder)


def model_folders(paths: Sequence[Path | str]) -> list[Path]:
    """Each path is a revision folder, a model folder, or a root holding model folders (up to two levels down)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            raise DataError("not a results folder", file=path)
        if has_task_files(path) or _is_model_folder(path) or experiment_folders(path):
            found.append(path)
            continue
        level = [path]
        for _ in range(2):
            level = sorted(
                ensure_within(path, child, what="results folder")  # a link out of the folder given is refused
                for folder in level
                for child in folder.iterdir()
                if child.is_dir()
            )
            models = [folder for folder in level if _is_model_folder(folder) or has_task_files(folder)]
            if models:
                found.extend(models)
                break
        else:
            raise DataError("no MTEB results found here (no <Task>.json within two levels)", file=path)
    return found


def revision_folders(folders: Sequence[Path]) -> list[Path]:
    """Each model folder as its run folders: revisions with results of their own, then each revision's
    experiments. A run folder given stays as it is (its experiments are not what was asked for); a revision
    folder holding only experiments gives those."""
    expanded: list[Path] = []
    for folder in folders:
        if has_task_files(folder):
            expanded.append(folder)
            continue
        if experiment_folders(folder):
            expanded += experiment_folders(folder)
            continue
        for child in sorted(c for c in folder.iterdir() if c.is_dir()):
            expanded += run_folders(ensure_within(folder, child, what="revision folder"))
    return expanded
