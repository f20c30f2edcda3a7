#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment and install the pack with its test tools.
# Usage: source-free; prints the venv path. MOTIONSIGHT_VENV overrides the location (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MOTIONSIGHT_VENV:-.venv}"
python="${PYTHON:-python3}"
stamp="$venv/.motionsight-installed"
want="$(cat pyproject.toml scripts/setup_env.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "$venv"; exit 0
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv" >&2
"$venv/bin/python" -m pip install -q --upgrade pip >&2
# torch first: this pin is served from local disk on the project's machines (a CUDA build that
# also runs on CPU); elsewhere pip fetches it. The project's own range then installs no other torch.
if [ "$(uname -m)" = "x86_64" ]; then torch_pins="torch==2.14.1 torchvision==0.29.1"; else torch_pins="torch torchvision"; fi
"$venv/bin/python" -m pip install -q $torch_pins 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$venv/bin/python" -c "import torch, torchvision" >&2
"$venv/bin/python" -m pip install -q -e ".[dev,ray]" 2>&1 | grep -v "^WARNING: Location" >&2 || true
"$venv/bin/python" -c "import motionsight, ray, pytest" >&2
echo "$want" > "$stamp"
echo "$venv"
