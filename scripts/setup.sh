#!/usr/bin/env bash
# Create .venv with the CPU build of PyTorch first (so nothing pulls a CUDA build), then archtune.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0          # CPU wheel; install before the project
python -m pip install -q -e ".[dev]"
echo "archtune installed in $(pwd)/.venv (activate with: . .venv/bin/activate)"
