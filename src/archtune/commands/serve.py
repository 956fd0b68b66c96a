"""``archtune predict | export | serve``: use a trained run. Heavy imports stay inside commands."""

from __future__ import annotations

import ipaddress
import json
import logging
import warnings
from typing import Any

import click

from archtune.errors import ArchtuneError

from .common import THREADS

log = logging.getLogger(__name__)
INVERT = click.Choice(["auto", "always", "never"])


def _format_row(row: dict[str, Any], width: int) -> str:
    if "error" in row:
        return f"{row['file']:<{width}}  error: {row['error']}"
    tops = "   ".join(f"{t['label']} {t['probability'] * 100:5.1f}%" for t in row["top"])
    return f"{row['file']:<{width}}  {tops}" + ("   (inverted)" if row.get("inverted") else "")


@click.command()
@click.argument("run", type=str)
@click.argument("images", nargs=-1, required=True, type=str)
@click.option("--top", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="How many classes to show per image.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array (one object per file).")
@click.option("--invert", default="auto", show_default=True, type=INVERT,
              help="Invert light-background images: auto (for Fashion-MNIST/MNIST models), "
                   "always or never.")
@click.option("--batch-size", default=256, show_default=True, type=click.IntRange(1),
              help="Images per forward pass.")
@click.option("--device", default="cpu", show_default=True, type=str)
@click.option("--threads", default=1, show_default=True, type=THREADS,
              help="CPU threads of the model; decoding files is the slow part and gets 2 threads.")
def predict(run: str, images: tuple[str, ...], top: int, as_json: bool, invert: str,
            batch_size: int, device: str, threads: int) -> None:
    """Predict the classes of IMAGES (files or folders) with RUN's best model (a run folder).

    Images are converted to the model's input the documented way (grayscale, resized keeping
    the aspect ratio and padded, inverted when the background is light). Exits with code 2
    when any file could not be read (the others are still predicted).
    """
    from ..serve.predict import Predictor
    from ..training.device import set_threads

    set_threads(threads)
    predictor = Predictor.from_run(run, device=device, batch_size=batch_size)
    rows = predictor.predict_files(images, top=top, invert=invert)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        width = min(48, max(len(r["file"]) for r in rows))
        for row in rows:
            click.echo(_format_row(row, width))
    failed = sum("error" in r for r in rows)
    if failed:
        raise ArchtuneError(f"{failed} of {len(rows)} file(s) could not be read as images")


@click.command()
@click.argument("run", type=str)
@click.option("--format", "fmt", default="onnx", show_default=True,
              type=click.Choice(["onnx", "torchscript"]), help="Export format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Output file (default: RUN/model.onnx or RUN/model.torchscript.pt).")
@click.option("--check", "n_check", default=256, show_default=True, type=click.IntRange(1),
              help="Compare with PyTorch on this many seeded random images.")
def export(run: str, fmt: str, output: str | None, n_check: int) -> None:
    """Export RUN's best model to ONNX or TorchScript, with its class names and preprocessing
    constants, and check the export's outputs against PyTorch."""
    from ..serve.export import check_images, export_model
    from ..serve.predict import Predictor

    predictor = Predictor.from_run(run)
    result = export_model(predictor, fmt, output, check=check_images(predictor, n_check))
    click.echo(result.describe())
    if not result.ok:
        raise ArchtuneError(f"the {fmt} export does not match PyTorch (see above)")


def _check_host(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning("serving on %s: reachable from other machines (the default is 127.0.0.1)", host)


@click.command()
@click.argument("run", type=str)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--max-mb", default=5.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Largest request body, in MB (MiB).")
@click.option("--max-pixels", default=40_000_000, show_default=True, type=click.IntRange(1),
              help="Largest image (width x height), checked before decoding.")
@click.option("--max-images", default=64, show_default=True, type=click.IntRange(1),
              help="Most images in one request.")
@click.option("--batch-wait-ms", default=2.0, show_default=True, type=click.FloatRange(min=0),
              help="How long the micro-batcher gathers concurrent requests.")
@click.option("--max-batch", default=64, show_default=True, type=click.IntRange(1),
              help="Most images per forward pass.")
@click.option("--invert", default="auto", show_default=True, type=INVERT)
@click.option("--device", default="cpu", show_default=True, type=str)
@click.option("--threads", default=1, show_default=True, type=THREADS,
              help="CPU threads of the model; the other cores serve HTTP and decode images.")
def serve(run: str, host: str, port: int, max_mb: float, max_pixels: int, max_images: int,
          batch_wait_ms: float, max_batch: int, invert: str, device: str, threads: int) -> None:
    """Serve RUN's best model over HTTP: a web page at /, POST /predict, GET /model, /health."""
    import uvicorn
    from PIL import Image

    from ..serve.app import create_app
    from ..serve.inputs import Limits
    from ..training.device import set_threads

    _check_host(host)
    set_threads(threads)
    Image.MAX_IMAGE_PIXELS = max_pixels  # Pillow's own bomb guard agrees with ours
    # ... and its warning for images just over it is noise: the server refuses them with a 413
    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    limits = Limits(max_bytes=int(max_mb * 1024 * 1024), max_pixels=max_pixels,
                    max_images=max_images)
    app = create_app(run, limits=limits, invert=invert, max_batch=max_batch,
                     max_wait_ms=batch_wait_ms, device=device, freeze_gc=True)
    click.echo(f"serving {app.state.predictor.name} on http://{host}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)


COMMANDS = (predict, export, serve)
