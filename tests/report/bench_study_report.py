"""Time the report of a 1,000-trial study (the issue asks for under 10 seconds).

    python -m tests.report.bench_study_report [FOLDER] [--trials N]

Builds the study once (Optuna writes trials one by one: about a minute for 1,000) in FOLDER
(default /tmp/archtune-bench-study/study1000), then renders its report three times and prints
the times. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import optuna

from archtune.report.study_report import study_report
from tests.report.studies import make_study


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", default="/tmp/archtune-bench-study/study1000")
    ap.add_argument("--trials", type=int, default=1000)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    folder = Path(args.folder)
    if not (folder / "study.json").is_file():
        t0 = time.perf_counter()
        make_study(folder, args.trials, epochs=10)
        print(f"built a {args.trials}-trial study in {time.perf_counter() - t0:.1f} s")
    for i in range(3):
        t0 = time.perf_counter()
        out = study_report(folder, best_report=False)
        print(f"render {i + 1}: {time.perf_counter() - t0:.2f} s -> {out} "
              f"({out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
