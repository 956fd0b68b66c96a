"""Built-in recipes as a user runs them: `archtune train`, then one test evaluation; >= 2 seeds.

    python bench/recipes.py [--recipes default default@2 accurate] [--seeds 0 1]

A recipe is a built-in spec name, ``name@N`` for N epochs. Each run is a fresh
`archtune -q train NAME --seed S` process, timed from start to exit (the wall time a user
waits: start-up, data loading, training, the final dev evaluation and the saved run folder),
then `archtune -q evaluate RUN --split test`, read once. Dev accuracy is the run's own final
dev evaluation (with the spec's test-time augmentation). The table gives, per recipe, the mean
and the spread (half the range) over seeds, the precision `--precision auto` chose, and the
targets of issue 10 checked against the means. Run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _results import ARCHTUNE, evaluate_test, mean_spread, use_shared_data, verdict, write_section  # noqa: I001  (bench-local helper)

# recipe -> (most wall seconds, least mean test accuracy): the targets this bench checks
TARGETS = {"default": (90, 0.930), "accurate": (30 * 60, 0.950)}
TALOS_BEST = 0.916  # the seed notebooks' best tuned CNN (172 Talos trials)


def run_recipe(recipe: str, seed: int, root: Path, extra: Sequence[str] = ()) -> dict:
    """Train ``recipe`` (``name@N``: N epochs) with ``seed`` under ``root``, test it once; its
    figures. ``extra``: more `archtune train` options (e.g. ``--data FILE`` for a smoke run)."""
    name, _, epochs = recipe.partition("@")
    run_dir = root / f"{recipe.replace('@', '-e')}-s{seed}"
    cmd = [*ARCHTUNE, "train", name, "--seed", str(seed), "--run-dir", str(run_dir), *extra]
    if epochs:
        cmd += ["--epochs", epochs]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    test = evaluate_test(run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    env = json.loads((run_dir / "env.json").read_text())
    return {"recipe": recipe, "seed": seed, "wall": wall, "train_s": metrics["train_seconds"],
            "epochs": metrics["epochs_run"], "best_epoch": metrics["best_epoch"],
            "dev": metrics["dev"]["accuracy"], "test": test,
            "precision": env["precision"]}


def table(results: list[dict], recipes: list[str]) -> tuple[str, list[str]]:
    rows, verdicts = [], []
    for recipe in recipes:
        rs = [r for r in results if r["recipe"] == recipe]
        dev, dev_s = mean_spread([r["dev"] for r in rs])
        test, test_s = mean_spread([r["test"] for r in rs])
        wall, wall_s = mean_spread([r["wall"] for r in rs])
        seeds = ", ".join(f"{r['seed']}: {r['test']:.2%} in {r['wall']:.0f} s" for r in rs)
        rows.append(f"| {recipe} | {len(rs)} | {rs[0]['epochs']} | {dev:.2%} ± {dev_s:.2%} | "
                    f"**{test:.2%} ± {test_s:.2%}** | {wall:.0f} ± {wall_s:.0f} s | "
                    f"{', '.join(sorted({r['precision'] for r in rs}))} | {seeds} |")
        if recipe in TARGETS:
            most_s, least = TARGETS[recipe]
            verdicts.append(f"- `{recipe}`: " + verdict([r["test"] for r in rs], least,
                                                      [r["wall"] for r in rs], most_s) + ".")
        if test - test_s >= TALOS_BEST and max(r["wall"] for r in rs) <= 30:  # beyond the noise
            verdicts.append(f"- `{recipe}` matches the seed notebooks' best tuned CNN "
                            f"({TALOS_BEST:.1%}) within 30 s wall: mean {test:.2%}, slowest run "
                            f"{max(r['wall'] for r in rs):.0f} s.")
    head = ("| recipe | seeds | epochs | dev (TTA) | test | wall per run | precision | per seed |\n"
            "| --- | --- | --- | --- | --- | --- | --- | --- |\n")
    return head + "\n".join(rows), verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipes", nargs="+", default=["default", "default@2", "default@3", "accurate"])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--keep", help="folder for the run folders (default: a temporary one)")
    args = ap.parse_args()
    root = Path(args.keep or tempfile.mkdtemp(prefix="recipes-bench-"))
    results = []
    for recipe in args.recipes:
        for seed in args.seeds:
            results.append(run_recipe(recipe, seed, root))
            r = results[-1]
            print(f"{recipe} seed {seed}: dev {r['dev']:.2%}, test {r['test']:.2%}, "
                  f"{r['wall']:.0f} s wall ({r['precision']})", flush=True)
    text, verdicts = table(results, args.recipes)
    body = ("Each run: `archtune -q train RECIPE --seed S` in a fresh process, wall from start to "
            "exit; then `archtune evaluate RUN --split test`, read once. Mean ± half the range "
            "over seeds.\n\n" + text + "\n\n" + "\n".join(verdicts))
    write_section("Built-in recipes, as a user runs them", body,
                  f"python bench/recipes.py --recipes {' '.join(args.recipes)} "
                  f"--seeds {' '.join(map(str, args.seeds))}")
    print(body)


if __name__ == "__main__":
    use_shared_data()
    main()
