"""archtune tune: its plan, continuation from checkpoints, the delivered run, resuming."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import torch

from archtune.errors import ArchtuneError
from archtune.evaluate import evaluate
from archtune.search import load_space
from archtune.specs import load_spec
from archtune.training import Session, lr_factor
from archtune.tuning import (
    Candidate,
    TuneState,
    fidelity,
    mutate,
    plan_tune,
    read_state,
    spearman,
    spending,
    survivors,
    tune,
)
from archtune.tuning._plan import MIN_RUNG_EPOCHS, explore_units, prior_margin, rank
from archtune.tuning._state import write_state


def wsd_spec(epochs: int = 1000):
    spec = load_spec("cnn-small")
    train = dataclasses.replace(spec.train, schedule="wsd", epochs=epochs, warmup_frac=0.002,
                                cooldown_frac=0.2, batch_size=50, ema=0.99, precision="fp32")
    return dataclasses.replace(spec, train=train)


# -- the plan --------------------------------------------------------------------------------

def test_survivors_and_exploration_units() -> None:
    assert survivors(9) == [9, 3, 1]
    assert survivors(4) == [4, 2, 1]
    assert survivors(1) == [1]
    # 9 at rung 0 (1 unit each), 3 from 1 to 3 units; the winner's 3 units are delivered
    assert explore_units(9) == 9 + 3 * 2 - 3
    assert explore_units(2) == 1


def test_plan_spends_the_exploration_share_and_shrinks_when_short() -> None:
    plan = plan_tune(1500, 10, [2.0, 5.0], 25, explore=0.25)
    assert plan.candidates == 9
    assert plan.explore_s == pytest.approx(0.25 * plan.train_s)
    assert plan.explore_s + plan.delivered_s == pytest.approx(plan.train_s)
    assert plan.spent_s + plan.train_s + plan.final_s <= plan.budget_s
    assert [n for n, _ in plan.rungs] == [9, 3]
    assert plan.rungs[1][1] == pytest.approx(3 * plan.first_rung_s)
    short = plan_tune(1000, 10, [7.0, 20.0], 25, explore=0.25)
    assert 1 < short.candidates < 9  # each first rung still gives the slowest MIN_RUNG_EPOCHS
    assert short.first_rung_s >= MIN_RUNG_EPOCHS * 20.0
    assert plan_tune(1000, 10, [7.0, 20.0], 25, candidates=short.candidates + 1).candidates \
        == short.candidates  # one more would not fit
    none = plan_tune(60, 10, [7.0, 20.0], 25)
    assert none.candidates == 1 and none.explore_s == 0 and none.rungs == []
    with pytest.raises(ArchtuneError, match="explore"):
        plan_tune(60, 1, [1.0], 1, explore=1.5)


# -- continuation ----------------------------------------------------------------------------

def test_a_paused_run_continues_with_its_step_count_and_weights(tmp_path: Path, tiny_splits) -> None:
    spec = wsd_spec()
    a = Session.start(spec, tiny_splits, tmp_path / "a")
    a.advance(2)
    a.pause()
    b = Session.resume(tmp_path / "a", tiny_splits)
    assert b.epoch == 2 and b.fit.sched.last_epoch == a.fit.sched.last_epoch > 0
    assert b.fit.opt.param_groups[0]["lr"] == pytest.approx(a.fit.opt.param_groups[0]["lr"])
    for (k, va), vb in zip(a.fit.model.state_dict().items(), b.fit.model.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    a.advance(1)  # the same epoch, once in memory and once from the checkpoint
    b.advance(1)
    for (k, va), vb in zip(a.fit.model.state_dict().items(), b.fit.model.state_dict().values(), strict=True):
        assert torch.allclose(va, vb, atol=1e-6), k
    assert b.history[-1]["dev_accuracy"] == pytest.approx(a.history[-1]["dev_accuracy"])
    assert [r["epoch"] for r in b.history] == [1, 2, 3]


def test_set_end_places_the_decay_and_the_spec_says_so(tmp_path: Path, tiny_splits) -> None:
    s = Session.start(wsd_spec(), tiny_splits, tmp_path / "r")
    s.advance(2)
    s.set_end(6, 2)
    steps = s.fit.steps
    cfg = s.spec.train
    assert cfg.epochs == 6 and s.decay_epoch == 4
    factor = s.fit.sched.lr_lambdas[0]
    for step in range(6 * steps):  # the spec alone rebuilds the curve the run follows
        assert factor(step) == pytest.approx(lr_factor(cfg, step, 6 * steps, steps))
    assert factor(4 * steps - 1) == 1.0 and factor(6 * steps - 1) == pytest.approx(1 / (2 * steps))
    s.advance(10)  # never past the end
    run = s.finish()
    assert run.metrics["status"] == "complete" and run.metrics["epochs_run"] == 6
    assert not (tmp_path / "r" / "state.pt").exists()
    assert load_spec(tmp_path / "r" / "spec.yaml").train.epochs == 6
    with pytest.raises(ArchtuneError, match="cannot end"):
        late = Session.start(wsd_spec(), tiny_splits, tmp_path / "late")
        late.advance(3)
        late.set_end(3, 1)


def test_resume_refuses_a_folder_without_state(tmp_path: Path, tiny_splits) -> None:
    with pytest.raises(ArchtuneError, match="no state.pt"):
        Session.resume(tmp_path, tiny_splits)
    (tmp_path / "state.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ArchtuneError, match="not a readable training state"):
        Session.resume(tmp_path, tiny_splits)


# -- candidates and what a tune reports ------------------------------------------------------

def test_mutations_stay_in_the_space_and_change_one_or_two_values() -> None:
    space = load_space("auto-space")
    start = space.settings.start[1]
    rng = random.Random(0)
    for _ in range(50):
        child = mutate(start, space, rng)
        changed = [k for k in start if child[k] != start[k]]
        assert 1 <= len(changed) <= 2
        for k in changed:
            assert space.dim(k).contains(child[k]), (k, child[k])
    assert mutate(start, space, random.Random(3)) == mutate(start, space, random.Random(3))


def test_rungs_compare_at_equal_epochs_and_rank_the_too_slow_last() -> None:
    fast = [0.80, 0.85, 0.88, 0.90, 0.91, 0.92, 0.925, 0.93]  # 8 epochs in the rung's time
    slow = [0.78, 0.84, 0.87, 0.905]  # 4 epochs: behind at equal time, ahead at equal epochs
    assert rank({0: fast, 1: slow}) == ([1, 0], 4, 0.0)
    too_slow = [0.95] * (MIN_RUNG_EPOCHS - 1)  # best score, but too few epochs to compare
    assert rank({0: fast, 1: slow, 2: too_slow})[:2] == ([1, 0, 2], 4)
    assert rank({2: too_slow, 3: [0.5] * (MIN_RUNG_EPOCHS - 1)})[:2] == ([2, 3], MIN_RUNG_EPOCHS - 1)
    # a tie at the compared epoch goes to the better last score; then to the earlier candidate
    assert rank({0: [0.9] * 4, 1: [0.9, 0.9, 0.9, 0.9, 0.95]})[0] == [1, 0]
    assert rank({5: [0.9] * 4, 3: [0.9] * 4})[0] == [5, 3]
    assert rank({}) == ([], 0, 0.0)


def test_a_start_point_is_replaced_only_beyond_the_dev_noise() -> None:
    margin = prior_margin(0.9, 10_000)
    assert margin == pytest.approx((2 * 0.9 * 0.1 / 10_000) ** 0.5)  # 0.42 points
    assert prior_margin(0.9, 0) == 0.0 and prior_margin(1.0, 100) == 0.0
    start, close, far = [0.85, 0.9] * 2, [0.85, 0.9, 0.85, 0.9 + margin / 2], [0.85, 0.9] + [0.9 + 2 * margin] * 2
    assert rank({0: start, 7: close}, prior={0}, dev_size=10_000) == ([0, 7], 4, margin)
    assert rank({0: start, 7: far}, prior={0}, dev_size=10_000)[0] == [7, 0]
    assert rank({0: start, 7: close}, dev_size=10_000)[0] == [7, 0]  # no prior: the score alone
    # challengers keep their order among themselves; the margin comes from the best start point
    order, _, m = rank({0: start, 1: [0.5] * 4, 7: close, 8: far}, prior={0, 1}, dev_size=10_000)
    assert order == [8, 0, 7, 1] and m == margin


def test_fidelity_counts_reversed_pairs_and_rank_correlation() -> None:
    assert spearman([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2], [1, 2]) is None
    cands = [Candidate(i, {}, None, None, scores=s, status="stopped")
             for i, s in enumerate([[0.9, 0.91], [0.8, 0.93], [0.7, 0.92], [0.6]])]
    state = TuneState("s", "h", 1.0, 0.25, 0, {}, candidates=cands, phase="rungs")
    (f,) = fidelity(state)
    assert f["trials"] == 3 and f["pairs"] == 3 and f["reversed"] == 2
    assert f["spearman"] == pytest.approx(-0.5)


def test_tune_file_is_validated(tmp_path: Path) -> None:
    assert read_state(tmp_path) is None
    (tmp_path / "tune.json").write_text("{not json")
    with pytest.raises(ArchtuneError, match="not a readable tune file"):
        read_state(tmp_path)
    (tmp_path / "tune.json").write_text(json.dumps({"version": 1, "study": "s"}))
    with pytest.raises(ArchtuneError, match="not a tune file"):
        read_state(tmp_path)
    state = TuneState("s", "h", 1.0, 0.25, 0, {"budget_s": 60}, candidates=[Candidate(0, {}, None, None)])
    write_state(tmp_path, state)
    assert read_state(tmp_path) == state


# -- a whole tune on tiny data ---------------------------------------------------------------

def test_tune_delivers_a_run_that_reloads_and_evaluates(tmp_path: Path, tiny_npz: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("archtune.tuning._plan.MIN_RUNG_EPOCHS", 0)  # 4 candidates, however slow
    result = tune(data=str(tiny_npz), minutes=0.25, candidates=4, device="cpu")
    state = result.state
    assert state.phase == "done" and Path(state.delivered).parent.name == "runs"
    run = result.run
    assert run.metrics["status"] == "complete"
    dev = evaluate(run, "dev")
    assert dev["accuracy"] == pytest.approx(run.metrics["dev"]["accuracy"], abs=1e-6)
    states = [t.state for t in result.study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 1
    winner = next(c for c in state.candidates if c.status == "delivered")
    assert all(c.status in ("stopped", "failed") for c in state.candidates if c is not winner)
    best_start = max(c.scores[0] for c in state.candidates if c.start_point is not None)
    assert state.dev_accuracy >= best_start - 0.05  # never much worse than a start point
    # the winner's last rung continued: its epochs only grow, in one run folder
    assert winner.epochs == sorted(winner.epochs) and run.metrics["epochs_run"] == winner.epochs[-1]
    spent = spending(state)
    assert spent["delivered"] + spent["explore"] + spent["other"] == pytest.approx(spent["elapsed"])
    assert "delivered:" in result.summary() and "fidelity rung 0" in result.summary()
    # each decided rung names its compared epoch; its ranked scores are the dev accuracies there
    assert len(state.compared_at) == len(winner.ranked) >= 1
    assert f"rung 0 compared at epoch {state.compared_at[0]}" in result.summary()
    history = [float(r["dev_accuracy"]) for r in run.history_rows]
    assert winner.ranked[0] == pytest.approx(history[state.compared_at[0] - 1])
    from archtune.report import report

    page = report(result.folder, best_report=False).read_text()
    assert 'id="tune-table"' in page and winner.label in page
    again = tune(data=str(tiny_npz), minutes=0.25, candidates=4, device="cpu")
    assert again.state.delivered == state.delivered  # finished: nothing is trained again
    with pytest.raises(ArchtuneError, match="minutes 0.25"):
        tune(data=str(tiny_npz), minutes=0.5, candidates=4, device="cpu")


def test_final_stretch_ends_with_the_budget(tmp_path: Path, tiny_npz: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The winner's epochs are planned from the time left: with a clock that leaves it 20
    epochs of one second, it trains 20 more and its spec says so."""
    from archtune.tuning import _run

    seen: list[int] = []
    real = _run._Tuner._final

    def final(self, c):
        s = self.sessions[c.number]
        seen.append(s.epoch)
        end = s.epoch + 20
        monkeypatch.setattr(_run, "_recent_epoch_s", lambda session: 1.0)
        monkeypatch.setattr(Session, "final_eval_s", lambda self: 0.0)
        monkeypatch.setattr(_run._Tuner, "left", lambda self: (end - s.epoch + 0.5) / _run.MARGIN)
        real(self, c)

    monkeypatch.setattr(_run._Tuner, "_final", final)
    monkeypatch.setattr("archtune.tuning._plan.MIN_RUNG_EPOCHS", 0)
    monkeypatch.chdir(tmp_path)
    result = tune(data=str(tiny_npz), minutes=0.2, candidates=2, device="cpu")
    assert result.run.metrics["epochs_run"] == seen[0] + 20
    assert result.run.spec.train.epochs == seen[0] + 20
    assert result.run.spec.train.schedule == "wsd"


