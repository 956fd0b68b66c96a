"""`archtune tune` against the recipes at the same wall budget, per data set and seed.

    python bench/tune.py [--sets fmnist] [--minutes 25] [--seeds 0 1 2]
    python bench/tune.py --sets fmnist-2k digits fmnist-coarse5 --minutes 10
    python bench/tune.py --quick          # a tiny budget on digits, to test this script
    python bench/tune.py --report-only    # the section from the rows finished so far
    python bench/tune.py --dev-only --work /tmp/dev   # dev accuracy only, no test, no section:
                                                      # to check a rule before the test is read

Data sets: as bench/new_data.py builds them (digits, fmnist-2k, fmnist-coarse5, fmnist).
Arms, each given the whole budget (--minutes, less STARTUP_S for the command's start-up):
- tune: `archtune tune auto-space --data D --minutes M --seed S`: the delivered run.
- default, accurate: `archtune train RECIPE --data D --minutes M --seed S`.
Then `archtune evaluate RUN --split test`, once per arm and seed, after the arm ended (not
counted in the budget). Every choice inside tune is made on dev. "Above" means the mean test
accuracy is higher by more than the larger seed spread (max - min) of the two arms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from _results import ARCHTUNE, against, commit, evaluate_test, use_shared_data, write_section  # noqa: I001  (bench-local helper)
from new_data import REGISTERED, SETS, STARTUP_S, build, recipe_arm, spread

ARMS = ("tune", "default", "accurate")
TITLE = "Tune against the recipes at the same wall budget"


def tune_arm(source: str, seed: int, budget: float, out: Path) -> dict:
    import subprocess

    started = time.monotonic()
    subprocess.run([*ARCHTUNE, "tune", "auto-space", "--data", source, "--minutes",
                    f"{(budget - STARTUP_S) / 60:.4f}", "--seed", str(seed), "--study", "tune",
                    "--studies-dir", str(out / "studies"), "--runs-dir", str(out / "runs"), "--new"],
                   check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - started
    state = json.loads((out / "studies" / "tune" / "tune.json").read_text())
    winner = next(c for c in state["candidates"] if c["status"] == "delivered")
    other = [c for c in state["candidates"] if c["status"] != "delivered" and c["seconds"]]
    explore = sum(c["seconds"][-1] for c in other)
    label = (f"start point {winner['start_point']}" if winner["start_point"] is not None
             else f"mutation of {winner['parent']}" if winner["parent"] is not None else "sampled")
    detail = (f"{len(state['candidates'])} candidates; delivered trial {winner['number']} ({label}), "
              f"{winner['epochs'][-1]} epochs; rungs compared at epoch(s) "
              f"{', '.join(map(str, state.get('compared_at', []))) or '-'}; "
              f"exploration {explore / budget:.0%} of the budget, "
              f"delivered weights {winner['seconds'][-1] / budget:.0%}")
    return {"arm": "tune", "wall_s": wall, "run": str(Path(state["delivered"]).relative_to(out)),
            "detail": detail, "dev": state["dev_accuracy"]}


def run_one(name: str, arm: str, seed: int, minutes: float, work: Path, test: bool = True) -> dict:
    source = REGISTERED.get(name) or str(build(name, work))
    out = work / name / (f"{arm}-s{seed}" if minutes == 10 else f"{arm}-{minutes:g}m-s{seed}")
    budget = minutes * 60
    if arm == "tune":
        row = tune_arm(source, seed, budget, out)
        run = out / row["run"]
    else:
        row = recipe_arm(arm, source, seed, budget, out)
        run = out / "run"
        row["dev"] = json.loads((run / "metrics.json").read_text())["dev"]["accuracy"]
    row.update(set=name, seed=seed, minutes=minutes, budget_s=budget, commit=commit(),
               test=evaluate_test(run) if test else None)  # read once, after the arm ended
    return row


def report(rows: list[dict], command: str) -> None:
    lines = ["| data | minutes | arm | seeds | mean test | spread | mean dev | wall s (of budget) | commit | detail (first seed) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    verdicts = []
    for name, minutes in dict.fromkeys((r["set"], r["minutes"]) for r in rows):
        by_arm = {a: [r for r in rows if (r["set"], r["minutes"], r["arm"]) == (name, minutes, a)]
                  for a in ARMS}
        for arm, rs in by_arm.items():
            if not rs:
                continue
            tests = [100 * r["test"] for r in rs]
            walls = [r["wall_s"] for r in rs]
            lines.append(f"| {name} | {rs[0]['minutes']:g} | {arm} | {len(rs)} | "
                         f"{statistics.mean(tests):.2f}% | "
                         f"{f'{spread(tests):.2f}' if len(tests) > 1 else '-'} | "
                         f"{100 * statistics.mean(r['dev'] for r in rs):.2f}% | "
                         f"{statistics.mean(walls):.0f} ({rs[0]['budget_s']:.0f}) | "
                         f"{', '.join(sorted({r.get('commit', '?') for r in rs}))} | {rs[0]['detail']} |")
        if by_arm["tune"]:
            t = [100 * r["test"] for r in by_arm["tune"]]
            verdicts += [against(f"{name}, {minutes:g} minutes", "tune", t, recipe,
                                 [100 * r["test"] for r in by_arm[recipe]])
                         for recipe in ("default", "accurate") if by_arm[recipe]]
    write_section(TITLE, "\n".join(lines) + "\n\n" + "\n".join(verdicts), command)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", nargs="+", default=["fmnist"], choices=SETS)
    ap.add_argument("--minutes", type=float, default=25.0)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    ap.add_argument("--work", type=Path, default=Path("/tmp/archtune-bench-tune"))
    ap.add_argument("--quick", action="store_true", help="digits, 1 minute, one seed")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--dev-only", action="store_true", help="no test evaluation, no section")
    args = ap.parse_args()
    use_shared_data()
    if args.quick:
        args.sets, args.minutes, args.seeds = ["digits"], 1.0, [0]
    saved = args.work / "rows.json"
    rows = json.loads(saved.read_text()) if saved.exists() else []
    command = "python bench/tune.py " + " ".join(sys.argv[1:])
    if not args.report_only:
        for seed in args.seeds:  # seeds outermost: a stopped run still has every arm of seed 0
            for name in args.sets:
                for arm in args.arms:
                    row = run_one(name, arm, seed, args.minutes, args.work,
                                  test=not args.dev_only) | {"command": command}
                    rows = [r for r in rows if (r["set"], r["arm"], r["seed"], r["minutes"])
                            != (name, arm, seed, args.minutes)] + [row]
                    saved.parent.mkdir(parents=True, exist_ok=True)
                    saved.write_text(json.dumps(rows, indent=1))
                    shown = "-" if row["test"] is None else f"{row['test']:.2%}"
                    print(f"{name} {arm} seed {seed}: test {shown} dev {row['dev']:.2%} "
                          f"wall {row['wall_s']:.0f}s  {row['detail']}", flush=True)
    if not (args.quick or args.dev_only):
        if args.report_only:  # the section names the commands that measured its rows
            command = "; ".join(sorted({r.get("command", "?") for r in rows})) + " (rows); " + command
        report(rows, command)


if __name__ == "__main__":
    main()
