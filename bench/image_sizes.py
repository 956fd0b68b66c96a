"""What the built-in recipes cost per epoch on RGB images of 32, 64 and 128 pixels.

Each recipe trains on 2,000 random RGB images of each size (10 classes; only time is measured)
for 2 epochs at each precision; the figure is the second epoch's training seconds per 1,000
training images (the first warms up). bf16 only where the CPU has native bf16.

    python bench/image_sizes.py [--specs default accurate] [--sizes 32 64 128] [--n 2000]
"""

from __future__ import annotations

import argparse
import sys

import torch

import archtune as at
from archtune.data import Dataset, split_dataset
from archtune.training.device import cpu_has_bf16


def synthetic(size: int, n: int) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    y = torch.arange(n) % 10
    return Dataset(f"random-{size}", [f"c{i}" for i in range(10)], x, y, x[:10], y[:10], "bench")


def seconds_per_1000(spec_name: str, size: int, precision: str, n: int) -> tuple[float, float]:
    """(second epoch's training seconds per 1,000 images, FLOPs per image)."""
    splits = split_dataset(synthetic(size, n), dev_fraction=0.2, seed=0)
    spec = at.load_spec(spec_name, ["train.epochs=2", f"train.precision={precision}",
                                     "train.tta=false", "train.augment.hflip=false"])
    run = at.train(spec, splits=splits, run_dir=None, runs_root="runs/image-sizes", progress=False,
                   final_dev=False)
    rows = run.history_rows
    train_s = float(rows[-1]["seconds"])
    flops = at.specs.totals(at.infer_shapes(run.spec)).flops
    return train_s / (len(splits.train.y) / 1000), flops


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--specs", nargs="+", default=["default", "accurate"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[32, 64, 128])
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args()
    precisions = ["fp32", "bf16"] if cpu_has_bf16() else ["fp32"]
    rows = []
    for name in args.specs:
        for size in args.sizes:
            cells = []
            for p in precisions:
                s, flops = seconds_per_1000(name, size, p, args.n)
                cells.append(f"{s:.2f} s")
                print(name, size, p, f"{s:.2f} s per 1,000 images", flush=True)
            rows.append(f"| {name} | {size} x {size} x 3 | {flops / 1e6:.1f}M | " + " | ".join(cells) + " |")
    head = "| recipe | input | FLOPs/image | " + " | ".join(f"{p} s / epoch / 1,000 images"
                                                          for p in precisions) + " |"
    body = (f"Training seconds of one epoch per 1,000 training images (the second of 2 epochs, "
            f"{args.n} random images, dev pass excluded); `Downscale2D: 64` pools 128-pixel "
            "images to 64 before the first convolution.\n\n" + head + "\n|"
            + " --- |" * (3 + len(precisions)) + "\n" + "\n".join(rows))
    sys.path.insert(0, "bench")
    from _results import write_section

    write_section("Recipes on larger RGB images: seconds per epoch", body,
                  " ".join(["python bench/image_sizes.py", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
