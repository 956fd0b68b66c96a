"""The run writer alone writes a training run's folder; what it writes loads as a Run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archtune.errors import ArchtuneError
from archtune.models import build_model
from archtune.specs import load_spec
from archtune.training import run_writer
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


def test_per_epoch_files_are_rewritten_at_a_best_epoch_a_second_apart_and_at_the_end(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of sub-second epochs must not each rewrite every row; but the best epoch's row
    is on disk with its checkpoint, and the end writes every row."""
    monkeypatch.setattr(run_writer, "FLUSH_S", 1e9)  # no epoch is a second after the last write
    spec = load_spec("cnn-small")
    model = build_model(spec)
    w = RunWriter(tmp_path / "r", spec, {}, {"spec": spec.name, "classes": ["a", "b"]})

    def row(epoch: int, acc: float) -> dict[str, float]:
        return {"epoch": epoch, "lr": 0.1, "train_loss": 1.0, "train_accuracy": acc,
                "dev_loss": 1.0, "dev_accuracy": acc, "seconds": 0.01}

    w.best(model, ["a", "b"], row(1, 0.5))
    w.epoch(row(1, 0.5), {"conv": 0.5}, 0.01)
    w.epoch(row(2, 0.4), {"conv": 0.5}, 0.02)
    w.epoch(row(3, 0.3), {"conv": 0.5}, 0.03)
    on_disk = load_run(tmp_path / "r")
    assert [r["epoch"] for r in on_disk.history_rows] == [1] and on_disk.metrics["epochs_run"] == 1
    w.best(model, ["a", "b"], row(4, 0.6))
    w.epoch(row(4, 0.6), {"conv": 0.5}, 0.04)
    w.epoch(row(5, 0.2), {"conv": 0.5}, 0.05)
    on_disk = load_run(tmp_path / "r")
    assert len(on_disk.history_rows) == 4 and on_disk.metrics["best_epoch"] == 4
    w.finish(0.06)
    done = load_run(tmp_path / "r")
    assert len(done.history_rows) == len(done.grad_norms) == done.metrics["epochs_run"] == 5
    monkeypatch.setattr(run_writer, "FLUSH_S", 0.0)
    w2 = RunWriter(tmp_path / "r2", spec, {}, {"spec": spec.name, "classes": ["a", "b"]})
    w2.epoch(row(1, 0.5), {}, 0.01)
    w2.epoch(row(2, 0.5), {}, 0.02)  # a second or more after the last write: rewritten
    assert len(load_run(tmp_path / "r2").history_rows) == 2


def test_a_run_with_no_epoch_finished_has_no_history_file(tmp_path: Path) -> None:
    spec = load_spec("cnn-small")
    w = RunWriter(tmp_path / "r", spec, {}, {"spec": spec.name, "classes": ["a", "b"]})
    w.metrics["status"] = "interrupted"
    w.finish(0.1)
    assert not (tmp_path / "r" / "history.csv").exists()
    assert load_run(tmp_path / "r").history_rows == []


def test_channels_last_only_for_convolutional_specs() -> None:
    conv, dense = load_spec("cnn-small"), load_spec("mlp-small")
    model, used = memory_format(build_model(conv), conv)
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert used and weight.is_contiguous(memory_format=torch.channels_last)
    assert memory_format(build_model(dense), dense)[1] is False
