"""Run a bench script's single-run mode in fresh processes, ``jobs`` at a time (GPU), and read
back the JSON line each prints last."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor


def run_jobs(script: str, argv_list: Sequence[Sequence[str]], jobs: int = 1) -> list[dict]:
    """``python script *argv`` for each argv, results in order; stops at the first failure."""
    def launch(argv: Sequence[str]) -> dict:
        print(f"$ python {os.path.basename(script)} {' '.join(argv)}", file=sys.stderr, flush=True)
        r = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True,
                           env=os.environ.copy())
        if r.returncode:
            raise SystemExit(f"{' '.join(argv)} failed:\n{r.stderr[-3000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(jobs) as ex:
        return list(ex.map(launch, argv_list))
