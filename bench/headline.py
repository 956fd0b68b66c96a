"""Regenerate the headline: every figure of the README's results table, at one commit, in one
section of bench/RESULTS.md.

    python bench/headline.py --list                  # the rows and their estimated minutes
    python bench/headline.py                         # every row, seeds 0 and 1 (about 5 hours)
    python bench/headline.py --rows default,fast     # some rows; the section keeps the others' lines
    python bench/headline.py --rows accurate --seeds 3
    python bench/headline.py --smoke                 # every row at tiny size (a few minutes),
                                                     # into a temporary file

Each row runs in a fresh process, one after another, with the code of the bench script that
owns the figure (named in its line: `archtune` commands as a user runs them, or the bench's own
loops), and the section gets one line per row: what it measures, the result, its target, seeds,
precision, what produced it, how long it took and the date and commit it ran at. Rerunning some
rows with --rows replaces their lines and keeps the others.

Accuracies are the mean ± spread (half the min-max range) over seeds 0..N-1. Each arm's final
model is tested once, after the arm made its own choice on the dev split; no trial or candidate
is tested, and nothing here prints a candidate's test accuracy (the speed rows read the test
split after every epoch, as their benches do, to time when an accuracy is reached; nothing is
chosen by it). A target is met when the mean less the spread reaches it, within noise when only
the mean plus the spread does, missed otherwise or when a run overran the target's time.

--smoke runs every row at tiny size (400 training and 200 test images of Fashion-MNIST, 1 epoch
or a few seconds of budget, one seed unless --seeds says otherwise) to check this script, and
writes its section to a temporary file (or --results), never to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import _results  # noqa: I001  (bench-local helpers)
import recipes
from _results import mean_spread, verdict  # noqa: F401  (verdict: the rule, tested here)

TITLE = "Headline figures, regenerated"
SMOKE_TITLE = TITLE + " (smoke run: tiny sizes, not the benchmark)"
CORES = 2  # the reference machine's, for the CPU-minute estimates
SMOKE_BUDGET_S = 6.0  # the search row's wall budget per arm in a smoke run


@dataclass
class Ctx:
    """What a row's measurement is given, in its own process."""

    seeds: list[int]
    smoke: bool
    work: Path  # the row's own folder (runs, studies)
    tiny: Path | None  # the smoke data set (.npz), only with --smoke
    dates: set[str] = field(default_factory=set)  # when the row's units were measured


def unit(ctx: Ctx, name: str, measure: Callable[[Path], dict]) -> dict:
    """One unit of a row (a seed's run, an arm) in its folder ``ctx.work/name``: measured now, or
    kept from an earlier call with the same --work at the same commit, on the same machine and at
    the same size, so that a row of hours can be stopped and taken up again. Nothing is kept from a
    checkout with modified files, and a unit that did not finish is measured again from nothing."""
    out = ctx.work / name
    record = out / "unit.json"
    key = {"commit": _results.commit(), "machine": _results.machine(), "smoke": ctx.smoke}
    if record.exists() and "(modified)" not in key["commit"]:
        saved = json.loads(record.read_text())
        if saved.get("key") == key:
            print(f"{name}: kept, measured on {saved['date']}", file=sys.stderr, flush=True)
            ctx.dates.add(saved["date"])
            return saved["result"]
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    result = measure(out)
    date = time.strftime("%Y-%m-%d")
    record.write_text(json.dumps({"key": key, "date": date, "result": result}))
    ctx.dates.add(date)
    return result


@dataclass(frozen=True)
class Row:
    what: str  # the figure, as the README or docs/benchmarks.md names it
    section: str  # the bench/RESULTS.md section that holds the same measurement in detail
    fixed_min: float  # estimated wall minutes on 2 cores (bf16 CPU): once ...
    seed_min: float  # ... plus this per seed (0: one run, no accuracy quoted)
    measure: Callable[[Ctx], dict]

    def minutes(self, seeds: int) -> float:
        return self.fixed_min + self.seed_min * seeds


