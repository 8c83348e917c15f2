"""Data for ``gpu_check.py``: the tiny slices of a dry run, the documents it times, the committed CPU fp32 scores."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

DRY_QUERIES, DRY_DOCS, DRY_PAIRS = 6, 24, 24


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def _tiny_scifact(source: Path, target: Path) -> None:
    """The first judged queries, their positives and filler documents, in SciFact's own layout."""
    lines = (source / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = lines[0], [line.split("\t") for line in lines[1:] if line.strip()]
    query_ids = list(dict.fromkeys(row[0] for row in rows))[:DRY_QUERIES]
    kept = [row for row in rows if row[0] in set(query_ids)]
    positives = {row[1] for row in kept}
    (target / "qrels").mkdir(parents=True)
    (target / "qrels" / "test.tsv").write_text("\n".join([header, *("\t".join(r) for r in kept)]) + "\n")
    corpus = _jsonl(source / "corpus.jsonl")
    docs = [d for d in corpus if d["_id"] in positives]
    docs += [d for d in corpus if d["_id"] not in positives][: max(0, DRY_DOCS - len(docs))]
    _write_jsonl(target / "corpus.jsonl", docs)
    _write_jsonl(target / "queries.jsonl", [q for q in _jsonl(source / "queries.jsonl") if q["_id"] in query_ids])


def tiny_mirror(data_dir: Path, target: Path) -> Path:
    """A local mirror holding slices of SciFact and STSBenchmark (a dry run's data: seconds, not minutes)."""
    _tiny_scifact(data_dir / "SciFact", target / "SciFact")
    sts = target / "STSBenchmark"
    sts.mkdir(parents=True)
    for path in sorted((data_dir / "STSBenchmark").glob("*.jsonl")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (sts / path.name).write_text("".join(lines[:DRY_PAIRS]), encoding="utf-8")
    return target


def task_texts(data_dir: Path, task: str) -> list[str]:
    """A retrieval task's document texts as evalkit encodes them (its loader and its title + text join)."""
    from evalkit.evaluators.retrieval import document_texts
    from evalkit.loaders import load_task_data
    from evalkit.registry.tasks import default_registry

    data = load_task_data(default_registry().get(task), [data_dir], allow_hub=False)
    split = next(iter(next(iter(data.splits.values())).values()))
    return document_texts(split.corpus)


def committed_reference(repo: Path, model: str, tasks: Sequence[str]) -> dict[str, float]:
    """Main scores of the model's committed results (CPU fp32 runs of the full tasks; checked in their records)."""
    scores = {}
    for task in tasks:
        (result,) = sorted((repo / "results" / model.replace("/", "__")).glob(f"*/{task}.json"))
        record = json.loads((result.parent / "evalkit" / f"{task}.run.json").read_text(encoding="utf-8"))
        settings = record["run_settings"]
        if (settings.get("device"), settings.get("precision")) != ("cpu", "fp32"):
            raise ValueError(f"{result} is not a CPU fp32 run ({settings.get('device')}, {settings.get('precision')})")
        scores[task] = float(json.loads(result.read_text(encoding="utf-8"))["scores"]["test"][0]["main_score"])
    return scores
