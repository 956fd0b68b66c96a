"""One call per report verb: ``report`` (a run or a study), ``inspect_run``, ``data_plots``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from ..data import Dataset, Splits, load_data
from ..errors import ArchtuneError, short
from ..training.runs import RUN_FILES, Run, load_run
from . import data as plot_data
from . import figures as fg
from .data import as_images
from .inspect import (
    ActivationMaps,
    activation_maps,
    as_ref,
    check_conv_layer,
    check_image_index,
    conv_layers,
)
from .plan_report import plan_report
from .run import run_report
from .study import is_study
from .study_report import study_report

log = logging.getLogger(__name__)


def kind_of(path: str | Path) -> str:
    """'run', 'study' or 'plan'; a clear error for anything else."""

    path = Path(path)
    if not path.exists():
        raise ArchtuneError(f"{path}: no such folder")
    if is_study(path):
        return "study"
    if (path / "plan.yaml").is_file() and (path / "state.json").is_file():
        return "plan"
    if path.is_dir() and all((path / f).is_file() for f in RUN_FILES):
        return "run"
    raise ArchtuneError(f"{path}: not a run folder (with {' and '.join(RUN_FILES)}), a study "
                        f"folder (with study.json) nor a plan folder (with plan.yaml and state.json)")


def report(path: str | Path, output: str | Path | None = None, *, data_dir: str | None = None,
           device: str | None = None, images: tuple[int, ...] = (0,),
           best_report: bool = True) -> Path:
    """Write the HTML report of a run, study or plan folder; returns its path."""
    kind = kind_of(path)
    if kind == "plan":
        return plan_report(path, output, data_dir=data_dir, device=device)
    if kind == "study":
        return study_report(path, output, best_report=best_report, data_dir=data_dir,
                            device=device)

    return run_report(path, output, data_dir=data_dir, device=device, images=images)


@dataclass
class Inspection:
    path: Path  # the PNG written
    maps: ActivationMaps
    split: str
    image: int
    label: str


def inspect_run(run_path: str | Path, image: int, layers: list[int | str] | None = None, *,
                split: str = "test", output_dir: str | Path | None = None,
                data_dir: str | None = None) -> list[Inspection]:
    """Activation maps of conv layers (default: all) for one image of a split; one PNG per layer
    in ``output_dir`` (default: the run folder). Everything is checked before anything is written.
    """

    run = load_run(run_path)
    spec = run.spec
    layers = conv_layers(spec) if layers is None else [as_ref(i) for i in layers]
    if not layers:
        raise ArchtuneError(f"{run.path}: '{spec.name}' has no Conv2D layers; activation maps "
                            f"apply to CNNs")
    for i in layers:
        check_conv_layer(spec, i)
    if split not in ("train", "dev", "test"):
        raise ArchtuneError(f"unknown split {short(split)}; expected one of: train, dev, test")
    x, y = _split_images(run, split, data_dir)
    check_image_index(image, len(y), split)
    model = run.load_model("cpu")
    out_dir = Path(output_dir) if output_dir else run.path
    label = run.classes[int(y[image])] if run.classes else str(int(y[image]))
    picture = as_images(x[image][None].numpy())[0]
    done = []
    for maps in activation_maps(model, spec, x[image], layers):
        fig = fg.draw_activations(picture, maps, f"{run.name}: {maps.name} (layer {maps.layer}), "
                                                 f"{split} image {image} ({label})", limit=512)
        out_dir.mkdir(parents=True, exist_ok=True)
        path = fg.save_png(fig, out_dir / f"activations-{split}{image}-layer{maps.layer}.png")
        done.append(Inspection(path, maps, split, image, label))
    return done


def _split_images(run: Run, split: str, data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    s = load_data(run.spec.data, data_dir=data_dir).split(split)
    return s.x, s.y


def data_plots(ds: Dataset, splits: Splits, out_dir: str | Path, *, per_class: int = 3,
               seed: int = 0) -> list[Path]:
    """``samples.png`` (a grid of training images with class names) and
    ``class_distribution.png`` (images per class in train, dev and test) in ``out_dir``."""

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    grid = plot_data.sample_grid(splits.train.x.numpy(), splits.train.y.numpy(), splits.classes,
                          per_class=per_class, seed=seed)
    counts = dict(splits.class_counts())
    counts["test"] = [int((ds.y_test == k).sum()) for k in range(len(ds.classes))]
    paths = [fg.save_png(fg.draw_grid(grid, f"{ds.name}: sample training images"),
                         out / "samples.png"),
             fg.save_png(fg.draw_class_distribution(plot_data.class_distribution(ds.classes, counts)),
                         out / "class_distribution.png")]
    log.info("wrote %s", ", ".join(map(str, paths)))
    return paths


__all__ = ["Inspection", "data_plots", "inspect_run", "kind_of", "report"]
