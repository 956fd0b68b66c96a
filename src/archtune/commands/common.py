"""What several command modules share (kept apart from ``cli.py`` so that they do not import it)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from ..errors import ArchtuneError, short

THREADS = click.IntRange(1, 4096)  # --threads: more than any machine's cores is a typo

if TYPE_CHECKING:
    from ..training import Run


def report_training(start: Callable[[], Run]) -> Run:
    """Run a training call; print its best dev accuracy and folder (exit 130 on Ctrl-C)."""
    try:
        run = start()
    except KeyboardInterrupt:
        click.echo("\ninterrupted (the line above says what the run folder kept)", err=True)
        sys.exit(130)
    from ..evaluate import dev_result  # torch: kept out of the CLI's start-up

    dev = dev_result(run)
    click.echo(f"dev accuracy {dev['accuracy'] * 100:.2f}% ({dev['weights']}; "
               f"{run.metrics.get('epochs_run')} epochs, {run.metrics.get('train_seconds', 0):.0f}s)")
    click.echo(f"run saved in {run.path}")
    return run


def echo_builtins(names: list[str], what: str, pattern: str, header: str,
                  row: Callable[[str], str]) -> None:
    """The table of ``archtune specs`` / ``spaces``: a header, then one row per name."""
    if not names:
        raise ArchtuneError(f"no built-in {what} matches {short(pattern)}")
    click.echo(header)
    for name in names:
        click.echo(row(name))


def log_options(command: Callable[..., None]) -> Callable[..., None]:
    """--log and --mlflow-uri: experiment loggers (see archtune.tracking)."""
    command = click.option("--mlflow-uri", metavar="URI",
                           help="Where MLflow records (default: $MLFLOW_TRACKING_URI, else "
                                "sqlite:///mlflow.db here).")(command)
    return click.option("--log", "loggers", multiple=True, metavar="LOGGER",
                        help="Log to tensorboard | mlflow (repeat for both).")(command)


def image_size_option(value: str | None) -> list[int] | None:
    """``--image-size`` as [height, width]: ``32x48``, ``32,48``, ``32 48`` or ``32`` (square)."""
    if value is None:
        return None
    parts = value.lower().replace("x", " ").replace(",", " ").split()
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or not all(p.isdigit() and len(p) <= 6 and int(p) > 0 for p in parts):
        raise ArchtuneError(f"--image-size {short(value)}: expected HEIGHTxWIDTH such as 64x64 (or one "
                            "number for a square)")
    return [int(p) for p in parts]


IMAGE_SIZE_HELP = ("Resize every image to HxW (e.g. 64x64); default for image folders: their one "
                   "size, else the median capped at 128.")
SKIP_BAD_HELP = "Leave unreadable image files out (counted and recorded) instead of failing."
