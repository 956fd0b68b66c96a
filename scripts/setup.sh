#!/usr/bin/env bash
# Create .venv: Python 3.11+, torch 2.13.0 (the CPU build unless an NVIDIA GPU is present), then
# archtune[dev] at the tested versions of constraints.txt (bash scripts/update-constraints.sh
# rewrites it, on purpose). A .venv made by another Python, torch pin or constraints file is
# removed and made again, never reused.
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH=2.13.0
CPU_INDEX=https://download.pytorch.org/whl/cpu
say() { echo "scripts/setup.sh: $*" >&2; }
die() { say "$*"; exit 1; }

PY=${PYTHON:-}
if [ -z "$PY" ]; then
  for candidate in python3.11 python3.12 python3.13 python3; do  # the tested 3.11 first
    if command -v "$candidate" >/dev/null; then PY=$candidate; break; fi
  done
fi
[ -n "$PY" ] || die "no python3 found (archtune needs Python 3.11 or newer; set PYTHON=/path/to/python3.11)"
command -v "$PY" >/dev/null || die "PYTHON=$PY: no such command (archtune needs Python 3.11 or newer)"
found=$("$PY" -c 'import platform; print(platform.python_version())' 2>/dev/null) || die "$PY does not run"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
  die "$PY is Python $found; archtune needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null ||
  die "$PY (Python $found) has no venv/ensurepip module (Debian/Ubuntu: apt-get install python3-venv)"
[ -f constraints.txt ] || die "constraints.txt is missing (the tested versions; see scripts/update-constraints.sh)"

# what this .venv is made of: a .venv with another stamp is rebuilt
sha=$(sha256sum constraints.txt | cut -d' ' -f1)
stamp="python $found ($("$PY" -c 'import sys; print(sys.implementation.name)')); torch $TORCH; constraints.txt sha256 $sha"
STAMP=.venv/archtune-setup.stamp
install_archtune() {  # archtune[dev] at the pinned versions (a no-op when they are installed)
  python -m pip install -q -c constraints.txt -e ".[dev]"
  python -m pip check >&2 || die "pip check failed: the installed versions do not fit together"
}
if [ -e .venv ]; then
  have=$(cat "$STAMP" 2>/dev/null || echo "no stamp (not made by this script, or its set-up did not finish)")
  venv_py=$(.venv/bin/python -c 'import platform; print(platform.python_version())' 2>/dev/null || echo "none")
  if [ "$have" = "$stamp" ] && [ "$venv_py" = "$found" ]; then
    say "reusing .venv ($stamp)"
    . .venv/bin/activate
    install_archtune  # pyproject.toml may name a new package since
    echo "archtune installed in $(pwd)/.venv (activate with: . .venv/bin/activate)"
    exit 0
  fi
  say "rebuilding .venv: it holds [$have] with python $venv_py, wanted [$stamp]"
  rm -rf .venv
fi
"$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q -c constraints.txt --upgrade pip

# torch first, without its dependencies (they come pinned with archtune below). Its source, in
# one line: CUDA build from the default index with an NVIDIA GPU; otherwise local wheels when
# pip's configuration provides them, else PyTorch's CPU index, else the default index.
pip_config=$(python -m pip config list 2>/dev/null || true)
local_wheels=$(printf '%s\n' "$pip_config" | grep -E "find-links='(file://|/)" | head -n 1 || true)
[ -n "$local_wheels" ] || local_wheels=$(printf '%s\n' "$pip_config" | grep -E "index-url='file://" | head -n 1 || true)
if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  say "torch $TORCH: the default index (an NVIDIA GPU is present: the CUDA build)"
  python -m pip install -q --no-deps "torch==$TORCH"
elif [ -n "$local_wheels" ]; then
  say "torch $TORCH: pip's configured local wheels ($local_wheels), PyTorch's CPU index not contacted"
  python -m pip install -q --no-deps "torch==$TORCH"
elif python -m pip install -q --no-deps --timeout 20 --retries 1 --index-url "$CPU_INDEX" "torch==$TORCH" 2>/dev/null; then
  say "torch $TORCH: PyTorch's CPU index ($CPU_INDEX), no NVIDIA GPU here"
else
  say "torch $TORCH: the default index (PyTorch's CPU index $CPU_INDEX was not reachable; this may be the CUDA build)"
  python -m pip install -q --no-deps "torch==$TORCH"
fi
install_archtune
echo "$stamp" > "$STAMP"
echo "archtune installed in $(pwd)/.venv (activate with: . .venv/bin/activate)"
