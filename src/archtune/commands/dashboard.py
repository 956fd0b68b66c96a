"""``archtune dashboard``, and the dashboard that ``archtune search --dashboard`` runs beside
its trials."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import click

from ..dashboard import DEFAULT_HOST, DEFAULT_PORT, Dashboard, study_storages


@click.command()
@click.argument("studies", nargs=-1, metavar="[STUDY]...")
@click.option("--storage", help="Optuna storage URL (default: each study's own, from its folder).")
@click.option("--studies-dir", default="studies", show_default=True, type=click.Path(),
              help="Folder of study folders.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int,
              help="Port (studies in different storages get the next ports; 0: any free port).")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on (other machines can reach it only if told so).")
def dashboard(studies: tuple[str, ...], storage: str | None, studies_dir: str, port: int,
              host: str) -> None:
    """Live optuna-dashboard of STUDY ... (default: every study under --studies-dir), also
    while their searches run. Ctrl-C (or SIGTERM) stops it."""
    groups = study_storages(list(studies), storage=storage, studies_dir=studies_dir)
    with ExitStack() as stack:
        for i, (url, found) in enumerate(groups.items()):
            board = stack.enter_context(Dashboard(url, host=host, port=port + i if port else 0))
            click.echo(f"dashboard: {board.url}")
            for name, study_id in found:
                click.echo(f"  study '{name}': {board.study_url(study_id)}")
        click.echo("press Ctrl-C to stop")
        previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill`, systemd, docker: stop cleanly too
        try:
            while True:  # wake now and then: a signal the kernel hands to a server thread only
                time.sleep(0.5)  # runs its Python handler once the main thread wakes
        except KeyboardInterrupt:
            click.echo("dashboard stopped", err=True)
        finally:
            signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


@contextmanager
def beside_study(study: str, *, storage: str | None, studies_dir: str, host: str, port: int
                 ) -> Iterator[None]:
    """Serve the dashboard of a study the caller has created while the caller runs its
    search, then stop."""
    groups = study_storages([study], storage=storage, studies_dir=studies_dir)
    (url, [(name, study_id)]), = groups.items()
    with Dashboard(url, host=host, port=port) as board:
        click.echo(f"dashboard of study '{name}': {board.study_url(study_id)}")
        yield
    click.echo(f"dashboard stopped; to look again: archtune dashboard {name}")


COMMANDS = (dashboard,)
