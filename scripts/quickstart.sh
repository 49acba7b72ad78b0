#!/usr/bin/env bash
# The main job on the embedded default: install, train BTL and Oracle reward models on Pets,
# evaluate on Pets and Pets-OOD, print the accuracy table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=${PLUSRL_RUNS:-runs/quickstart}
for method in btl oracle; do
  if [ -f "$OUT/$method/eval/pets.json" ]; then
    echo "== $method: already trained and evaluated in $OUT/$method"
  else
    echo "== training $method on Pets"
    plusrl train --config "recipes/pets/$method.yaml" --output-dir "$OUT/$method" --resume
  fi
done
plusrl table "$OUT/btl" "$OUT/oracle"
