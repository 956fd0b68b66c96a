"""Training speed and time-to-accuracy: archtune against a plain PyTorch loop, same run.

For each recipe (cnn-classic: Adam, batch 32; default: the built-in default recipe) this trains
with ``archtune.train`` and with a plain loop written the obvious way (DataLoader over a
TensorDataset, per-sample augmentation in the Dataset, NCHW, default threads), same model,
optimiser, schedule, epochs and seed. After every epoch it evaluates the *test* split, outside
the timed training, to report the time needed to reach 90.7% and 93% test accuracy. (This is a
measurement only; training decisions never see the test split.)

    python bench/train_bench.py [--recipes cnn-classic default default@24] [--skip-plain default@24]
                                [--precision fp32 bf16]

Both loops run in the same precision (each ``--precision`` value is a row pair): fp32, or bf16
(archtune's guarded bf16 autocast; the plain loop wraps its forward pass in
``torch.autocast("cpu", torch.bfloat16)``, the obvious way).

A recipe ``name@N`` is the built-in spec trained for N epochs (the "longer schedule").
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from _results import write_section  # noqa: I001  (bench-local helper)
from torch.utils.data import DataLoader, Dataset, TensorDataset

import archtune as at
from archtune.data import load_dataset, split_dataset, test_split
from archtune.training.loop import predict_log_probs
from archtune.training.optim import make_optimizer, make_scheduler
from archtune.training.techniques import resolve_flips

TARGETS = (0.907, 0.93)


def test_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, tta: bool) -> float:
    log_probs = predict_log_probs(model, x, batch_size=1000, tta=tta)
    return (log_probs.argmax(1) == y).float().mean().item()


class FlipDataset(Dataset):
    """The obvious way to augment: a per-sample random flip in __getitem__."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, flip: bool):
        self.x, self.y, self.flip = x, y, flip

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.x[i]
        if self.flip and torch.rand(()) < 0.5:
            img = img.flip(-1)
        return img, self.y[i]


def plain_loop(spec: at.Spec, splits, x_test, y_test) -> tuple[list[tuple[float, float]], float]:
    """Returns ((cumulative training seconds, test accuracy) per epoch, wall seconds)."""
    cfg = spec.train
    bf16 = cfg.precision == "bf16"
    torch.manual_seed(cfg.seed)
    mean, std = at.data.channel_stats(splits.train.x) if spec.data.standardize else (None, None)
    model = at.build_model(spec, mean, std)
    opt = make_optimizer(model, cfg)
    ds = FlipDataset(splits.train.x, splits.train.y, cfg.augment.hflip) if cfg.augment.active \
        else TensorDataset(splits.train.x, splits.train.y)
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    dev_loader = DataLoader(TensorDataset(splits.dev.x, splits.dev.y), batch_size=cfg.batch_size)
    sched = make_scheduler(opt, cfg, len(loader))
    out, elapsed = [], 0.0
    for _ in range(cfg.epochs):
        t0 = time.perf_counter()
        model.train()
        for xb, yb in loader:
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb, label_smoothing=cfg.label_smoothing)
            loss.backward()
            opt.step()
            sched.step()
        model.eval()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            sum(F.cross_entropy(model(xb), yb, reduction="sum").item() for xb, yb in dev_loader)
        elapsed += time.perf_counter() - t0
        out.append((elapsed, test_accuracy(model, x_test, y_test, cfg.tta)))
    return out, elapsed


def archtune_loop(spec: at.Spec, splits, x_test, y_test,
                  run_root: Path = Path("runs")) -> tuple[list[tuple[float, float]], float]:
    """(curve, wall seconds of the whole train() call less the benchmark's own test evaluations);
    the run folder goes under ``run_root``."""
    torch.manual_seed(spec.train.seed)
    mean, std = at.data.channel_stats(splits.train.x) if spec.data.standardize else (None, None)
    model = at.build_model(spec, mean, std)
    out: list[tuple[float, float]] = []
    elapsed, measuring = [0.0], [0.0]

    def on_epoch(epoch: int, row: dict) -> None:
        t0 = time.perf_counter()
        elapsed[0] += row["seconds"]
        out.append((elapsed[0], test_accuracy(model, x_test, y_test, spec.train.tta)))
        measuring[0] += time.perf_counter() - t0

    t0 = time.perf_counter()
    at.train(spec, splits=splits, run_dir=run_root / f"bench-{spec.name}-{uuid.uuid4().hex[:8]}",
             progress=False, epoch_callback=on_epoch, model=model)
    return out, time.perf_counter() - t0 - measuring[0]


