"""Task data from a local mirror: ``<data_dir>/<TaskName>/`` holding BEIR files (Retrieval; or MIRACL's topics and
qrels files) or ``<split>.jsonl[.gz]`` files (STS), with one sub-folder per hf subset unless the only one is
``default``. An answer-retrieval task (MKQA) keeps one shared corpus and a ``<subset>.jsonl`` per subset instead."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from evalkit.errors import EvalkitError
from evalkit.loaders.beir import load_beir_splits, require_file
from evalkit.loaders.miracl import has_topics_layout, load_miracl_splits
from evalkit.loaders.mkqa import load_answer_retrieval_splits
from evalkit.loaders.native import load_native_split, required_columns, splits_to_load
from evalkit.loaders.pair_labels import load_pair_label_split
from evalkit.loaders.pairs import load_pair_split
from evalkit.loaders.reranking import load_reranking_splits
from evalkit.records import SourceFile, Split, TaskData
from evalkit.registry.tasks import MTEB_NATIVE_TYPES, TaskSpec, mteb_task_for

_ONE_FILE_PER_SPLIT: dict[str, Callable[[Path], tuple[Split, SourceFile]]] = {
    "STS": load_pair_split,
    "PairClassification": load_pair_label_split,
}
"""Types whose split is one ``<split>.jsonl[.gz]`` file read by one function."""


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
    """Every eval split of every subset of ``spec`` from ``task_dir``.

    Raises MissingDataError when a split's files are absent (the caller may then look elsewhere) and DataError
    when a file is there but malformed (the caller must not: the user has to fix the file).
    """
    splits: dict[str, dict[str, Split]] = {}
    files: list[SourceFile] = []
    if spec.type == "AnswerRetrieval":  # one corpus beside every subset's questions, not a folder per subset
        answer_splits, read = load_answer_retrieval_splits(task_dir, spec.hf_subsets, spec.eval_splits)
        splits.update(answer_splits)
        return TaskData(task_name=spec.name, splits=splits, origin=f"mirror:{task_dir}", source_files=read)
    for subset in spec.hf_subsets:
        folder = subset_folder(spec, task_dir, subset)
        if spec.type == "Retrieval":
            load_retrieval = load_miracl_splits if has_topics_layout(folder, spec.eval_splits) else load_beir_splits
            loaded, read = load_retrieval(folder, spec.eval_splits)
            splits[subset] = dict(loaded)
            files += read
        elif spec.type in _ONE_FILE_PER_SPLIT:
            splits[subset] = {}
            for split in spec.eval_splits:
                path = require_file(folder, f"{split}.jsonl", f"split '{split}'")
                splits[subset][split], read_one = _ONE_FILE_PER_SPLIT[spec.type](path)
                files.append(read_one)
        elif spec.type == "Reranking":
            reranking, read = load_reranking_splits(folder, spec.eval_splits)
            splits[subset] = dict(reranking)
            files += read
        elif spec.type in MTEB_NATIVE_TYPES:
            splits[subset], read = _load_native(spec, folder)
            files += read
        else:
            raise EvalkitError(f"task '{spec.name}' is of type '{spec.type}', which the local mirror cannot hold")
    return TaskData(task_name=spec.name, splits=splits, origin=f"mirror:{task_dir}", source_files=files)


def _load_native(spec: TaskSpec, folder: Path) -> tuple[dict[str, Split], list[SourceFile]]:
    task = mteb_task_for(spec)
    columns = required_columns(task)
    splits: dict[str, Split] = {}
    files = []
    for split in splits_to_load(task, spec.eval_splits):
        loaded, read = load_native_split(require_file(folder, f"{split}.jsonl", f"split '{split}'"), columns)
        splits[split] = loaded
        files.append(read)
    return splits, files
