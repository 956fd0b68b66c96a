"""``archtune report``, ``archtune compare`` and ``archtune inspect`` (registered on the main group).

Imported when the CLI starts, so torch and matplotlib are imported inside the commands only.
"""

from __future__ import annotations

import click

PDF = click.option("--pdf", is_flag=True,
                   help="Also print the page to a PDF beside it (A4; needs Chromium or Chrome, "
                        "or ARCHTUNE_CHROMIUM).")
FIGURES = click.option("--figures", type=click.Path(file_okay=False), metavar="DIR",
                       help="Also write every figure to DIR as PNG and SVG files.")


@click.command()
@click.argument("path", type=str)
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Where to write the page (default: PATH/report.html).")
@click.option("--data-dir", type=str, help="Where the data set's files are, if not where training found them.")
@click.option("--image", "images", type=int, multiple=True, default=(0,), show_default=True,
              help="Dev image(s) whose activation maps the run report shows.")
@click.option("--best-report/--no-best-report", default=True, show_default=True,
              help="Study: also write the best trial's run report and link it.")
@click.option("--device", type=str, help="cpu | cuda, for the dev evaluation.")
@PDF
@FIGURES
def report(path: str, output: str | None, data_dir: str | None, images: tuple[int, ...],
           best_report: bool, device: str | None, pdf: bool, figures: str | None) -> None:
    """Write a self-contained HTML report of a run, study or plan folder (and a PDF of it)."""
    from ..report.api import report as make_report
    from ..report.outputs import write

    done = write(lambda: make_report(path, output, data_dir=data_dir, device=device,
                                     images=tuple(images), best_report=best_report),
                 pdf=pdf, figures=figures)
    for line in done.lines():
        click.echo(line)


@click.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("-o", "--output", default="compare.html", show_default=True,
              type=click.Path(dir_okay=False), help="Where to write the page.")
@click.option("--data-dir", type=str, help="Where the data set's files are.")
@click.option("--device", type=str, help="cpu | cuda, for the dev evaluations.")
@click.option("--test", "with_test", is_flag=True,
              help="Evaluate each run on the test split first where it has not been (final "
                   "numbers: writes eval_test.json), and show the test metrics.")
@PDF
@FIGURES
def compare(runs: tuple[str, ...], output: str, data_dir: str | None, device: str | None,
            with_test: bool, pdf: bool, figures: str | None) -> None:
    """Compare several runs side by side in one HTML page (table, curves, confusion matrices)."""
    from ..report.compare import compare_report
    from ..report.outputs import write

    done = write(lambda: compare_report(list(runs), output, data_dir=data_dir, device=device,
                                        test=with_test), pdf=pdf, figures=figures)
    for line in done.lines():
        click.echo(line.replace("report written", "comparison written"))


@click.command()
@click.argument("run", type=str)
@click.option("--image", type=int, required=True, help="Index of the image in the split.")
@click.option("--layer", "layers", type=str, multiple=True,
              help="Spec index of a Conv2D layer, 3.1 for layer 1 inside block 3 (repeatable; "
                   "default: every conv layer).")
@click.option("--split", default="test", show_default=True, help="train | dev | test.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False),
              help="Folder for the PNGs (default: the run folder).")
@click.option("--data-dir", type=str, help="Where the data set's files are.")
def inspect(run: str, image: int, layers: tuple[str, ...], split: str, output_dir: str | None,
            data_dir: str | None) -> None:
    """Activation maps of a run's conv layers for one image, written as PNGs."""
    from ..report.api import inspect_run

    done = inspect_run(run, image, list(layers) or None, split=split, output_dir=output_dir,
                       data_dir=data_dir)
    for d in done:
        cmax = d.maps.channel_max
        quiet = int((cmax <= 0).sum())
        click.echo(f"layer {d.maps.layer} ({d.maps.name}): {len(cmax)} channels of "
                   f"{d.maps.maps.shape[1]}x{d.maps.maps.shape[2]}, {quiet} at or below 0 for "
                   f"{d.split} image {d.image} ({d.label}), strongest {cmax.max():.3g} "
                   f"-> {d.path}")


COMMANDS = (report, compare, inspect)