def pct(values: list[float]) -> str:
    """'mean% ± spread%' over seeds."""
    mean, spread = mean_spread(values)
    return f"{mean:.2%} ± {spread:.2%}"


def versus(a: list[float], b: list[float]) -> str:
    """Whether ``a`` wins, ties or loses against ``b``: the difference of the means against the
    larger spread."""
    (ma, sa), (mb, sb) = mean_spread(a), mean_spread(b)
    diff, noise = 100 * (ma - mb), 100 * max(sa, sb)
    if min(len(a), len(b)) < 2:
        return f"not judged ({diff:+.2f} points; one seed)"
    word = "wins" if diff > noise else "loses" if -diff > noise else "ties"
    return f"{word} ({diff:+.2f} points; larger spread {noise:.2f})"


def _precision(run: Path) -> str:
    return json.loads((run / "env.json").read_text()).get("precision", "?")


# --- the rows -----------------------------------------------------------------------------------

def recipe_row(recipe: str, target: Callable[[], tuple[float, float]]) -> Callable[[Ctx], dict]:
    """`archtune train NAME [--epochs N] --seed S` then one test evaluation, per seed
    (bench/recipes.py); ``target``: (most wall seconds, least mean test accuracy)."""
    def measure(ctx: Ctx) -> dict:
        base, _, epochs = recipe.partition("@")
        run_as, extra = (f"{base}@1", ["--data", str(ctx.tiny)]) if ctx.smoke else (recipe, [])
        rs = [unit(ctx, f"s{seed}", lambda out, seed=seed: recipes.run_recipe(run_as, seed, out, extra))
              for seed in ctx.seeds]
        walls = [r["wall"] for r in rs]
        wall, wall_s = mean_spread(walls)
        per_seed = ", ".join(f"{r['seed']}: {r['test']:.2%} in {r['wall']:.0f} s" for r in rs)
        most_s, least = target()
        name = "" if base == "default" else f" {base}"
        return {"result": f"{pct([r['test'] for r in rs])} mean test, {wall:.0f} ± {wall_s:.0f} s "
                          f"per run, {rs[0]['epochs']} epoch(s) (per seed {per_seed})",
                "target": verdict([r["test"] for r in rs], least, walls, most_s),
                "precision": ", ".join(sorted({r["precision"] for r in rs})),
                "by": f"`archtune train{name}{f' --epochs {epochs}' if epochs else ''} --seed S`, "
                      "then `archtune evaluate RUN --split test` (bench/recipes.py)"}
    return measure


def _longer_target() -> tuple[float, float]:
    import search_bench  # (imports Optuna: not for --list)

    return search_bench.TARGET_S, search_bench.TARGET_ACC  # the 94% target, within 25 minutes


def speed_row(ctx: Ctx) -> dict:
    """bench/train_bench.py: archtune against a plain PyTorch loop, `default`, each precision."""
    import train_bench

    from archtune.data import load_dataset, test_split
    from archtune.training.device import cpu_has_bf16

    ds = load_dataset(str(ctx.tiny) if ctx.smoke else "fashion-mnist")
    test = test_split(ds)
    precisions = ["bf16", "fp32"] if cpu_has_bf16() else ["fp32"]
    parts, epochs = [], 0
    for precision in precisions:
        spec, loops = train_bench.compare("default", precision, ds, test.x, test.y,
                                          sets=["train.epochs=1"] if ctx.smoke else [],
                                          run_root=ctx.work)
        own, plain = (r["s_epoch"] for r in loops)
        parts.append(f"{own:.1f} against {plain:.1f} s/epoch ({precision})")
        epochs = spec.train.epochs
    if len(precisions) == 1:
        parts.append("bf16 not run: the CPU has no native bf16")
    return {"result": "archtune against the plain loop: " + "; ".join(parts)
                      + f"; `default`, {epochs} epoch(s), one run each",
            "target": "-", "precision": ", ".join(precisions), "seeds": "1 (timing)",
            "by": "bench/train_bench.py `compare`: `archtune.train` and a plain PyTorch loop, same "
                  "model, splits and precision"}


