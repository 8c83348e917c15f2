#!/usr/bin/env bash
# The comparison reports in reports/ablations/, from the runs run_ablations.sh wrote: one per ablation, and all
# three against the baseline in one report.
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=reports/ablations/runs/sentence-transformers__all-MiniLM-L6-v2
REV=8b3219a92973c328a8e22fadcfa821b5dc75636a
BASE="$RUNS/$REV"
for tag in pooling-cls max_length-128 normalize-off; do
  .venv/bin/evalkit compare "$RUNS/$REV+$tag" --baseline "$BASE" \
    --title "all-MiniLM-L6-v2: $tag vs as published" \
    --html "reports/ablations/$tag.html" --markdown "reports/ablations/$tag.md" > /dev/null
done
.venv/bin/evalkit compare "$RUNS/$REV+pooling-cls" "$RUNS/$REV+max_length-128" "$RUNS/$REV+normalize-off" \
  --baseline "$BASE" --title "all-MiniLM-L6-v2 ablations: pooling, max length, normalisation" \
  --html reports/ablations/all.html --markdown reports/ablations/all.md
