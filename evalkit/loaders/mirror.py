"""Task data from a local mirror: ``<data_dir>/<TaskName>/`` holding BEIR files (Retrieval; or MIRACL's topics and
qrels files) or ``<split>.jsonl[.gz]`` files (STS), with one sub-folder per hf subset unless the only one is
``default``. An answer-retrieval task (MKQA) keeps one shared corpus and a ``<subset>.jsonl`` per subset instead.

Which files a type's folder holds is its kind's ``read_mirror`` (:mod:`evalkit.kinds`); this module finds the
folder and gives the kinds the shared shapes (a folder per subset, a file per split)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.kinds import get_kind
from evalkit.kinds.kind import MirrorReader
from evalkit.loaders.beir import require_file
from evalkit.records import SourceFile, Split, TaskData
from evalkit.registry.tasks import TaskSpec

SubsetReader = Callable[[TaskSpec, Path], tuple[dict[str, Split], list[SourceFile]]]
"""Every eval split of one subset from that subset's folder, and the files read."""


def mirror_candidates(spec: TaskSpec, data_dirs: Sequence[Path]) -> list[Path]:
    """The folders that may hold the task's files, in the order to try them.

    The spec's own ``data_dir`` (a user's dataset folder holding the files directly) comes first, then
    ``<data_dir>/<task name>`` for each data dir. The caller names them all when none holds the data.
    """
    folders = [spec.data_dir] if spec.data_dir is not None else []
    folders += [Path(d) / spec.name for d in data_dirs]
    return list(dict.fromkeys(folders))


def subset_folder(spec: TaskSpec, task_dir: Path, subset: str) -> Path:
    """Where a subset's files sit: the task folder itself for a task whose only subset is ``default``."""
    return task_dir if tuple(spec.hf_subsets) == ("default",) else task_dir / subset


def load_from_mirror(spec: TaskSpec, task_dir: Path) -> TaskData:
    """Every eval split of every subset of ``spec`` from ``task_dir``, read by the reader its kind declares.

    Raises MissingDataError when a split's files are absent (the caller may then look elsewhere) and DataError
    when a file is there but malformed (the caller must not: the user has to fix the file).
    """
    read = get_kind(spec.type).read_mirror
    if read is None:
        raise EvalkitError(f"task '{spec.name}' is of type '{spec.type}', which the local mirror cannot hold")
    splits, files = read(spec, task_dir)
    return TaskData(task_name=spec.name, splits=splits, origin=f"mirror:{task_dir}", source_files=files)


def each_subset(read_subset: SubsetReader) -> MirrorReader:
    """A task reader for kinds that keep one folder per subset (:func:`subset_folder`), each read on its own."""

    def read(spec: TaskSpec, task_dir: Path) -> tuple[dict[str, dict[str, Split]], list[SourceFile]]:
        splits: dict[str, dict[str, Split]] = {}
        files: list[SourceFile] = []
        for subset in spec.hf_subsets:
            splits[subset], read_files = read_subset(spec, subset_folder(spec, task_dir, subset))
            files += read_files
        return splits, files

    return read


def one_file_per_split(load_file: Callable[[Path], tuple[Split, SourceFile]]) -> SubsetReader:
    """A subset reader for kinds whose split is one ``<split>.jsonl[.gz]`` file read by ``load_file``."""

    def read(spec: TaskSpec, folder: Path) -> tuple[dict[str, Split], list[SourceFile]]:
        splits: dict[str, Split] = {}
        files: list[SourceFile] = []
        for split in spec.eval_splits:
            splits[split], read_one = load_file(require_file(folder, f"{split}.jsonl", f"split '{split}'"))
            files.append(read_one)
        return splits, files

    return read
