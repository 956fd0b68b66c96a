"""How the `default` recipe is chosen: candidate recipes compared on the dev split alone.

Each candidate is the built-in `default` spec with overrides (or another layer stack), trained
with ``archtune.train`` on the standard 48,000/12,000 split for each seed; its score is the
run's dev accuracy as ``evaluate`` computes it (the recipe's TTA). The rule: `default` stays
unless a candidate's mean dev accuracy beats it by more than the larger seed spread (half the
min-max range of either). Only then is the test split read, once, for the chosen recipe's runs;
no candidate's test accuracy is computed. On a GPU the runs go as parallel processes; on a CPU,
one after another (slow: hours).

    python bench/default_candidates.py [--jobs 12] [--seeds 0 1] [--only D8 D8-erase ...]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import archtune as at

BASELINE = "D8"
RUNS = Path("runs/candidates")


def _conv(f: int) -> dict:
    return {"Conv2D": {"filters": f, "kernel_size": 3, "padding": "same", "use_bias": False,
                       "kernel_initializer": "he_normal"}}


def _stack(c1: int, c2: int, units: int, drop: float) -> list:
    bn, relu = {"BatchNormalization": {"momentum": 0.9}}, {"Activation": "relu"}
    return [_conv(c1), {"MaxPooling2D": 2}, bn, relu, _conv(c2), {"MaxPooling2D": 2}, bn, relu,
            "Flatten", {"Dropout": drop},
            {"Dense": {"units": units, "use_bias": False, "kernel_initializer": "he_normal"}},
            bn, relu, {"Dropout": drop}, {"Dense": {"units": "classes", "activation": "softmax"}}]


# name -> (layers or None for default's, overrides); every candidate trains 8 epochs, as default
CANDIDATES: dict[str, tuple[list | None, list[str]]] = {
    "D8": (None, []),  # the default
    "D8-translate2": (None, ["train.augment.translate=2"]),
    "D8-erase": (None, ["train.augment.erase=0.5"]),
    "D8-noflip": (None, ["train.augment.hflip=false", "train.tta=false"]),
    "D8-lr0.003": (None, ["train.lr=0.003"]),
    "dense256-drop0.3": (_stack(32, 64, 256, 0.3), []),
    "wide48-96": (_stack(48, 96, 256, 0.3), []),
    "D8-sgd": (None, ["train.optimizer=sgd", "train.lr=0.1", "train.nesterov=true",
                      "train.weight_decay=0.0005"]),
}


def spec_for(name: str, seed: int) -> at.Spec:
    layers, sets = CANDIDATES[name]
    raw = copy.deepcopy(at.specs.raw_spec("default"))
    if layers is not None:
        raw["layers"] = layers
    raw["name"] = name
    return at.specs.spec_from_dict(at.specs.apply_overrides(raw, [*sets, f"train.seed={seed}"]))


def run_one(name: str, seed: int) -> dict:
    run_dir = RUNS / f"{name}-s{seed}-{time.time():.0f}"
    run = at.train(spec_for(name, seed), run_dir=run_dir, progress=False)
    return {"name": name, "seed": seed, "run": str(run.path), "dev": run.metrics["dev"]["accuracy"],
            "epochs": run.metrics["epochs_run"], "seconds": run.metrics["train_seconds"]}


def spread(values: list[float]) -> float:
    return (max(values) - min(values)) / 2


def choose(dev: dict[str, list[float]]) -> tuple[str, str]:
    """The recipe to keep and why, from dev accuracies per candidate (the rule above)."""
    base = dev[BASELINE]
    best = max(dev, key=lambda n: sum(dev[n]) / len(dev[n]))
    mean = {n: sum(v) / len(v) for n, v in dev.items()}
    noise = max(spread(base), spread(dev[best]))
    if best != BASELINE and mean[best] - mean[BASELINE] > noise:
        return best, (f"{best} beats {BASELINE} on dev by {100 * (mean[best] - mean[BASELINE]):.2f} "
                      f"points, more than the seed spread ({100 * noise:.2f})")
    return BASELINE, (f"no candidate beats {BASELINE} on dev by more than the seed spread "
                      f"(best: {best}, {100 * (mean[best] - mean[BASELINE]):+.2f} points against "
                      f"{100 * noise:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]))))
        return
    names = args.only or list(CANDIDATES)
    if BASELINE not in names:
        names = [BASELINE, *names]

    def launch(job: tuple[str, int]) -> dict:
        r = subprocess.run([sys.executable, __file__, "--one", job[0], str(job[1])],
                           capture_output=True, text=True, env=os.environ.copy())
        if r.returncode:
            raise SystemExit(f"{job} failed:\n{r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(launch, [(n, s) for n in names for s in args.seeds]))
    dev = {n: [r["dev"] for r in results if r["name"] == n] for n in names}
    chosen, why = choose(dev)
    print(why, flush=True)
    from _results import evaluate_test  # the test split, read once: the chosen recipe's runs

    test = [evaluate_test(Path(r["run"])) for r in results if r["name"] == chosen]
    rows = []
    for n in names:
        mine = [r for r in results if r["name"] == n]
        flops = at.specs.totals(at.infer_shapes(spec_for(n, 0).for_classes(10))).flops
        rows.append(f"| {n} | {flops / 1e6:.1f}M | {100 * sum(dev[n]) / len(dev[n]):.2f}% ± "
                    f"{100 * spread(dev[n]):.2f} | {sum(r['seconds'] for r in mine) / len(mine):.0f} s |")
    body = (f"Seeds {args.seeds}; dev accuracy as `evaluate` computes it (mean ± half the range). "
            f"Choice: **{chosen}**: {why}. Test accuracy of the chosen recipe's runs (read once, "
            f"after the choice): {', '.join(f'{100 * t:.2f}%' for t in test)}.\n\n"
            "| candidate | FLOPs/image | dev | train time per run |\n| --- | --- | --- | --- |\n"
            + "\n".join(rows))
    from _results import write_section

    write_section("Default recipe: candidates compared on dev", body,
                  f"python bench/default_candidates.py --jobs {args.jobs} --seeds "
                  + " ".join(map(str, args.seeds)))


if __name__ == "__main__":
    main()
