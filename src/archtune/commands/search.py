"""Search verbs that run trials: search, worker, retrain (those that read: cli_read.py).

Optuna, torch and pandas are imported inside the commands, so ``archtune --help`` stays fast.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from ..errors import ArchtuneError
from ..search import value_of
from .common import THREADS, log_options, report_training
from .dashboard import beside_study

STUDIES_DIR = click.option("--studies-dir", default="studies", show_default=True, type=click.Path(),
                           help="Folder of study folders.")
STORAGE = click.option("--storage", help="Optuna storage URL, for a study without a folder here.")
FORMATS = ("table", "csv", "json", "parquet")


def quiet_libraries() -> None:
    """One line per trial: epoch lines and Optuna's own messages only with -v."""
    import optuna

    debug = logging.getLogger("archtune").level == logging.DEBUG
    optuna.logging.set_verbosity(logging.INFO if debug else logging.WARNING)
    logging.getLogger("archtune.training").setLevel(logging.NOTSET if debug else logging.WARNING)


def _jobs_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | str | None:
    """--jobs N or --jobs auto."""
    if value is None or value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number of processes or 'auto', got '{value}'") from None
    if n < 1:
        raise click.BadParameter(f"must be >= 1 or 'auto', got {n}")
    return n


def _with_execution(kw: dict[str, Any]) -> dict[str, Any]:
    """The command's options as search()/worker() take them: how this process runs the trials
    grouped in an Execution, the search settings left unset dropped."""
    from ..search import Execution

    fields = ("threads", "device", "data_dir", "keep_runs", "loggers", "mlflow_uri")
    ex = Execution(**{k: kw[k] for k in fields if k in kw} | {"loggers": list(kw.get("loggers") or ())})
    rest = {k: v for k, v in kw.items() if k not in fields and v is not None}
    return rest | {"execution": ex}


def _interrupted() -> None:
    click.echo("\ninterrupted: running trials were put back in the queue; run the same command "
               "to resume", err=True)
    sys.exit(130)


@click.command()
@click.argument("space", default="auto-space")
@click.option("--study", help="Study name (default: the space's name; with --refine, STUDY-refine).")
@click.option("--storage", help="Optuna storage URL (default: sqlite:///STUDIES_DIR/STUDY/study.db).")
@STUDIES_DIR
@click.option("--trials", type=int, help="Trials the study should hold (default 20; a grid: all).")
@click.option("--timeout", type=float, help="After this many seconds start no new trial and stop the one in flight after its epoch.")
@click.option("--target", type=float, help="Stop once a trial reaches this dev accuracy (e.g. 0.93).")
@click.option("--sampler", help="grid | random | tpe (default: the space's, else tpe).")
@click.option("--pruner", help="none | median | sha | hyperband (default: median; none for grid).")
@click.option("--fraction", type=float, help="Grid: a seeded random share of it, rounded down (Talos).")
@click.option("--objectives", metavar="LIST|pareto",
              help="Accuracy against cost: dev_accuracy,params (or flops, latency_ms); pareto: "
                   "dev_accuracy,params. The report draws the Pareto front.")
@click.option("--train-subset", type=int, help="Coarse pass: each trial trains on N images.")
@click.option("--epochs", type=int, help="At most N epochs per trial during the search.")
@click.option("--seed", type=int, help="Seed of the sampler, the grid order and each trial (default 0).")
@click.option("--jobs", callback=_jobs_option, metavar="N|auto",
              help="Trials at once, each in its own process (cores are divided); auto: by model size.")
@click.option("--threads", type=THREADS, help="CPU threads per trial.")
@click.option("--device", help="cpu | cuda.")
@click.option("--data", "dataset", help="fashion-mnist | mnist | a .npz file or image folder.")
@click.option("--data-dir", help="Folder holding the data set's files (not part of the study).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override, e.g. train.epochs=5.")
@click.option("--refine", metavar="STUDY", help="Narrow the space around STUDY's top trials, full fidelity.")
@click.option("--top", type=int, help="With --refine: how many top trials (default 20%, at least 3).")
@click.option("--new", is_flag=True, help="Replace an existing study of this name (deletes its trials).")
@click.option("--keep-runs", is_flag=True, help="Keep each trial's run folder in STUDY/trials/N.")
@click.option("--dry-run", is_flag=True, help="Check the space, list the candidates, train nothing.")
@click.option("--fidelity", type=click.Choice(["check"]),
              help="check: train --trials (default 8) random candidates at the low fidelity and "
                   "fully, and print their rank correlation; no study is written.")
@click.option("--create-only", is_flag=True, help="Create the study for 'archtune worker' processes.")
@log_options
@click.option("--dashboard", is_flag=True, help="Serve the live dashboard of the study while it runs.")
@click.option("--dashboard-port", default=8080, show_default=True, type=int, help="Its port.")
@click.option("--dashboard-host", default="127.0.0.1", show_default=True,
              help="Its address (other machines can reach it only if told so).")
