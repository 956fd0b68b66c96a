"""How well does `archtune train --minutes` keep its budget? Predicted against actual wall time.

    python bench/time_budget.py                        # default 3 min, accurate 6 min, on Fashion-MNIST
    python bench/time_budget.py --runs default:3 accurate:6 cnn-large:2
    python bench/time_budget.py --data digits --runs default:1 default:1 accurate:1
        # sub-second epochs: scikit-learn's digits (as bench/new_data.py builds them)
    python bench/time_budget.py --quick                # default for 0.5 min on 3,000 images; writes nothing

Each run is `archtune train RECIPE --minutes M` in a fresh process, timed from outside (Python's
start-up included). The table compares the wall time the command took with the budget and with
the run's own first plan (metrics.json `time_budget`), the epochs it re-planned to from its own
epochs, and the epochs' measured seconds with the predicted seconds per epoch. Run it on a quiet
machine: the timing and the epochs share the cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import ARCHTUNE, use_shared_data, write_section  # noqa: I001  (bench-local helper)


def run_one(recipe: str, minutes: float, run: Path, extra: list[str]) -> dict:
    started = time.monotonic()
    subprocess.run([*ARCHTUNE, "train", recipe, "--minutes", f"{minutes:g}", "--run-dir", str(run),
                    *extra], check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    metrics = json.loads((run / "metrics.json").read_text())
    env = json.loads((run / "env.json").read_text())
    import csv

    seconds = [float(r["seconds"]) for r in csv.DictReader((run / "history.csv").open())]
    plan = metrics["time_budget"]
    steady = sorted(seconds[1:] or seconds)[len(seconds[1:] or seconds) // 2]
    return {"recipe": recipe, "minutes": minutes, "wall_s": wall, "plan": plan,
            "epoch_median_s": steady, "precision": env.get("precision"),
            "dev": (metrics.get("dev") or {}).get("accuracy")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", nargs="+", default=["default:3", "accurate:6"],
                    help="RECIPE:MINUTES, each trained once on Fashion-MNIST")
    ap.add_argument("--data", choices=["fashion-mnist", "digits"], default="fashion-mnist",
                    help="digits: 1,198 training images, epochs well under a second")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    extra: list[str] = []
    if args.quick:
        args.runs, extra = ["default:0.5"], ["--train-subset", "3000"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="archtune-budget-") as tmp:
        if args.data == "digits":
            from new_data import build  # noqa: PLC0415  (bench-local: the same digits as there)

            extra += ["--data", str(build("digits", Path(tmp)))]
        for i, item in enumerate(args.runs):
            recipe, _, minutes = item.partition(":")
            r = run_one(recipe, float(minutes), Path(tmp) / f"{i}-{recipe}", extra)
            rows.append(r)
            print(json.dumps(r), flush=True)
    what = ("scikit-learn's digits (1,198 training images, as bench/new_data.py builds them)"
            if args.data == "digits" else "Fashion-MNIST (48,000 training images)")
    from archtune.training.budget import REPLAN_AT

    shares = ", ".join(f"{a:.0%}" for a in REPLAN_AT)
    lines = [f"Each row: `archtune train RECIPE --minutes M` on {what}, timed from outside the "
             "process (Python's and torch's start-up included) and inside it (metrics.json "
             "`time_budget.wall_s`: from the start of `train()`, what the budget counts). "
             "Planned: the run's own first plan (metrics.json `time_budget`), made from timed "
             "steps before training; re-planned: the epochs it counted anew from its own epochs "
             f"(`replans`: at {shares} of the training time).\n",
             "| recipe | budget | wall: command / in process | predicted (first plan) | "
             "epochs planned -> re-planned (spec's) | seconds an epoch: planned / measured "
             "median | precision | dev accuracy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        p = r["plan"]
        replans = " -> ".join(str(x["epochs"]) for x in p.get("replans", []))
        lines.append(f"| {r['recipe']} | {r['minutes'] * 60:.0f} s | {r['wall_s']:.0f} s "
                     f"({r['wall_s'] / (r['minutes'] * 60):.0%}) / {p['wall_s']:.0f} s "
                     f"({p['wall_s'] / (r['minutes'] * 60):.0%}) | {p['predicted_s']:.0f} s | "
                     f"{p['epochs']}{' -> ' + replans if replans else ''} ({p['spec_epochs']}) | "
                     f"{p['epoch_s']:.3g} / {r['epoch_median_s']:.3g} | {r['precision']} | "
                     + (f"{r['dev']:.2%}" if r["dev"] is not None else "-") + " |")
    body = "\n".join(lines)
    print(body)
    if not args.quick:
        title = "Training to a time budget: predicted against actual"
        write_section(title + (" (digits)" if args.data == "digits" else ""), body,
                      "python bench/time_budget.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    use_shared_data()
    main()
