#!/usr/bin/env bash
# The runs behind reports/ablations/: the packaged all-MiniLM-L6-v2 on SciFact and the English STS tasks of the
# local mirror, once as published and once per changed setting. Each changed setting is an mteb experiment of the
# model's revision: <revision>/experiments/<name>/ (pooling_cls, max_length_128, normalize_False).
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${DATA_DIR:-../shared/data/tasks}"
OUT=reports/ablations/runs
TASKS=(SciFact BIOSSES SICK-R STS12 STS13 STS14 STS15 STS16 STSBenchmark)
run() { .venv/bin/evalkit run --model sentence-transformers/all-MiniLM-L6-v2 --tasks "${TASKS[@]}" \
  --data-dir "$DATA" --output "$OUT" --quiet "$@"; }
run                      # baseline: mean pooling, max length 256, normalised
run --pooling cls
run --max-length 128
run --no-normalize
