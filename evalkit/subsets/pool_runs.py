"""Pool runs: the ranked lists a hard-negatives subset takes each query's top documents from.

A pool run is a TREC run file (``qid Q0 docid rank score tag``, what ``--save-run`` writes) or a results folder whose
run record lists ``run_files``. Both are untrusted: every line is parsed strictly (six columns, an integer rank, a
finite score, no pair twice), a query not in the task's split or a document not in its corpus is an error naming
file, line and field, and a run file a record lists must lie inside its folder. Each query's list is put in trec_eval's
order (score descending, ties by document id descending), as evalkit scored and wrote it. The default pool's BM25
run is made by evalkit itself, through :func:`evalkit.runner.run`, into a temporary folder.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.errors import DataError
from evalkit.records import RetrievalSplit, TaskData
from evalkit.results.folders import identity, revision_folder
from evalkit.results.layout import EVALKIT_DIR
from evalkit.results.record import read_object
from evalkit.safe_paths import ensure_within

BM25_MODEL = "bm25"  # the registry alias of mteb/baseline-bm25s (evalkit/registry/models.yaml)
_FIRST_STAGE = ".first_stage.trec"  # a reranked run's first stage: the reranked list is the one pooled


@dataclass(frozen=True)
class PoolRun:
    """One ranked list of one split: each query's documents, best first. ``label`` and ``sha256`` go in the manifest."""

    label: str
    sha256: str
    hf_subset: str
    split: str
    rankings: dict[str, list[str]] = field(repr=False)

    def record(self) -> dict[str, str]:
        return {"label": self.label, "sha256": self.sha256, "hf_subset": self.hf_subset, "split": self.split}


