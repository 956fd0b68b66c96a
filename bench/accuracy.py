"""The `accurate` recipe and the techniques of fast small-CNN trainers: an ablation, chosen on dev.

Every variant is the built-in `accurate` spec with one thing changed (or the starting point the
recipe grew from, or another architecture), trained with ``archtune.train`` on the standard
48,000 / 12,000 split for each seed, then evaluated on the dev split with its test-time
augmentation. The variant with the best mean dev accuracy is chosen; only then is the test split
read, once, for the chosen variant and the baseline. Each run is a fresh process (``--jobs`` at
a time: 1 on a CPU so timings are not shared; more on a GPU).

    python bench/accuracy.py                       # all variants, 2 seeds (CPU: many hours)
    python bench/accuracy.py --only baseline accurate no-ema no-alternate no-shift-tta --seeds 0 1 2
    python bench/accuracy.py --epochs 12           # every variant at 12 epochs (a cheaper pass)
    python bench/accuracy.py --group default       # each technique on the 8-epoch default (~35 min)
    python bench/accuracy.py --jobs 12 --device cuda   # on a GPU, seconds are then not CPU's
    python bench/accuracy.py --probe               # time a few steps: estimated minutes per run
    python bench/accuracy.py --smoke               # 1 epoch on 256 images; writes nothing
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable

import archtune as at

OFF = ["train.ema=0", "train.augment.alternate_flip=false", "train.tta_translate=0"]
SGD = ["train.optimizer=sgd", "train.nesterov=true", "train.momentum=0.85", "train.lr=0.375",
       "train.weight_decay=0.0013", "train.schedule=triangular", "train.warmup_frac=0.23",
       "train.label_smoothing=0.2"]  # airbench94's hyperparameters, undecoupled for batch 256


def _whiten_stem(layers: list) -> list:
    """airbench's stem: a 2x2 conv whitening the patches (2 x 4 filters for one channel)."""
    return [{"Conv2D": {"filters": 8, "kernel_size": 2, "padding": "same"}}, *layers[1:]]


def _whiten_before(layers: list) -> list:
    """The same 2x2 whitening conv, linear, in front of an unchanged net (default's first conv
    keeps its 32 filters)."""
    return [{"Conv2D": {"filters": 8, "kernel_size": 2, "padding": "same"}}, *layers]


# name -> (spec, overrides, layer transform or None, what it is)
VARIANTS: dict[str, tuple[str, list[str], Callable[[list], list] | None, str]] = {
    "baseline": ("accurate", ["train.epochs=20", *OFF], None,
                 "starting point: default's recipe + translate 2, batch 256, 20 epochs"),
    "accurate": ("accurate", [], None, "as shipped"),
    "no-ema": ("accurate", ["train.ema=0"], None, "without the moving average"),
    "no-alternate": ("accurate", ["train.augment.alternate_flip=false"], None, "random flips"),
    "epochs20": ("accurate", ["train.epochs=20"], None, "20 epochs"),
    "dirac": ("accurate", ["train.dirac_init=true"], None, "+ identity-initialised convs"),
    "whiten": ("accurate", ["train.whiten=true"], _whiten_stem, "+ fixed whitening 2x2 stem"),
    "erase": ("accurate", ["train.augment.erase=0.25"], None, "+ random erasing (p 0.25)"),
    "sgd": ("accurate", SGD, None, "Nesterov SGD, triangular schedule (airbench values)"),
    "sgd-normlr": ("accurate", [*SGD, "train.norm_lr=4", "train.norm_weight_decay=false"], None,
                   "the same + BatchNorm lr x4, no decay on BatchNorm"),
    "resnet-airbench": ("resnet-airbench", [], None, "airbench96's residual blocks, 26 epochs"),
    # the same techniques, one at a time, on the 8-epoch `default` recipe (about 100 s a run, so
    # every technique gets 2 seeds in half an hour: `--only` the names below, see GROUPS)
    "default": ("default", [], None, "as shipped: AdamW one-cycle, label smoothing, flips, flip TTA"),
    "d-no-flip": ("default", ["train.augment.hflip=false", "train.tta=false"], None,
                  "no flips, no flip TTA"),
    "d-no-smooth": ("default", ["train.label_smoothing=0"], None, "no label smoothing"),
    "d-ema": ("default", ["train.ema=0.999"], None, "+ moving average of the weights (0.999)"),
    "d-alternate": ("default", ["train.augment.alternate_flip=true"], None, "+ alternating flips"),
    "d-translate": ("default", ["train.augment.translate=2"], None, "+ 2-pixel translations"),
    "d-erase": ("default", ["train.augment.erase=0.25"], None, "+ random erasing (p 0.25)"),
    "d-dirac": ("default", ["train.dirac_init=true"], None, "+ identity-initialised convs"),
    "d-whiten": ("default", ["train.whiten=true"], _whiten_before,
                 "+ fixed whitening 2x2 conv (8 filters) in front"),
    "d-sgd": ("default", SGD, None, "Nesterov SGD, triangular schedule (airbench values)"),
    "d-normlr": ("default", ["train.norm_lr=4", "train.norm_weight_decay=false"], None,
                 "BatchNorm lr x4, no decay on BatchNorm"),
}
# evaluation-only variants: another variant's runs, evaluated differently (no training)
EVAL_ONLY = {"no-shift-tta": ("accurate", {"tta_translate": 0}, "flip TTA only (accurate's runs)"),
             "d-shift-tta": ("default", {"tta_translate": 1}, "+ shift TTA (default's runs)")}