def test_a_killed_tune_resumes_without_losing_a_finished_rung(tmp_path: Path, tiny_npz: Path) -> None:
    args = ["tune", "--data", str(tiny_npz), "--minutes", "0.6", "--candidates", "4", "--device", "cpu"]
    # 4 candidates however slow the machine is (the plan shrinks rung 0 on a slow one)
    cmd = [sys.executable, "-c", "import sys, archtune.tuning._plan as p; p.MIN_RUNG_EPOCHS = 0; "
           "from archtune.cli import main; main(sys.argv[1:])", *args]
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    folder = tmp_path / "studies" / "auto-space-tune"
    deadline = time.monotonic() + 120
    before = None
    while time.monotonic() < deadline and proc.poll() is None:
        state = read_state(folder) if (folder / "tune.json").exists() else None
        if state is not None and state.rung >= 1:
            before = state
            break
        time.sleep(0.05)
    assert before is not None, "the tune ended or stalled before its first rung was decided"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_state(folder)  # as the kill left it
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming tune" in done.stderr
    after = read_state(folder)
    assert after.phase == "done"
    for old in before.candidates:
        new = after.find(old.number)
        assert new.scores[:len(old.scores)] == old.scores  # no finished rung is trained again
        assert new.epochs[:len(old.epochs)] == old.epochs
    assert after.elapsed_s >= before.elapsed_s
    assert (tmp_path / after.delivered / "best.pt").is_file()
