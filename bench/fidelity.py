"""Is the search's coarse pass a good guide? Several low fidelities against full training of the
same candidates (issue 11, part 2): Spearman rank correlation and where the coarse winner ranks.

Each of ``--trials`` seeded random candidates of the space is trained once at full fidelity
(the whole 48,000-image train split, the spec's epochs, or ``--full-epochs``) and once at each
low fidelity, with the same seed; only dev accuracies are read.

    python bench/fidelity.py                                   # default-space, 8 candidates, 8 full epochs
    python bench/fidelity.py --space default-space --trials 8 --full-epochs 8 --lows 12000x3 12000x1 48000x1 24000x2
    python bench/fidelity.py --smoke                           # tiny, on 600 images; writes nothing
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from _results import use_shared_data, write_section  # noqa: I001  (bench-local helper)

from archtune.search import fidelity_checks, load_space


def parse_low(text: str) -> dict[str, int | None]:
    """'12000x3' -> 12,000 images, at most 3 epochs; 'allx1' -> every image, 1 epoch."""
    n, _, e = text.partition("x")
    return {"train_subset": None if n == "all" else int(n), "epochs": int(e) if e else None}


def _images(low: dict) -> str:
    return f"{low['train_subset']:,}" if low.get("train_subset") else "all"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="default-space")
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-epochs", type=int, default=8, help="full fidelity's epochs (the space's: 0)")
    ap.add_argument("--lows", nargs="+", default=["12000x3", "12000x1", "24000x2", "allx1"])
    ap.add_argument("--stratify", default="auto",
                    help="a choice whose options the candidates take in turn (auto: the space's "
                         "first top-level branch choice; none: plain random candidates)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="start no further candidate after this long (once 3 are done)")
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    logging.getLogger("archtune.search._fidelity").setLevel(logging.INFO)  # each candidate
    use_shared_data()
    sets = [f"train.epochs={args.full_epochs}"] if args.full_epochs else []
    if args.smoke:
        sets += ["data.train_subset=600"]
        args.trials, args.lows = 3, ["200x1"]
        sets[:1] = ["train.epochs=1"]
    space = load_space(args.space, sets)
    lows = [parse_low(x) for x in args.lows]
    print(f"load average before: {os.getloadavg()}", file=sys.stderr, flush=True)
    checks = fidelity_checks(space, lows, n=args.trials, seed=args.seed,
                             timeout=None if args.minutes is None else args.minutes * 60,
                             stratify=None if args.stratify == "none" else args.stratify)
    full = checks[0]
    head = ("| low fidelity | Spearman vs full | coarse winner's rank at full | low minutes | "
            "full minutes |\n| --- | --- | --- | --- | --- |\n")
    rows = [f"| {_images(c.low)} images x {c.low['epochs'] or 'all'} epochs | "
            f"{c.spearman:+.2f} | {c.winner_full_rank} of {len(c.params)} | "
            f"{c.low_seconds / 60:.1f} | {c.full_seconds / 60:.1f} |" for c in checks]
    per = ("| candidate | full dev | " + " | ".join(args.lows) + " | parameters |\n| --- | --- | "
           + "--- | " * len(lows) + "--- |\n" + "\n".join(
               f"| {i} | {full.full_dev[i] * 100:.2f}% | "
               + " | ".join(f"{c.low_dev[i] * 100:.2f}%" for c in checks) + " | "
               + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in full.params[i].items()) + " |"
               for i in range(len(full.params))))
    from archtune.training.device import pick_device

    device = pick_device().type  # the device the candidates trained on
    full_desc = f"{args.full_epochs} epochs" if args.full_epochs else "the space's epochs"
    spread = f", taking the options of `{full.strata}` in turn" if full.strata else ""
    body = (f"{len(full.params)} seeded random candidates of `{args.space}` (seed {args.seed}{spread}), "
            f"full fidelity: all 48,000 training images, {full_desc}; dev accuracy (best epoch, "
            f"no TTA) decides both rankings. Device {device}; precision `auto` (bf16 where the "
            f"{'GPU' if device == 'cuda' else 'CPU'} has it).\n\n"
            + head + "\n".join(rows) + "\n\n" + per)
    print(body)
    if not args.smoke:  # a GPU's figures get their own section beside the CPU's
        where = ", GPU" if device == "cuda" else ""
        write_section(f"Search fidelity: coarse pass against full training ({args.space}{where})", body,
                      "python bench/fidelity.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    main()
