"""The reference architectures of MISSION.md, trained with their built-in recipes, then tested.

Each built-in spec (mlp-small/medium/large, cnn-small/medium/large, cnn-classic, default) is
trained exactly as `archtune train NAME` would (its own train section: e.g. SGD+Nesterov 0.01
with early stopping for the reference CNNs), then evaluated once on the test split as
`archtune evaluate RUN --split test` would. Runs in parallel processes (``--jobs``) on a GPU.

    python bench/reference_models.py [--jobs 8] [--only cnn-small ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

NAMES = ["mlp-small", "mlp-medium", "mlp-large", "cnn-small", "cnn-medium", "cnn-large", "cnn-classic",
         "default"]


def run_one(name: str) -> dict:
    import archtune as at

    t0 = time.perf_counter()
    run = at.train(name, run_dir=f"runs/reference/{name}-{time.time():.0f}", progress=False)
    seconds = time.perf_counter() - t0
    test = at.evaluate(run, "test")
    return {"name": name, "params": run.metrics["params"], "epochs": run.metrics["epochs_run"],
            "best_epoch": run.metrics["best_epoch"], "dev": run.metrics["best"]["dev_accuracy"],
            "test": test["accuracy"], "seconds": seconds, "device": run.env["device"],
            "verdict": test["capacity"]["verdict"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return

    def launch(name: str) -> dict:
        r = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True,
                           env=os.environ.copy())
        if r.returncode:
            raise SystemExit(f"{name} failed:\n{r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(launch, args.only or NAMES))
    rows = [f"| {r['name']} | {r['params']:,} | {r['epochs']} (best {r['best_epoch']}) | "
            f"{r['dev'] * 100:.2f}% | {r['test'] * 100:.2f}% | {r['verdict']} | {r['seconds']:.0f} s |"
            for r in results]
    print("\n".join(rows))
    from _results import write_section

    body = ("Built-in recipes as shipped (`archtune train NAME`, then `archtune evaluate RUN --split test`); "
            f"device {results[0]['device']}; {args.jobs} runs at a time, so seconds are not isolated timings.\n\n"
            "| spec | params | epochs | best dev | test | capacity verdict | seconds |\n"
            "| --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows))
    write_section("Reference architectures, built-in recipes", body,
                  f"python bench/reference_models.py --jobs {args.jobs}")


if __name__ == "__main__":
    main()
