"""Search verbs: search, worker, studies, trials, best, retrain, spaces.

Optuna, torch and pandas are imported inside the commands, so ``archtune --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import click

from .._cli_common import echo_builtins, log_options, report_training
from ..errors import ArchtuneError, unknown

STUDIES_DIR = click.option("--studies-dir", default="studies", show_default=True, type=click.Path(),
                           help="Folder of study folders.")
STORAGE = click.option("--storage", help="Optuna storage URL, for a study without a folder here.")
FORMATS = ("table", "csv", "json", "parquet")


def _quiet_libraries() -> None:
    """One line per trial: epoch lines and Optuna's own messages only with -v."""
    import optuna

    debug = logging.getLogger("archtune").level == logging.DEBUG
    optuna.logging.set_verbosity(logging.INFO if debug else logging.WARNING)
    logging.getLogger("archtune.training").setLevel(logging.NOTSET if debug else logging.WARNING)


def _with_execution(kw: dict[str, Any]) -> dict[str, Any]:
    """The command's options as search()/worker() take them: how this process runs the trials
    grouped in an Execution, the search settings left unset dropped."""
    from ._run import Execution

    fields = ("threads", "device", "data_dir", "keep_runs", "loggers", "mlflow_uri")
    ex = Execution(**{k: kw[k] for k in fields} | {"loggers": list(kw["loggers"])})
    rest = {k: v for k, v in kw.items() if k not in fields and v is not None}
    return rest | {"execution": ex}


def _interrupted() -> None:
    click.echo("\ninterrupted: running trials were put back in the queue; run the same command "
               "to resume", err=True)
    sys.exit(130)


@click.command()
@click.argument("space")
@click.option("--study", help="Study name (default: the space's name; with --refine, STUDY-refine).")
@click.option("--storage", help="Optuna storage URL (default: sqlite:///STUDIES_DIR/STUDY/study.db).")
@STUDIES_DIR
@click.option("--trials", type=int, help="Trials the study should hold (default 20; a grid: all).")
@click.option("--timeout", type=float, help="Start no new trial after this many seconds.")
@click.option("--target", type=float, help="Stop once a trial reaches this dev accuracy (e.g. 0.93).")
@click.option("--sampler", help="grid | random | tpe (default: the space's, else tpe).")
@click.option("--pruner", help="none | median | sha | hyperband (default: median; none for grid).")
@click.option("--fraction", type=float, help="Grid: a seeded random share of it, rounded down (Talos).")
@click.option("--train-subset", type=int, help="Coarse pass: each trial trains on N images.")
@click.option("--epochs", type=int, help="At most N epochs per trial during the search.")
@click.option("--seed", type=int, help="Seed of the sampler, the grid order and each trial (default 0).")
@click.option("--jobs", type=int, help="Trials at once, each in its own process (cores are divided).")
@click.option("--threads", type=int, help="CPU threads per trial.")
@click.option("--device", help="cpu | cuda.")
@click.option("--data", "dataset", help="fashion-mnist | mnist | a .npz file or image folder.")
@click.option("--data-dir", help="Folder holding the data set's files (not part of the study).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override, e.g. train.epochs=5.")
@click.option("--refine", metavar="STUDY", help="Narrow the space around STUDY's top trials, full fidelity.")
@click.option("--top", type=int, help="With --refine: how many top trials (default 20%, at least 3).")
@click.option("--new", is_flag=True, help="Replace an existing study of this name (deletes its trials).")
@click.option("--keep-runs", is_flag=True, help="Keep each trial's run folder in STUDY/trials/N.")
@click.option("--dry-run", is_flag=True, help="Check the space, list the candidates, train nothing.")
@click.option("--create-only", is_flag=True, help="Create the study for 'archtune worker' processes.")
@log_options
@click.option("--dashboard", is_flag=True, help="Serve the live dashboard of the study while it runs.")
@click.option("--dashboard-port", default=8080, show_default=True, type=int, help="Its port.")
@click.option("--dashboard-host", default="127.0.0.1", show_default=True,
              help="Its address (other machines can reach it only if told so).")
