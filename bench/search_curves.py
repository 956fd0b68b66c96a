"""Best dev accuracy against wall time for the studies that bench/search_bench.py made.

Reads the two studies (TPE + Hyperband, and plain random) from --studies-dir, and writes a table
and a figure (bench/search_curves.png) of the best dev accuracy found so far against seconds
since each search started.

    python bench/search_curves.py --studies-dir bench-studies
"""

from __future__ import annotations

import argparse
from pathlib import Path

from _results import write_section  # noqa: I001  (bench-local helper)

from archtune.search import open_study

ARMS = {"bench-default": "TPE + Hyperband (default)", "bench-random": "plain random, no pruning"}


def best_so_far(name: str, studies_dir: str) -> list[tuple[float, float]]:
    """(seconds since the first trial started, best dev accuracy so far) at each finished trial."""
    study, _ = open_study(name, studies_dir)
    trials = [t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None]
    start = min(t.datetime_start for t in trials)
    points, best = [], 0.0
    for t in sorted(trials, key=lambda t: t.datetime_complete):
        acc = t.user_attrs.get("dev_accuracy")
        if acc is not None:
            best = max(best, float(acc))
        points.append(((t.datetime_complete - start).total_seconds(), best))
    return points


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--studies-dir", default="bench-studies")
    args = ap.parse_args()
    curves = {label: best_so_far(name, args.studies_dir) for name, label in ARMS.items()}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for label, pts in curves.items():
        ax.step([p[0] for p in pts], [p[1] * 100 for p in pts], where="post", label=label, marker="o")
    ax.set_xlabel("seconds since the search started")
    ax.set_ylabel("best dev accuracy so far (%)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    out = Path(__file__).with_name("search_curves.png")
    fig.savefig(out, dpi=100)
    marks = [60, 120, 180, 240]
    rows = []
    for label, pts in curves.items():
        at = [max([a for s, a in pts if s <= m], default=float("nan")) * 100 for m in marks]
        rows.append(f"| {label} | " + " | ".join(f"{v:.2f}%" for v in at) + f" | {len(pts)} |")
    body = ("Best dev accuracy found so far (coarse fidelity: 12,000 images, at most 3 epochs), "
            "by seconds since the search started; figure: `bench/search_curves.png`.\n\n"
            "| strategy | " + " | ".join(f"{m} s" for m in marks) + " | trials |\n"
            "| --- | " + " | ".join("---" for _ in marks) + " | --- |\n" + "\n".join(rows) +
            "\n\n![best dev accuracy against wall time](search_curves.png)")
    write_section("Search: best dev accuracy against wall time", body,
                  f"python bench/search_curves.py --studies-dir {args.studies_dir}")
    print(body)


if __name__ == "__main__":
    main()