def keras_row(ctx: Ctx) -> dict:
    """bench/keras_compare.py: the classic CNN in Keras, a plain loop and archtune, per seed."""
    import keras_compare
    from train_bench import time_to

    arms: dict[str, list[dict]] = {}
    for seed in ctx.seeds:
        done, _ = keras_compare.measure(1 if ctx.smoke else 15,
                                        data=str(ctx.tiny) if ctx.smoke else "fashion-mnist",
                                        seed=seed, run_root=ctx.work)
        for arm in done:
            arms.setdefault(arm["label"], []).append(arm)
    parts = [] if any(k.startswith("Keras") for k in arms) else [
        "Keras not run: TensorFlow is not installed (pip install tensorflow)"]
    target = keras_compare.TARGET
    for label, runs in arms.items():
        per_epoch = mean_spread([r["curve"][-1][0] / len(r["curve"]) for r in runs])
        reached = [time_to(r["curve"], target) for r in runs]
        if all(reached):
            t, t_s = mean_spread([r[0] for r in reached])
            when = f"{target:.0%} test after {t:.0f} ± {t_s:.0f} s"
        else:
            when = f"{target:.0%} test not reached in {reached.count(None)} of {len(runs)} seeds"
        name = label.split(" (")[0] if label.startswith("Keras") else label
        if label.startswith("archtune, "):
            name = f"archtune at {runs[0]['precision'].split(' (')[0]}"
        parts.append(f"{name} {per_epoch[0]:.1f} ± {per_epoch[1]:.1f} s/epoch, {when}")
    auto = next((r[0]["precision"].split(" (")[0] for k, r in arms.items()
                 if k.startswith("archtune, ")), "auto")
    return {"result": "; ".join(parts) + f" (cnn-classic, Adam, batch 32, "
                                         f"{1 if ctx.smoke else 15} epoch(s))",
            "target": "-", "precision": f"fp32 (last arm: {auto})",
            "by": "bench/keras_compare.py `measure`: Keras `fit`, a plain PyTorch loop and "
                  "`archtune.train`, same splits"}


def search_row(ctx: Ctx) -> dict:
    """Fashion-MNIST, 25 minutes each: `tune` (bench/tune.py), search (auto-space, 40% of the
    time) + `retrain --minutes` (bench/new_data.py), and `accurate --minutes 25`; each arm of
    each seed a unit of its own (kept when the row is taken up again)."""
    import new_data
    import tune as tune_bench
    from _results import evaluate_test

    budget, share = (SMOKE_BUDGET_S if ctx.smoke else 25 * 60.0), 0.4
    source = str(ctx.tiny) if ctx.smoke else new_data.REGISTERED["fmnist"]

    def arm(name: str, seed: int, out: Path) -> dict:
        if name == "accurate":
            r = new_data.recipe_arm("accurate", source, seed, budget, out)
        elif name == "tune":
            r = tune_bench.tune_arm(source, seed, budget, out)
        else:
            r = new_data.search_arm(source, seed, budget, share, out)
        run = out / r.pop("run")
        started = time.monotonic()
        r["test"] = evaluate_test(run)  # once, after the arm's choice
        r["eval_s"] = time.monotonic() - started
        r["precision"] = _precision(run)
        print(f"search-25 seed {seed} {name}: {r['wall_s']:.0f} s ({r['detail']})",
              file=sys.stderr, flush=True)
        return r

    by_arm: dict[str, list[dict]] = {"tune": [], "accurate": [], "search": []}
    for seed in ctx.seeds:  # seed by seed: a row stopped part way has whole seeds done
        for name, rows in by_arm.items():
            rows.append(unit(ctx, f"s{seed}/{name}", lambda out, n=name, s=seed: arm(n, s, out)))
    test = {name: [r["test"] for r in rows] for name, rows in by_arm.items()}
    least = new_data.TARGETS["fmnist"] / 100
    minutes = f"{budget / 60:.3g}"
    return {"result": f"`archtune tune` {pct(test['tune'])}, `archtune train accurate --minutes "
                      f"{minutes}` {pct(test['accurate'])}, search + retrain {pct(test['search'])} "
                      f"mean test; tune against `accurate`: {versus(test['tune'], test['accurate'])}"
                      f"; against search + retrain: {versus(test['tune'], test['search'])}",
            "target": "; ".join(f"{name}: " + verdict(test[name], least,
                                                      [r["wall_s"] + r["eval_s"]
                                                       for r in by_arm[name]], budget)
                                for name in ("tune", "search")),
            "precision": ", ".join(sorted({r["precision"] for rows in by_arm.values()
                                           for r in rows})),
            "by": f"`archtune tune auto-space --minutes {minutes} --seed S` (bench/tune.py); "
                  f"`archtune train accurate --minutes {minutes}`; `archtune search auto-space "
                  f"--timeout {share * budget:.0f} --seed S`, `archtune retrain STUDY --finalists 1 "
                  "--seeds 1 --minutes REST` (bench/new_data.py); then `archtune evaluate RUN "
                  "--split test`"}


