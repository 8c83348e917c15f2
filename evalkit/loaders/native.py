"""Splits of task types that mteb's own evaluators score, from ``<split>.jsonl[.gz]`` with mteb's column names.

Which columns a task needs is read off the mteb task object (``input_column_name``, ``label_column_name``, the
summarization columns, bitext mining's ``sentence1``/``sentence2``), so a task that renames a column is honoured.
Classification tasks also need their training split (``train`` unless the task says otherwise).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalkit.errors import DataError
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import iter_jsonl
from evalkit.records import NativeSplit, SourceFile

_BITEXT_COLUMNS = ("sentence1", "sentence2")


def required_columns(mteb_task: Any) -> tuple[str, ...]:
    """The columns mteb's evaluator reads for this task."""
    if mteb_task.metadata.type == "BitextMining":
        return _BITEXT_COLUMNS
    columns = []
    for attribute in dir(type(mteb_task)):
        if attribute.endswith("column_name"):
            value = getattr(mteb_task, attribute)
            if isinstance(value, str):
                columns.append(value)
    return tuple(dict.fromkeys(columns))


def splits_to_load(mteb_task: Any, eval_splits: tuple[str, ...]) -> tuple[str, ...]:
    """The eval splits, plus the split a classifier is trained on where the protocol has one."""
    train = getattr(mteb_task, "train_split", None)
    if mteb_task.metadata.type in ("Classification", "MultilabelClassification") and train:
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
