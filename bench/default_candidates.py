"""How the `default` recipe was chosen: candidate architectures/recipes, test accuracy per epoch.

Each candidate is the built-in `default` spec with overrides (or another layer stack); each is
trained with ``archtune.train`` on the standard 48,000/12,000 split, and the test split is
evaluated after every epoch *for this comparison only* (with and without flip TTA). On a GPU
the candidates run as parallel processes; on a CPU, one after another (slow: hours).

    python bench/default_candidates.py [--jobs 12] [--only D8 D24 ...]
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

import archtune as at


def _conv(f: int) -> dict:
    return {"Conv2D": {"filters": f, "kernel_size": 3, "padding": "same", "use_bias": False,
                       "kernel_initializer": "he_normal"}}


def _stack(c1: int, c2: int, units: int, drop: float) -> list:
    bn, relu = {"BatchNormalization": {"momentum": 0.9}}, {"Activation": "relu"}
    return [_conv(c1), {"MaxPooling2D": 2}, bn, relu, _conv(c2), {"MaxPooling2D": 2}, bn, relu,
            "Flatten", {"Dropout": drop},
            {"Dense": {"units": units, "use_bias": False, "kernel_initializer": "he_normal"}},
            bn, relu, {"Dropout": drop}, {"Dense": {"units": 10, "activation": "softmax"}}]


# name -> (layers or None for default's, overrides)
CANDIDATES: dict[str, tuple[list | None, list[str]]] = {
    "D8": (None, []),  # the default
    "D8-seed1": (None, ["train.seed=1"]),
    "D8-seed2": (None, ["train.seed=2"]),
    "D24": (None, ["train.epochs=24"]),
    "D8-translate2": (None, ["train.augment.translate=2"]),
    "D8-erase": (None, ["train.augment.erase=0.5"]),
    "D8-noflip": (None, ["train.augment.hflip=false"]),
    "D8-lr0.003": (None, ["train.lr=0.003"]),
    "dense256-drop0.3": (_stack(32, 64, 256, 0.3), []),
    "wide48-96": (_stack(48, 96, 256, 0.3), []),
    "D8-sgd": (None, ["train.optimizer=sgd", "train.lr=0.1", "train.nesterov=true",
                      "train.weight_decay=0.0005"]),
    "cnn-classic": (None, []),
}


def spec_for(name: str) -> at.Spec:
    layers, sets = CANDIDATES[name]
    raw = at.specs.raw_spec("cnn-classic" if name == "cnn-classic" else "default")
    raw = copy.deepcopy(raw)
    if layers is not None:
        raw["layers"] = layers
    raw["name"] = name
    return at.specs.spec_from_dict(at.specs.apply_overrides(raw, sets))


def run_one(name: str) -> dict:
    import torch

    from archtune.data import load_dataset, split_dataset, test_split
    from archtune.data.split import channel_stats
    from archtune.training.loop import predict_log_probs

    spec = spec_for(name)
    ds = load_dataset("fashion-mnist")
    test = test_split(ds)
    splits = split_dataset(ds, dev_fraction=spec.data.dev_fraction, seed=spec.data.split_seed)
    torch.manual_seed(spec.train.seed)
    mean, std = channel_stats(splits.train.x) if spec.data.standardize else (None, None)
    model = at.build_model(spec, mean, std)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    xt, yt = test.x.to(dev), test.y.to(dev)
    curve = []

    def on_epoch(epoch: int, row: dict) -> None:
        accs = [(predict_log_probs(model, xt, tta=t, channels_last=True).argmax(1) == yt).float().mean().item()
                for t in (False, True)]
        curve.append({"epoch": epoch, "dev": row["dev_accuracy"], "test": accs[0], "test_tta": accs[1],
                      "seconds": row["seconds"]})

    at.train(spec, splits=splits, run_dir=f"runs/candidates/{name}-{time.time():.0f}", progress=False,
             epoch_callback=on_epoch, model=model)
    return {"name": name, "curve": curve}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--only", nargs="*")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    names = args.only or list(CANDIDATES)

    def launch(name: str) -> dict:
        r = subprocess.run([sys.executable, __file__, "--one", name], capture_output=True, text=True,
                           env=os.environ.copy())
        if r.returncode:
            raise SystemExit(f"{name} failed:\n{r.stderr[-2000:]}")
        return json.loads(r.stdout.strip().splitlines()[-1])

    with ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(launch, names))
    rows = []
    for r in results:
        last = r["curve"][-1]
        spec = spec_for(r["name"])
        rows.append(f"| {r['name']} | {at.specs.totals(at.infer_shapes(spec)).flops / 1e6:.1f}M | "
                    f"{len(r['curve'])} | {last['dev'] * 100:.2f}% | {last['test'] * 100:.2f}% | "
                    f"{last['test_tta'] * 100:.2f}% |")
        print(rows[-1], flush=True)
    from _results import write_section

    body = ("Final-epoch accuracies (test evaluated for this comparison only; TTA = average with the "
            "mirror image). Seconds per epoch on this device are not CPU timings.\n\n"
            "| candidate | FLOPs/image | epochs | dev | test | test, flip TTA |\n| --- | --- | --- | --- | --- | --- |\n"
            + "\n".join(rows))
    write_section("Default recipe: candidates compared", body,
                  "python bench/default_candidates.py --jobs 12")


if __name__ == "__main__":
    main()
