"""STS sentence pairs from ``<split>.jsonl[.gz]`` files with ``sentence1``, ``sentence2`` and ``score``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalkit.errors import DataError
from evalkit.loaders.checksums import source_file
from evalkit.loaders.jsonl import get_number, get_str, iter_jsonl
from evalkit.records import PairSplit, SourceFile


def load_pair_split(path: Path) -> tuple[PairSplit, SourceFile]:
    """The pairs of one split in file order, gold scores as float64, with the file's checksum.

    Scores are kept raw: normalising to the task's score range is the evaluator's job, as in mteb.
    """
    texts1: list[str] = []
    texts2: list[str] = []
    scores: list[float] = []
    for line, record in iter_jsonl(path):
        texts1.append(get_str(record, "sentence1", path=path, line=line))
        texts2.append(get_str(record, "sentence2", path=path, line=line))
        scores.append(get_number(record, "score", path=path, line=line))
    if not scores:
        raise DataError("the file holds no sentence pairs", file=path)
    split = PairSplit(texts1=texts1, texts2=texts2, scores=np.asarray(scores, dtype=np.float64))
    return split, source_file(path)
