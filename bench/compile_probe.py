"""Does ``train.compile`` pay back its compile time within a run? A short probe.

Trains a spec twice on a subset of Fashion-MNIST for a few epochs, eager and with
``train.compile: true``, and compares the seconds of the first epoch (which includes compiling)
and of the later ones. The break-even is the compile overhead divided by the time saved per
full 48,000-image epoch.

    python bench/compile_probe.py [--spec accurate] [--images 2560] [--epochs 3] [--write]

``--write`` records the result in bench/RESULTS.md (do it on a quiet machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import archtune as at
from archtune.data import load_data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="accurate")
    ap.add_argument("--images", type=int, default=2560)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    sets = [f"train.epochs={args.epochs}", f"data.train_subset={args.images}",
            "data.dev_fraction=0.02", "train.ema=0"]
    splits = load_data(at.load_spec(args.spec, sets).data).splits
    load = os.getloadavg()
    seconds = {}
    for compiled in (False, True):
        spec = at.load_spec(args.spec, [*sets, f"train.compile={str(compiled).lower()}"])
        run = at.train(spec, splits=splits, run_dir=f"runs/compile-probe/{compiled}-{time.time():.0f}",
                       progress=False)
        seconds[compiled] = [h["seconds"] for h in run.history]
    n = len(splits.train.y)
    eager, comp = (statistics.mean(seconds[c][1:]) for c in (False, True))
    overhead = seconds[True][0] - seconds[False][0]
    saved_per_epoch = (eager - comp) * 48_000 / n
    verdict = (f"pays back after {overhead / saved_per_epoch:.1f} full epochs"
               if saved_per_epoch > 0 else "never pays back (no faster per epoch)")
    body = (f"Spec `{args.spec}`, {n:,} training images, {args.epochs} epochs each way; load average "
            f"before (1, 5, 15 min): {', '.join(f'{v:.1f}' for v in load)}.\n\n"
            "| | epoch 1 (s) | later epochs, mean (s) |\n| --- | --- | --- |\n"
            f"| eager | {seconds[False][0]:.1f} | {eager:.2f} |\n"
            f"| train.compile | {seconds[True][0]:.1f} | {comp:.2f} |\n\n"
            f"Compile overhead {overhead:.0f} s; saves {saved_per_epoch:.1f} s per 48,000-image "
            f"epoch: {verdict}.")
    print(body)
    if args.write:
        from _results import write_section  # noqa: I001  (bench-local helper)

        write_section("torch.compile: compile time against time saved", body,
                      f"python bench/compile_probe.py --spec {args.spec} --images {args.images} "
                      f"--epochs {args.epochs} --write")


if __name__ == "__main__":
    main()
