"""The run record beside each result: what produced it (versions, model, data, machine, timings).

Two results are comparable only when their records agree on the data and task versions; the regression diff reads
these (``evalkit.reports.identity``). Data identity is ``data.content_sha256``, a checksum of the loaded content
(:func:`content_checksum`), so the same rows compare equal whether they came from the mirror, the hub or a subset
file; ``data.files`` (the files read, with their SHA-256) stays, for runs recorded before it and for provenance.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import sys
from collections.abc import Mapping
from dataclasses import asdict
from functools import cache
from importlib import metadata
from typing import Any

from evalkit import __version__
from evalkit.evaluators.outcome import TaskOutcome
from evalkit.loaders.corpus_store import remembered_content_sha256
from evalkit.records import (
    AnswerRetrievalSplit,
    Corpus,
    PairLabelSplit,
    PairSplit,
    Qrels,
    Queries,
    RerankingSplit,
    RetrievalSplit,
    Split,
    TaskData,
)
from evalkit.registry.tasks import TaskSpec
from evalkit.results.throughput import compute_seconds

_PACKAGES = (
    "torch",
    "transformers",
    "tokenizers",
    "mteb",
    "numpy",
    "scipy",
    "scikit-learn",
    "pytrec-eval-terrier",
    "datasets",
)


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


@cache
def machine_info() -> dict[str, Any]:
    from evalkit.cache.torch_facts import torch_facts  # asks torch only when no warm-run memo answers

    torch_threads, gpus = torch_facts()
    return {
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "torch_threads": torch_threads,
        "gpus": gpus,
    }


CONTENT_SCHEME = "evalkit-content-v1"  # changes whenever the canonical form below does


def _update(digest: Any, *parts: object) -> None:
    """One canonical JSON line per row: unambiguous (no separator can be forged by a text) and order-exact."""
    digest.update(json.dumps(parts, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n")


def _corpus_sha256(corpus: Corpus) -> str:
    digest = hashlib.sha256()
    for doc_id, title, text in sorted(zip(corpus.ids, corpus.titles, corpus.texts, strict=True)):
        _update(digest, "doc", doc_id, title, text)
    return digest.hexdigest()


def _corpus(digest: Any, corpus: Corpus, seen: dict[int, str]) -> None:
    """A corpus by its own checksum, computed once per object (MKQA's languages share one corpus)."""
    if id(corpus) not in seen:  # remembered beside the corpus's parsed form (evalkit/loaders/corpus_store.py)
        seen[id(corpus)] = remembered_content_sha256(corpus, CONTENT_SCHEME, _corpus_sha256)
    _update(digest, "corpus", seen[id(corpus)])


def _queries(digest: Any, queries: Queries) -> None:
    for query_id, text in sorted(zip(queries.ids, queries.texts, strict=True)):
        _update(digest, "query", query_id, text)


def _qrels(digest: Any, qrels: Qrels) -> None:
    for query_id in sorted(qrels):
        for doc_id in sorted(qrels[query_id]):
            _update(digest, "qrel", query_id, doc_id, int(qrels[query_id][doc_id]))


def _split(digest: Any, split: Split, seen: dict[int, str]) -> bool:
    """Feed one split; False for a kind whose content is not hashed here (mteb-native datasets)."""
    if isinstance(split, (RetrievalSplit, RerankingSplit)):
        _corpus(digest, split.corpus, seen)
        _queries(digest, split.queries)
        _qrels(digest, split.qrels)
        if isinstance(split, RerankingSplit):
            for query_id, candidates in sorted(zip(split.queries.ids, split.candidates, strict=True)):
                _update(digest, "candidates", query_id, candidates)
    elif isinstance(split, PairSplit):  # file order kept: per-pair ids are positions
        for row in zip(split.texts1, split.texts2, split.scores.tolist(), strict=True):
            _update(digest, "pair", *row)
    elif isinstance(split, PairLabelSplit):
        for row in zip(split.texts1, split.texts2, split.labels.tolist(), strict=True):
            _update(digest, "pair", *row)
    elif isinstance(split, AnswerRetrievalSplit):
        _corpus(digest, split.corpus, seen)
        _queries(digest, split.queries)
        for query_id, answers in sorted(zip(split.queries.ids, split.answers, strict=True)):
            _update(digest, "answers", query_id, sorted(answers))
    else:
        return False
    return True


def content_checksum(data: TaskData) -> str | None:
    """SHA-256 of the loaded task content, independent of where and in which files it was read.

    Canonical form: per (subset, split) in sorted order, retrieval-like rows sorted by id (documents with their
    title, queries, qrels, candidates, answers); pairs in file order, since their per-item ids are positions.
    None when a split's kind is not hashed here (mteb-native datasets): the diff then compares file checksums.
    """
    digest = hashlib.sha256(CONTENT_SCHEME.encode())
    seen: dict[int, str] = {}
    for subset in sorted(data.splits):
        for name in sorted(data.splits[subset]):
            _update(digest, "split", subset, name)
            if not _split(digest, data.splits[subset][name], seen):
                return None
    return digest.hexdigest()


def spec_record(spec: TaskSpec) -> dict[str, Any]:
    record = asdict(spec)
    record["spec_file"] = str(spec.spec_file) if spec.spec_file else None
    record["data_dir"] = str(spec.data_dir) if spec.data_dir else None
    return record


def run_record(
    *,
    spec: TaskSpec,
    data: TaskData,
    outcome: TaskOutcome,
    model_fingerprint: dict[str, object],
    run_settings: dict[str, Any],
    started_at: dt.datetime,
    finished_at: dt.datetime,
    command: list[str] | None,
    throughput: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The record of one task's result. ``throughput`` (:func:`evalkit.results.throughput.task_throughput`): how
    fast its vectors were computed and how many came from the cache; ``timings.compute_s`` is the encode, search
    and score time of every split, so a reader can tell it from mteb's ``evaluation_time`` (wall time) and, with
    ``timings.cached_share``, see when a fast task only read its vectors from the cache."""
    record: dict[str, Any] = {
        "evalkit_version": __version__,
        "command": command,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "task": spec_record(spec),
        "model": model_fingerprint,
        "run_settings": run_settings,
        "data": {
            "origin": data.origin,
            "files": [asdict(f) for f in data.source_files],
            "content_sha256": content_checksum(data),
        },
        "warnings": outcome.warnings,  # degenerate-but-valid data, e.g. every judgement grade 0
        "timings": {
            "evaluation_time_s": outcome.evaluation_time_s,
            "compute_s": compute_seconds(s.timings for s in outcome.splits),
            "cached_share": throughput.get("cached_share") if throughput is not None else None,
            "splits": {f"{s.split}/{s.hf_subset}": s.timings for s in outcome.splits},
        },
        "packages": package_versions(),
        "machine": machine_info(),
    }
    if throughput is not None:
        record["throughput"] = dict(throughput)
    return record
