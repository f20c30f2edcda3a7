#!/usr/bin/env bash
# Build the environment if needed, then run the linter and the whole test suite (offline).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(bash scripts/setup_env.sh)"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q "$@"
