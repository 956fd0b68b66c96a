"""The ``archtune`` command: verbs over the public Python API (each one call).

Each verb imports the API it calls inside its body, so ``archtune --help`` and a mistyped
option load no torch, Optuna or matplotlib.
"""

from __future__ import annotations

import json
import sys

import click

from . import log as _log
from ._files import write_text
from .commands.common import (
    IMAGE_SIZE_HELP,
    SKIP_BAD_HELP,
    THREADS,
    echo_builtins,
    image_size_option,
    log_options,
    report_training,
)
from .commands.dashboard import COMMANDS as dashboard_commands
from .commands.plan import COMMANDS as plan_commands
from .commands.report import COMMANDS as report_commands
from .commands.search import COMMANDS as search_commands
from .commands.serve import COMMANDS as serve_commands
from .commands.studies import COMMANDS as studies_commands
from .commands.tune import COMMANDS as tune_commands
from .errors import ArchtuneError, short

DEFAULT_SPEC = "default"


def _overrides(options: dict[str, object], sets: tuple[str, ...]) -> list[str]:
    """Turn shortcut flags (--epochs 15) into section.key=value overrides, before --set ones."""
    out = []
    for key, value in options.items():
        if value is not None:
            out.append(f"{key}={json.dumps(value) if isinstance(value, str | bool) else value}")
    return out + list(sets)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More output (-v: debug).")
