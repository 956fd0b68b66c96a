"""Training to a time budget (``train(minutes=...)``, ``archtune train --minutes``): the epochs are
planned from timed steps of the run itself, recorded, and the run is the one that many epochs
would give. No wall time is asserted: only that the plan is what its own measurements say."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from archtune import ArchtuneError, train
from archtune.training.budget import MARGIN, EpochPlan, epochs_that_fit
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


def test_a_time_budget_plans_the_epochs_and_records_the_plan(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from archtune.training import budget

    monkeypatch.setattr(budget, "REPLAN_AT", ())  # the plan alone (re-planning: tested below)
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
    assert saved["epochs"] == plan["epochs"] == saved["epochs_final"] and "wall_s" in saved
    assert saved["replans"] == []
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


def _plan(**kw: float) -> EpochPlan:
    return EpochPlan(**({"budget_s": 100.0, "spent_s": 10.0, "step_s": 0.1, "epoch_s": 1.0,
                         "final_s": 0.0, "epochs": 87, "spec_epochs": 5} | kw))


def test_a_run_re_plans_from_its_own_epochs_at_10_50_and_80_percent() -> None:
    """Epochs twice as slow as timed: at 10% of the training time the run counts the epochs
    that fit from its own (the first, a warm-up, left out), again at 50% and at 80%."""
    from archtune.training.budget import REPLAN_AT, Replanner

    assert REPLAN_AT == (0.1, 0.5, 0.8)
    clock = [0.0]
    replan = Replanner(_plan(), started=0.0, clock=lambda: clock[0])
    changes = {}
    for epoch in range(1, 60):
        clock[0] = 13 + 2.0 * epoch  # epoch 1 took 5 s (warm-up), then 2 s each
        if (epochs := replan.after_epoch(epoch)) is not None:
            changes[epoch] = epochs
    # 10% (9 s of 90) is gone at epoch 3 (19 s): 2 s an epoch since epoch 1; 0.97 x 81 s -> 39
    first = replan.replans[0]
    assert first["epoch"] == 3 and first["epoch_s"] == pytest.approx(2.0)
    assert first["timed_from"] == 1 and first["epochs"] == 3 + int(0.97 * 81 / 2.0) == 42
    # 50% at epoch 21 (55 s): 0.97 x 45 s -> 21 more: still 42, so no change; 80% at epoch 35
    # (83 s): 0.97 x 17 s -> 8 more, 43 (the margin is 3% of less time), still inside 100 s
    assert [r["epoch"] for r in replan.replans] == [3, 21, 35]
    assert [r["timed_from"] for r in replan.replans] == [1, 3, 21]
    assert changes == {3: 42, 35: 43} and replan.epochs == 43 and 13 + 2.0 * 43 <= 100


def test_a_late_re_plan_times_the_epochs_since_the_last_one() -> None:
    """Epochs slow down after the 50% re-plan (2 s, then 3 s): the 80% re-plan times the epochs
    since the last re-plan, so the run still ends inside its budget (the average since epoch 1,
    2.3 s, would plan 2 epochs too many: 103 s)."""
    from archtune.training.budget import Replanner

    clock = [0.0]
    replan = Replanner(_plan(), started=0.0, clock=lambda: clock[0])
    end = 0.0
    for epoch in range(1, 60):
        clock[0] = 13 + 2.0 * epoch if epoch <= 21 else 55 + 3.0 * (epoch - 21)
        replan.after_epoch(epoch)
        if epoch == replan.epochs:
            end = clock[0]
            break
    last = replan.replans[-1]
    assert last["epoch"] == 30 and last["timed_from"] == 21 and last["epoch_s"] == pytest.approx(3.0)
    assert replan.epochs == 30 + int(0.97 * 18 / 3.0) == 35
    assert 90 < end <= 100


def test_no_re_plan_before_three_epochs_or_after_the_last() -> None:
    from archtune.training.budget import Replanner

    clock = [0.0]
    replan = Replanner(_plan(epochs=4, epoch_s=20.0), started=0.0, clock=lambda: clock[0])
    clock[0] = 20.0
    assert replan.after_epoch(1) is None
    clock[0] = 40.0  # 10% gone after epoch 2: too few epochs to time
    assert replan.after_epoch(2) is None and replan.replans == []
    clock[0] = 60.0  # epoch 3: 10% and 50% due at once, one re-plan; 20 s an epoch: 1 more fits
    assert replan.after_epoch(3) is None and len(replan.replans) == 1  # 4 as planned
    assert replan.after_epoch(4) is None and len(replan.replans) == 1
    done = Replanner(_plan(epochs=3), started=0.0, clock=lambda: 99.0)
    assert [done.after_epoch(e) for e in (1, 2, 3)] == [None] * 3 and done.replans == []


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "triangular"])
def test_a_stretched_schedule_keeps_its_lr_and_ends_where_it_would_have(schedule: str) -> None:
    from archtune.config import TrainConfig
    from archtune.training.optim import lr_factor, make_scheduler, stretch_schedule

    cfg = TrainConfig(epochs=10, schedule=schedule, lr=1.0)
    model = torch.nn.Linear(2, 2)
    groups = [{"params": [model.weight]}, {"params": [model.bias], "lr": 0.5}]  # two groups
    opt = torch.optim.SGD(groups, lr=1.0)
    sched = make_scheduler(opt, cfg, 10)  # 100 steps
    for _ in range(30):
        opt.step()
        sched.step()
    before = opt.param_groups[0]["lr"]
    stretch_schedule(sched, 30, 200)  # twice the steps left...
    factor = sched.lr_lambdas[1]
    assert factor(30) == pytest.approx(lr_factor(cfg, 30, 100, 10)) == pytest.approx(before)
    assert factor(115) == pytest.approx(lr_factor(cfg, 65, 100, 10))  # halfway on, halfway on
    assert factor(200) == pytest.approx(lr_factor(cfg, 100, 100, 10))  # the same end
    stretch_schedule(sched, 115, 150)  # ... then fewer: the 85 steps left become 35
    assert factor(115) == pytest.approx(lr_factor(cfg, 65, 100, 10))
    assert factor(150) == pytest.approx(lr_factor(cfg, 100, 100, 10))
    assert factor(132.5) == pytest.approx(lr_factor(cfg, 82.5, 100, 10))
    for _ in range(31, 151):
        opt.step()
        sched.step()
    assert opt.param_groups[1]["lr"] == pytest.approx(0.5 * lr_factor(cfg, 100, 100, 10))


def test_constant_and_step_schedules_are_not_stretched() -> None:
    from archtune.config import TrainConfig
    from archtune.training.optim import lr_factor, make_scheduler, stretch_schedule

    cfg = TrainConfig(epochs=10, schedule="step", step_size=2, gamma=0.5)
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    sched = make_scheduler(opt, cfg, 10)
    stretch_schedule(sched, 30, 200)
    assert sched.lr_lambdas[0](45) == lr_factor(cfg, 45, 100, 10) == 0.25


def test_a_run_whose_timing_was_far_off_re_plans_and_ends_its_schedule(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The timing says epochs are 4x faster than they are: the run plans 4x the epochs, then
    re-plans from its own; spec.yaml and metrics say what ran, and the one-cycle schedule was
    squeezed to end on the last epoch rather than cut off high."""
    from archtune.training import budget

    real = budget.time_epoch

    def optimistic(fit, final_dev):  # noqa: ANN001, ANN202
        step_s, epoch_s, final_s = real(fit, final_dev)
        return step_s / 4, epoch_s / 4, final_s

    monkeypatch.setattr(budget, "time_epoch", optimistic)
    spec = SPEC | {"train": SPEC["train"] | {"schedule": "onecycle", "patience": None}}
    run = train(spec, splits=make_splits(400, 100), run_dir=tmp_path / "r", progress=False,
                minutes=0.1, threads=1)
    plan = run.metrics["time_budget"]
    assert plan["replans"] and plan["replans"][0]["epochs"] < plan["epochs"] / 2
    final = plan["replans"][-1]["epochs"]
    assert run.metrics["epochs_run"] == final == run.spec.train.epochs == plan["epochs_final"]
    assert f"epochs: {final}" in (run.path / "spec.yaml").read_text()
    lrs = [r["lr"] for r in run.history_rows]
    assert lrs[-1] < 0.02 * max(lrs)  # the schedule's tail ran: cut off, it would be near the top
