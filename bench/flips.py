"""Flips on a data set where mirroring changes the class: `hflip: auto` against flips forced on.

The data set is scikit-learn's handwritten digits (1,797 images of 8x8 pixels, upscaled to
28x28 and written as an .npz file by this script), or MNIST with ``--data mnist``. The
`default` recipe (``hflip: auto``, ``tta: auto``: both off for a data set not known to be
mirror-symmetric) is trained against the same recipe with flips and flip TTA forced on, for
each seed; dev accuracy (with each run's TTA) is compared, then test is read once per run.

    python bench/flips.py [--seeds 0 1 2] [--data mnist --subset 10000] [--smoke]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import archtune as at

ARMS = {"auto (off here)": [], "flips + flip TTA forced on": ["train.augment.hflip=true", "train.tta=true"]}


def digits_npz(folder: Path) -> Path:
    """scikit-learn's digits as 28x28 uint8 images, stratified 75/25 into train and test."""
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    big = np.stack([np.asarray(Image.fromarray((img * 255 / 16).astype(np.uint8)).resize(
        (28, 28), Image.BILINEAR)) for img in d.images])
    xt, xs, yt, ys = train_test_split(big, d.target, test_size=0.25, stratify=d.target, random_state=0)
    path = folder / "digits.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--data", default="digits", help="digits (built here) or a data set name/path")
    ap.add_argument("--subset", type=int, help="train on this many images (e.g. for MNIST)")
    ap.add_argument("--smoke", action="store_true", help="1 seed, 2 epochs; writes nothing")
    args = ap.parse_args()
    seeds = args.seeds[:1] if args.smoke else args.seeds
    with tempfile.TemporaryDirectory() as tmp:
        data = str(digits_npz(Path(tmp))) if args.data == "digits" else args.data
        base = [f"data.dataset={data}"] + ([f"data.train_subset={args.subset}"] if args.subset else [])
        base += ["train.epochs=2"] if args.smoke else []
        rows, test = [], {}
        for arm, sets in ARMS.items():
            devs, seconds = [], []
            for seed in seeds:
                spec = at.load_spec("default", [*base, *sets, f"train.seed={seed}"])
                t0 = time.perf_counter()
                run = at.train(spec, run_dir=f"{tmp}/{len(rows)}-{seed}", progress=False)
                seconds.append(time.perf_counter() - t0)
                devs.append(at.evaluate(run, "dev")["accuracy"])
                test.setdefault(arm, []).append(run)
                flips = (run.spec.train.augment.hflip, run.spec.train.tta)
            rows.append(f"| {arm} | {flips[0]} / {flips[1]} | {', '.join(f'{d * 100:.2f}' for d in devs)} | "
                        f"{statistics.mean(devs) * 100:.2f}% | {statistics.mean(seconds):.0f} s |")
        tests = {arm: statistics.mean(at.evaluate(r, "test")["accuracy"] for r in runs)
                 for arm, runs in test.items()}  # read once, after the dev comparison
    body = (f"Data: {args.data}{f' ({args.subset:,} training images)' if args.subset else ''}; the "
            f"`default` recipe, {len(seeds)} seed(s).\n\n| arm | hflip / tta as trained | dev % per "
            f"seed | dev mean | seconds per run |\n| --- | --- | --- | --- | --- |\n" + "\n".join(rows)
            + "\n\nTest (read once per run, after the dev comparison): "
            + "; ".join(f"{arm}: {acc * 100:.2f}%" for arm, acc in tests.items()) + ".")
    print(body)
    if not args.smoke:
        from _results import write_section  # noqa: I001  (bench-local helper)

        write_section(f"Flips on a data set that is not mirror-symmetric ({args.data})", body,
                      "python bench/flips.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
