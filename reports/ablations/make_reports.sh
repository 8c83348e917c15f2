#!/usr/bin/env bash
# The comparison reports in reports/ablations/, from the runs run_ablations.sh wrote: one per ablation, and all
# three against the baseline in one report.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=reports/ablations/runs/sentence-transformers__all-MiniLM-L6-v2
REV=8b3219a92973c328a8e22fadcfa821b5dc75636a
BASE="$RUNS/$REV"
# Each ablation is an mteb experiment of the model's revision: <revision>/experiments/<name>/ (named by mteb's serialiser).
for tag in pooling-cls max_length-128 normalize-off; do
  name=$(case $tag in pooling-cls) echo pooling_cls;; max_length-128) echo max_length_128;; normalize-off) echo normalize_False;; esac)
  .venv/bin/evalkit compare "$BASE/experiments/$name" --baseline "$BASE" \
    --title "all-MiniLM-L6-v2: $tag vs as published" \
    --html "reports/ablations/$tag.html" --markdown "reports/ablations/$tag.md" > /dev/null
done
.venv/bin/evalkit compare "$BASE/experiments/pooling_cls" "$BASE/experiments/max_length_128" "$BASE/experiments/normalize_False" \
  --baseline "$BASE" --title "all-MiniLM-L6-v2 ablations: pooling, max length, normalisation" \
  --html reports/ablations/all.html --markdown reports/ablations/all.md
# The int8 ONNX copy of the model (its runs from reports/models/run_models.sh) against the fp32 runs above.
.venv/bin/evalkit compare reports/models/runs/all-MiniLM-L6-v2-int8-onnx/local-8199be6f699a --baseline "$BASE" \
  --title "all-MiniLM-L6-v2: int8 ONNX copy vs fp32" \
  --html reports/ablations/int8-onnx.html --markdown reports/ablations/int8-onnx.md > /dev/null
