"""retrain --ensemble: every finalist run averaged into one model that evaluate, predict and
export use as any run; the study's budgets apply to the members together."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from archtune import ArchtuneError, evaluate, load_run
from archtune._ensemble import select_members
from archtune.data import load_data
from archtune.models import EnsembleNet
from archtune.search import best_trial, read_finals, retrain, search
from archtune.training import load_checkpoint
from tests.conftest import require_module

from .conftest import TINY_SPACE, run_cli, space


@pytest.fixture
def tiny_study(tmp_path: Path, tiny_npz: Path, monkeypatch) -> Any:
    monkeypatch.chdir(tmp_path)
    raw = space(TINY_SPACE, tiny_npz, epochs=1)
    return search(raw, trials=4, sampler="random", pruner="none", studies_dir="studies")


def test_members_are_the_runs_dev_cannot_tell_from_the_best() -> None:
    # 400 dev images at 85%: one standard error is 1.79 points
    dev, loss = [0.85, 0.80, 0.84, 0.83, 0.85], [0.5, 0.4, 0.45, 0.6, 0.45]
    assert select_members(dev, 400, loss) == [4, 0, 2]  # best first, ties by loss; 0.835  is out
    assert select_members(dev, 40, loss) == [4, 0, 2, 3, 1]  # 40 images: all within the noise
    assert select_members([0.9], 1000, [0.3]) == [0]
    # a perfect dev score on 240 images still has noise (0.58 points): one image behind is kept,
    # two are not
    assert select_members([1.0, 239 / 240, 238 / 240], 240, [0.1, 0.1, 0.1]) == [0, 1]


def test_the_noise_of_an_accuracy_never_vanishes() -> None:
    from archtune._stats import accuracy_se

    assert accuracy_se(1.0, 240) == pytest.approx(0.00577, abs=1e-5)
    assert accuracy_se(0.0, 240) == pytest.approx(accuracy_se(1.0, 240)) and accuracy_se(0.0, 240) > 0
    plain = (0.85 * 0.15 / 400) ** 0.5  # hundreds of images: the textbook formula, nearly
    assert accuracy_se(0.85, 400) == pytest.approx(plain, abs=2e-4)
    assert accuracy_se(0.5, 10_000) < accuracy_se(0.5, 100)


def test_an_ensemble_averages_its_members_probabilities(tiny_study) -> None:
    run = retrain(tiny_study, finalists=2, seeds=2, ensemble=True, run_dir="runs/ens")
    finals = read_finals("studies/tiny")
    assert finals is not None
    listed = run.metrics["ensemble"]["members"]
    assert sorted(m["run"] for m in listed) == sorted(r for f in finals.finalists for r in f.runs)
    chosen = [m for m in listed if m["chosen"]]
    assert chosen and listed[:len(chosen)] == chosen  # the chosen first, in the order chosen
    member_runs = [load_run(m["run"]) for m in chosen]
    model, ckpt = load_checkpoint(run.path / "best.pt")
    assert isinstance(model, EnsembleNet) and len(model.members) == len(chosen)
    assert [m["run"] for m in ckpt["members"]] == [m["run"] for m in chosen]
    # the ensemble's output is the log of its members' mean probabilities
    data = load_data(run.spec.data).split("dev")
    with torch.no_grad():
        probs = torch.stack([r.load_model("cpu")(data.x).softmax(1) for r in member_runs]).mean(0)
        got = model(data.x)
    assert torch.allclose(got.exp(), probs, atol=1e-5)
    assert torch.allclose(got.softmax(1), probs, atol=1e-5)  # log-probabilities are logits
    # the members are the runs within the dev noise of the best, the best first
    devs = [m["dev_accuracy"] for m in listed]
    assert chosen[0]["dev_accuracy"] == max(devs)
    picked = select_members(devs, run.metrics["dev"]["n"], [m["dev_loss"] for m in listed])
    assert [m["run"] for m in chosen] == [listed[i]["run"] for i in picked]
    # its metrics: the ensemble's dev accuracy, the members' summed cost
    m = run.metrics
    assert m["dev"]["members"] == len(chosen) and m["dev"]["n"] == len(data)
    expect = float((probs.argmax(1) == data.y).float().mean())
    assert m["dev"]["accuracy"] == pytest.approx(expect)
    assert m["params"] == sum(r.metrics["params"] for r in member_runs)
    assert run.spec.to_dict() == member_runs[0].spec.to_dict()  # the lead member's
    record = json.loads((run.path / "search.json").read_text())
    assert record["ensemble"] is True and record["trial"] == chosen[0]["trial"]
    # evaluate uses it as any run
    test = evaluate(run, "test")
    assert test["n"] > 0 and (run.path / "eval_test.json").is_file()


def test_an_ensemble_run_predicts_and_exports(tiny_study, tmp_path: Path) -> None:
    from archtune.serve import Predictor

    run = retrain(tiny_study, finalists=2, seeds=1, ensemble=True, run_dir="runs/ens")
    pred = Predictor.from_run(run.path)
    x = torch.rand(5, *pred.format.chw)
    p = pred.probabilities(x)
    assert p.shape == (5, len(run.classes)) and abs(float(p.sum(1).mean()) - 1) < 1e-5
    from archtune.serve.explain import explain_image

    layer = explain_image(pred, x[0].numpy())["activations"]["layer"]
    n_members = run.metrics["dev"]["members"]
    assert layer.endswith(f"of the lead member (1 of {n_members} averaged)")
    from archtune.report import run_report

    html = run_report(run.path, tmp_path / "r.html").read_text()
    n = run.metrics["dev"]["members"]
    assert f"an ensemble of {n} runs (retrain --ensemble)" in html
    require_module("onnxruntime")
    from archtune.serve.export import export_onnx

    report = export_onnx(pred, tmp_path / "ens.onnx")
    assert report.argmax_agree == report.n_checked


def test_an_ensemble_over_the_study_budget_is_refused_before_training(tmp_path: Path,
                                                                       tiny_npz: Path,
                                                                       monkeypatch) -> None:
    import archtune.training

    monkeypatch.chdir(tmp_path)
    raw = space(TINY_SPACE, tiny_npz, epochs=1)
    study = search(raw, trials=3, sampler="random", pruner="none", studies_dir="studies")
    params = max(t.user_attrs["params_count"] for t in study.trials)
    raw["search"] = {"max_params": 2 * params}  # every trial fits; 2 x 2 members together do not
    study = search(raw, trials=3, sampler="random", pruner="none", studies_dir="studies",
                   study="limited")
    calls: list[int] = []
    train = archtune.training.train
    monkeypatch.setattr(archtune.training, "train", lambda *a, **k: calls.append(1))
    with pytest.raises(ArchtuneError, match="run together exceed the study's budget: .* > max_params"):
        retrain(study, finalists=2, seeds=2, ensemble=True)
    assert calls == []
    monkeypatch.setattr(archtune.training, "train", train)
    run = retrain(study, finalists=2, seeds=2, ensemble="auto", run_dir="runs/auto")  # one run
    assert "ensemble" not in run.metrics and run.metrics["params"] <= 2 * params
    why = json.loads((run.path / "search.json").read_text())["ensemble_auto"]["why"]
    assert "exceed the study's budget" in why
    with pytest.raises(ArchtuneError, match="at least 2 members"):
        retrain(study, finalists=1, seeds=1, ensemble=True)
    with pytest.raises(ArchtuneError, match="--trial or --ensemble"):
        retrain(study, trial=0, ensemble=True)


def test_a_damaged_ensemble_checkpoint_is_one_clear_error(tiny_study) -> None:
    run = retrain(tiny_study, finalists=2, seeds=1, ensemble=True, run_dir="runs/ens")
    ckpt = torch.load(run.path / "best.pt", weights_only=True)
    ckpt["members"][-1].pop("state_dict")
    torch.save(ckpt, run.path / "best.pt")
    with pytest.raises(ArchtuneError, match=r"best.pt: members\[\d+\].*state_dict"):
        load_checkpoint(run.path / "best.pt")


def test_retrain_ensemble_command(tmp_path: Path, tiny_npz: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(space(TINY_SPACE, tiny_npz, epochs=1)))
    assert run_cli("search", "s.yaml", "--trials", "3", "--pruner", "none", cwd=tmp_path).returncode == 0
    result = run_cli("retrain", "tiny", "--finalists", "2", "--seeds", "1", "--ensemble",
                     "--run-dir", "runs/e", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "runs, probabilities averaged" in result.stdout
    result = run_cli("evaluate", "runs/e", "--split", "test", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_any_runs_of_one_split_can_be_averaged(tiny_study, tmp_path: Path) -> None:
    import archtune
    from archtune.specs import spec_from_dict

    retrain(tiny_study, finalists=2, seeds=1, run_dir="runs/w")
    finals = read_finals("studies/tiny")
    assert finals is not None
    a, b = (f.runs[0] for f in finals.finalists)
    run = archtune.ensemble([a, b], "runs/both", keep_all=True)
    assert [m["chosen"] for m in run.metrics["ensemble"]["members"]] == [True, True]
    assert run.metrics["ensemble"]["selection"] == "all runs given"
    assert len(load_checkpoint(run.path / "best.pt")[0].members) == 2
    with pytest.raises(ArchtuneError, match="not empty"):
        archtune.ensemble([a, b], "runs/both")
    with pytest.raises(ArchtuneError, match="at least 2 runs"):
        archtune.ensemble([a], "runs/one")
    with pytest.raises(ArchtuneError, match="given twice"):
        archtune.ensemble([a, a], "runs/twice")
    # a run trained on another train/dev split: its dev images were others' training images
    raw = load_run(a).spec.to_dict()
    raw["data"]["split_seed"] = 1
    other = archtune.train(spec_from_dict(raw), run_dir="runs/other", progress=False)
    with pytest.raises(ArchtuneError, match="another train/dev split"):
        archtune.ensemble([a, other.path], "runs/mixed")
    # the command
    result = run_cli("ensemble", a, b, "--run-dir", "runs/cli", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "kept: " in result.stdout and "probabilities averaged" in result.stdout
    result = run_cli("ensemble", a, "--run-dir", "runs/cli1", cwd=tmp_path)
    assert result.returncode == 2 and "at least 2 runs" in result.stderr
    assert "Traceback" not in result.stderr


def _timed_trial(number: int, seconds: list[float], epochs: int, subset: int | None) -> Any:
    import optuna

    trial = optuna.trial.create_trial(
        value=0.9, params={}, distributions={},
        user_attrs={"spec": {"train": {"epochs": epochs}},
                    "fidelity": {"epochs": 4, "train_subset": subset},
                    "history": [{"epoch": i + 1, "seconds": s} for i, s in enumerate(seconds)]})
    trial.number = number
    return trial


def test_auto_predicts_each_members_epochs_from_its_search_epochs() -> None:
    from archtune.search import epoch_seconds, undertrained

    # 12,000-image coarse epochs of 9, 3, 3.2 s (the first warms up): 3.1 s; on 48,000: 12.4 s
    big = _timed_trial(4, [9.0, 3.0, 3.2], epochs=24, subset=12_000)
    assert epoch_seconds(big, 48_000) == pytest.approx(12.4)
    # a coarse subset larger than the train split is all of it: no scaling
    assert epoch_seconds(big, 6_000) == pytest.approx(3.1)
    small = _timed_trial(7, [0.5, 0.3, 0.3], epochs=24, subset=None)  # all images already
    assert epoch_seconds(small, 1_600) == pytest.approx(0.3)
    assert epoch_seconds(_timed_trial(1, [], epochs=24, subset=None), 1_600) is None
    # 6 runs in 10 minutes: 100 s each, 97% of it planned (MARGIN)
    assert undertrained([small], 6, 10.0, 1_600) is None  # ~323 epochs >= 24
    why = undertrained([small, big], 3, 10.0, 48_000)
    assert why is not None and "6 runs sharing 10.0 minutes would get 100 s each" in why
    assert "trial 4 about 7.8 of its 24 epochs (12.4 s an epoch on 48,000 images)" in why
    assert "trial 7" not in why  # it fits
    assert undertrained([big], 2, 30.0, 48_000) is None  # 900 s each: 70 epochs
    assert "no timed epoch" in (undertrained([_timed_trial(2, [], 24, None)], 2, 5.0, 100) or "")


def test_runs_that_cannot_finish_one_epoch_in_their_share_are_left_out() -> None:
    from archtune.search import fitting

    fast = _timed_trial(3, [0.5, 0.4, 0.4], epochs=24, subset=None)  # 0.4 s an epoch
    mid = _timed_trial(5, [40.0, 30.0, 30.0], epochs=24, subset=None)  # 30 s
    slow = _timed_trial(8, [90.0, 80.0, 80.0], epochs=24, subset=None)  # 80 s
    # 3 trials x 2 seeds in 4 minutes: 40 s a run (38.8 s planned); the slowest goes first,
    # then 4 runs share it: 60 s each, so the middle one fits
    kept, why = fitting([fast, mid, slow], 2, 4.0, 1_000)
    assert [t.number for t in kept] == [3, 5]
    assert why == ["trial 8: one epoch takes about 80 s on 1,000 images, over its runs' share of 40 s"]
    kept, why = fitting([fast, mid, slow], 2, 1.0, 1_000)  # 10 s a run, then 15, then 30
    assert [t.number for t in kept] == [3] and len(why) == 2 and why[1].startswith("trial 5")
    assert fitting([fast, mid, slow], 2, 60.0, 1_000) == ([fast, mid, slow], [])
    untimed = _timed_trial(2, [], 24, None)
    assert fitting([untimed], 2, 0.01, 1_000) == ([untimed], [])  # no prediction: kept


def test_a_finalist_too_slow_for_one_epoch_is_left_out_of_the_round(tiny_study, monkeypatch,
                                                                    caplog) -> None:
    import archtune.search._finalists as ens

    top = retrain(tiny_study, finalists=2, seeds=1, ensemble=True, run_dir="runs/all")
    trials = sorted(m["trial"] for m in top.metrics["ensemble"]["members"])
    slow = trials[-1]
    monkeypatch.setattr(ens, "epoch_seconds", lambda t, n: 60.0 if t.number == slow else 0.01)
    run = retrain(tiny_study, finalists=2, seeds=2, ensemble=True, minutes=0.2, run_dir="runs/e")
    assert {m["trial"] for m in run.metrics["ensemble"]["members"]} == {trials[0]}
    finals = read_finals("studies/tiny")
    assert finals is not None and [f.trial for f in finals.finalists] == [trials[0]]
    assert len(finals.left_out) == 1 and finals.left_out[0].startswith(f"trial {slow}: one epoch")
    # the finalists' round (--finalists/--seeds given) leaves it out as well
    retrain(tiny_study, finalists=2, seeds=1, minutes=0.2, run_dir="runs/f")
    finals = read_finals("studies/tiny")
    assert finals is not None and [f.trial for f in finals.finalists] == [trials[0]]
    assert finals.left_out and finals.left_out[0].startswith(f"trial {slow}")
    from archtune.report.study_report import study_report

    html = study_report("studies/tiny", "r.html", best_report=False).read_text()
    assert "Left out of the round" in html and f"trial {slow}: one epoch takes about 60 s" in html
    # every trial that slow: no ensemble of 2 fits, said before any training
    assert [r for r in caplog.records if "left out" in r.getMessage()]  # a warning when it trains
    monkeypatch.setattr(ens, "epoch_seconds", lambda t, n: 60.0)
    caplog.clear()
    with pytest.raises(ArchtuneError, match=r"too short for 2 members \(trial \d+: one epoch"):
        retrain(tiny_study, finalists=2, seeds=1, ensemble=True, minutes=0.5, run_dir="runs/g")
    with pytest.raises(ArchtuneError, match="no finalist can train one epoch in its share"):
        retrain(tiny_study, finalists=2, seeds=1, minutes=0.5, run_dir="runs/h")
    assert not Path("runs/g").exists() and not Path("runs/h").exists()
    # the error says why; no warning before it repeats the reasons
    assert not [r for r in caplog.records if "left out" in r.getMessage()]


def test_the_retrain_command_says_which_finalist_it_left_out(tiny_study, monkeypatch, capsys) -> None:
    import archtune.search._finalists as ens
    from archtune.cli import main

    slow = best_trial(tiny_study).number
    monkeypatch.setattr(ens, "epoch_seconds", lambda t, n: 60.0 if t.number == slow else 0.01)
    main(["-q", "retrain", "tiny", "--finalists", "2", "--seeds", "1", "--minutes", "0.2",
          "--run-dir", "runs/cli"])
    out = capsys.readouterr().out
    assert f"left out of the round: trial {slow}: one epoch takes about 60 s" in out
    assert "archtune evaluate runs/cli" in out
    monkeypatch.setattr(ens, "epoch_seconds", lambda t, n: 60.0)  # none fits: exit 2, one line
    with pytest.raises(SystemExit) as exit_:
        main(["-q", "retrain", "tiny", "--ensemble", "--minutes", "0.5", "--run-dir", "runs/none"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "error: --ensemble --minutes 0.5: too short for 2 members" in err
    assert "Traceback" not in err and not Path("runs/none").exists()


def test_auto_trains_one_run_when_members_would_be_undertrained(tiny_study, monkeypatch) -> None:
    import archtune.search._finalists as ens

    run = retrain(tiny_study, finalists=2, seeds=1, ensemble="auto", minutes=0.2, run_dir="runs/a")
    record = json.loads((run.path / "search.json").read_text())
    assert "ensemble" in run.metrics and record["ensemble_auto"]["ensemble"] is True
    monkeypatch.setattr(ens, "epoch_seconds", lambda trial, n: 60.0)  # a minute an epoch
    run = retrain(tiny_study, finalists=2, seeds=1, ensemble="auto", minutes=0.2, run_dir="runs/b")
    record = json.loads((run.path / "search.json").read_text())
    assert "ensemble" not in run.metrics and not isinstance(run.load_model(), EnsembleNet)
    assert record["ensemble_auto"]["ensemble"] is False
    assert "2 runs sharing 0.2 minutes" in record["ensemble_auto"]["why"]
    assert record["trial"] == best_trial(tiny_study).number  # the best trial, once, all the time
    # without a time budget every member trains its full epochs: auto averages
    run = retrain(tiny_study, finalists=2, seeds=1, ensemble="auto", run_dir="runs/c")
    assert "ensemble" in run.metrics
    with pytest.raises(ArchtuneError, match="expected true, false or 'auto'"):
        retrain(tiny_study, ensemble="always")  # type: ignore[arg-type]


def test_retrain_ensemble_auto_command(tmp_path: Path, tiny_npz: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(space(TINY_SPACE, tiny_npz, epochs=1)))
    assert run_cli("search", "s.yaml", "--trials", "3", "--pruner", "none", cwd=tmp_path).returncode == 0
    result = run_cli("retrain", "tiny", "--finalists", "2", "--seeds", "1", "--ensemble", "auto",
                     "--minutes", "0.15", "--run-dir", "runs/e", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--ensemble auto: averaged (every member fits its full epochs in its share)" in result.stdout
    result = run_cli("retrain", "tiny", "--ensemble", "sometimes", cwd=tmp_path)
    assert result.returncode == 2 and "'sometimes' is not one of 'on', 'auto'" in result.stderr
