#!/usr/bin/env bash
# Install what the tests need, then run the whole suite (slow end-to-end runs included).
# Quicker local loop: python -m pytest -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 -m pytest -q "$@"