@click.option("-q", "--quiet", is_flag=True, help="Warnings and results only; no progress bars.")
@click.version_option(package_name="archtune")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Build, train, tune and explain neural-network image classifiers."""
    _log.configure(-1 if quiet else verbose)
    ctx.obj = {"quiet": quiet}


@cli.command()
@click.argument("pattern", default="*")
def specs(pattern: str) -> None:
    """List built-in architectures with their parameters and FLOPs."""
    from .specs import infer_shapes, list_specs, load_spec, totals

    def row(name: str) -> str:
        spec = load_spec(name)
        t = totals(infer_shapes(spec))
        return f"{name:<20}{t.params:>12,}{t.flops:>14,}  {spec.description[:70]}"

    echo_builtins(list_specs(pattern), "spec", pattern,
                  f"{'name':<20}{'params':>12}{'FLOPs/image':>14}  description", row)


@cli.command()
@click.argument("spec", default=DEFAULT_SPEC)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override, e.g. train.lr=0.05.")
@click.option("--data", "dataset", type=str,
              help="Show the model as trained on this data set (its size and channels).")
@click.option("--image-size", type=str, metavar="HxW", help=IMAGE_SIZE_HELP)
def summary(spec: str, sets: tuple[str, ...], dataset: str | None, image_size: str | None) -> None:
    """Keras-style summary of SPEC (built-in name or YAML/JSON file), before any training."""
    from .specs import load_spec
    from .specs import summary as make_summary

    shortcuts = {"data.dataset": dataset, "data.image_size": image_size_option(image_size)}
    loaded = load_spec(spec, _overrides(shortcuts, sets))
    if dataset is not None:
        from .data import check_input, data_shape  # torch: only when data are read

        d = loaded.data
        (c, h, w), classes = data_shape(d.dataset, data_dir=d.data_dir, channels=d.channels,
                                        image_size=tuple(d.image_size) if d.image_size else None,
                                        skip_bad_files=True)
        if not loaded.input_auto:  # a pinned input_shape must be the data's
            check_input(kind="spec", name=loaded.name, input_shape=loaded.input_shape, chw=(c, h, w))
        loaded = loaded.for_input((h, w, c)).for_classes(classes)
    click.echo(make_summary(loaded))


@cli.command()
@click.argument("spec", default=DEFAULT_SPEC)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override, e.g. train.lr=0.05.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Save the resolved spec here.")
def config(spec: str, sets: tuple[str, ...], output: str | None) -> None:
    """Print the fully resolved spec (layers, train, data) as YAML, or save it with -o."""
    from .specs import load_spec

    text = load_spec(spec, list(sets)).to_yaml()
    if output:
        write_text(output, text, "spec")
        click.echo(f"saved {output}")
    else:
        click.echo(text, nl=False)


@cli.command()
@click.argument("name", default="fashion-mnist")
@click.option("--data-dir", type=click.Path(), help="Folder holding the data set's files.")
@click.option("--dev-fraction", default=0.2, show_default=True, type=float)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the train/dev split.")
@click.option("--plots", type=click.Path(file_okay=False),
              help="Also write samples.png and class_distribution.png into this folder.")
@click.option("--image-size", type=str, metavar="HxW", help=IMAGE_SIZE_HELP)
@click.option("--resize", type=click.Choice(["fit", "crop"]), default="fit", show_default=True,
              help="Image folders: fit (keep the aspect ratio, pad) or crop the centre.")
@click.option("--skip-bad-files", is_flag=True, help=SKIP_BAD_HELP)
def data(name: str, data_dir: str | None, dev_fraction: float, seed: int, plots: str | None,
         image_size: str | None, resize: str, skip_bad_files: bool) -> None:
    """Sizes and class counts per split of a data set (name, .npz file or image folder)."""
    from .data import load_dataset, split_dataset

    size = image_size_option(image_size)
    ds = load_dataset(name, data_dir=data_dir, image_size=tuple(size) if size else None,
                      resize=resize, skip_bad_files=skip_bad_files)
    s = split_dataset(ds, dev_fraction=dev_fraction, seed=seed)
    counts = s.class_counts()
    test_counts = [int((ds.y_test == i).sum()) for i in range(len(ds.classes))]
    c, h, w = ds.input_shape
    click.echo(f"{ds.name}: {h}x{w}x{c} images, {len(ds.classes)} classes, read from {ds.source}")
    click.echo(f"split: train {len(s.train.y):,} / dev {len(s.dev.y):,} / test {len(ds.y_test):,} "
               f"(dev fraction {dev_fraction}, seed {seed}, stratified)")
    click.echo(f"{'class':<16}{'train':>8}{'dev':>8}{'test':>8}")
    for i, cls in enumerate(ds.classes):
        click.echo(f"{cls:<16}{counts['train'][i]:>8,}{counts['dev'][i]:>8,}{test_counts[i]:>8,}")
    click.echo(_imbalance_line([a + b for a, b in zip(counts["train"], counts["dev"], strict=True)]))
    if "size_policy" in ds.facts:
        f = ds.facts
        click.echo(f"image size: {h}x{w} ({f['size_policy']}; {f['resized']} resized, "
                   f"{f['resize']}); {f['grey_images']} grey and {f['colour_images']} colour images")
    if "skipped_files" in ds.facts:
        click.echo(f"left out: {ds.facts['skipped_files']['count']} unreadable file(s)")
    if plots:
        from .report.api import data_plots

        for path in data_plots(ds, s, plots, seed=seed):
            click.echo(f"wrote {path}")


IMBALANCE_NOTE = 1.5  # a largest/smallest class ratio above this gets a note in `archtune data`


def _imbalance_line(counts: list[int]) -> str:
    """The imbalance ratio (largest class / smallest) of the training images, with a note above
    ``IMBALANCE_NOTE``."""
    ratio = max(counts) / max(min(counts), 1)
    line = f"class imbalance: {ratio:.2f} (largest class / smallest, train + dev)"
    if ratio > IMBALANCE_NOTE:
        line += ("; consider train.balance: weights (loss weighting) or sampler (class-balanced "
                 "batches), e.g. --set train.balance=weights")
    return line


@cli.command()
@click.argument("spec", default=DEFAULT_SPEC)
@click.option("--epochs", type=int, help="Shortcut for --set train.epochs=N.")
@click.option("--minutes", type=float,
              help="Time budget: train as many epochs as fit in this many minutes (timed first).")
@click.option("--batch-size", type=int, help="Shortcut for --set train.batch_size=N.")
@click.option("--optimizer", type=str, help="sgd | adam | adamw | rmsprop.")
@click.option("--lr", type=float, help="Learning rate (peak lr for one-cycle).")
@click.option("--seed", type=int, help="Seed of weights, batch order and augmentation.")
@click.option("--precision", type=str, help="auto | fp32 | bf16.")
@click.option("--data", "dataset", type=str, help="fashion-mnist | mnist | path to .npz or image folder.")
@click.option("--data-dir", type=str, help="Folder holding the data set's files.")
@click.option("--train-subset", type=int, help="Train on this many images (stratified), for quick runs.")
@click.option("--image-size", type=str, metavar="HxW", help=IMAGE_SIZE_HELP)
@click.option("--skip-bad-files", is_flag=True, default=None, help=SKIP_BAD_HELP)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any override, e.g. train.lr=0.05.")
@click.option("--run-dir", type=click.Path(), help="Run folder (default: runs/<spec>-<time>).")
@click.option("--device", type=str, help="cpu | cuda (default: cuda when available).")
@click.option("--threads", type=THREADS, help="CPU threads (default: all cores available).")
@log_options
@click.pass_context
def train(ctx: click.Context, spec: str, epochs: int | None, minutes: float | None,
          batch_size: int | None, optimizer: str | None,
          lr: float | None, seed: int | None, precision: str | None, dataset: str | None,
          data_dir: str | None, train_subset: int | None, image_size: str | None,
          skip_bad_files: bool | None, sets: tuple[str, ...], run_dir: str | None,
          device: str | None, threads: int | None, loggers: tuple[str, ...],
          mlflow_uri: str | None) -> None:
    """Train SPEC (default: 'default') and save a run folder; prints dev accuracy and the folder."""
    from .specs import load_spec
    from .training import train as run_training

    if minutes is not None and (epochs is not None or any(x.startswith("train.epochs=") for x in sets)):
        raise ArchtuneError("give --epochs or --minutes, not both: --minutes chooses the epochs")

    shortcuts = {"train.epochs": epochs, "train.batch_size": batch_size, "train.optimizer": optimizer,
                 "train.lr": lr, "train.seed": seed, "train.precision": precision,
                 "data.dataset": dataset, "data.data_dir": data_dir, "data.train_subset": train_subset,
                 "data.image_size": image_size_option(image_size),
                 "data.skip_bad_files": skip_bad_files or None}
    loaded = load_spec(spec, _overrides(shortcuts, sets))
    report_training(lambda: run_training(loaded, run_dir=run_dir, device=device, threads=threads,
                                         progress=not ctx.obj["quiet"], loggers=list(loggers),
                                         mlflow_uri=mlflow_uri, minutes=minutes))


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--split", default="dev", show_default=True, help="train | dev | test.")
@click.option("--json", "as_json", is_flag=True,
              help="Print everything as JSON (one object; a list for several runs).")
@click.option("--data-dir", type=str, help="Where the data set's files are, if not where training found them.")
@click.option("--tta/--no-tta", default=None, help="Flip test-time augmentation (default: the spec's).")
@click.option("--device", type=str)
def evaluate(runs: tuple[str, ...], split: str, as_json: bool, data_dir: str | None,
             tta: bool | None, device: str | None) -> None:
    """Evaluate runs' best weights on a split (the test split only when asked).

    Several runs are checked before any is evaluated, then summed up in one table.
    """
    from .evaluate import SPLITS, format_evaluation
    from .evaluate import evaluate as run_eval
    from .training import load_run

    if split not in SPLITS:
        raise ArchtuneError(f"unknown split {short(split)}; expected one of: {', '.join(SPLITS)}")
    loaded = [load_run(r) for r in runs]  # every folder checked first
    results = []
    for r in loaded:
        result = run_eval(r, split, data_dir=data_dir, tta=tta, device=device)
        results.append(result)
        if not as_json:
            click.echo((f"== {r.path}\n" if len(loaded) > 1 else "") + format_evaluation(result)
                       + ("\n" if len(loaded) > 1 else ""))
    if as_json:
        click.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    elif len(results) > 1:
        click.echo(f"{'run':<40}{split + ' acc':>10}{'loss':>9}{'macro F1':>10}")
        for r, res in zip(loaded, results, strict=True):
            click.echo(f"{str(r.path)[-39:]:<40}{res['accuracy'] * 100:>9.2f}%{res['loss']:>9.4f}"
                       f"{res['macro_f1']:>10.4f}")


@cli.command()
@click.argument("runs", nargs=-1, required=True)
@click.option("--run-dir", type=click.Path(), required=True, help="Run folder of the ensemble.")
@click.option("--all", "keep_all", is_flag=True,
              help="Keep every run (default: those the dev split cannot tell from the best).")
def ensemble(runs: tuple[str, ...], run_dir: str, keep_all: bool) -> None:
    """Average trained RUNS (same classes and train/dev split) into one model: a run folder that
    evaluate, predict, export and serve take as any run."""
    from ._ensemble import ensemble as make_ensemble
    from .evaluate import dev_result

    run = make_ensemble(list(runs), run_dir, keep_all=keep_all)
    for m in run.metrics["ensemble"]["members"]:
        click.echo(f"  {'kept' if m['chosen'] else 'left out'}: {m['run']} (dev {m['dev_accuracy']:.2%})")
    dev = dev_result(run)
    click.echo(f"dev accuracy {dev['accuracy']:.2%} ({dev['weights']}; chosen on this dev split, so "
               "it reads high)")
    click.echo(f"run saved in {run.path}\ntest it: archtune evaluate {run.path} --split test")


@cli.command()
@click.option("--root", default="runs", show_default=True, type=click.Path(), help="Folder of runs.")
def runs(root: str) -> None:
    """Table of saved runs: spec, status, epochs, dev and test accuracy, time; unreadable run
    folders are listed with the reason.

    Dev accuracy: the kept weights as 'archtune evaluate' measures them (the spec's TTA)."""
    from .training import UnreadableRun, scan_runs

    found = scan_runs(root)
    if not found:
        click.echo(f"no runs under {root}/")
        return
    from .evaluate import dev_result

    click.echo(f"{'run':<36}{'spec':<16}{'status':<12}{'epochs':>7}{'dev acc':>9}{'test acc':>9}{'time':>8}")
    for r in found:
        try:
            test = None if isinstance(r, UnreadableRun) else r.evaluation("test")
        except ArchtuneError as err:
            r = UnreadableRun(r.path, str(err).removeprefix(f"{r.path}/"))
        if isinstance(r, UnreadableRun):
            click.echo(f"{r.name[:35]:<36}unreadable: {r.reason}")
            continue
        dev = dev_result(r)["accuracy"]
        dev_acc = f"{dev * 100:.2f}" if dev == dev else "-"
        test_acc = f"{test['accuracy'] * 100:.2f}" if test else "-"
        click.echo(f"{r.name[:35]:<36}{r.spec.name[:15]:<16}{r.status:<12}{r.metrics.get('epochs_run', 0):>7}"
                   f"{dev_acc:>9}{test_acc:>9}{r.metrics.get('train_seconds', 0):>7.0f}s")


@cli.command()
@click.argument("pattern", default="*")
def layers(pattern: str) -> None:
    """Layer types a spec may use, with their arguments, kinds and defaults; then the activation
    and initialiser names. PATTERN filters the types, such as 'conv*'."""
    from .specs import layers_table

    click.echo(layers_table(pattern))


for _command in (*search_commands, *studies_commands, *report_commands, *serve_commands,
                 *dashboard_commands, *plan_commands, *tune_commands):  # the verbs of archtune.commands
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors print one clear line and exit with code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="archtune", standalone_mode=False)
    except ArchtuneError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
