"""The run writer alone writes a training run's folder; what it writes loads as a Run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archtune.errors import ArchtuneError
from archtune.models import build_model
from archtune.specs import load_spec
from archtune.training.device import memory_format
from archtune.training.run_writer import RunWriter
from archtune.training.runs import load_run


def test_the_writer_keeps_the_folder_loadable_after_every_epoch(tmp_path: Path) -> None:
    spec = load_spec("cnn-small")
    model = build_model(spec)
    w = RunWriter(tmp_path / "r", spec, {"device": "cpu", "threads": 1},
                  {"spec": spec.name, "classes": [str(i) for i in range(10)]})
    assert load_run(tmp_path / "r").metrics["status"] == "running"  # loadable from the start
    row = {"epoch": 1, "lr": 0.1, "train_loss": 1.0, "train_accuracy": 0.5, "dev_loss": 0.9,
           "dev_accuracy": 0.6, "seconds": 1.0}
    w.best(model, w.metrics["classes"], row)
    w.epoch(row, {"conv": 0.5}, 1.0)
    w.update_env(precision="fp32")
    w.metrics["status"] = "complete"
    w.finish(2.0)
    run = load_run(tmp_path / "r", model=model)
    assert run.metrics["best_epoch"] == 1 and run.metrics["best"]["dev_accuracy"] == 0.6
    assert run.history_rows[0]["dev_accuracy"] == 0.6 and run.grad_norms[0]["conv"] == 0.5
    assert run.env["precision"] == "fp32" and run.load_model() is model
    with pytest.raises(ArchtuneError, match="already holds a run"):
        RunWriter(tmp_path / "r", spec, {}, {})


def test_channels_last_only_for_convolutional_specs() -> None:
    conv, dense = load_spec("cnn-small"), load_spec("mlp-small")
    model, used = memory_format(build_model(conv), conv)
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert used and weight.is_contiguous(memory_format=torch.channels_last)
    assert memory_format(build_model(dense), dense)[1] is False
