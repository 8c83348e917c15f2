"""Pair-classification data from ``<split>.jsonl[.gz]``: ``sentence1``, ``sentence2`` and a 0/1 ``labels``.

Two shapes are read, as mteb reads them:

* one pair per line: ``{"sentence1": "...", "sentence2": "...", "labels": 1}``;
* mteb's v1 hub layout, the whole split in ONE line whose three fields are parallel lists:
  ``{"sentence1": [...], "sentence2": [...], "labels": [...]}`` (mteb unpacks a one-row split this way).

The label column may also be named ``label``. A list-shaped line must be the file's only line: mteb would not
read a second one, so such a file is ambiguous and refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import get_str, iter_jsonl, type_name
from evalkit.records import PairLabelSplit, SourceFile

LABEL_FIELDS = ("labels", "label")


def load_pair_label_split(path: Path) -> tuple[PairLabelSplit, SourceFile]:
    """The labelled pairs of one split in file order, with the file's checksum."""
    texts1: list[str] = []
    texts2: list[str] = []
    labels: list[int] = []
    list_line: int | None = None
    for line, record in iter_jsonl(path):
        if list_line is not None:
            raise DataError(f"a second line after the one-line list layout of line {list_line}", file=path, line=line)
        label_field = _label_field(record, path, line)
        if isinstance(record.get("sentence1"), list):
            if texts1:
                raise DataError("a list-shaped line after one-pair lines", file=path, line=line, field="sentence1")
            list_line = line
            texts1, texts2, labels = _read_list_row(record, label_field, path, line)
            continue
        texts1.append(get_str(record, "sentence1", path=path, line=line))
        texts2.append(get_str(record, "sentence2", path=path, line=line))
        labels.append(_label(record[label_field], label_field, path, line))
    if not labels:
        raise DataError("the file holds no sentence pairs", file=path)
    split = PairLabelSplit(texts1=texts1, texts2=texts2, labels=np.asarray(labels, dtype=np.int64))
    return split, source_file(path)


def _label_field(record: dict[str, Any], path: Path, line: int) -> str:
    present = [name for name in LABEL_FIELDS if name in record]
    if not present:
        raise DataError("required field is missing", file=path, line=line, field="labels")
    return present[0]


def _read_list_row(
    record: dict[str, Any], label_field: str, path: Path, line: int
) -> tuple[list[str], list[str], list[int]]:
    columns = {}
    for name in ("sentence1", "sentence2", label_field):
        if name not in record:
            raise DataError("required field is missing", file=path, line=line, field=name)
        if not isinstance(record[name], list):
            raise DataError("expected an array, as the other fields of this line", file=path, line=line, field=name)
        columns[name] = record[name]
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(f"the parallel lists differ in length: {lengths}", file=path, line=line)
    texts1 = [_text(value, f"sentence1[{i}]", path, line) for i, value in enumerate(columns["sentence1"])]
    texts2 = [_text(value, f"sentence2[{i}]", path, line) for i, value in enumerate(columns["sentence2"])]
    labels = [_label(value, f"{label_field}[{i}]", path, line) for i, value in enumerate(columns[label_field])]
    return texts1, texts2, labels


def _text(value: Any, field: str, path: Path, line: int) -> str:
    if not isinstance(value, str):
        raise DataError(f"expected a string, got {type_name(value)}", file=path, line=line, field=field)
    return value


def _label(value: Any, field: str, path: Path, line: int) -> int:
    """0 or 1; an integral float (``1.0``) is accepted, a boolean is not (it would hide a wrong column)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in (0, 1):
        raise DataError(f"expected a label 0 or 1, got {value!r}", file=path, line=line, field=field)
    return value