def search(space: str, dataset: str | None, sets: tuple[str, ...], dry_run: bool, dashboard: bool,
           dashboard_port: int, dashboard_host: str, fidelity: str | None, **kw: Any) -> None:
    """Search SPACE (a built-in space or a YAML/JSON file; default auto-space) and record every
    trial in a study.

    Running the same command again resumes the study.
    """
    from ..search import load_space

    overrides = ([f"data.dataset={json.dumps(dataset)}"] if dataset else []) + list(sets)
    loaded = load_space(space, overrides)
    if dry_run:
        if kw["refine"]:
            import dataclasses

            from ..search import attach, refine_space

            parent = attach(kw["refine"], studies_dir=kw["studies_dir"])
            coarse = loaded.settings
            loaded = refine_space(loaded, parent.study, top=kw["top"])[0]
            loaded.settings = dataclasses.replace(coarse, train_subset=None, epochs=None,
                                                  fraction=None)  # as search() runs it
            kw = {**kw, "pruner": kw["pruner"] or parent.info.pruner}
        _dry_run(loaded, kw)
        return
    if fidelity == "check":
        _fidelity_check(loaded, kw)
        return
    quiet_libraries()
    from ..search import counts
    from ..search import search as run_search

    kw = _with_execution(kw)
    try:
        if dashboard and not kw["create_only"]:
            created = run_search(loaded, **{**kw, "create_only": True})
            kw["new"] = False  # created just now: the search must resume it, not replace it again
            with beside_study(created.study_name, storage=kw.get("storage"),
                              studies_dir=kw.get("studies_dir", "studies"),
                              host=dashboard_host, port=dashboard_port):
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


def _fidelity_check(space: Any, kw: dict[str, Any]) -> None:
    from ..search import fidelity_check

    quiet_libraries()
    opts = _with_execution(kw)
    check = fidelity_check(space, n=kw["trials"] or 8, seed=kw["seed"] or 0,
                           train_subset=kw["train_subset"], epochs=kw["epochs"],
                           execution=opts["execution"])
    click.echo(f"{'candidate':<10}{'low':>9}{'full':>9}  parameters")
    for i, (p, lo, full) in enumerate(zip(check.params, check.low_dev, check.full_dev, strict=True)):
        click.echo(f"{i:<10}{lo:>9.2%}{full:>9.2%}  " + "  ".join(f"{k}={param_text(v)}" for k, v in p.items()))
    click.echo(check.summary())


def _dry_run(space: Any, kw: dict[str, Any]) -> None:
    from ..search import settings

    s = settings(vars(space.settings), {k: kw[k] for k in ("sampler", "pruner", "trials", "fraction",
                                                            "train_subset", "epochs", "seed",
                                                            "objectives")},
                 where="search settings")
    click.echo(space.describe())
    epochs = s.epochs or "the spec's"
    fid = f"train subset {s.train_subset or 'all'}, at most {epochs} epochs per trial"
    click.echo(f"strategy: sampler {s.sampler}, pruner {s.pruner_name}, seed {s.seed}; {fid}")
    if s.objectives:
        click.echo(f"objectives: {s.objectives[0]} (maximised) against {', '.join(s.objectives[1:])} "
                   "(minimised); pruning against the trials of similar cost")
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
    s = space.settings
    if (s.max_params is not None and t.params > s.max_params) or \
            (s.max_flops is not None and t.flops > s.max_flops):
        return f"over budget: {t.params:,} params {t.flops / 1e6:.1f}M FLOPs"
    return f"{t.params:>10,} params {t.flops / 1e6:>7.1f}M FLOPs"


