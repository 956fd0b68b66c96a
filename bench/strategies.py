"""Budget accounting: search strategies on the same space and the same wall budget, several seeds.

    python bench/strategies.py [--space default-space] [--minutes 5] [--seeds 0 1 2]
                               [--strategies random tpe tpe-hyperband grid-fraction]
    python bench/strategies.py --quick --data tests.npz   # a tiny budget, to test this script

Each strategy runs `archtune search SPACE --timeout MINUTES*60` once per seed (trial run folders
kept). Its cost axis is CPU-minutes: the trials' durations summed in the order they finished
(pruned, failed and invalid trials count too). At every point the best trial so far (by dev
accuracy) is evaluated once on the test split, so the curve is the test accuracy a user would
get by stopping there (at the search's fidelity: no retraining). The table gives the mean and
spread (min-max) over seeds at a quarter, half and all of the budget; the figure
bench/strategies.png draws the mean with a min-max band. `grid-fraction` needs a space with a
grid (finite dimensions) and is skipped otherwise.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

import numpy as np
from _results import ARCHTUNE, evaluate_test, use_shared_data, write_section  # noqa: I001  (bench-local helper)

STRATEGIES = {  # name -> search options
    "random": ["--sampler", "random", "--pruner", "none"],
    "tpe": ["--sampler", "tpe", "--pruner", "none"],
    "tpe-hyperband": ["--sampler", "tpe", "--pruner", "hyperband"],
    "grid-fraction": ["--sampler", "grid", "--fraction", "0.1"],
}


def run_strategy(name: str, seed: int, args: argparse.Namespace, root: Path) -> list[tuple[float, float]]:
    """(CPU-minutes spent, test accuracy of the best trial so far) after each finished trial."""
    from archtune.search import open_study

    study_name = f"{name}-s{seed}"
    extra = ["--data", args.data] if args.data else []
    cmd = [*ARCHTUNE, "search", args.space, "--study", study_name, "--studies-dir", str(root),
           "--timeout", str(args.minutes * 60), "--trials", "100000", "--seed", str(seed),
           "--keep-runs", *STRATEGIES[name], *extra]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    study, _ = open_study(study_name, root)
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.datetime_complete),
                    key=lambda t: t.datetime_complete)
    spent, best, best_test, out = 0.0, -1.0, float("nan"), []
    for t in trials:
        spent += float(t.user_attrs.get("duration_s") or 0.0) / 60
        acc = t.user_attrs.get("dev_accuracy")
        if t.state.name == "COMPLETE" and acc is not None and acc > best and t.user_attrs.get("run_dir"):
            best, best_test = acc, evaluate_test(Path(t.user_attrs["run_dir"]))
        out.append((spent, best_test))
    return out


def at_minutes(curve: list[tuple[float, float]], minutes: float) -> float:
    """The curve's value once ``minutes`` CPU-minutes were spent (nan before its first point)."""
    values = [v for m, v in curve if m <= minutes]
    return values[-1] if values else float("nan")


def draw(curves: dict[str, list[list[tuple[float, float]]]], budget: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, budget, 200)
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for name, runs in curves.items():
        ys = np.array([[at_minutes(c, m) for m in grid] for c in runs]) * 100
        ok = ~np.isnan(ys).any(axis=0)
        ax.plot(grid[ok], ys[:, ok].mean(axis=0), label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(grid[ok], ys[:, ok].min(axis=0), ys[:, ok].max(axis=0), alpha=0.2)
    ax.set_xlabel("CPU-minutes spent (sum of trial durations)")
    ax.set_ylabel("test accuracy of the best trial so far (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="default-space")
    ap.add_argument("--minutes", type=float, default=5.0, help="wall budget of each search")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--strategies", nargs="+", default=list(STRATEGIES), choices=list(STRATEGIES))
    ap.add_argument("--studies-dir", default="bench-strategies")
    ap.add_argument("--data", help="data set instead of the space's (e.g. a small .npz)")
    ap.add_argument("--quick", action="store_true", help="0.3 minutes, 1 seed; writes no section")
    args = ap.parse_args()
    if args.quick:
        args.minutes, args.seeds = 0.3, args.seeds[:1]
    root = Path(args.studies_dir)
    curves: dict[str, list[list[tuple[float, float]]]] = {}
    for name in args.strategies:
        if name == "grid-fraction" and not _has_grid(args.space):
            print(f"{name}: skipped ('{args.space}' has continuous dimensions)", flush=True)
            continue
        curves[name] = [run_strategy(name, seed, args, root) for seed in args.seeds]
        print(name, [f"{c[-1][0]:.1f} CPU-min, test {c[-1][1]:.2%}" for c in curves[name]], flush=True)
    budget = max(c[-1][0] for runs in curves.values() for c in runs)
    marks = [budget / 4, budget / 2, budget]
    rows = []
    for name, runs in curves.items():
        cells = []
        for m in marks:
            v = np.array([at_minutes(c, m) for c in runs]) * 100
            cells.append(f"{np.nanmean(v):.2f}% ({np.nanmin(v):.2f}-{np.nanmax(v):.2f})")
        rows.append(f"| {name} | {len(runs)} | " + " | ".join(cells) + " |")
    out = root / "strategies.png" if args.quick else Path(__file__).with_name("strategies.png")
    draw(curves, budget, out)
    body = (f"Space `{args.space}`" + (f" on `{Path(args.data).name}`" if args.data else "")
            + f", {args.minutes:g} minutes of wall time per search, seeds "
            f"{', '.join(map(str, args.seeds))}. Test accuracy of the best trial so far (by dev "
            "accuracy, at the search's fidelity), mean and (min-max) over seeds, at a quarter, "
            "half and all of the CPU-minutes spent.\n\n"
            f"| strategy | seeds | {marks[0]:.1f} CPU-min | {marks[1]:.1f} CPU-min | {marks[2]:.1f} CPU-min |\n"
            "| --- | --- | --- | --- | --- |\n" + "\n".join(rows) + f"\n\n![strategies]({out.name})")
    print(body)
    if not args.quick:
        write_section("Search strategies: test accuracy against CPU-minutes", body,
                      f"python bench/strategies.py --space {args.space} --minutes {args.minutes:g} "
                      f"--seeds {' '.join(map(str, args.seeds))} --strategies {' '.join(args.strategies)}"
                      + (f" --data {args.data}" if args.data else ""))


def _has_grid(space: str) -> bool:
    from archtune.errors import ArchtuneError
    from archtune.search import load_space

    try:
        load_space(space).grid()
    except ArchtuneError:
        return False
    return True


if __name__ == "__main__":
    use_shared_data()
    main()
