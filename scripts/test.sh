#!/usr/bin/env bash
# The test suite: ruff, then pytest (slow real-data, browser and PostgreSQL tests included).
# Needs scripts/setup.sh first. When ARCHTUNE_TEST_PG_URL or ARCHTUNE_CHROMIUM is unset it runs
# scripts/services.sh to install/start them; the real data come from $ARCHTUNE_DATA, else
# ../shared/datasets, else the download cache (under CI they are downloaded when missing).
# Under CI=true anything missing fails the run; elsewhere the tests that need it are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
ci=false; case "${CI:-}" in 1|true|TRUE|True|yes) ci=true ;; esac
missing() {  # one line; fatal under CI
  if $ci; then echo "scripts/test.sh: $* (CI=true: failing)" >&2; exit 1; fi
  echo "scripts/test.sh: $*; the tests that need it will be skipped" >&2
}
if [ -z "${ARCHTUNE_TEST_PG_URL:-}" ] || [ -z "${ARCHTUNE_CHROMIUM:-}" ]; then
  if services_env=$(bash scripts/services.sh); then
    eval "$services_env"
  else
    missing "PostgreSQL/Chromium could not be set up (scripts/services.sh failed)"
  fi
fi
if [ -z "${ARCHTUNE_DATA:-}" ] && [ -d ../shared/datasets/fashion-mnist ]; then
  export ARCHTUNE_DATA="$(cd .. && pwd)/shared/datasets"
fi
if [ -z "${ARCHTUNE_DATA:-}" ] && $ci; then  # a fresh CI machine: download into the cache
  archtune data fashion-mnist >/dev/null || missing "Fashion-MNIST could not be downloaded"
fi
ruff check src tests bench
mkdocs build --strict --quiet --site-dir "$(mktemp -d)"
pytest -q --durations=15 "$@"  # the 15 slowest tests, to keep the suite under 10 minutes
