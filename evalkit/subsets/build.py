"""``evalkit subset build``: a quick subset of a task, made by rule, written as a content-addressed manifest.

Retrieval tasks follow mteb's HardNegatives tasks (``hard-negatives``: judged positives plus the union of each pool
run's top ``depth`` per query, queries capped at ``max_queries``); STS and pair classification are sampled by strata
(``stratified``); reranking by query (``query-sample``). See :mod:`evalkit.subsets.select` for the rules and
:mod:`evalkit.subsets.manifest` for the manifest. The pool defaults to BM25, run here through evalkit, plus the
``baseline`` results folder when given; ``pool`` adds run files or folders; a retrieval subset with no pool run is
refused, since its documents would be only the positives.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.errors import EvalkitError
from evalkit.loaders import load_task_data
from evalkit.options.base import check_positive
from evalkit.pipeline.plan import default_data_dirs
from evalkit.records import PairLabelSplit, PairSplit, RerankingSplit, RetrievalSplit, Split, TaskData
from evalkit.registry.tasks import TaskRegistry, default_registry
from evalkit.results.run_record import content_checksum
from evalkit.subsets.apply import filter_data
from evalkit.subsets.manifest import (
    DEFAULT_DEPTH,
    DEFAULT_MAX_ITEMS,
    DEFAULT_MAX_QUERIES,
    DEFAULT_SEED,
    FORMAT,
    SubsetError,
    finalize,
    write_manifest,
)
from evalkit.subsets.pool_runs import PoolRun, bm25_runs, read_result_folder, read_run_file
from evalkit.subsets.select import (
    LABEL_STRATA,
    STS_STRATA,
    hard_negative_docs,
    judged_queries,
    sample_positions,
    score_deciles,
    stratified_rows,
)


@dataclass(frozen=True)
class BuiltSubset:
    """A subset as built: its manifest and where it was written."""

    manifest: dict[str, Any]
    path: Path

    @property
    def name(self) -> str:
        return str(self.manifest["name"])


@dataclass(frozen=True)
class SubsetParameters:
    """The rule's parameters, checked when made."""

    depth: int = DEFAULT_DEPTH
    max_queries: int = DEFAULT_MAX_QUERIES
    max_items: int = DEFAULT_MAX_ITEMS
    seed: int = DEFAULT_SEED

    def __post_init__(self) -> None:
        for name in ("depth", "max_queries", "max_items"):
            check_positive(getattr(self, name), name, allow_none=False)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise EvalkitError(f"--seed must be a non-negative integer, got {self.seed!r}", field="seed")


def rule_of(data: TaskData) -> str:
    """The rule for the task's kind of data; a kind no rule covers is refused."""
    kinds = {type(split) for splits in data.splits.values() for split in splits.values()}
    if kinds and kinds <= {RetrievalSplit}:
        return "hard-negatives"
    if kinds and kinds <= {PairSplit, PairLabelSplit}:
        return "stratified"
    if kinds and kinds <= {RerankingSplit}:
        return "query-sample"
    shown = ", ".join(sorted(k.__name__ for k in kinds)) or "no splits"
    raise SubsetError(f"{data.task_name}: no subset rule for this kind of data ({shown})")


def _sizes(kept: int, full: int) -> dict[str, int]:
    return {"kept": kept, "full": full}


def _retrieval_entry(split: RetrievalSplit, runs: Sequence[PoolRun], params: SubsetParameters) -> dict[str, Any]:
    judged = judged_queries(split.queries.ids, split.qrels)
    rng = np.random.default_rng(params.seed)
    kept_queries = [judged[i] for i in sample_positions(len(judged), params.max_queries, rng)]
    rankings = [run.rankings for run in runs]
    docs = hard_negative_docs(kept_queries, split.qrels, rankings, split.corpus.ids, params.depth)
    return {
        "kind": "retrieval",
        "queries": kept_queries,
        "docs": docs,
        "sizes": {
            "queries": _sizes(len(kept_queries), len(split.queries)),
            "judged_queries": len(judged),
            "docs": _sizes(len(docs), len(split.corpus)),
        },
    }


def _pairs_entry(split: PairSplit | PairLabelSplit, params: SubsetParameters) -> dict[str, Any]:
    if isinstance(split, PairSplit):
        strata = score_deciles(np.asarray(split.scores, dtype=np.float64))
    else:
        strata = np.asarray(split.labels, dtype=np.int64)
    rows = stratified_rows(strata, params.max_items, np.random.default_rng(params.seed))
    kept_strata = strata[rows] if rows else strata[:0]
    by_stratum = {
        str(int(s)): _sizes(int(np.sum(kept_strata == s)), int(np.sum(strata == s))) for s in np.unique(strata)
    }
    return {"kind": "pairs", "rows": rows, "sizes": {"rows": _sizes(len(rows), len(split)), "strata": by_stratum}}


def _reranking_entry(split: RerankingSplit, params: SubsetParameters) -> dict[str, Any]:
    rng = np.random.default_rng(params.seed)
    kept = [split.queries.ids[i] for i in sample_positions(len(split.queries), params.max_queries, rng)]
    return {"kind": "reranking", "queries": kept, "sizes": {"queries": _sizes(len(kept), len(split.queries))}}


