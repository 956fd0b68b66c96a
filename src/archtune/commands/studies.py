"""Search verbs that read: studies, trials, best, spaces.

Optuna and pandas are imported inside the commands, so ``archtune --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import ArchtuneError, unknown
from .common import echo_builtins
from .search import FORMATS, STORAGE, STUDIES_DIR, param_text


@click.command()
@STUDIES_DIR
@click.option("--storage", help="List every study in this Optuna storage instead.")
def studies(studies_dir: str, storage: str | None) -> None:
    """Studies with their progress and best dev accuracy."""
    from ..search import list_studies

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
    from ..search import open_study, trials_dataframe

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
    from ..search import PARAM

    col = column if column in df.columns else f"{PARAM}{column}"
    if col not in df.columns:
        raise unknown("column", column, [c.removeprefix(PARAM) for c in df.columns], "--sort")
    descending = col == "dev_accuracy"
    return df.sort_values(col, ascending=descending == reverse, na_position="last", kind="stable")


def _table(df: Any) -> str:
    from ..search import PARAM

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
    from ..search import best_summary, open_study

    b = best_summary(open_study(study, studies_dir, storage=storage)[0])
    if as_json:
        click.echo(json.dumps(b, indent=2, default=str))
        return
    click.echo(f"study '{b['study']}': best trial {b['trial']}, dev accuracy "
               f"{b['dev_accuracy'] * 100:.2f}% (dev loss {b['dev_loss']:.4f}, {b['epochs']} epochs, "
               f"{b['duration_s']:.0f}s)")
    click.echo(f"model: {b['params_count']:,} params, {b['flops']:,} FLOPs/image; seed {b['seed']}")
    for key, value in b["params"].items():
        click.echo(f"  {key:<28} {param_text(value)}")
    if b["run_dir"]:
        click.echo(f"run folder: {b['run_dir']}")
    if b.get("front"):
        costs = b["objectives"][1:]
        click.echo(f"Pareto front (dev accuracy against {', '.join(costs)}), cheapest first:")
        for row in b["front"]:
            click.echo(f"  trial {row['trial']:<5} {row['dev_accuracy'] * 100:6.2f}%  "
                       + "  ".join(f"{row[c]:,.4g} {c}" for c in costs))
        click.echo(f"retrain one: archtune retrain {b['study']} --trial N")
        return
    click.echo(f"retrain it: archtune retrain {b['study']}")


@click.command()
@click.argument("pattern", default="*")
def spaces(pattern: str) -> None:
    """Built-in search spaces with their dimensions and grid sizes."""
    from ..search import list_spaces, load_space

    def row(name: str) -> str:
        space = load_space(name)
        try:
            size = f"{len(space.grid()):,}"
        except ArchtuneError:
            size = "-"
        return f"{name:<18}{len(space.dims):>5}{size:>8}  {space.raw.get('description', '')[:70]}"

    echo_builtins(list_spaces(pattern), "search space", pattern,
                  f"{'name':<18}{'dims':>5}{'grid':>8}  description", row)


COMMANDS = (studies, trials, best, spaces)