def search(space: str, dataset: str | None, sets: tuple[str, ...], dry_run: bool, dashboard: bool,
           dashboard_port: int, dashboard_host: str, **kw: Any) -> None:
    """Search SPACE (a built-in space or a YAML/JSON file) and record every trial in a study.

    Running the same command again resumes the study.
    """
    from ._space import load_space

    overrides = ([f"data.dataset={json.dumps(dataset)}"] if dataset else []) + list(sets)
    loaded = load_space(space, overrides)
    if dry_run:
        if kw["refine"]:
            import dataclasses

            from ._refine import refine_space
            from ._study import attach

            parent = attach(kw["refine"], studies_dir=kw["studies_dir"])
            coarse = loaded.settings
            loaded = refine_space(loaded, parent.study, top=kw["top"])[0]
            loaded.settings = dataclasses.replace(coarse, train_subset=None, epochs=None,
                                                  fraction=None)  # as search() runs it
            kw = {**kw, "pruner": kw["pruner"] or parent.info.pruner}
        _dry_run(loaded, kw)
        return
    _quiet_libraries()
    from ._records import counts
    from ._run import search as run_search

    kw = _with_execution(kw)
    try:
        if dashboard and not kw["create_only"]:
            from ..dashboard.cli import beside_search

            with beside_search(loaded, kw, host=dashboard_host, port=dashboard_port):
                study = run_search(loaded, **kw)
        else:
            study = run_search(loaded, **kw)
    except KeyboardInterrupt:
        _interrupted()
    if kw["create_only"]:
        c = counts(study)
        click.echo(f"study '{study.study_name}' ready with {c['waiting']} queued trials; "
                   f"run: archtune worker {study.study_name} --storage URL")
        return
    _print_outcome(study)


def _dry_run(space: Any, kw: dict[str, Any]) -> None:
    from ._settings import settings

    s = settings(vars(space.settings), {k: kw[k] for k in ("sampler", "pruner", "trials", "fraction",
                                                            "train_subset", "epochs", "seed")},
                 where="search settings")
    click.echo(space.describe())
    epochs = s.epochs or "the spec's"
    fid = f"train subset {s.train_subset or 'all'}, at most {epochs} epochs per trial"
    click.echo(f"strategy: sampler {s.sampler}, pruner {s.pruner_name}, seed {s.seed}; {fid}")
    if s.sampler != "grid":
        click.echo(f"{s.trials or 20} trials, each proposed by the {s.sampler} sampler as the "
                   f"search runs (dry run: nothing trained)")
        return
    candidates, size = space.select(s.fraction, s.seed)
    share = f"{len(candidates):,} of {size:,} candidates" + (
        f" ({s.fraction:g} of the grid, rounded down)" if s.fraction else "")
    click.echo(f"grid: {share}, in seeded order (dry run: nothing trained)")
    for i, params in enumerate(candidates[: s.trials or len(candidates)]):
        click.echo(f"{i:>5}  {_check(space, params):<28}  "
                   + "  ".join(f"{k}={v}" for k, v in params.items()))


def _check(space: Any, params: dict[str, Any]) -> str:
    from ..specs import infer_shapes, spec_from_dict, totals

    try:
        t = totals(infer_shapes(spec_from_dict(space.resolve(params), source="candidate")))
    except ArchtuneError as err:
        return "invalid: " + str(err).removeprefix("candidate: ")[:60]
    return f"{t.params:>10,} params {t.flops / 1e6:>7.1f}M FLOPs"


