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

    Scores are kept raw: normalising to the task's score range is the evaluator's job, as in mteb. Gold scores
    that no correlation can be computed against (one pair, or all equal) are refused here, before any encoding.
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
    gold = np.asarray(scores, dtype=np.float64)
    check_gold_scores(gold, file=path)
    split = PairSplit(texts1=texts1, texts2=texts2, scores=gold)
    return split, source_file(path)


def check_gold_scores(scores: np.ndarray, *, file: str | Path, field: str = "score") -> None:
    """Refuse gold scores a Pearson or Spearman correlation is undefined for: it would be written as ``null``."""
    if len(scores) < 2:
        raise DataError(f"{len(scores)} sentence pair: a correlation needs at least 2 pairs", file=file, field=field)
    if np.all(scores == scores[0]):
        raise DataError(
            f"every gold score is {scores[0]:g}: the correlation with constant scores is undefined",
            file=file,
            field=field,
        )
