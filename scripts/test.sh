#!/usr/bin/env bash
# Install what the tests need, then run the whole suite (slow end-to-end runs included).
# Quicker local loop: python -m pytest -m "not slow"
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The web page's end-to-end test drives a headless Chromium; it skips (saying why) without one.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -q && apt-get install -y -q chromium) >/dev/null 2>&1 || echo "could not install chromium: the browser test will skip"
fi
# the ten slowest tests are listed at the end, to keep the suite within its 15 minutes on 2 cores
python3 -m pytest -q --durations=10 "$@"