def time_to(curve: list[tuple[float, float]], target: float) -> tuple[float, int] | None:
    """(cumulative training seconds, epoch) at the first epoch whose test accuracy reaches
    ``target``; None when none does."""
    return next(((t, i + 1) for i, (t, acc) in enumerate(curve) if acc >= target), None)


def first_reaching(curve: list[tuple[float, float]], target: float) -> str:
    reached = time_to(curve, target)
    if reached:
        return f"{reached[0]:.0f} s (epoch {reached[1]})"
    return f"not reached (best {max(a for _, a in curve) * 100:.2f}%)"


def compare(name: str, precision: str, ds, x_test, y_test, sets: Sequence[str] = (),
            train_subset: int | None = None, plain: bool = True,
            run_root: Path = Path("runs")) -> tuple[at.Spec, list[dict]]:
    """Train recipe ``name`` (``NAME@EPOCHS``) at ``precision`` with archtune and, when ``plain``,
    the plain loop, on the same splits of ``ds`` (``sets``: more overrides). Returns the spec and,
    per loop, its label, curve (cumulative training seconds, test accuracy per epoch), wall
    seconds and seconds per epoch."""
    base, _, epochs = name.partition("@")
    overrides = ([f"train.epochs={epochs}"] if epochs else []) + [f"train.precision={precision}"]
    spec = resolve_flips(at.load_spec(base, [*overrides, *sets]))
    splits = split_dataset(ds, dev_fraction=spec.data.dev_fraction, seed=spec.data.split_seed,
                           train_subset=train_subset)
    loops = [("archtune", lambda: archtune_loop(spec, splits, x_test, y_test, run_root))]
    if plain:
        loops.append(("plain PyTorch", lambda: plain_loop(spec, splits, x_test, y_test)))
    out = []
    for label, fn in loops:
        curve, wall = fn()
        out.append({"loop": label, "curve": curve, "wall": wall,
                    "s_epoch": curve[-1][0] / len(curve)})
    return spec, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--recipes", nargs="+", default=["cnn-classic", "default", "default@24"])
    ap.add_argument("--skip-plain", nargs="*", default=["default@24"],
                    help="recipes to run without the plain-loop comparison")
    ap.add_argument("--smoke", action="store_true", help="1 epoch on 500 images; writes nothing")
    ap.add_argument("--precision", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"],
                    help="each runs both loops in that precision")
    args = ap.parse_args()
    t0 = time.perf_counter()
    ds = load_dataset("fashion-mnist")
    test = test_split(ds)
    load_s = time.perf_counter() - t0
    rows = []
    for name, precision in [(n, p) for n in args.recipes for p in args.precision]:
        spec, loops = compare(name, precision, ds, test.x, test.y,
                              sets=["train.epochs=1"] if args.smoke else [],
                              train_subset=500 if args.smoke else None,
                              plain=name not in args.skip_plain)
        for r in loops:
            curve, label, per_epoch = r["curve"], r["loop"], r["s_epoch"]
            print(f"{name} {label}: {per_epoch:.1f} s/epoch; test acc per epoch "
                  f"{[round(a * 100, 2) for _, a in curve]}", flush=True)
            rows.append(f"| {name} | {label} | {precision} | {spec.train.epochs} | {spec.train.batch_size} | {per_epoch:.1f} | "
                        f"{first_reaching(curve, TARGETS[0])} | {first_reaching(curve, TARGETS[1])} | "
                        f"{curve[-1][1] * 100:.2f}% | {r['wall'] + load_s:.0f} s |")
    body = ("Seconds per epoch include the dev-set evaluation. Times to a test accuracy are "
            "cumulative training seconds at the end of the first epoch whose test accuracy reaches it. "
            f"The last column adds the data loading ({load_s:.1f} s) and, for archtune, everything "
            "train() does (run folder, checkpoints), less this benchmark's own test evaluations.\n\n"
            "| recipe | loop | precision | epochs | batch | s/epoch | time to 90.7% test | time to 93% "
            "test | final test acc | wall, data load to saved run |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n" + "\n".join(rows))
    if args.smoke:
        print(body)
        return
    write_section("Training speed: archtune vs a plain PyTorch loop, same precision", body,
                  "python bench/train_bench.py " + " ".join(["--recipes", *args.recipes,
                                                             "--precision", *args.precision]))
    print(body)


if __name__ == "__main__":
    main()
