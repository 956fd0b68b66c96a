"""Training to a time budget (``train(minutes=...)``, ``archtune train --minutes``): the epochs are
planned from timed steps of the run itself, recorded, and the run is the one that many epochs
would give. No wall time is asserted: only that the plan is what its own measurements say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archtune import ArchtuneError, train
from archtune.training.budget import MARGIN, epochs_that_fit
from tests.conftest import make_splits

SPEC = {
    "name": "timed",
    "layers": [
        {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 4}},
        "Flatten",
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 3, "ema": 0.9,
              "augment": {"translate": 1}},
}


def test_epochs_that_fit_leave_room_for_the_final_evaluation() -> None:
    assert epochs_that_fit(100, 10, 20, 5) == int(MARGIN * 85 // 20) == 4
    assert epochs_that_fit(100, 10, 0.5, 0) == int(MARGIN * 90 / 0.5)
    assert epochs_that_fit(10, 9, 20, 5) == 1  # too short for one epoch: one, with a warning


def test_a_time_budget_plans_the_epochs_and_records_the_plan(tmp_path: Path) -> None:
    splits = make_splits(400, 100)
    run = train(SPEC, splits=splits, run_dir=tmp_path / "timed", progress=False, minutes=0.1,
                threads=1)
    plan = run.metrics["time_budget"]
    assert plan["budget_s"] == pytest.approx(6.0) and plan["spec_epochs"] == 3
    assert plan["epochs"] == epochs_that_fit(plan["budget_s"], plan["spent_s"], plan["epoch_s"],
                                             plan["final_s"])
    assert plan["step_s"] > 0 and plan["epoch_s"] > plan["step_s"] * (400 // 32)  # + dev pass
    assert plan["wall_s"] > plan["spent_s"] and plan["predicted_s"] > plan["spent_s"]
    assert run.metrics["epochs_run"] == plan["epochs"] == run.spec.train.epochs
    saved = json.loads((run.path / "metrics.json").read_text())["time_budget"]
    assert saved["epochs"] == plan["epochs"] and "wall_s" in saved
    # the timing run leaves no trace: the same seed and epochs train the same run
    again = train(SPEC | {"train": SPEC["train"] | {"epochs": plan["epochs"]}}, splits=splits,
                  run_dir=tmp_path / "fixed", progress=False, threads=1)
    assert [r["dev_accuracy"] for r in again.history_rows] == \
        [r["dev_accuracy"] for r in run.history_rows]
    assert "time_budget" not in again.metrics


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_a_time_budget_must_be_positive(bad: float, tmp_path: Path) -> None:
    with pytest.raises(ArchtuneError, match="minutes: expected a time budget > 0"):
        train(SPEC, splits=make_splits(), run_dir=tmp_path / "x", minutes=bad)
    assert not (tmp_path / "x").exists()


def test_cli_refuses_epochs_and_minutes_together(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "from archtune.cli import main; main()", "train", "default",
           "--epochs", "2", "--minutes", "1", "--run-dir", str(tmp_path / "r")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "give --epochs or --minutes, not both" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "r").exists()


def test_short_epochs_are_timed_whole_and_planned_from_the_median(monkeypatch: pytest.MonkeyPatch) -> None:
    """An epoch shorter than the timing is timed whole, several times, and one slow epoch (the
    machine busy with something else) does not move the plan: the median counts."""
    from types import SimpleNamespace

    from archtune.specs import load_spec
    from archtune.training import budget
    from archtune.training.trainer import _prepare

    clock = [0.0]
    sizes: list[int] = []
    durations = iter([0.3, 1.0, 9.0, 1.2, 1.1, 1.0])  # warm-up, then whole epochs: one slow

    def fake_epoch(model, x, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        sizes.append(len(x))
        clock[0] += next(durations)

    monkeypatch.setattr(budget, "train_epoch", fake_epoch)
    monkeypatch.setattr(budget, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    fit = _prepare(load_spec(SPEC), make_splits(400, 100), None, "cpu", 1)
    step_s, epoch_s, final_s = budget.time_epoch(fit, final_dev=False)
    steps = 400 // 32  # 12 steps an epoch (the ragged last batch is dropped)
    assert sizes == [budget.WARMUP_STEPS * 32] + [steps * 32] * 3  # 3 whole epochs (11.2 s)
    assert step_s == pytest.approx(1.2 / steps)  # the median epoch; the mean would be 3.73 s
    assert epoch_s == pytest.approx(steps * step_s) and final_s == 0.0  # no time passed in dev
