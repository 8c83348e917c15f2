"""``--save-run``: each query's ranked list as a TREC run file, so ranx, pytrec_eval and trec_eval can score (or
fuse, or test) exactly the lists evalkit scored.

One line per retrieved document, ``qid Q0 docid rank score run_name``, ranks from 1 in evalkit's order (score
descending, ties by doc id descending, as trec_eval breaks them). Scores are written with float32's round-trip
precision (``%.9g``): trec_eval reads them into a C ``float``, so its order and ties are the ones evalkit scored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from evalkit.errors import DataError
from evalkit.evaluators.outcome import Ranking, TaskOutcome
from evalkit.results.atomic import write_text
from evalkit.results.layout import ResultsLayout

_WHITESPACE = re.compile(r"\s")


def _field(value: str, what: str) -> str:
    """A TREC run is split on white space: an id holding any would shift every column after it."""
    if not value or _WHITESPACE.search(value):
        raise DataError(f"{what} {value[:80]!r} cannot be written to a TREC run file: it is empty or holds white space")
    return value


def run_name(layout: ResultsLayout) -> str:
    """The run's tag (last column): the model folder, with the experiment when there is one; no white space."""
    name = layout.model_folder if layout.experiment is None else f"{layout.model_folder}+{layout.experiment}"
    return _WHITESPACE.sub("_", name)


def trec_lines(ranking: Ranking, tag: str) -> Iterator[str]:
    """The run file's lines for one ranked list."""
    for query_id, doc_ids, scores in zip(ranking.query_ids, ranking.doc_ids, ranking.scores, strict=True):
        qid = _field(query_id, "query id")
        for rank, (doc_id, score) in enumerate(zip(doc_ids, scores, strict=True), start=1):
            yield f"{qid} Q0 {_field(doc_id, 'document id')} {rank} {float(score):.9g} {tag}\n"


def write_trec_runs(layout: ResultsLayout, outcome: TaskOutcome) -> list[Path]:
    """Write every ranked list of ``outcome`` (each split and subset; the first-stage and reranked lists apart),
    each file whole; returns the paths written, in order. Nothing for a kind that ranks no documents."""
    tag = run_name(layout)
    written = []
    for split in outcome.splits:
        for list_name, ranking in split.rankings.items():
            path = layout.trec_run(outcome.task_name, split.hf_subset, split.split, list_name)
            write_text(path, "".join(trec_lines(ranking, tag)))
            written.append(path)
    return written


__all__ = ["run_name", "trec_lines", "write_trec_runs"]
