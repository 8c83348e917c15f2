"""Splits of task types that mteb's own evaluators score, from ``<split>.jsonl[.gz]`` with mteb's column names.

Which columns a task needs is read off the mteb task object (``input_column_name``, ``label_column_name``, the
summarization columns), so a task that renames a column is honoured; a kind may name them instead (bitext mining's
``sentence1``/``sentence2``). Classification kinds also need their training split (``train`` unless the task says
otherwise). The kinds are declared in :mod:`evalkit.kinds.mteb_native`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.loaders.beir import require_file
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import iter_jsonl
from evalkit.records import NativeSplit, SourceFile, Split
from evalkit.registry.tasks import TaskSpec, mteb_task_for


def required_columns(mteb_task: Any, fixed: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The columns mteb's evaluator reads for this task: ``fixed`` where the kind names them (bitext mining's
    ``sentence1``/``sentence2``), else every ``*column_name`` attribute of the task."""
    if fixed is not None:
        return fixed
    columns = []
    for attribute in dir(type(mteb_task)):
        if attribute.endswith("column_name"):
            value = getattr(mteb_task, attribute)
            if isinstance(value, str):
                columns.append(value)
    return tuple(dict.fromkeys(columns))


def splits_to_load(mteb_task: Any, eval_splits: tuple[str, ...], *, trains: bool = False) -> tuple[str, ...]:
    """The eval splits, plus the split a classifier is trained on where the kind's protocol ``trains`` one."""
    train = getattr(mteb_task, "train_split", None)
    if trains and train:
        return tuple(dict.fromkeys([train, *eval_splits]))
    return eval_splits


def load_native_split(path: Path, columns: tuple[str, ...]) -> tuple[NativeSplit, SourceFile]:
    """All rows of one split as a ``datasets.Dataset``, every row checked to carry ``columns``."""
    from datasets import Dataset

    rows = []
    for line, record in iter_jsonl(path):
        for column in columns:
            if column not in record or record[column] is None:
                raise DataError("required field is missing", file=path, line=line, field=column)
        rows.append({column: record[column] for column in columns})
    if not rows:
        raise DataError("the file holds no rows", file=path)
    try:
        dataset = Dataset.from_list(rows)
    except (TypeError, ValueError) as err:  # pyarrow: a column whose rows disagree in type
        raise DataError(f"columns of mixed types ({str(err).splitlines()[0][:160]})", file=path) from None
    return NativeSplit(dataset=dataset), source_file(path)


def read_native_subset(
    spec: TaskSpec, folder: Path, *, columns: tuple[str, ...] | None = None, trains: bool = False
) -> tuple[dict[str, Split], list[SourceFile]]:
    """One subset's splits from ``<split>.jsonl[.gz]`` files, with the columns and the training split that the
    task's mteb evaluator reads (``columns``/``trains``: what the task's kind says, see :func:`required_columns`)."""
    task = mteb_task_for(spec)
    needed = required_columns(task, columns)
    splits: dict[str, Split] = {}
    files = []
    for split in splits_to_load(task, spec.eval_splits, trains=trains):
        loaded, read = load_native_split(require_file(folder, f"{split}.jsonl", f"split '{split}'"), needed)
        splits[split] = loaded
        files.append(read)
    return splits, files
