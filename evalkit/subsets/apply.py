"""A quick subset applied to a task's loaded data: the full task filtered to the ids its manifest keeps.

The data must be the data the subset was built from: its content checksum (the one a run record holds) must equal
the manifest's, else the subset is refused in one line. What is kept stays in file order; a retrieval split keeps
its kept queries, its kept documents and the judgements between them; a pair split its kept rows; a reranking split
its kept queries with all their candidates and judgements. The filtered data's checksum must then equal the one the
manifest recorded when it was built, so a subset run provably scored exactly those rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import DataError
from evalkit.records import Corpus, PairLabelSplit, PairSplit, Queries, RerankingSplit, RetrievalSplit, Split, TaskData
from evalkit.results.run_record import content_checksum
from evalkit.subsets.manifest import SubsetError, read_manifest


def _corpus(corpus: Corpus, keep: set[str]) -> Corpus:
    rows = [i for i, doc_id in enumerate(corpus.ids) if doc_id in keep]
    return Corpus([corpus.ids[i] for i in rows], [corpus.titles[i] for i in rows], [corpus.texts[i] for i in rows])


def _queries(queries: Queries, keep: set[str]) -> Queries:
    rows = [i for i, query_id in enumerate(queries.ids) if query_id in keep]
    return Queries([queries.ids[i] for i in rows], [queries.texts[i] for i in rows])


def _check_ids(wanted: Sequence[str], present: Sequence[str], what: str, where: str) -> set[str]:
    keep = set(wanted)
    missing = keep - set(present)
    if missing:
        raise SubsetError(f"{where}: {len(missing)} kept {what} not in the data (e.g. {sorted(missing)[0][:80]!r})")
    return keep


def _retrieval(split: RetrievalSplit, entry: dict[str, Any], where: str) -> RetrievalSplit:
    kept_queries = _check_ids(entry["queries"], split.queries.ids, "queries", where)
    kept_docs = _check_ids(entry["docs"], split.corpus.ids, "documents", where)
    qrels = {
        query_id: {doc: grade for doc, grade in judged.items() if doc in kept_docs}
        for query_id, judged in split.qrels.items()
        if query_id in kept_queries
    }
    return RetrievalSplit(_corpus(split.corpus, kept_docs), _queries(split.queries, kept_queries), qrels)


def _reranking(split: RerankingSplit, entry: dict[str, Any], where: str) -> RerankingSplit:
    kept_queries = _check_ids(entry["queries"], split.queries.ids, "queries", where)
    rows = [i for i, query_id in enumerate(split.queries.ids) if query_id in kept_queries]
    candidates = [split.candidates[i] for i in rows]
    qrels = {q: dict(judged) for q, judged in split.qrels.items() if q in kept_queries}
    docs = {doc for listed in candidates for doc in listed} | {doc for judged in qrels.values() for doc in judged}
    return RerankingSplit(_queries(split.queries, kept_queries), candidates, _corpus(split.corpus, docs), qrels)


def _pairs(split: PairSplit | PairLabelSplit, entry: dict[str, Any], where: str) -> PairSplit | PairLabelSplit:
    rows = entry["rows"]
    if any(r < 0 or r >= len(split) for r in rows) or rows != sorted(set(rows)):
        raise SubsetError(f"{where}: kept rows are out of range or not increasing for {len(split)} pairs")
    texts1, texts2 = [split.texts1[i] for i in rows], [split.texts2[i] for i in rows]
    if isinstance(split, PairSplit):
        return PairSplit(texts1, texts2, np.asarray(split.scores)[rows])
    return PairLabelSplit(texts1, texts2, np.asarray(split.labels)[rows])


_KINDS: dict[str, tuple[type, ...]] = {
    "retrieval": (RetrievalSplit,),
    "pairs": (PairSplit, PairLabelSplit),
    "reranking": (RerankingSplit,),
}


def filter_split(split: Split, entry: dict[str, Any], where: str) -> Split:
    """One split filtered to one selection entry of the manifest."""
    if not isinstance(split, _KINDS[entry["kind"]]):
        raise SubsetError(f"{where}: the manifest selects {entry['kind']} rows, the data is {type(split).__name__}")
    if isinstance(split, RetrievalSplit):
        return _retrieval(split, entry, where)
    if isinstance(split, RerankingSplit):
        return _reranking(split, entry, where)
    return _pairs(split, entry, where)  # type: ignore[arg-type]


def filter_data(data: TaskData, manifest: dict[str, Any]) -> TaskData:
    """The data filtered to the manifest's selection, no checksum checked (the build uses it on the data it read)."""
    entries = {(e["hf_subset"], e["split"]): e for e in manifest["selection"]}
    splits: dict[str, dict[str, Split]] = {}
    for hf_subset, by_split in data.splits.items():
        for name, split in by_split.items():
            entry = entries.get((hf_subset, name))
            where = f"subset {manifest['name']}: {data.task_name} {hf_subset}/{name}"
            if entry is None:
                raise SubsetError(f"{where}: this split is not in the subset")
            splits.setdefault(hf_subset, {})[name] = filter_split(split, entry, where)
    return replace(data, splits=splits, origin=f"{data.origin}; subset {manifest['name']}")


def apply_subset(data: TaskData, manifest: dict[str, Any]) -> TaskData:
    """``data`` (the full task, loaded as usual) filtered to the subset, after checking it is the data the subset was
    built from; the result's content checksum is checked against the one recorded at build time."""
    name, task = manifest["name"], manifest["task"]
    if data.task_name != task:
        raise SubsetError(f"subset {name} is of task {task}, not {data.task_name}")
    full = content_checksum(data)
    expected = manifest["source"].get("content_sha256")
    if full is None or full != expected:
        raise SubsetError(
            f"subset {name}: the data of {task} changed since the subset was built (content "
            f"{(full or 'unhashable')[:12]} vs {str(expected)[:12]}), or the run selects other splits or languages"
        )
    filtered = filter_data(data, manifest)
    if content_checksum(filtered) != manifest.get("subset_content_sha256"):
        raise SubsetError(f"subset {name}: the filtered rows do not match the ones recorded when it was built")
    return filtered


def load_subsets(names: Sequence[str], subsets_dir: str | Path | None = None) -> dict[str, dict[str, Any]]:
    """The manifests named, by task (one subset per task), each read and checked."""
    by_task: dict[str, dict[str, Any]] = {}
    for name in names:
        manifest = read_manifest(name, subsets_dir)
        other = by_task.get(manifest["task"])
        if other is not None and other["name"] != name:
            raise SubsetError(f"two subsets of {manifest['task']} ({other['name']}, {name}): name one per task")
        by_task[manifest["task"]] = manifest
    return by_task


__all__ = ["DataError", "apply_subset", "filter_data", "filter_split", "load_subsets"]
