"""Own images: image folders of RGB photos built from the shipped data, trained as a new user would.

    python bench/own_images.py [--sets fmnist-rgb32 digits-rgb32 fmnist-rgb64] [--seeds 0 1]
    python bench/own_images.py --quick        # tiny folders, 1 seed, short arms; no section
    python bench/own_images.py --report-only  # the section from the rows finished so far

Data sets, written once under --work as image folders (`train/CLASS/*.png|jpg`, `test/...`),
never used to tune anything:
- fmnist-rgb32: Fashion-MNIST (60,000 / 10,000), each 28x28 image drawn at a random offset in a
  32x32 canvas, in a random foreground colour on a random background colour (the two at least
  0.35 apart on average over R, G, B); one file in four a JPEG (quality 90), the rest PNG.
- digits-rgb32: scikit-learn's 1,797 8x8 digits scaled to 28x28 (bilinear; a stratified third
  held out as test, 599 images), then the same colours and offsets (MNIST-style digits).
- fmnist-rgb64: Fashion-MNIST scaled to a random size of 40-56 pixels, at a random offset in a
  64x64 canvas, the same colours.
Arms per data set and seed (each a fresh process, as a user types it):
- default: `archtune train --data FOLDER --seed S`: no other flag (the `default` recipe, 8 epochs).
- accurate: `archtune train accurate --data FOLDER --minutes M --seed S` (M = --minutes).
- search: `archtune search --data FOLDER --timeout` for half of M (auto-space), then `archtune
  retrain STUDY --finalists 1 --seeds 1 --minutes` with the rest (bench/new_data.py's search arm).
Then `archtune evaluate RUN --split test`, once per arm and seed. Seconds per epoch: the median
epoch of the delivered run's history.csv (training and the dev pass after it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from _results import ARCHTUNE, against, commit, evaluate_test, use_shared_data, write_section  # noqa: I001  (bench-local helper)
from new_data import recipe_arm, search_arm, spread

SETS = ("fmnist-rgb32", "digits-rgb32", "fmnist-rgb64")
ARMS = ("default", "accurate", "search")
TITLE = "Own images: RGB folders built from the shipped data"
CONTRAST = 0.35  # least mean |foreground - background| over R, G, B (0-1 scale)
JPEG_SHARE = 4  # one file in this many is a JPEG


def _colours(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n (foreground, background) RGB pairs in 0-1, redrawn until they are CONTRAST apart."""
    fg, bg = rng.random((n, 3)), rng.random((n, 3))
    low = np.abs(fg - bg).mean(1) < CONTRAST
    while low.any():
        fg[low], bg[low] = rng.random((low.sum(), 3)), rng.random((low.sum(), 3))
        low = np.abs(fg - bg).mean(1) < CONTRAST
    return fg, bg


def _paint(grey: np.ndarray, canvas: int, rng: np.random.Generator, scale: tuple[int, int] | None
           ) -> np.ndarray:
    """Grey images (N, h, w) uint8 as (N, canvas, canvas, 3) uint8: optionally rescaled to a random
    side in ``scale``, placed at a random offset, coloured."""
    from PIL import Image

    n = len(grey)
    fg, bg = _colours(rng, n)
    out = np.empty((n, canvas, canvas, 3), np.uint8)
    for i in range(n):
        g = grey[i]
        if scale is not None:
            side = int(rng.integers(scale[0], scale[1] + 1))
            g = np.asarray(Image.fromarray(g).resize((side, side), Image.BILINEAR))
        y, x = rng.integers(0, canvas - g.shape[0] + 1), rng.integers(0, canvas - g.shape[1] + 1)
        mask = np.zeros((canvas, canvas, 1), np.float32)
        mask[y:y + g.shape[0], x:x + g.shape[1], 0] = g / 255.0
        out[i] = np.round(255 * (bg[i] * (1 - mask) + fg[i] * mask)).astype(np.uint8)
    return out