def serving_row(ctx: Ctx) -> dict:
    """bench/serve_bench.py: the HTTP load test and batch prediction, this checkout only."""
    import serve_bench

    from archtune.data import load_dataset, test_split

    run = serve_bench.quick_run(ctx.work, images=500 if ctx.smoke else 5000)
    images = (test_split(load_dataset("fashion-mnist")).x[:, 0] * 255).round().byte().numpy()
    images = images[:300] if ctx.smoke else images
    requests, concurrency = (200 if ctx.smoke else 3000), 32
    [server] = serve_bench.serve_load(run, images, requests, concurrency, 240.0,
                                      {"this checkout": None}, 1)
    f = server.figures()
    p = serve_bench.predict_rates(run, images, ctx.work)
    n = p["images"]
    return {"result": f"{f['rps']:,.0f} requests/s, p50 {f['p50']:.1f} ms, p99 {f['p99']:.1f} ms, "
                      f"{f['errors']} errors, mean batch {f['mean_batch']:.1f} ({f['requests']:,} "
                      f"single-PNG requests at concurrency {concurrency}, cnn-small; other processes "
                      f"used {f['others']:.2f} cores); predicting {n:,} test images: "
                      f"{n / p['tensor_s']:,.0f} images/s forward pass only, "
                      f"{n / p['files_s']:,.0f} through `Predictor.predict_files`, "
                      f"{n / p['cli_s']:,.0f} for the whole `archtune predict` command",
            "target": "-", "precision": "fp32 (serving)", "seeds": "1 (timing)",
            "by": "`archtune serve RUN` under bench/serve_bench.py's load client; `archtune predict "
                  "RUN FOLDER --json`"}


def faults_row(ctx: Ctx) -> dict:
    """bench/faults.py: the kill-and-resume matrix (PostgreSQL too when ARCHTUNE_TEST_PG_URL is
    set); a smoke run kills `archtune train` only."""
    import faults

    pg_url = os.environ.get("ARCHTUNE_TEST_PG_URL")
    rows, minutes = faults.run_matrix(pg_url, "train" if ctx.smoke else "")
    counts = ("lost", "rerun", "replayed", "orphans", "running")
    damaged = [r.case for r in rows if any(getattr(r, c) for c in counts)]
    return {"result": f"{len(rows)} case(s) in {minutes:.1f} min: "
                      + ("no completed trial lost or rerun, no point replayed, no orphan process, "
                         "no run left running" if not damaged else "damage in " + ", ".join(damaged))
                      + ("" if pg_url else "; PostgreSQL not tested (no ARCHTUNE_TEST_PG_URL)"),
            "target": f"every count 0: **{'missed' if damaged else 'met'}**", "precision": "-",
            "seeds": "-",
            "by": "`archtune search ... --keep-runs` and `archtune train` killed with SIGKILL, then "
                  "the same command again (bench/faults.py)"}