def _value(v: Any) -> str:
    """A parameter value rounded for reading (0.1899, not 0.18987697514344648); --json and
    the trials table keep every digit."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _print_outcome(study: Any) -> None:
    from ._records import best_trial, counts

    c = counts(study)
    parts = ", ".join(f"{c[k]} {k}" for k in ("complete", "pruned", "failed", "invalid", "running",
                                                 "waiting") if c[k])
    if c["retried"]:
        parts += f"; {c['retried']} stopped early and ran again"
    click.echo(f"study '{study.study_name}': {c['done']} trials done ({parts or 'none'})")
    try:
        best = best_trial(study)
    except ArchtuneError:
        return
    click.echo(f"best dev accuracy {best.value * 100:.2f}% (trial {best.number}): "
               + "  ".join(f"{k}={_value(v)}" for k, v in best.params.items()))
    click.echo(f"next: archtune best {study.study_name}  |  archtune retrain {study.study_name}")


@click.command()
@click.argument("study")
@STORAGE
@STUDIES_DIR
@click.option("--trials", type=int, help="Trials the study should hold (default: the study's).")
@click.option("--timeout", type=float, help="Start no new trial after this many seconds.")
@click.option("--target", type=float, help="Stop once a trial reaches this dev accuracy.")
@click.option("--jobs", type=int, default=1, show_default=True, help="Trials at once (processes).")
@click.option("--threads", type=int, help="CPU threads per trial.")
@click.option("--device", help="cpu | cuda.")
@click.option("--data-dir", help="Folder holding the data set's files on this machine.")
@click.option("--keep-runs/--no-keep-runs", default=None, help="Keep trial run folders (default: as the study).")
@log_options
def worker(study: str, **kw: Any) -> None:
    """Join STUDY (here, or in --storage from another machine) and run its trials."""
    _quiet_libraries()
    from . import _run

    kw = _with_execution(kw)
    try:
        ran = _run.worker(study, **kw)
    except KeyboardInterrupt:
        _interrupted()
    click.echo(f"worker done ({ran} trials here)" if kw["jobs"] <= 1 else "workers done")


@click.command()
@STUDIES_DIR
@click.option("--storage", help="List every study in this Optuna storage instead.")
def studies(studies_dir: str, storage: str | None) -> None:
    """Studies with their progress and best dev accuracy."""
    from ._results import list_studies

    rows = list_studies(studies_dir, storage)
    if not rows:
        click.echo(f"no studies under {studies_dir}/")
        return
    click.echo(f"{'study':<28}{'sampler':<8}{'pruner':<10}{'done':>9}{'compl':>6}{'pruned':>7}"
               f"{'fail':>5}{'inval':>6}{'run':>4}{'best dev':>10}  best trial")
    for r in rows:
        if "error" in r:
            click.echo(f"{r['study'][:27]:<28}error: {r['error']}")
            continue
        best = f"{r['best'] * 100:.2f}%" if r["best"] is not None else "-"
        click.echo(f"{r['study'][:27]:<28}{r['sampler']:<8}{r['pruner']:<10}"
                   f"{r['done']:>4}/{r['trials'] or '-':<4}{r['complete']:>6}{r['pruned']:>7}"
                   f"{r['failed']:>5}{r['invalid']:>6}{r['running']:>4}{best:>10}  "
                   f"{'' if r['best_trial'] is None else r['best_trial']}")


@click.command()
@click.argument("study")
@click.option("--format", "fmt", default="table", show_default=True, help="table | csv | json | parquet.")
@click.option("--sort", default="number", show_default=True,
              help="Column to sort by (dev_accuracy sorts best first).")
@click.option("--reverse", is_flag=True, help="Reverse the order.")
@click.option("--all", "show_all", is_flag=True,
              help="Also list waiting trials (queued grid points that have not run yet).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to this file.")
@STORAGE
@STUDIES_DIR
def trials(study: str, fmt: str, sort: str, reverse: bool, show_all: bool, output: str | None,
           storage: str | None, studies_dir: str) -> None:
    """Every trial of STUDY that ran, as a row: parameters, metrics, epochs, state, duration,
    seed (--all: the waiting ones too)."""
    from ._records import trials_dataframe
    from ._study import open_study

    if fmt not in FORMATS:
        raise unknown("format", fmt, FORMATS, "--format")
    if fmt == "parquet" and not output:
        raise ArchtuneError("--format parquet writes a binary file: give -o FILE.parquet")
    df = _sorted(trials_dataframe(open_study(study, studies_dir, storage=storage)[0]), sort, reverse)
    waiting = int((df["state"] == "waiting").sum())
    if waiting and not show_all:
        df = df[df["state"] != "waiting"]
        click.echo(f"{waiting} waiting trials (queued, not run yet) not listed; --all lists them",
                   err=True)
    if fmt == "table":
        text = _table(df)
    elif fmt == "csv":
        text = df.to_csv(index=False)
    elif fmt == "json":
        text = df.to_json(orient="records", indent=2, date_format="iso")
    else:
        try:
            df.to_parquet(output, index=False)
        except ImportError:
            raise ArchtuneError("--format parquet needs pyarrow, which is not installed: "
                                "pip install 'archtune[parquet]'") from None
        click.echo(f"saved {len(df)} trials to {output}")
        return
    if output:
        Path(output).write_text(text)
        click.echo(f"saved {len(df)} trials to {output}")
    else:
        click.echo(text.rstrip("\n"))


def _sorted(df: Any, column: str, reverse: bool) -> Any:
    from ._records import PARAM

    col = column if column in df.columns else f"{PARAM}{column}"
    if col not in df.columns:
        raise unknown("column", column, [c.removeprefix(PARAM) for c in df.columns], "--sort")
    descending = col == "dev_accuracy"
    return df.sort_values(col, ascending=descending == reverse, na_position="last", kind="stable")


def _table(df: Any) -> str:
    from ._records import PARAM

    if df.empty:
        return "no trials yet"
    shown = df.drop(columns=["run_dir", "worker", "started", "retry_of", "retried_as"])
    shown = shown.rename(columns=lambda c: c.removeprefix(PARAM))
    shown["dev_accuracy"] = shown["dev_accuracy"].map(lambda v: "-" if v != v or v is None
                                                      else f"{v * 100:.2f}%")
    shown["duration_s"] = shown["duration_s"].map(lambda v: "-" if v != v or v is None else f"{v:.0f}s")
    shown["error"] = shown["error"].map(lambda e: "" if not e else str(e)[:60])
    return shown.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.4g}")


@click.command()
@click.argument("study")
@click.option("--json", "as_json", is_flag=True, help="Print everything as one JSON object.")
@STORAGE
@STUDIES_DIR
def best(study: str, as_json: bool, storage: str | None, studies_dir: str) -> None:
    """The best trial of STUDY: its parameters and metrics."""
    from ._results import best_summary
    from ._study import open_study

    b = best_summary(open_study(study, studies_dir, storage=storage)[0])
    if as_json:
        click.echo(json.dumps(b, indent=2, default=str))
        return
    click.echo(f"study '{b['study']}': best trial {b['trial']}, dev accuracy "
               f"{b['dev_accuracy'] * 100:.2f}% (dev loss {b['dev_loss']:.4f}, {b['epochs']} epochs, "
               f"{b['duration_s']:.0f}s)")
    click.echo(f"model: {b['params_count']:,} params, {b['flops']:,} FLOPs/image; seed {b['seed']}")
    for key, value in b["params"].items():
        click.echo(f"  {key:<28} {_value(value)}")
    if b["run_dir"]:
        click.echo(f"run folder: {b['run_dir']}")
    click.echo(f"retrain it: archtune retrain {b['study']}")


@click.command()
@click.argument("study")
@click.option("--trial", type=int, help="Trial number (default: the best complete trial).")
@click.option("--epochs", type=int, help="Epochs (default: the spec's full number).")
@click.option("--run-dir", type=click.Path(), help="Run folder (default: runs/STUDY-trialN-<time>).")
@click.option("--data-dir", help="Folder holding the data set's files.")
@click.option("--threads", type=int, help="CPU threads.")
@click.option("--device", help="cpu | cuda.")
@STORAGE
@STUDIES_DIR
@log_options
@click.pass_context
def retrain(ctx: click.Context, study: str, **kw: Any) -> None:
    """Retrain a trial of STUDY (the best by default) with its seed into a normal run folder."""
    from ._results import retrain as run_retrain

    kw["loggers"] = list(kw["loggers"])
    run = report_training(lambda: run_retrain(study, progress=not ctx.obj["quiet"], **kw))
    click.echo(f"test it: archtune evaluate {run.path} --split test")


@click.command()
@click.argument("pattern", default="*")
def spaces(pattern: str) -> None:
    """Built-in search spaces with their dimensions and grid sizes."""
    from ._space import list_spaces, load_space

    def row(name: str) -> str:
        space = load_space(name)
        try:
            size = f"{len(space.grid()):,}"
        except ArchtuneError:
            size = "-"
        return f"{name:<18}{len(space.dims):>5}{size:>8}  {space.raw.get('description', '')[:70]}"

    echo_builtins(list_spaces(pattern), "search space", pattern,
                  f"{'name':<18}{'dims':>5}{'grid':>8}  description", row)


COMMANDS = (search, worker, studies, trials, best, retrain, spaces)
