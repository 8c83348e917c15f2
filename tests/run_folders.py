"""Run folders in evalkit's output layout, written directly, for the report tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
from scipy import stats as scipy_stats


def write_run(
    root: Path,
    *,
    model: str = "org/model",
    revision: str = "abc123",
    retrieval: np.ndarray | None = None,
    sts: tuple[np.ndarray, np.ndarray] | None = None,
    corpus_sha: str = "aaa",
    experiment_kwargs: dict | None = None,
) -> Path:
    """A run folder as ``evalkit run`` writes it: TaskResult JSON, per-item scores, run record, model_meta; with
    ``experiment_kwargs``, an experiment of the revision (``<revision>/experiments/<name>/``) as mteb stores one."""
    from evalkit.results.layout import ResultsLayout, experiment_name

    folder = ResultsLayout(root, model.replace("/", "__"), revision, experiment_name(experiment_kwargs)).revision_dir
    (folder / "evalkit").mkdir(parents=True)
    meta = {"name": model, "revision": revision} | (
        {"experiment_kwargs": experiment_kwargs} if experiment_kwargs else {}
    )
    (folder / "model_meta.json").write_text(json.dumps(meta))
    tasks = {}
    if retrieval is not None:
        rows = [
            {"split": "test", "hf_subset": "default", "id": f"q{i}", "ndcg_at_10": float(v)}
            for i, v in enumerate(retrieval)
        ]
        tasks["SciFact"] = (rows, float(np.mean(retrieval)), {"ndcg_at_10": float(np.mean(retrieval))})
    if sts is not None:
        gold, cosine = sts
        rows = [
            {"split": "test", "hf_subset": "default", "id": str(i), "gold": float(g), "cosine": float(c)}
            for i, (g, c) in enumerate(zip(gold, cosine, strict=True))
        ]
        spearman = float(scipy_stats.spearmanr(gold, cosine).statistic)
        tasks["STSBenchmark"] = (rows, spearman, {"cosine_spearman": spearman})
    for name, (rows, main_score, scores) in tasks.items():
        result = {
            "dataset_revision": "rev1",
            "task_name": name,
            "mteb_version": "2.26.24",
            "evaluation_time": 1.0,
            "kg_co2_emissions": None,
            "scores": {
                "test": [{**scores, "main_score": main_score, "hf_subset": "default", "languages": ["eng-Latn"]}]
            },
        }
        (folder / f"{name}.json").write_text(json.dumps(result))
        with gzip.open(folder / "evalkit" / f"{name}.per_item.jsonl.gz", "wt") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
        record = {"task": {"version": 1}, "data": {"files": [{"path": "/d/corpus.jsonl", "sha256": corpus_sha}]}}
        (folder / "evalkit" / f"{name}.run.json").write_text(json.dumps(record))
    return root