def plan_row(ctx: Ctx) -> dict:
    """bench/plan_bench.py: `archtune plan homework` from an empty folder, then its PDF report."""
    import plan_bench

    smoke = (["--set", "train.epochs=1", "--set", f"data.dataset={ctx.tiny}", "--trials", "2"]
             if ctx.smoke else [])
    done = []
    for seed in ctx.seeds:
        m = plan_bench.measure("homework", ctx.work / f"s{seed}",
                               ["--set", f"train.seed={seed}", *smoke])
        records, precisions = plan_bench.steps(m["folder"])
        m["tests"] = {r["name"]: r["test"] for r in records if r["kind"] == "test"}
        m["precisions"] = precisions
        done.append(m)
    wall, wall_s = mean_spread([m["wall"] / 60 for m in done])
    cpu = mean_spread([m["cpu"] / 60 for m in done])[0]
    report = mean_spread([m["report_wall"] for m in done])[0]
    tests = "; ".join(f"{label} {pct([m['tests'][name] for m in done])} test"
                      for name, label in (("cnn-grid", "retrained grid winner"),
                                          ("cnn-classic", "cnn-classic"))
                      if all(m["tests"].get(name) is not None for m in done))
    return {"result": f"{wall:.1f} ± {wall_s:.1f} min wall, {cpu:.1f} CPU-min; `archtune report "
                      f"--pdf` {report:.0f} s, {done[-1]['pages']} pages; {tests}",
            "target": "-",
            "precision": ", ".join(sorted(set().union(*(m["precisions"] for m in done)))) or "?",
            "by": "`archtune plan homework --set train.seed=S`, then `archtune report FOLDER --pdf` "
                  "(bench/plan_bench.py)"}


RECIPES = "built-in-recipes-as-a-user-runs-them"
ROWS: dict[str, Row] = {  # name -> row, in the order of the README's table, then the docs'
    "default": Row("`archtune train` (the `default` recipe, 8 epochs)", RECIPES, 0, 1.9,
                   recipe_row("default", lambda: recipes.TARGETS["default"])),
    "fast": Row("`archtune train --epochs 2` (the fast setting)", RECIPES, 0, 0.7,
                recipe_row("default@2", lambda: (30.0, recipes.TALOS_BEST))),
    "accurate": Row("`archtune train accurate` (36 epochs)", RECIPES, 0, 25.6,
                    recipe_row("accurate", lambda: recipes.TARGETS["accurate"])),
    "longer": Row("`archtune train --epochs 30`", "longer-schedule-of-the-default-recipe-94-target",
                  0, 10.3, recipe_row("default@30", _longer_target)),
    "speed": Row("speed against a plain PyTorch loop, same model and precision",
                 "training-speed-archtune-vs-a-plain-pytorch-loop-same-precision", 11, 0, speed_row),
    "keras": Row("speed against Keras 3 (classic CNN, fp32)",
                 "keras-against-archtune-and-a-plain-pytorch-loop-classic-cnn", 0, 15.5, keras_row),
    "search-25": Row("25 minutes on Fashion-MNIST: `tune`, and search + retrain, against "
                     "`accurate --minutes 25`",
                     "search-on-fashion-mnist-against-the-recipes-25-minutes", 0, 78, search_row),
    "serving": Row("`archtune serve`: HTTP load test and batch prediction",
                   "serving-http-load-test-and-batch-prediction", 3, 0, serving_row),
    "faults": Row("searches and training killed with SIGKILL, then resumed",
                  "faults-kill-resume-count-the-damage", 5.5, 0, faults_row),
    "plan": Row("`archtune plan homework` from an empty folder, then its PDF report",
                "plan-homework-end-to-end", 0, 20, plan_row),
}


# --- the driver ---------------------------------------------------------------------------------