GROUPS = {"default": [n for n in [*VARIANTS, *EVAL_ONLY] if n == "default" or n.startswith("d-")]}
SMOKE = ["data.train_subset=256", "data.dev_fraction=0.01", "train.epochs=1"]
EPOCH_S = 42.3  # accurate's seconds per epoch on the project's quiet 2-core CPU (846 s / 20)


def spec_for(name: str, extra: list[str]) -> at.Spec:
    base, sets, transform, _ = VARIANTS[name]
    raw = copy.deepcopy(at.specs.raw_spec(base))
    if transform is not None:
        raw["layers"] = transform(raw["layers"])
    raw["name"] = f"{base}-{name}"
    return at.specs.spec_from_dict(at.specs.apply_overrides(raw, [*sets, *extra]))


def run_one(name: str, seed: int, extra: list[str], device: str | None) -> dict:
    spec = spec_for(name, [*extra, f"train.seed={seed}"])
    t0 = time.perf_counter()
    run = at.train(spec, run_dir=f"runs/accuracy/{name}-s{seed}-{time.time():.0f}", progress=False,
                   device=device)
    wall = time.perf_counter() - t0
    dev = at.evaluate(run, "dev", device=device)
    return {"name": name, "seed": seed, "run": str(run.path), "epochs": run.metrics["epochs_run"],
            "best_epoch": run.metrics["best_epoch"], "dev": dev["accuracy"],
            "dev_no_tta": run.metrics["best"]["dev_accuracy"], "train_s": run.metrics["train_seconds"],
            "wall_s": wall, "device": run.env["device"], "precision": run.env["precision"]}


def probe(names: list[str], steps: int = 8) -> None:
    """Time a few training steps and a dev evaluation per architecture; estimate a run's minutes."""
    import torch

    from archtune.data import load_data
    from archtune.training.loop import predict_log_probs, train_epoch
    from archtune.training.optim import make_optimizer, make_scheduler

    splits = load_data(at.load_spec("accurate").data).splits
    print(f"load average before: {os.getloadavg()}", flush=True)
    for name in names:
        spec = spec_for(name, [])
        cfg = spec.train
        model = at.build_model(spec).to(memory_format=torch.channels_last)
        opt = make_optimizer(model, cfg)
        n = cfg.batch_size * steps
        x, y = splits.train.x[:n + 2 * cfg.batch_size], splits.train.y[:n + 2 * cfg.batch_size]
        gen = torch.Generator().manual_seed(0)
        kw = {"precision": "bf16", "channels_last": True}
        train_epoch(model, x[:2 * cfg.batch_size], y[:2 * cfg.batch_size], cfg, opt,
                    make_scheduler(opt, cfg, 2), gen, **kw)  # warm-up
        t0 = time.perf_counter()
        train_epoch(model, x[:n], y[:n], cfg, opt, make_scheduler(opt, cfg, steps), gen, **kw)
        per_image = (time.perf_counter() - t0) / n
        t0 = time.perf_counter()
        predict_log_probs(model, splits.dev.x[:2000], **kw)
        per_dev = (time.perf_counter() - t0) / 2000
        epoch = per_image * len(splits.train.y) + per_dev * len(splits.dev.y)
        print(f"{name}: {1 / per_image:,.0f} train img/s, {epoch:.0f} s/epoch (incl. dev), "
              f"{cfg.epochs} epochs -> about {epoch * cfg.epochs / 60:.1f} min "
              f"(load average now {os.getloadavg()[0]:.1f})", flush=True)


def add_eval_only(results: list[dict], names: list[str], device: str | None) -> list[dict]:
    """Rows of the evaluation-only variants, from their parent's runs."""
    out = []
    for name in names:
        if name in EVAL_ONLY:
            parent, kw, _ = EVAL_ONLY[name]
            for r in [r for r in results if r["name"] == parent]:
                dev = at.evaluate(r["run"], "dev", device=device, save=False, **kw)
                out.append(r | {"name": name, "dev": dev["accuracy"]})
    return results + out


def what(name: str) -> str:
    return EVAL_ONLY[name][2] if name in EVAL_ONLY else VARIANTS[name][3]


