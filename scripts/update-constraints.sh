#!/usr/bin/env bash
# Rewrite constraints.txt from the current .venv: the versions the test suite passed with. Run it
# on purpose (after upgrading something and running bash scripts/test.sh), then commit the file;
# scripts/setup.sh and CI install exactly these versions, and rebuild a .venv made from another
# constraints.txt. torch is pinned in scripts/setup.sh (its build depends on the machine).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
{
  echo "# The tested versions of what archtune[dev] installs (torch: pinned in scripts/setup.sh)."
  echo "# Used by scripts/setup.sh and CI (pip install -c constraints.txt). Do not edit by hand:"
  echo "# bash scripts/update-constraints.sh rewrites it from a .venv whose tests pass."
  python -m pip freeze --all --exclude-editable |
    grep -v -i -E '^(torch|archtune|setuptools|wheel)([=@ ]|$)' | grep -v ' @ ' | LC_ALL=C sort -f
} > constraints.txt.new
mv constraints.txt.new constraints.txt
echo "constraints.txt: $(grep -vc '^#' constraints.txt) pinned versions"
