#!/usr/bin/env bash
# The main job on the embedded default: install, co-train PLUS (summarizer + summary-conditioned
# reward model), train the BTL and Oracle reward models beside it, evaluate all three on Pets and
# Pets-OOD and print one accuracy table. Every step shows its progress; how long it takes depends on
# the CPU (docs/performance.md). Re-running skips finished runs and resumes a killed one.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${PLUSRL_RUNS:-runs/quickstart}
for method in plus btl oracle; do
  if [ -f "$OUT/$method/eval/pets-ood.json" ]; then
    echo "== $method: already trained and evaluated in $OUT/$method"
  else
    echo "== training $method on Pets"
    plusrl train --config "recipes/pets/$method.yaml" --output-dir "$OUT/$method" --resume
  fi
done
plusrl table "$OUT/plus" "$OUT/btl" "$OUT/oracle"
echo "summaries the trained summarizer wrote for held-out users: $OUT/plus/eval/pets.predictions.jsonl"
