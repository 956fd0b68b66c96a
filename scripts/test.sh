#!/usr/bin/env bash
# The test suite: ruff, then pytest (slow real-data tests included). Needs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
export ARCHTUNE_DATA="${ARCHTUNE_DATA:-$(cd .. && pwd)/shared/datasets}"
ruff check src tests bench
pytest -q "$@"