def table(results: list[dict], names: list[str]) -> tuple[str, str]:
    """(markdown table, chosen variant): mean dev accuracy (with TTA) decides."""
    rows, means = [], {}
    for name in names:
        rs = [r for r in results if r["name"] == name]
        means[name] = statistics.mean(r["dev"] for r in rs)
        devs = ", ".join(f"{r['dev'] * 100:.2f}" for r in rs)
        rows.append(f"| {name} | {what(name)} | {rs[0]['epochs']} | {devs} | "
                    f"{means[name] * 100:.2f}% | "
                    f"{statistics.mean(r['dev_no_tta'] for r in rs) * 100:.2f}% | "
                    f"{statistics.mean(r['train_s'] for r in rs):.0f} s |")
    chosen = max(means, key=means.get)
    head = ("| variant | what | epochs | dev % per seed (TTA) | dev mean (TTA) | dev mean, no TTA "
            "(best epoch) | train seconds (mean) |\n| --- | --- | --- | --- | --- | --- | --- |\n")
    return head + "\n".join(rows), chosen


def read_test(results: list[dict], names: list[str], smoke: bool) -> list[str]:
    """Test accuracy of each run of ``names``: the only time this benchmark reads the test split."""
    data = None
    if smoke:
        from archtune.data import load_dataset, test_split

        t = test_split(load_dataset("fashion-mnist"))
        data = at.data.Split(t.x[:500], t.y[:500], t.indices[:500])
    lines = []
    for name in names:
        kw = {"save": False, **EVAL_ONLY[name][1]} if name in EVAL_ONLY else {}
        accs = [at.evaluate(r["run"], "test", data=data, **kw)["accuracy"]
                for r in results if r["name"] == name]
        lines.append(f"{name}: test {', '.join(f'{a * 100:.2f}%' for a in accs)} "
                     f"(mean {statistics.mean(accs) * 100:.2f}%)")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=[*VARIANTS, *EVAL_ONLY], help="variants (default: all)")
    ap.add_argument("--group", choices=list(GROUPS), help="the variants of one group (e.g. default)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--epochs", type=int, help="train every variant for this many epochs")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--device", help="cpu or cuda (default: cuda where present)")
    ap.add_argument("--probe", action="store_true", help="estimate minutes per run; train nothing")
    ap.add_argument("--smoke", action="store_true", help="1 epoch on 256 images; writes nothing")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--set", nargs="*", default=[], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one[0], int(args.one[1]), args.set, args.device)))
        return
    names = args.only or (GROUPS[args.group] if args.group else None) or (
        ["baseline", "accurate", "no-shift-tta"] if args.smoke
        else [n for n in [*VARIANTS, *EVAL_ONLY] if n not in GROUPS["default"]])
    trained = list(dict.fromkeys(EVAL_ONLY[n][0] if n in EVAL_ONLY else n for n in names))
    if args.probe:
        probe([n for n in trained if n in ("accurate", "resnet-airbench")] or trained[:1])
        return
    extra = [*(SMOKE if args.smoke else []), *([f"train.epochs={args.epochs}"] if args.epochs else [])]
    epochs = sum(spec_for(n, extra).train.epochs for n in trained) * len(args.seeds)
    print(f"{len(trained) * len(args.seeds)} runs, {epochs} epochs in all: about "
          f"{epochs * EPOCH_S / 3600:.1f} h on the quiet 2-core CPU at {EPOCH_S} s per epoch of "
          f"accurate (others differ), divided by --jobs on a GPU", file=sys.stderr, flush=True)
    argvs = [["--one", n, str(s), *(["--device", args.device] if args.device else []),
              *(["--set", *extra] if extra else [])] for n in trained for s in args.seeds]
    from _jobs import run_jobs  # noqa: I001  (bench-local helper)

    results = add_eval_only(run_jobs(__file__, argvs, args.jobs), names, args.device)
    body, chosen = table(results, names)
    print(body, f"\nchosen on dev: {chosen}", flush=True)
    reference = "baseline" if "baseline" in names else names[0]
    tested = list(dict.fromkeys([chosen, reference]))
    test_lines = read_test(results, tested, args.smoke)
    print("\n".join(test_lines))
    r0 = results[0]
    base = VARIANTS[trained[0]][0]
    text = (f"Each variant is `{base}` with one change; {len(args.seeds)} seeds "
            f"({', '.join(map(str, args.seeds))}); device {r0['device']}, precision {r0['precision']}, "
            f"{args.jobs} run(s) at a time. Dev accuracy with each run's test-time augmentation "
            f"decides; the test split is read after the choice, for the chosen variant and "
            f"`{reference}` only.\n\n{body}\n\nChosen on dev: **{chosen}**. Then, once: "
            + "; ".join(test_lines) + ".")
    if args.smoke:
        return
    from _results import write_section  # noqa: I001  (bench-local helper)

    write_section(f"Accuracy: the techniques of `accurate`, ablated{' on `default`' if base == 'default' else ''}", text,
                  "python bench/accuracy.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