def _entry(key: tuple[str, str], split: Split, runs: Sequence[PoolRun], params: SubsetParameters) -> dict[str, Any]:
    hf_subset, name = key
    if isinstance(split, RetrievalSplit):
        mine = [run for run in runs if (run.hf_subset, run.split) == key]
        if not mine:
            raise SubsetError(f"no pool run ranks {hf_subset}/{name}: name one that does (--pool)")
        entry = _retrieval_entry(split, mine, params)
    elif isinstance(split, RerankingSplit):
        entry = _reranking_entry(split, params)
    else:
        entry = _pairs_entry(split, params)  # type: ignore[arg-type]
    return {"hf_subset": hf_subset, "split": name, **entry}


def _parameters(rule: str, data: TaskData, params: SubsetParameters) -> dict[str, Any]:
    if rule == "hard-negatives":
        return {"depth": params.depth, "max_queries": params.max_queries, "seed": params.seed,
                "queries": "with a judged positive (grade > 0)", "sampler": "numpy.random.default_rng"}  # fmt: skip
    if rule == "query-sample":
        return {"max_queries": params.max_queries, "seed": params.seed, "sampler": "numpy.random.default_rng"}
    labels = any(isinstance(s, PairLabelSplit) for splits in data.splits.values() for s in splits.values())
    return {"max_items": params.max_items, "seed": params.seed, "sampler": "numpy.random.default_rng",
            "strata": LABEL_STRATA if labels else STS_STRATA}  # fmt: skip


def _pool(
    data: TaskData, checksum: str, sources: tuple[Path | None, Sequence[Path], bool], data_dirs: list[Path], hub: bool
) -> list[PoolRun]:
    baseline, pool, bm25 = sources
    runs = bm25_runs(data, checksum, data_dirs, allow_hub=hub) if bm25 else []
    for folder_or_file in ([baseline] if baseline is not None else []) + [Path(p) for p in pool]:
        if Path(folder_or_file).is_dir():
            runs += read_result_folder(Path(folder_or_file), data, checksum)
        else:
            runs.append(read_run_file(Path(folder_or_file), data))
    if not runs:
        raise SubsetError(
            f"{data.task_name}: a retrieval subset needs at least one pool run (BM25, --baseline, --pool)"
        )
    return runs


def build_subset(
    task: str,
    *,
    baseline: str | Path | None = None,
    pool: Sequence[str | Path] = (),
    bm25: bool = True,
    depth: int = DEFAULT_DEPTH,
    max_queries: int = DEFAULT_MAX_QUERIES,
    max_items: int = DEFAULT_MAX_ITEMS,
    seed: int = DEFAULT_SEED,
    name: str | None = None,
    subsets_dir: str | Path | None = None,
    data_dirs: Sequence[str | Path] = (),
    allow_hub: bool = True,
    registry: TaskRegistry | None = None,
) -> BuiltSubset:
    """Build a quick subset of ``task`` and write its manifest to ``<subsets_dir>/<name>.json``.

    The same task data, rule, parameters and pool runs give the same manifest (and default name), so a CI job can
    rebuild it and get the very subset its baseline ran on."""
    params = SubsetParameters(depth, max_queries, max_items, seed)
    if name is not None:
        from evalkit.subsets.manifest import check_name

        check_name(name, field="--name")
    spec = (registry or default_registry()).get(task)
    dirs = [Path(d) for d in data_dirs] or default_data_dirs()
    data = load_task_data(spec, dirs, allow_hub=allow_hub)
    checksum = content_checksum(data)
    rule = rule_of(data)
    if checksum is None:
        raise SubsetError(f"{task}: its content has no checksum, so a subset of it could not be verified")
    runs: list[PoolRun] = []
    if rule == "hard-negatives":
        runs = _pool(data, checksum, (Path(baseline) if baseline else None, [Path(p) for p in pool], bm25), dirs,
                     allow_hub)  # fmt: skip
    elif baseline is not None or pool:
        raise SubsetError(f"{task}: pool runs (--baseline, --pool) apply to retrieval tasks; this one is sampled")
    keys = sorted((s, p) for s, splits in data.splits.items() for p in splits)
    content: dict[str, Any] = {
        "format": FORMAT,
        "task": spec.name,
        "task_type": spec.type,
        "rule": rule,
        "parameters": _parameters(rule, data, params),
        "pool": sorted(
            (run.record() for run in runs), key=lambda r: (r["hf_subset"], r["split"], r["label"], r["sha256"])
        ),
        "source": {"content_sha256": checksum, "dataset_revision": spec.dataset_revision, "task_version": spec.version},
        "selection": [_entry(key, data.splits[key[0]][key[1]], runs, params) for key in keys],
    }
    content["subset_content_sha256"] = content_checksum(filter_data(data, {"name": task, **content}))
    manifest = finalize(content, name)
    return BuiltSubset(manifest, write_manifest(manifest, subsets_dir))


__all__ = ["BuiltSubset", "SubsetParameters", "build_subset", "rule_of"]
