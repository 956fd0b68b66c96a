"""The default search end to end, and its strategy against plain random search, same budget.

1. ``archtune search default-space`` with the space's default budget (TPE + Hyperband on a
   coarse pass), then ``archtune retrain`` of the best trial and ``archtune evaluate --split
   test``: the wall time of the three commands in total and the test accuracy (the target is
   >= 94.0% within 25 minutes on a 2-core CPU).
2. The same space and budget (trials, time limit, train subset, epochs per trial) searched by
   plain random search (random sampler, no pruning), in the same run, for comparison.

    python bench/search_bench.py                       # the full benchmark (about 30 minutes)
    python bench/search_bench.py --retrain-random      # also retrain and test random's best (+20 min)
    python bench/search_bench.py --quick --data tests.npz --results /tmp/r.md   # a smoke test

Each command runs as a fresh process, as a user would run it; studies go to --studies-dir
(replaced on every run).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import _results  # noqa: I001  (bench-local helper)

from archtune.search import best_trial, counts, open_study

ARCHTUNE = [sys.executable, "-c", "from archtune.cli import main; main()"]
TARGET_ACC, TARGET_S = 0.94, 25 * 60
QUICK = ["--trials", "2", "--train-subset", "500", "--epochs", "1", "--timeout", "120"]


def timed(args: list[str]) -> tuple[float, str]:
    """Run one archtune command; return (wall seconds, stdout). Its log goes to our stderr."""
    print("$ archtune " + " ".join(args), file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    done = subprocess.run([*ARCHTUNE, *args], stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"archtune {' '.join(args)} failed with exit code {done.returncode}")
    return seconds, done.stdout


def arm(name: str, args: argparse.Namespace, strategy: list[str], retrain: bool) -> dict:
    """Search (and optionally retrain + test) one arm; returns its figures."""
    common = ["--studies-dir", args.studies_dir] + (["--data-dir", args.data_dir] if args.data_dir else [])
    search = ["-q", "search", args.space, "--study", name, "--new", *common, *strategy]
    search += (["--data", args.data] if args.data else []) + (QUICK if args.quick else [])
    out = {"study": name, "search_s": timed(search)[0]}
    study, info = open_study(name, args.studies_dir)
    best = best_trial(study)
    out.update(counts(study), best_dev=best.value, best_trial=best.number, params=best.params,
               budget=f"{info['trials']} trials", fidelity=(info["train_subset"], info["epochs"]))
    if not retrain:
        return out
    run_dir = Path(args.studies_dir) / f"{name}-retrained"
    shutil.rmtree(run_dir, ignore_errors=True)  # from an earlier run of this benchmark
    retrain_args = ["-q", "retrain", name, "--run-dir", str(run_dir), "--finalists",
                    str(args.finalists), "--seeds", str(args.seeds), *common]
    out["retrain_s"] = timed(retrain_args + (["--epochs", "1"] if args.quick else []))[0]
    eval_s, text = timed(["evaluate", str(run_dir), "--split", "test", "--json", *(
        ["--data-dir", args.data_dir] if args.data_dir else [])])
    out.update(eval_s=eval_s, test_acc=json.loads(text)["accuracy"])
    out["total_s"] = out["search_s"] + out["retrain_s"] + eval_s
    return out


def row(label: str, r: dict) -> str:
    test = f"{r['test_acc'] * 100:.2f}%" if "test_acc" in r else "-"
    total = f"{r['total_s'] / 60:.1f} min" if "total_s" in r else "-"
    retrain = f"{r['retrain_s'] / 60:.1f} min" if "retrain_s" in r else "-"
    return (f"| {label} | {r['done']} ({r['complete']} complete, {r['pruned']} pruned) | "
            f"{r['search_s'] / 60:.1f} min | {r['best_dev'] * 100:.2f}% (trial {r['best_trial']}) | "
            f"{retrain} | {test} | {total} |")


def report(default: dict, random: dict, args: argparse.Namespace) -> str:
    subset, epochs = default["fidelity"]
    lines = [
        f"Space `{args.space}`; budget {default['budget']}, its time limit, each trial on "
        f"{subset or 'all'} training images for at most {epochs or 'all'} epochs; both "
        f"strategies start from the space's start points (the `default` recipe)"
        + (" (quick smoke run: tiny budget, not the benchmark)" if args.quick else "") + ".",
        "",
        "| strategy | trials done | search | best dev (coarse) | retrain | test acc | total |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        row("TPE + Hyperband (default)", default),
        row("plain random, no pruning", random),
        "",
        "Target, search + retrain + evaluate: " + (_results.verdict(
            [default["test_acc"]], TARGET_ACC, [default["total_s"]], TARGET_S)
            if "test_acc" in default else "not measured (no retrain)") + ".",
        f"Best trial of the default search: `{json.dumps(default['params'])}`.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--space", default="default-space")
    ap.add_argument("--studies-dir", default="bench-studies")
    ap.add_argument("--data", help="Data set instead of the space's (e.g. a small .npz to test).")
    ap.add_argument("--data-dir", help="Folder holding the data set's files.")
    ap.add_argument("--retrain-random", action="store_true", help="Also retrain random's best.")
    ap.add_argument("--quick", action="store_true", help="A tiny budget, to test this script.")
    ap.add_argument("--finalists", type=int, default=1,
                    help="retrain --finalists (1: the best trial, as the RESULTS.md figures were made)")
    ap.add_argument("--seeds", type=int, default=1, help="retrain --seeds")
    ap.add_argument("--results", help="Write the section here instead of bench/RESULTS.md.")
    args = ap.parse_args()
    if args.results:
        _results.RESULTS = Path(args.results)
    default = arm("bench-default", args, [], retrain=True)
    random = arm("bench-random", args, ["--sampler", "random", "--pruner", "none"],
                 retrain=args.retrain_random)
    body = report(default, random, args)
    title = "Search: default-space, then retrain" + (" (quick smoke run)" if args.quick else "")
    _results.write_section(title, body, "python bench/search_bench.py " + " ".join(sys.argv[1:]))
    print(body)


if __name__ == "__main__":
    main()