def listing(names: list[str], seeds: int) -> str:
    """The rows with their estimated wall minutes on 2 cores and CPU-minutes at ``seeds`` seeds."""
    lines = [f"{'row':10} {'wall min':>9} {'CPU-min':>8}  {'':11} what (bench/RESULTS.md section)"]
    for name in names:
        row = ROWS[name]
        wall = row.minutes(seeds)
        hours = "needs hours" if wall * CORES >= 60 else ""
        lines.append(f"{name:10} {wall:9.0f} {wall * CORES:8.0f}  {hours:11} {row.what} "
                     f"(#{row.section})")
    total = sum(ROWS[n].minutes(seeds) for n in names)
    lines.append(f"{'total':10} {total:9.0f} {total * CORES:8.0f}  ({total / 60:.1f} hours wall; "
                 f"estimates for {seeds} seed(s) on a 2-core CPU with native bf16; needs hours: "
                 "60 CPU-min or more; a smoke run takes a few minutes)")
    return "\n".join(lines)


def cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def run_row(name: str, args: argparse.Namespace, seeds: int, work: Path,
            tiny: Path | None) -> dict:
    """The row in a fresh process (this script's --one); its line's cells, or the failure."""
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "row.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--out", str(out),
           "--seeds", str(seeds), "--work", str(folder)]
    cmd += ["--smoke", "--data", str(tiny)] if args.smoke else []
    print(f"== {name}: {ROWS[name].what} (estimated {ROWS[name].minutes(seeds):.0f} min)",
          file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(cmd, cwd=folder)
    took = (time.monotonic() - started) / 60
    result = json.loads(out.read_text()) if out.exists() else {}
    failed = bool(done.returncode) or "error" in result
    if failed:
        why = result.get("error") or f"exit code {done.returncode}"
        result = {"result": f"**failed**: {why}", "target": "-", "precision": "-", "by": "-"}
    result.setdefault("seeds", str(seeds))
    result["took"] = f"{took:.1f} min"
    result["failed"] = failed
    return result


def existing_lines(path: Path, title: str) -> dict[str, str]:
    """The row lines of ``title``'s section in ``path``, by row name."""
    text = path.read_text() if path.exists() else ""
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    lines = {}
    for line in (found.group(1).splitlines() if found else []):
        name = line[2:].split(" |", 1)[0] if line.startswith("| ") else ""
        if name in ROWS:
            lines[name] = line
    return lines


def section(results: dict[str, dict], kept: dict[str, str], smoke: bool,
            load_start: str) -> str:
    import torch

    from archtune.training.device import resolve_precision

    precision, why = resolve_precision("auto", torch.device("cpu"))
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in _results.cpu_flags().items())
    today, at = time.strftime("%Y-%m-%d"), f"at {_results.commit()} on {_results.cpu_name()}"
    head = [f"CPU flags for precision: {flags}; `--precision auto` on this CPU: {precision} "
            f"({why}). Load average at the start (1, 5, 15 min): {load_start}. Seeds 0..N-1, "
            "N in each row's 'seeds' cell.", ""]
    if smoke:
        head += ["**Smoke run**: every row at tiny size (400 training and 200 test images, 1 epoch "
                 "or a few seconds of budget); it checks the script, not the figures.", ""]
    head += ["Each row ran in a fresh process, one after another; rerun one with `python "
             "bench/headline.py --rows NAME` (its line is replaced, the others kept). Accuracies: "
             "mean ± spread (half the min-max range) over seeds; each arm's final model tested "
             "once, after its own choice on dev; no candidate tested. A target is met when the mean "
             "less the spread reaches it, within noise when only the mean plus the spread does, "
             "missed otherwise or when a run overran its time. A row stopped part way goes on "
             "with the same `--work`: the seeds and arms it finished at the same commit on the "
             "same machine are kept, each dated in 'ran'; 'took' counts the last call only.", ""]
    if kept:
        head += [f"Not every row ran in the call that wrote this header: {', '.join(kept)} kept "
                 "from an earlier call (see 'ran').", ""]
    head += ["| row | what | result | target | seeds | precision | produced by | took | ran |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in ROWS:
        if name in results:
            r = results[name]
            head.append("| " + " | ".join(cell(c) for c in (
                name, ROWS[name].what, r["result"], r["target"], r["seeds"], r["precision"],
                r["by"], r["took"], f"{', '.join(r.get('dates') or [today])} {at}")) + " |")
        elif name in kept:
            head.append(kept[name])
    return "\n".join(head)


def child(args: argparse.Namespace) -> None:
    """--one NAME: measure one row in this process and write its cells as JSON to --out."""
    ctx = Ctx(list(range(args.seeds)), args.smoke, Path(args.work),
              Path(args.data) if args.data else None)
    out = Path(args.out)
    try:
        result = ROWS[args.one].measure(ctx)
        out.write_text(json.dumps({**result, "dates": sorted(ctx.dates)}))
    except (Exception, SystemExit) as err:  # a failed subprocess raises SystemExit in the benches
        message = str(err).strip().splitlines()
        out.write_text(json.dumps({"error": f"{type(err).__name__}: "
                                            f"{message[-1] if message else ''}"[:300]}))
        raise


def parse_rows(text: str | None) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()] if text else list(ROWS)
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise SystemExit(f"unknown row(s) {', '.join(unknown)}; the rows: {', '.join(ROWS)}")
    return names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("--rows", help=f"comma-separated rows to run (default: all: {','.join(ROWS)})")
    ap.add_argument("--list", action="store_true", help="print the rows and their estimated "
                    "minutes; run nothing")
    ap.add_argument("--seeds", type=int, help="seeds 0..N-1 for the rows that quote an accuracy "
                    "(default: 2; 1 with --smoke)")
    ap.add_argument("--smoke", action="store_true", help="every row at tiny size (a few minutes); "
                    "writes to a temporary file, never to bench/RESULTS.md")
    ap.add_argument("--results", type=Path, help="write the section to this file (default: "
                    "bench/RESULTS.md; with --smoke a temporary file)")
    ap.add_argument("--work", type=Path, help="folder for the runs and studies, kept (default: a "
                    "temporary one, removed at the end)")
    ap.add_argument("--one", choices=list(ROWS), help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    names = parse_rows(args.rows)
    seeds = args.seeds or (1 if args.smoke else 2)
    if seeds < 1:
        raise SystemExit("--seeds must be at least 1")
    if args.one:
        args.seeds = seeds
        return child(args)
    if args.list:
        print(listing(names, seeds))
        return
    if seeds < 2 and not args.smoke:
        print("warning: one seed gives no spread; no target can be met", file=sys.stderr)
    results_path = args.results
    if args.smoke and results_path is None:
        fd, name = tempfile.mkstemp(prefix="headline-smoke-", suffix=".md")
        os.close(fd)
        results_path = Path(name)
        results_path.unlink()  # write_section starts a new file
    results_path = (results_path or _results.RESULTS).resolve()
    if args.smoke and results_path == _results.RESULTS.resolve():
        raise SystemExit("--smoke never writes to bench/RESULTS.md: give --results another file")
    _results.RESULTS = results_path
    work = args.work or Path(tempfile.mkdtemp(prefix="headline-"))
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    load_start = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    tiny = None
    if args.smoke:
        import new_data

        tiny = new_data.build("fmnist-tiny", work)
    results = {name: run_row(name, args, seeds, work, tiny) for name in names}
    title = SMOKE_TITLE if args.smoke else TITLE
    kept = {k: v for k, v in existing_lines(results_path, title).items() if k not in results}
    body = section(results, kept, args.smoke, load_start)
    command = "python bench/headline.py" + (f" --rows {','.join(names)}" if args.rows else "") + \
        f" --seeds {seeds}" + (" --smoke" if args.smoke else "")
    _results.write_section(title, body, command)
    if args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    print(body)
    print(f"\nwritten to {results_path}")
    if any(r["failed"] for r in results.values()):
        raise SystemExit(f"failed: {', '.join(n for n, r in results.items() if r['failed'])}")


if __name__ == "__main__":
    _results.use_shared_data()
    main()