def param_text(v: Any) -> str:
    """A parameter value rounded for reading (0.1899, not 0.18987697514344648); --json and
    the trials table keep every digit."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _print_outcome(study: Any) -> None:
    from ..search import best_trial, counts

    c = counts(study)
    parts = ", ".join(f"{c[k]} {k}" for k in ("complete", "pruned", "failed", "invalid", "running",
                                                 "waiting") if c[k])
    if c["stopped"]:
        parts += f"; {c['stopped']} of the pruned stopped by the time budget"
    if c["retried"]:
        parts += f"; {c['retried']} stopped early and ran again"
    click.echo(f"study '{study.study_name}': {c['done']} trials done ({parts or 'none'})")
    try:
        best = best_trial(study)
    except ArchtuneError:
        return
    click.echo(f"best dev accuracy {value_of(best) * 100:.2f}% (trial {best.number}): "
               + "  ".join(f"{k}={param_text(v)}" for k, v in best.params.items()))
    click.echo(f"next: archtune best {study.study_name}  |  archtune retrain {study.study_name}")


@click.command()
@click.argument("study")
@STORAGE
@STUDIES_DIR
@click.option("--trials", type=int, help="Trials the study should hold (default: the study's).")
@click.option("--timeout", type=float, help="After this many seconds start no new trial and stop the one in flight after its epoch.")
@click.option("--target", type=float, help="Stop once a trial reaches this dev accuracy.")
@click.option("--jobs", default="1", show_default=True, callback=_jobs_option, metavar="N|auto",
              help="Trials at once (processes); auto: one per core for small models.")
@click.option("--threads", type=THREADS, help="CPU threads per trial.")
@click.option("--device", help="cpu | cuda.")
@click.option("--data-dir", help="Folder holding the data set's files on this machine.")
@click.option("--keep-runs/--no-keep-runs", default=None, help="Keep trial run folders (default: as the study).")
@log_options
def worker(study: str, **kw: Any) -> None:
    """Join STUDY (here, or in --storage from another machine) and run its trials."""
    quiet_libraries()
    from ..search import worker as run_worker

    kw = _with_execution(kw)
    try:
        ran = run_worker(study, **kw)
    except KeyboardInterrupt:
        _interrupted()
    click.echo("workers done" if ran == 0 and kw.get("jobs") not in (None, 1) else
               f"worker done ({ran} trials here)")


@click.command()
@click.argument("study")
@click.option("--trial", type=int, help="Trial number (default: the best trial).")
@click.option("--finalists", type=click.IntRange(min=1),
              help="A finalists' round: the top trials trained again at full fidelity, the best "
              "mean dev accuracy wins [3 when only --seeds is given].")
@click.option("--seeds", type=click.IntRange(min=1),
              help="Seeds per finalist in the round (its own, then derived ones) [2 when only "
              "--finalists is given].")
@click.option("--epochs", type=int, help="Epochs (default: the spec's full number).")
@click.option("--minutes", type=float, help="Time budget of the whole retrain instead of --epochs; "
              "with a finalists' round, the finalists get half (equal shares), the winner the "
              "rest.")
@click.option("--ensemble", type=click.Choice(["on", "auto"]), is_flag=False, flag_value="on",
              help="Average the finalist runs (--finalists x --seeds) within one dev standard "
              "error of the best into one model instead of choosing one; with --minutes they get "
              "it all. For small data, where dev cannot tell them apart. '--ensemble auto': only "
              "when each run's share of --minutes holds its full epochs (predicted from the "
              "search's epochs), else the best trial once with all of it.")
@click.option("--run-dir", type=click.Path(), help="Run folder (default: runs/STUDY-trialN-<time>).")
@click.option("--data-dir", help="Folder holding the data set's files.")
@click.option("--threads", type=THREADS, help="CPU threads.")
@click.option("--device", help="cpu | cuda.")
@STORAGE
@STUDIES_DIR
@log_options
@click.pass_context
def retrain(ctx: click.Context, study: str, **kw: Any) -> None:
    """Retrain STUDY's best trial into a normal run folder: one full training (--trial N: that
    trial; --finalists K --seeds S: the top K trials trained again with S seeds each, the best
    mean wins; --ensemble: the finalist runs dev cannot tell apart, averaged; --ensemble auto:
    that only where the time budget trains every run fully)."""
    from ..search import retrain as run_retrain

    kw = _with_execution(kw)
    kw["ensemble"] = {None: False, "on": True, "auto": "auto"}[kw.get("ensemble")]
    run = report_training(lambda: run_retrain(study, progress=not ctx.obj["quiet"], **kw))
    from ..search import FINALISTS, SEEDS, decisions

    decided = decisions(run)
    if kw["ensemble"] == "auto":
        auto = decided.get("ensemble_auto", {})
        click.echo(f"--ensemble auto: {'averaged' if auto.get('ensemble') else 'one run'} "
                   f"({auto.get('why')})")
    averaged_or_chosen = not kw["ensemble"] or "ensemble" in run.metrics  # not auto's one run
    asked = kw["ensemble"] or "finalists" in kw or "seeds" in kw  # a round or an ensemble
    many = asked and kw.get("finalists", FINALISTS) * kw.get("seeds", SEEDS) > 1
    if kw.get("trial") is None and many and averaged_or_chosen:
        from ..search import attach, read_finals

        folder = attach(study, storage=kw.get("storage"), studies_dir=kw["studies_dir"]).folder
        finals = read_finals(folder)
        if finals is not None:
            click.echo("finalists (full fidelity, dev accuracy per seed):")
            for f in finals.finalists:
                click.echo(f"  trial {f.trial:>4}: mean {f.mean:.2%}  ("
                           + ", ".join(f"{d:.2%}" for d in f.dev) + ")")
            click.echo(finals.verdict())
            for why in finals.left_out:
                click.echo(f"left out of the round: {why}")
    click.echo(f"test it: archtune evaluate {run.path} --split test")


COMMANDS = (search, worker, retrain)
