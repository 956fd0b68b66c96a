"""Noise-aware choice before retraining: the top k trials at full fidelity, several seeds, best
mean wins, and the report says when the winner is not distinguishable (issue 11, part 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

import archtune.training
from archtune import ArchtuneError, load_run
from archtune.report.study_report import study_report
from archtune.search import FINALISTS_FILE as FILE
from archtune.search import Finalist, Finals, read_finals, retrain, search

from .conftest import TINY_SPACE, run_cli, space


def _finalist(trial: int, dev: list[float], n_dev: int = 10_000) -> Finalist:
    return Finalist(trial, {}, None, list(range(len(dev))), dev, [f"r{trial}"] * len(dev), n_dev)


def test_the_winner_must_beat_the_noise() -> None:
    clear = Finals([_finalist(1, [0.95, 0.951]), _finalist(2, [0.93, 0.931])])
    assert clear.distinguishable() is True and "ahead of trial 2" in clear.verdict()
    close = Finals([_finalist(1, [0.95, 0.94]), _finalist(2, [0.944, 0.943])])
    assert close.distinguishable() is False  # gap 0.15% < spread 0.5%
    assert "NOT distinguishable from the runner-up, trial 2" in close.verdict()
    few = Finals([_finalist(1, [0.95, 0.95], n_dev=100), _finalist(2, [0.93, 0.93], n_dev=100)])
    assert few.distinguishable() is False  # no spread, but 2% is within sqrt(p(1-p)/100) = 2.2%
    assert Finals([_finalist(1, [0.9])]).distinguishable() is None


@pytest.fixture
def tiny_study(tmp_path: Path, tiny_npz: Path, monkeypatch) -> Any:
    monkeypatch.chdir(tmp_path)
    raw = space(TINY_SPACE, tiny_npz, epochs=1, augment={"hflip": "auto"}, tta="auto")
    raw["layers"][-1] = {"Dense": {"units": "classes", "activation": "softmax"}}  # as built-ins
    return search(raw, trials=4, sampler="random", pruner="none", studies_dir="studies")


def test_top_trials_are_retrained_with_two_seeds_and_ranked_by_mean(tiny_study, monkeypatch) -> None:
    run = retrain(tiny_study, finalists=2, seeds=2, run_dir="runs/winner")
    finals = read_finals("studies/tiny")
    assert finals is not None and len(finals.finalists) == 2
    top2 = sorted(tiny_study.trials, key=lambda t: (-t.value, t.number))[:2]
    assert {f.trial for f in finals.finalists} == {t.number for t in top2}
    means = [f.mean for f in finals.finalists]
    assert means == sorted(means, reverse=True)
    for f in finals.finalists:
        own = next(t for t in tiny_study.trials if t.number == f.trial).user_attrs["seed"]
        assert f.seeds[0] == own and len(set(f.seeds)) == 2 and len(f.dev) == 2
        assert all(Path(r, "best.pt").is_file() for r in f.runs)
    w = finals.winner
    assert run.path == Path("runs/winner") and run.spec.train.seed == w.seeds[0]
    record = json.loads((run.path / "search.json").read_text())
    assert record["trial"] == w.trial and record["finalists"]["winner"] == w.trial
    # again: every finalist run is reused, nothing is trained
    calls: list[int] = []
    real = archtune.training.train
    monkeypatch.setattr(archtune.training, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    retrain(tiny_study, finalists=2, seeds=2, run_dir="runs/again")
    assert calls == []
    with pytest.raises(ArchtuneError, match="not empty"):
        retrain(tiny_study, finalists=2, seeds=2, run_dir="runs/again")
    html = study_report("studies/tiny", "r.html", best_report=False).read_text()
    assert 'id="finalists-table"' in html and f"trial {w.trial} wins" in html


def test_a_time_budget_is_shared_by_the_finalist_runs(tiny_study, monkeypatch) -> None:
    """retrain(minutes=M): the finalists' round gets half of M, each run an equal share of what
    is left when it starts; the winner is then trained again with its own seed in the rest. A
    second call reuses the finalists' runs whatever epochs they got."""
    from archtune.search import FINALISTS_SHARE

    minutes = 0.25  # 15 s
    budget = minutes * 60
    run = retrain(tiny_study, finalists=2, seeds=1, minutes=minutes, run_dir="runs/timed")
    finals = read_finals("studies/tiny")
    assert finals is not None and finals.minutes == pytest.approx(minutes * FINALISTS_SHARE)
    runs = sorted((load_run(f.runs[0]) for f in finals.finalists), key=lambda r: r.metrics["started"])
    budgets = [r.metrics["time_budget"] for r in runs]  # the order they ran in (seconds apart)
    # the first run gets half the round's share; the second what the first left (more when the
    # first stopped early)
    first, second = budgets
    # (bounds that a slow machine only moves away from: each run's share is cut from what is
    # left when it starts, so time spent before it only lowers it)
    assert 0 < first["budget_s"] <= budget * FINALISTS_SHARE / 2 + 0.01  # half, at the start
    assert second["budget_s"] <= budget * FINALISTS_SHARE - first["wall_s"] + 0.5
    assert all(r.spec.train.epochs == b["epochs_final"] for r, b in zip(runs, budgets, strict=True))
    w = finals.winner
    own = json.loads((run.path / "search.json").read_text())
    assert own["trial"] == w.trial and own["finalists"]["winner"] == w.trial
    assert run.spec.train.seed == w.seeds[0] and run.path == Path("runs/timed")
    final = run.metrics["time_budget"]  # the rest of the budget, not a finalist's share
    assert final["budget_s"] > first["budget_s"] and final["budget_s"] <= budget - first["budget_s"]
    calls: list[int] = []
    real = archtune.training.train
    monkeypatch.setattr(archtune.training, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    retrain(tiny_study, finalists=2, seeds=1, minutes=minutes, run_dir="runs/timed-again")
    assert len(calls) == 1  # only the winner's final run: the finalists' runs are reused
    with pytest.raises(ArchtuneError, match="epochs or minutes, not both"):
        retrain(tiny_study, epochs=2, minutes=1)
    one = retrain(tiny_study, trial=0, minutes=0.05, run_dir="runs/one")
    assert one.metrics["time_budget"]["budget_s"] == pytest.approx(3.0)


def test_a_damaged_finalists_file_is_one_clear_error(tiny_study) -> None:
    Path("studies/tiny", FILE).write_text(json.dumps({"finalists": [{"trial": "x"}]}))
    with pytest.raises(ArchtuneError, match=r"finalists.json: finalists\[0\]"):
        read_finals("studies/tiny")


def test_retrain_command_prints_the_finalists(tmp_path: Path, tiny_npz: Path) -> None:
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(space(TINY_SPACE, tiny_npz, epochs=1)))
    assert run_cli("search", "s.yaml", "--trials", "3", "--pruner", "none", cwd=tmp_path).returncode == 0
    result = run_cli("retrain", "tiny", "--finalists", "2", "--run-dir", "runs/r", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "finalists (full fidelity" in result.stdout and " wins with mean dev " in result.stdout
    assert result.stdout.count("  trial ") == 2
    # by default: the best trial once, no finalists' table
    result = run_cli("retrain", "tiny", "--run-dir", "runs/once", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "finalists (full fidelity" not in result.stdout and "test it: archtune evaluate" in result.stdout


def test_retrain_trains_the_best_trial_once_by_default(tiny_study, monkeypatch) -> None:
    """retrain() without finalists or seeds: one full training of the best trial, with the
    whole time budget; the round runs only when asked for."""
    calls: list[int] = []
    real = archtune.training.train
    monkeypatch.setattr(archtune.training, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    run = retrain(tiny_study, minutes=0.1, run_dir="runs/once")
    assert calls == [1] and read_finals("studies/tiny") is None  # no round ran
    best = max(tiny_study.trials, key=lambda t: (t.value, -t.number))
    own = json.loads((run.path / "search.json").read_text())
    assert own["trial"] == best.number and "finalists" not in own
    assert run.metrics["time_budget"]["budget_s"] == pytest.approx(6.0)  # the whole budget
    calls.clear()
    retrain(tiny_study, seeds=2, epochs=1, run_dir="runs/round")  # --seeds alone: a round of 3 x 2
    finals = read_finals("studies/tiny")
    assert finals is not None and sum(len(f.runs) for f in finals.finalists) == len(calls) == 6


def _spy_training(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(training images, epochs) of every training call, in order."""
    seen: list[tuple[int, int]] = []
    real = archtune.training.train

    def spy(spec: Any, **kw: Any) -> Any:
        seen.append((len(kw["splits"].train), spec.train.epochs))
        return real(spec, **kw)

    monkeypatch.setattr(archtune.training, "train", spy)
    return seen


def test_fidelity_check_trains_each_candidate_at_both_fidelities(tmp_path: Path, tiny_npz: Path,
                                                                 monkeypatch) -> None:
    from archtune.search import fidelity_check

    raw = space(TINY_SPACE, tiny_npz, epochs=3)
    raw["search"] = {"train_subset": 60, "epochs": 1}
    seen = _spy_training(monkeypatch)
    check = fidelity_check(raw, n=3, seed=1)
    assert seen[1::2] == [(60, 1)] * 3 and all(n > 60 and e == 3 for n, e in seen[0::2])
    assert len(check.low_dev) == len(check.full_dev) == 3 and -1 <= check.spearman <= 1
    assert 1 <= check.winner_full_rank <= 3 and "Spearman rank correlation" in check.summary()
    with pytest.raises(ArchtuneError, match="no low fidelity"):
        fidelity_check(space(TINY_SPACE, tiny_npz), n=3)


def test_several_low_fidelities_share_one_full_training(tiny_npz: Path, monkeypatch) -> None:
    from archtune.search import fidelity_checks

    raw = space(TINY_SPACE, tiny_npz, epochs=2)
    seen = _spy_training(monkeypatch)
    checks = fidelity_checks(raw, [{"train_subset": 60, "epochs": 1}, {"epochs": 1}], n=3)
    full = [x for x in seen if x[1] == 2]
    assert len(seen) == 9 and len(full) == 3  # each candidate trained fully once, then per low
    assert [c.low for c in checks] == [{"train_subset": 60, "epochs": 1}, {"epochs": 1}]
    assert checks[0].full_dev == checks[1].full_dev and checks[0].params == checks[1].params
    assert seen.count((60, 1)) == 3 and sum(n > 60 and e == 1 for n, e in seen) == 3


def test_a_fidelity_check_out_of_time_reports_the_candidates_it_trained(tiny_npz: Path,
                                                                         monkeypatch) -> None:
    from archtune.search import fidelity_checks

    raw = space(TINY_SPACE, tiny_npz, epochs=2)
    seen = _spy_training(monkeypatch)
    checks = fidelity_checks(raw, [{"epochs": 1}], n=5, timeout=0.0)  # out of time at once
    assert len(seen) == 6 and len(checks[0].params) == 3  # the 3 a correlation needs, no more
    assert len(checks[0].full_dev) == len(checks[0].low_dev) == 3


def test_fidelity_check_command(tmp_path: Path, tiny_npz: Path) -> None:
    raw = space(TINY_SPACE, tiny_npz, epochs=2)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    result = run_cli("search", "s.yaml", "--fidelity", "check", "--trials", "3", "--train-subset",
                     "60", "--epochs", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Spearman rank correlation" in result.stdout and len(result.stdout.splitlines()) == 5
    assert not (tmp_path / "studies").exists()  # a check writes no study


def test_fidelity_candidates_take_the_architecture_families_in_turn() -> None:
    from archtune.search import fidelity_candidates as _candidates
    from archtune.search import load_space, strata_dim

    auto = load_space("auto-space")
    assert strata_dim(auto).name == "arch"  # the first top-level branch choice, found by itself
    picked = [p["arch"] for p, _ in _candidates(auto, 6, 0, strata_dim(auto))]
    assert sorted(picked) == ["default"] * 3 + ["stack"] * 3 and picked[:2] == ["default", "stack"]
    plain = [p["arch"] for p, _ in _candidates(auto, 6, 0, strata_dim(auto, None))]
    assert plain != picked  # without strata: as random draws fall (seed 0: not alternating)
    by_name = [p["batch_size"] for p, _ in _candidates(auto, 4, 0, strata_dim(auto, "batch_size"))]
    assert by_name == [128, 256, 128, 256]
    with pytest.raises(ArchtuneError, match="did you mean 'arch'"):
        strata_dim(auto, "arc")
    with pytest.raises(ArchtuneError, match="lr.*float range"):
        strata_dim(auto, "lr")
    assert strata_dim(load_space("default-space")) is None  # no branch choice: plain random


def test_each_architecture_family_s_best_is_among_the_finalists() -> None:
    """The coarse pass ranks stacks below `default`-shaped nets that full training puts behind
    them (bench/RESULTS.md, auto-space fidelity): with a family choice, the best of each family
    is a finalist even when the top k by coarse rank are all of one family."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    from archtune.search import StudyInfo, load_space, top_trials
    from archtune.search import family_choice as _family

    study = optuna.create_study(direction="maximize")
    dists = {"arch": CategoricalDistribution(["default", "stack"]), "lr": FloatDistribution(0, 1)}
    for i, (arch, value) in enumerate([("default", 0.90), ("default", 0.89), ("stack", 0.88),
                                       ("default", 0.885), ("stack", 0.87)]):
        study.add_trial(optuna.trial.create_trial(
            params={"arch": arch, "lr": i / 10}, distributions=dists, value=value,
            user_attrs={"spec": {"n": i}}))
    ranked = [t.number for t in top_trials(study, 3)]
    assert ranked == [0, 1, 3]  # by coarse rank alone: no stack
    assert [t.number for t in top_trials(study, 3, "arch")] == [0, 1, 2]  # the best stack in
    assert [t.number for t in top_trials(study, 2, "arch")] == [0, 2]
    assert [t.number for t in top_trials(study, 1, "arch")] == [0]  # k=1: the best, as before
    # the family is auto-space's arch, read from the study's stored space; none without one
    auto = load_space("auto-space")
    assert _family(StudyInfo(study="s", space=auto.raw)) == "arch"
    assert _family(StudyInfo(study="s", space=load_space("default-space").raw)) is None