def _target(path: Path, task: str, keys: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """Which (subset, split) a run file ranks: named as ``--save-run`` names it, or the task's only one."""
    for hf_subset, split in keys:
        stem = f"{task}.{hf_subset}.{split}."
        if path.name.startswith(stem) and path.name.endswith(".trec"):
            return hf_subset, split
    if len(keys) == 1:
        return keys[0]
    shown = ", ".join(f"{task}.{s}.{p}.trec" for s, p in keys)
    raise DataError(f"which split does this run rank? name it as --save-run does ({shown})", file=path)


def _parse_line(text: str, path: Path, number: int) -> tuple[str, str, int, float]:
    columns = text.split()
    if len(columns) != 6:
        raise DataError(f"expected 6 columns (qid Q0 docid rank score tag), got {len(columns)}", file=path, line=number)
    query_id, _, doc_id, rank_text, score_text, _ = columns
    try:
        rank = int(rank_text)
    except ValueError:
        raise DataError(f"rank {rank_text[:40]!r} is not an integer", file=path, line=number, field="rank") from None
    try:
        score = float(score_text)
    except ValueError:
        raise DataError(f"score {score_text[:40]!r} is not a number", file=path, line=number, field="score") from None
    if not math.isfinite(score):
        raise DataError(f"score {score_text[:40]!r} is not finite", file=path, line=number, field="score")
    return query_id, doc_id, rank, score


def parse_trec_run(lines: Iterable[str], path: Path, split: RetrievalSplit) -> dict[str, list[str]]:
    """Each query's documents in trec_eval's order; an unknown query or document, or a pair twice, is an error."""
    known_queries, known_docs = set(split.queries.ids), set(split.corpus.ids)
    scored: dict[str, dict[str, float]] = {}
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        query_id, doc_id, _, score = _parse_line(text, path, number)
        if query_id not in known_queries:
            raise DataError(f"query {query_id[:80]!r} is not in the task", file=path, line=number, field="qid")
        if doc_id not in known_docs:
            raise DataError(f"document {doc_id[:80]!r} is not in the corpus", file=path, line=number, field="docid")
        docs = scored.setdefault(query_id, {})
        if doc_id in docs:
            raise DataError(
                f"document {doc_id[:80]!r} ranked twice for one query", file=path, line=number, field="docid"
            )
        docs[doc_id] = score
    return {q: sorted(docs, key=lambda d: (docs[d], d), reverse=True) for q, docs in scored.items()}


def read_run_file(path: Path, data: TaskData, label: str | None = None) -> PoolRun:
    """A TREC run file of one of the task's retrieval splits, checked against the loaded data."""
    path = Path(path)
    try:
        raw = path.read_bytes()
        text = raw.decode("utf-8")
    except OSError as err:
        raise DataError(f"cannot read the run file: {err.strerror or err}", file=path) from None
    except UnicodeDecodeError as err:
        raise DataError(f"not UTF-8 text ({err.reason})", file=path) from None
    keys = [(s, p) for s, splits in data.splits.items() for p, sp in splits.items() if isinstance(sp, RetrievalSplit)]
    hf_subset, split = _target(path, data.task_name, sorted(keys))
    rankings = parse_trec_run(text.splitlines(), path, data.splits[hf_subset][split])  # type: ignore[arg-type]
    digest = hashlib.sha256(raw).hexdigest()
    return PoolRun(label or path.name, digest, hf_subset, split, rankings)


def _run_files(record_path: Path, revision_dir: Path, task: str) -> list[Path]:
    record = read_object(record_path, "run record")
    files = record.get("run_files")
    if not isinstance(files, list) or not files or not all(isinstance(f, str) and f for f in files):
        raise DataError(
            f"no run files for {task}: run it with --save-run to pool from it", file=record_path, field="run_files"
        )
    paths = []
    for name in files:
        path = ensure_within(revision_dir, revision_dir / name, what="run file")
        if not path.is_file():
            raise DataError(f"listed run file {name[:80]!r} is missing", file=record_path, field="run_files")
        if not path.name.endswith(_FIRST_STAGE):
            paths.append(path)
    return paths


def _check_record_data(record_path: Path, content_sha256: str | None) -> None:
    """A folder's run must have read this very data and the full task (never another subset)."""
    record = read_object(record_path, "run record")
    if record.get("subset") is not None:
        raise DataError("a run on a subset cannot pool a subset of the full task", file=record_path, field="subset")
    data = record.get("data")
    recorded = data.get("content_sha256") if isinstance(data, dict) else None
    if content_sha256 is not None and recorded is not None and recorded != content_sha256:
        raise DataError(
            f"the run read other data (content {str(recorded)[:12]} vs the task's {content_sha256[:12]})",
            file=record_path,
            field="data.content_sha256",
        )


def read_result_folder(folder: Path, data: TaskData, content_sha256: str | None) -> list[PoolRun]:
    """The pool runs a results folder (``evalkit run --save-run``) holds for the task, labelled by model@revision."""
    revision_dir = revision_folder(Path(folder))
    record_path = revision_dir / EVALKIT_DIR / f"{data.task_name}.run.json"
    if not record_path.is_file():
        raise DataError(f"no run of {data.task_name} in this results folder", file=revision_dir)
    _check_record_data(record_path, content_sha256)
    model, revision = identity(revision_dir)
    return [
        read_run_file(p, data, label=f"{model}@{revision}:{p.name}")
        for p in _run_files(record_path, revision_dir, data.task_name)
    ]


def bm25_runs(
    data: TaskData, content_sha256: str | None, data_dirs: Sequence[Path], *, allow_hub: bool
) -> list[PoolRun]:
    """BM25's ranked lists of the task, made now by ``evalkit.runner.run`` in a temporary folder."""
    from evalkit.runner import RunConfig, run

    with tempfile.TemporaryDirectory(prefix="evalkit-subset-bm25-") as scratch:
        output = Path(scratch) / "results"
        named = {"data_dirs": list(data_dirs)} if data_dirs else {}
        config = RunConfig(
            BM25_MODEL, tasks=[data.task_name], output_dir=output, save_run=True, show_progress=False,
            use_cache=False, allow_hub=allow_hub, **named,
        )  # fmt: skip
        run(config, on_task_done=None)
        return read_result_folder(output, data, content_sha256)


__all__ = ["BM25_MODEL", "PoolRun", "bm25_runs", "parse_trec_run", "read_result_folder", "read_run_file"]
