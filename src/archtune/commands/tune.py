"""``archtune tune``: one budget, from the data to a delivered model (see archtune.tuning).

torch and Optuna are imported inside the command, so ``archtune --help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from .common import THREADS
from .search import STORAGE, STUDIES_DIR, quiet_libraries


@click.command()
@click.argument("space", default="auto-space")
@click.option("--data", "data", help="fashion-mnist | mnist | a .npz file or image folder (default: the space's).")
@click.option("--minutes", type=float, default=10.0, show_default=True,
              help="Wall-clock budget for everything: data, candidates, the delivered model.")
@click.option("--dry-run", is_flag=True, help="Time the start points and print how the minutes would be spent.")
@click.option("--study", help="Study name (default: SPACE-tune).")
@STORAGE
@STUDIES_DIR
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(),
              help="Where the delivered run folder is written.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the sampler, the mutations and each trial.")
@click.option("--explore", type=float, default=0.25, show_default=True,
              help="Share of the training time spent on candidates that are not delivered.")
@click.option("--candidates", type=int, default=9, show_default=True,
              help="Candidates at the first rung (start points first; fewer when the budget is short).")
@click.option("--new", is_flag=True, help="Replace an existing tune of this study (deletes its trials).")
@click.option("--data-dir", help="Folder holding the data set's files.")
@click.option("--device", help="cpu | cuda.")
@click.option("--threads", type=THREADS, help="CPU threads.")
def tune(space: str, dry_run: bool, **kw: Any) -> None:
    """Spend --minutes on the best model SPACE (default auto-space) holds for --data: the
    space's start points first, rungs of successive halving whose promoted candidates continue
    from their own weights, and the winner trained to the end of the budget.

    Writes a study (STUDIES_DIR/STUDY) and a normal run folder (RUNS_DIR); running the same
    command again after an interruption resumes from the last finished rung.
    """
    from ..tuning import tune as run_tune
    from ..tuning import tune_plan

    quiet_libraries()
    logging.getLogger("archtune.tuning").setLevel(logging.INFO)
    if dry_run:
        plan = tune_plan(space, data=kw["data"],
                         minutes=kw["minutes"], explore=kw["explore"], candidates=kw["candidates"],
                         data_dir=kw["data_dir"], device=kw["device"], threads=kw["threads"])
        click.echo(plan.describe())
        click.echo("(dry run: nothing trained)")
        return
    try:
        result = run_tune(space, **kw)
    except KeyboardInterrupt:
        click.echo("\ninterrupted: run the same command to resume from the last finished rung",
                   err=True)
        sys.exit(130)
    click.echo(result.summary())


COMMANDS = (tune,)