def _grey(name: str, quick: bool) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """{'train': (x, y), 'test': (x, y)} of the grey source images, and the class names."""
    from sklearn.model_selection import train_test_split

    if name.startswith("digits"):
        from PIL import Image
        from sklearn.datasets import load_digits

        d = load_digits()
        big = np.stack([np.asarray(Image.fromarray((im * 255 / 16).astype(np.uint8)).resize(
            (28, 28), Image.BILINEAR)) for im in d.images])
        x_tr, x_te, y_tr, y_te = train_test_split(big, d.target, test_size=1 / 3,
                                                  stratify=d.target, random_state=0)
        classes = [str(i) for i in range(10)]
    else:
        from archtune.data import load_dataset

        ds = load_dataset("fashion-mnist", download=False)
        x_tr, y_tr = ds.x_train[:, 0].numpy(), ds.y_train.numpy()
        x_te, y_te = ds.x_test[:, 0].numpy(), ds.y_test.numpy()
        classes = list(ds.classes)
    if quick:  # smoke runs: 300 training and 100 test images, stratified
        x_tr, _, y_tr, _ = train_test_split(x_tr, y_tr, train_size=300, stratify=y_tr, random_state=0)
        x_te, _, y_te, _ = train_test_split(x_te, y_te, train_size=100, stratify=y_te, random_state=0)
    return {"train": (x_tr, y_tr), "test": (x_te, y_te)}, classes


def build(name: str, work: Path, quick: bool = False) -> Path:
    """The image folder of data set ``name`` under ``work`` (written once; a finished folder has
    a DONE file)."""
    from PIL import Image

    root = work / (name + ("-quick" if quick else ""))
    if (root / "DONE").exists():
        return root
    splits, classes = _grey(name, quick)
    canvas, scale = (64, (40, 56)) if name.endswith("64") else (32, None)
    rng = np.random.default_rng(SETS.index(name))
    for split, (x, y) in splits.items():
        images = _paint(x, canvas, rng, scale)
        for c in classes:
            (root / split / c).mkdir(parents=True, exist_ok=True)
        for i, (img, label) in enumerate(zip(images, y, strict=True)):
            ext = "jpg" if i % JPEG_SHARE == 0 else "png"
            path = root / split / classes[int(label)] / f"{i:05d}.{ext}"
            Image.fromarray(img).save(path, **({"quality": 90} if ext == "jpg" else {}))
    (root / "DONE").write_text(f"{sum(len(s[1]) for s in splits.values())} images\n")
    return root


def _epoch_s(run: Path) -> tuple[float, int, str]:
    """The median seconds of an epoch (history.csv: training and its dev pass), the epochs, and
    the precision it trained in (env.json; the final dev evaluation is always fp32)."""
    import csv

    with (run / "history.csv").open() as f:
        seconds = [float(r["seconds"]) for r in csv.DictReader(f)]
    precision = json.loads((run / "env.json").read_text())["precision"]
    return statistics.median(seconds), len(seconds), precision


def default_arm(source: str, seed: int, out: Path) -> dict:
    import subprocess

    started = time.monotonic()
    run = out / "run"
    subprocess.run([*ARCHTUNE, "train", "--data", source, "--seed", str(seed), "--run-dir", str(run)],
                   check=True, stdout=subprocess.DEVNULL)
    return {"arm": "default", "wall_s": time.monotonic() - started, "run": "run", "detail": ""}


def run_one(name: str, arm: str, seed: int, minutes: float, work: Path, quick: bool) -> dict:
    source = str(build(name, work, quick))
    out = work / "runs" / name / f"{arm}-s{seed}"
    shutil.rmtree(out, ignore_errors=True)
    budget = minutes * 60
    if arm == "default":
        row = default_arm(source, seed, out)
    elif arm == "accurate":
        row = recipe_arm("accurate", source, seed, budget, out)
    else:
        row = search_arm(source, seed, budget, 0.5, out)
    run = out / row.pop("run")
    m = json.loads((run / "metrics.json").read_text())
    epoch_s, epochs, precision = _epoch_s(run)
    row.update(set=name, seed=seed, minutes=minutes, commit=commit(), dev=m["dev"]["accuracy"],
               epoch_s=epoch_s, epochs=epochs, precision=precision,
               input=m["data"].get("image_size"), test=evaluate_test(run))  # test read once, after
    return row


