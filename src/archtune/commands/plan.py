"""``archtune plan``: run (or preview) an experiment plan (registered on the main group)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .._files import read_text
from ..errors import ArchtuneError
from .common import THREADS
from .search import quiet_libraries


@click.command()
@click.argument("plan")
@click.option("--dry-run", is_flag=True, help="Check the plan and list every step; train nothing.")
@click.option("--show", is_flag=True, help="Print the plan's YAML (comments included) and exit.")
@click.option("--dir", "folder", type=click.Path(file_okay=False),
              help="Plan folder (default: PLANS_DIR/<plan name>).")
@click.option("--plans-dir", default="plans", show_default=True, type=click.Path(file_okay=False))
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="train.*/data.* overrides for every run and search (applied last), e.g. "
                   "train.epochs=1; runs.NAME.KEY / searches.NAME.KEY / test edit the plan.")
@click.option("--trials", type=int, help="Every search holds this many trials (a quick try; "
                                         "running again without it tops the searches up).")
@click.option("--data-dir", help="Folder holding the data set's files.")
@click.option("--device", help="cpu | cuda.")
@click.option("--threads", type=THREADS, help="CPU threads.")
@click.pass_context
def plan(ctx: click.Context, plan: str, dry_run: bool, show: bool, folder: str | None,
         plans_dir: str, sets: tuple[str, ...], trials: int | None, data_dir: str | None,
         device: str | None, threads: int | None) -> None:
    """Run an experiment plan: a built-in one (homework), a YAML file, or a plan folder.

    Steps already done in the plan folder (same spec, data and seed) are reused; run the same
    command again after Ctrl-C or a crash to go on where it stopped.
    """
    from ..plan.execute import Options, plan_folder, run_plan  # torch: not at the CLI's start-up
    from ..plan.preview import format_preview, preview
    from ..plan.schema import builtin_text, list_plans, load_plan

    if show:
        path = Path(plan) / "plan.yaml" if Path(plan).is_dir() else Path(plan)
        click.echo(builtin_text(plan) if plan in list_plans() or not path.is_file()
                   else read_text(path, "plan"), nl=False)  # builtin_text: unknown names get a hint
        return
    if trials is not None and trials < 1:
        raise ArchtuneError(f"--trials {trials}: must be >= 1")
    extra = list(sets) + ([f"data.data_dir={json.dumps(data_dir)}"] if data_dir else [])
    loaded = load_plan(plan, extra)
    if folder is None and Path(plan).is_dir():
        folder = plan  # a plan folder goes on in itself
    out = plan_folder(loaded, plans_dir, folder)
    if dry_run:
        click.echo(format_preview(loaded, out, preview(loaded, out, trials=trials)))
        return

    quiet_libraries()
    options = Options(data_dir=data_dir, device=device, threads=threads, trials=trials,
                      progress=not ctx.obj["quiet"])
    try:
        done = run_plan(loaded, plans_dir=plans_dir, folder=folder, options=options, echo=click.echo)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: finished steps are kept; run the same command to go on",
                   err=True)
        sys.exit(130)
    click.echo(f"plan '{loaded.name}' done in {done}; report: archtune report {done} [--pdf]")


COMMANDS = (plan,)