def report(rows: list[dict], command: str, work: Path) -> None:
    for r in rows:  # rows written before _epoch_s read history.csv and env.json: read them again
        run = work / "runs" / r["set"] / f"{r['arm']}-s{r['seed']}" / "run"
        if (run / "history.csv").exists():
            r["epoch_s"], r["epochs"], r["precision"] = _epoch_s(run)
    lines = ["| data | arm | seeds | mean test | spread | mean dev | s / epoch | epochs | "
             "precision | wall s (max) | commit | detail (first seed) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    verdicts = []
    for name in dict.fromkeys(r["set"] for r in rows):
        by_arm = {a: [r for r in rows if r["set"] == name and r["arm"] == a] for a in ARMS}
        for arm, rs in by_arm.items():
            if not rs:
                continue
            tests = [100 * r["test"] for r in rs]
            label = arm if arm == "default" else f"{arm} ({rs[0]['minutes']:g} min)"
            lines.append(
                f"| {name} | {label} | "
                f"{len(rs)} | {statistics.mean(tests):.2f}% | "
                f"{f'{spread(tests):.2f}' if len(rs) > 1 else '-'} | "
                f"{100 * statistics.mean(r['dev'] for r in rs):.2f}% | "
                f"{statistics.mean(r['epoch_s'] for r in rs):.1f} | "
                f"{'-'.join(str(e) for e in sorted({min(r['epochs'] for r in rs), max(r['epochs'] for r in rs)}))} | "
                f"{', '.join(sorted({r['precision'] for r in rs}))} | "
                f"{max(r['wall_s'] for r in rs):.0f} | {', '.join(sorted({r['commit'] for r in rs}))} | "
                f"{rs[0]['detail'] or '-'} |")
        s = [100 * r["test"] for r in by_arm["search"]]
        verdicts += [against(name, "search", s, recipe, [100 * r["test"] for r in by_arm[recipe]])
                     for recipe in ("default", "accurate") if s and by_arm[recipe]]
    sizes = "; ".join(sorted({f"{r['set']} {r['input'][0]}x{r['input'][1]}" for r in rows}))
    head = ("Folders built by the script (see its docstring), read at their one size (" + sizes
            + "), 80% training / 20% dev of `train/`, then `test/` read once per run. Each arm as "
            "a user types it; spread: max - min over seeds; s / epoch: the median epoch of the "
            "delivered run (training and its dev pass); precision: what the run trained in "
            "(`--precision auto`).\n\n")
    write_section(TITLE, head + "\n".join(lines) + "\n\n" + "\n".join(verdicts), command)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=SETS)
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--minutes", type=float, default=10.0, help="budget of accurate and search")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--work", type=Path, default=Path("/tmp/archtune-bench-own-images"))
    ap.add_argument("--quick", action="store_true",
                    help="tiny folders (300 / 100 images), one seed, 0.5-minute arms; no section")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    use_shared_data()
    if args.quick:
        args.seeds, args.minutes = args.seeds[:1], 0.5
    saved = args.work / ("rows-quick.json" if args.quick else "rows.json")
    rows = json.loads(saved.read_text()) if saved.exists() and not args.quick else []
    command = "python bench/own_images.py " + " ".join(sys.argv[1:])
    if not args.report_only:
        for seed in args.seeds:  # seeds outermost: a stopped run still has every arm of seed 0
            for name in args.sets:
                for arm in args.arms:
                    row = run_one(name, arm, seed, args.minutes, args.work, args.quick)
                    row["command"] = command
                    rows = [r for r in rows if (r["set"], r["arm"], r["seed"]) != (name, arm, seed)]
                    rows.append(row)
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    saved.write_text(json.dumps(rows, indent=1))
                    print(f"{name} {arm} seed {seed}: test {row['test']:.2%} dev {row['dev']:.2%} "
                          f"{row['epoch_s']:.1f} s/epoch x {row['epochs']} ({row['precision']}) "
                          f"wall {row['wall_s']:.0f}s {row['detail']}", flush=True)
    if not args.quick:
        if args.report_only:
            command = "; ".join(sorted({r.get("command", "?") for r in rows})) + " (rows); " + command
        report(rows, command, args.work)


if __name__ == "__main__":
    main()
