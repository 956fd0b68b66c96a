"""Searches in this process on the tiny synthetic data set: what a study and its trials record."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from archtune import ArchtuneError, train
from archtune.search import (
    START_POINT,
    Budget,
    Execution,
    TrialContext,
    best_trial,
    canonical_json,
    counts,
    load_space,
    open_study,
    retrain,
    run_trial,
    search,
    trial_line,
    trial_seed,
    trials_dataframe,
)
from archtune.search import stop_reason as _stop_reason
from archtune.specs import infer_shapes, spec_from_dict, totals
from tests.conftest import make_splits

from .conftest import GRID_SPACE, TINY_SPACE, space

ATTRS = {"dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count", "flops", "seed",
         "run_dir", "status", "error", "spec"}


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[optuna.Study, Path, object]:
    """Three trials of the tiny space, run folders kept: shared by the read-only tests."""
    root = tmp_path_factory.mktemp("studies")
    splits = make_splits()
    study = search(space(TINY_SPACE, epochs=2), trials=3, pruner="none", studies_dir=root,
                   splits=splits, execution=Execution(keep_runs=True))
    return study, root, splits


def test_study_folder_and_trial_rows_follow_the_contract(tiny_study) -> None:
    study, root, _ = tiny_study
    info = json.loads((root / "tiny" / "study.json").read_text())
    assert info["study"] == "tiny" and info["storage"] == f"sqlite:///{root.as_posix()}/tiny/study.db"
    assert info["space_hash"] == hashlib.sha256(canonical_json(info["space"]).encode()).hexdigest()
    assert (info["sampler"], info["pruner"], info["seed"]) == ("tpe", "none", 0)
    assert (info["direction"], info["objective"]) == ("maximize", "dev_accuracy")
    assert info["created"] and info["archtune"]
    trials = study.get_trials()
    assert len(trials) == 3 and all(t.state.name == "COMPLETE" for t in trials)
    for t in trials:
        a = t.user_attrs
        assert ATTRS <= set(a) and a["status"] == "complete" and a["error"] is None
        assert a["seed"] == trial_seed(0, t.number) == a["spec"]["train"]["seed"]
        assert a["epochs"] == 2 == len(t.intermediate_values)
        assert t.value == max(t.intermediate_values.values()) == a["dev_accuracy"]
        spec = spec_from_dict(a["spec"])
        assert a["params_count"] == totals(infer_shapes(spec)).params
        assert set(t.params) <= set(load_space(info["space"]).names)
        run_dir = Path(a["run_dir"])  # kept: a normal run folder under the study
        assert run_dir == root / "tiny" / "trials" / str(t.number)
        assert json.loads((run_dir / "metrics.json").read_text())["status"] == "complete"


def test_trials_dataframe_has_one_row_per_trial(tiny_study) -> None:
    df = trials_dataframe(tiny_study[0])
    assert list(df["number"]) == [0, 1, 2] and set(df["state"]) == {"complete"}
    assert {"dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count", "flops", "seed",
            "run_dir", "param.train.lr", "param.conv.n"} <= set(df.columns)
    assert df["seed"].tolist() == [trial_seed(0, n) for n in range(3)]


def test_a_trial_reruns_exactly_from_its_spec_and_seed(tiny_study, tmp_path: Path) -> None:
    study, _, splits = tiny_study
    t = study.trials[1]
    run = train(t.user_attrs["spec"], splits=splits, run_dir=tmp_path / "again", progress=False)
    assert [r["dev_accuracy"] for r in run.history_rows] == list(t.intermediate_values.values())


def test_timeout_budget_stops_new_trials(tiny_study) -> None:
    from archtune.search import attach

    handle = attach("tiny", studies_dir=tiny_study[1])
    assert _stop_reason(handle, Budget(trials=5), time.monotonic(), grid=False) is None
    reason = _stop_reason(handle, Budget(trials=5, timeout=10), time.monotonic() - 11, grid=False)
    assert "time budget" in reason
    assert "has its 3 trials" in _stop_reason(handle, Budget(trials=3), time.monotonic(), grid=False)


def test_the_time_budget_stops_a_trial_in_flight_after_its_epoch(tiny_splits) -> None:
    """Past the deadline a trial stops after the epoch it is in: pruned, with the reason; a
    trial whose last epoch ends past it is complete, not stopped; and the study's first complete
    trial is never stopped (a search always leaves a trial to retrain)."""
    s = load_space(space(TINY_SPACE, epochs=3))
    late = TrialContext(s, tiny_splits, study_seed=0, deadline=time.monotonic(), timeout=60)
    first = run_trial(optuna.create_study().ask(), late, 0)  # no complete trial yet: runs on
    assert first.state == "complete" and first.attrs["epochs"] == 3 and "stopped" not in first.attrs
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.5))
    result = run_trial(study.ask(), late, 0)
    assert result.state == "pruned" and result.attrs["epochs"] == 1 and result.told() is None
    assert result.attrs["stopped"] == ("stopped after epoch 1 of 3: the search's time budget of "
                                       "60s is spent") and result.attrs["error"] is None
    one = load_space(space(TINY_SPACE, epochs=1))
    done = run_trial(study.ask(), replace(late, space=one), 0)
    assert done.state == "complete" and "stopped" not in done.attrs
    in_time = replace(late, deadline=time.monotonic() + 3600)
    assert run_trial(study.ask(), in_time, 0).state == "complete"


def test_a_search_with_a_timeout_stops_its_trial_in_flight(tmp_path: Path) -> None:
    """search(timeout=...) hands its deadline to the trials: a long trial ends near it, pruned,
    and the study says why (a trial of 200 epochs on 2,000 images takes far longer than 5 s;
    the study's first trial, on 32 images, is complete before it). 5 s, not less: the second
    trial must start before the budget is spent, even on a busy machine."""
    raw = space(TINY_SPACE, epochs=200)
    study = search(raw, trials=1, pruner="none", studies_dir=tmp_path, splits=make_splits(32, 10))
    assert study.trials[0].state.name == "COMPLETE"
    study = search(raw, trials=3, timeout=5, pruner="none", studies_dir=tmp_path,
                   splits=make_splits(2000, 100))
    assert len(study.trials) == 2
    t = study.trials[1]
    assert t.state.name == "PRUNED" and 1 <= t.user_attrs["epochs"] < 200
    assert t.user_attrs["stopped"].startswith(f"stopped after epoch {t.user_attrs['epochs']} of 200")
    assert counts(study)["stopped"] == 1
    from archtune.report.study_report import study_report

    page = study_report(tmp_path / "tiny", best_report=False).read_text()
    assert "stopped after epoch" in page[page.index('id="trials-table"'):]


def test_impossible_candidates_are_recorded_not_crashed_on(tmp_path: Path, tiny_splits) -> None:
    raw = space(GRID_SPACE)
    raw["layers"][0]["Conv2D"].update(padding="valid", kernel_size={"choice": [3, 29]})
    raw["train"]["lr"] = 0.01
    raw["layers"][0]["Conv2D"]["filters"] = 2
    study = search(raw, studies_dir=tmp_path, splits=tiny_splits)
    states = {t.params["layers.0.kernel_size"]: t for t in study.trials}
    assert set(states) == {3, 29}
    bad = states[29]
    assert bad.state.name == "FAIL" and bad.user_attrs["status"] == "invalid"
    assert "does not fit" in bad.user_attrs["error"] and bad.user_attrs["spec"]["layers"]
    assert states[3].state.name == "COMPLETE"
    assert trials_dataframe(study).set_index("number").loc[bad.number, "state"] == "invalid"


def test_rerunning_resumes_without_rerunning_finished_trials(tmp_path: Path, tiny_splits) -> None:
    raw = space(TINY_SPACE, epochs=1)
    first = search(raw, trials=1, studies_dir=tmp_path, splits=tiny_splits).get_trials()
    again = search(raw, trials=2, studies_dir=tmp_path, splits=tiny_splits).get_trials()
    assert len(again) == 2
    old, new = first[0], again[0]
    assert (old.number, old.datetime_complete, old.params) == (new.number, new.datetime_complete,
                                                               new.params)
    assert len(search(raw, studies_dir=tmp_path, trials=2, splits=tiny_splits).get_trials()) == 2


def test_changed_space_or_strategy_is_refused_unless_new(tmp_path: Path, tiny_splits) -> None:
    raw = space(TINY_SPACE, epochs=1)
    search(raw, trials=1, studies_dir=tmp_path, splits=tiny_splits)
    changed = space(TINY_SPACE, epochs=1, lr={"float": [0.001, 0.05], "log": True})
    with pytest.raises(ArchtuneError, match=r"different search space \(dimensions train.lr changed\)"):
        search(changed, trials=2, studies_dir=tmp_path, splits=tiny_splits)
    with pytest.raises(ArchtuneError, match="created with sampler 'tpe', not 'random'"):
        search(raw, trials=2, sampler="random", studies_dir=tmp_path, splits=tiny_splits)
    study, _ = open_study("tiny", tmp_path)
    assert len(study.trials) == 1  # nothing was damaged
    fresh = search(changed, trials=1, studies_dir=tmp_path, splits=tiny_splits, new=True)
    assert len(fresh.trials) == 1
    assert open_study("tiny", tmp_path)[1]["space"]["train"]["lr"]["float"] == [0.001, 0.05]


@pytest.mark.parametrize("kwargs, message", [
    ({"sampler": "bayes"}, "unknown sampler 'bayes'"),
    ({"pruner": "hyperbnd"}, "did you mean 'hyperband'"),
    ({"storage": "redis://localhost/0"}, "unsupported database"),
    ({"storage": "sqlite:////dev/null/x.db"}, "cannot make folder"),
    ({"study": "bad/name"}, "study name"),
    ({"target": 93.0}, "0.93 for 93%"),
])
def test_bad_settings_fail_before_anything_is_written(tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(ArchtuneError, match=message):
        search(space(TINY_SPACE), studies_dir=tmp_path / "studies", **kwargs)
    assert not (tmp_path / "studies").exists()


def test_grid_runs_each_point_once_and_then_stops(tmp_path: Path, tiny_splits) -> None:
    study = search(space(GRID_SPACE), studies_dir=tmp_path, splits=tiny_splits)
    params = [canonical_json(t.params) for t in study.trials]
    assert len(params) == 4 == len(set(params))
    assert open_study("grid", tmp_path)[1]["candidates"] == 4
    assert len(search(space(GRID_SPACE), studies_dir=tmp_path, splits=tiny_splits).trials) == 4


def test_fraction_of_a_grid_and_budgets(tmp_path: Path, tiny_splits) -> None:
    study = search(space(GRID_SPACE), fraction=0.5, seed=3, studies_dir=tmp_path, splits=tiny_splits)
    assert len(study.trials) == 2
    expected = load_space(space(GRID_SPACE)).select(0.5, 3)[0]
    assert [t.params for t in study.trials] == expected
    target = search(space(TINY_SPACE, epochs=1), trials=6, target=0.2, study="t", studies_dir=tmp_path,
                    splits=tiny_splits)
    assert len(target.trials) == 1  # the first trial already beat the target


class _PruneAfterFirstEpoch:
    """A stand-in trial whose pruner says 'prune' once the first epoch is reported."""

    number = 0

    def __init__(self, trial: optuna.Trial):
        self.trial, self.reports = trial, []

    def __getattr__(self, name: str):
        return getattr(self.trial, name)

    def report(self, value: float, step: int) -> None:
        self.reports.append((step, value))

    def should_prune(self) -> bool:
        return True


def test_pruned_trials_stop_after_the_epoch_they_were_judged_on(tiny_splits) -> None:
    s = load_space(space(TINY_SPACE, epochs=5))
    fake = _PruneAfterFirstEpoch(optuna.create_study().ask())
    result = run_trial(fake, TrialContext(s, tiny_splits, study_seed=0), 0)
    assert result.state == "pruned" and result.attrs["epochs"] == 1 and len(fake.reports) == 1


def test_a_start_point_is_never_pruned(tiny_splits) -> None:
    """The same pruner verdict that stops a trial after epoch 1 leaves a start point training
    to its last epoch, reporting every epoch."""
    s = load_space(space(TINY_SPACE, epochs=3))
    trial = optuna.create_study().ask()
    trial.set_user_attr(START_POINT, 0)
    fake = _PruneAfterFirstEpoch(trial)
    result = run_trial(fake, TrialContext(s, tiny_splits, study_seed=0), 0)
    assert result.state == "complete" and result.attrs["epochs"] == 3
    assert [step for step, _ in fake.reports] == [1, 2, 3]


def test_start_points_are_marked_and_survive_the_pruner(tmp_path: Path, tiny_splits, caplog) -> None:
    """Successive halving keeps only the best of the first two trials at rung 1: a hopeless
    start point after a good one completes anyway; a hopeless sampled trial does not."""
    raw = space(GRID_SPACE, epochs=3, lr={"choice": [0.05, 1e-7], "name": "lr"})
    raw["search"] = {"sampler": "random", "start": [{"filters": 4, "lr": 0.05},
                                                    {"filters": 2, "lr": 1e-7}]}
    with caplog.at_level(logging.INFO, logger="archtune.search._worker"):
        study = search(raw, trials=10, pruner="sha", seed=3, studies_dir=tmp_path,
                       splits=tiny_splits)
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("trial ")]
    assert [m.split(":")[0] for m in logged[:2]] == ["trial 0 (start point) complete",
                                                     "trial 1 (start point) complete"]
    assert len(logged) == 10 and not any("start point" in m for m in logged[2:])
    first, second, *rest = study.trials
    assert [first.user_attrs[START_POINT], second.user_attrs[START_POINT]] == [0, 1]
    assert second.state.name == "COMPLETE" and second.user_attrs["epochs"] == 3
    assert second.user_attrs["dev_accuracy"] < first.user_attrs["dev_accuracy"]
    assert all(START_POINT not in t.user_attrs for t in rest)
    hopeless = [t for t in rest if t.params["lr"] == 1e-7]
    assert hopeless and all(t.state.name == "PRUNED" for t in hopeless)
    assert trial_line(study, second).startswith("trial 1 (start point) complete: dev accuracy")


def test_a_pruned_trial_stops_its_run_without_a_warning(tiny_splits, caplog, tmp_path: Path) -> None:
    """Pruning ends the run on purpose (StopTraining): an INFO line, not the warning a fault
    gets; no log filter is involved."""
    s = load_space(space(TINY_SPACE, epochs=5))
    with caplog.at_level(logging.INFO, logger="archtune.training.trainer"):
        run_trial(_PruneAfterFirstEpoch(optuna.create_study().ask()), TrialContext(s, tiny_splits, study_seed=0), 0)
    stopped = [r for r in caplog.records if "stopped after" in r.getMessage()]
    assert len(stopped) == 1 and stopped[0].levelno == logging.INFO
    assert not logging.getLogger("archtune.training.trainer").filters

    def crash(epoch: int, row: dict) -> None:
        raise RuntimeError("a callback fault")

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="archtune.training.trainer"), \
            pytest.raises(RuntimeError, match="callback fault"):
        train(s.sample(optuna.create_study().ask()), splits=tiny_splits, run_dir=tmp_path / "run",
              progress=False, epoch_callback=crash, final_dev=False)
    stopped = [r for r in caplog.records if "stopped after" in r.getMessage()]
    assert len(stopped) == 1 and stopped[0].levelno == logging.WARNING


def test_a_misspelt_setting_names_the_close_match(tmp_path: Path) -> None:
    with pytest.raises(ArchtuneError, match=r"unknown key 'trails' \(did you mean 'trials'\?\)"):
        search(space(TINY_SPACE), studies_dir=tmp_path / "studies", trails=3)  # type: ignore[call-arg]
    assert not (tmp_path / "studies").exists()


def test_median_pruner_prunes_hopeless_trials(tmp_path: Path, tiny_splits) -> None:
    raw = space(GRID_SPACE, epochs=3, lr={"choice": [0.05, 1e-7], "name": "lr"})
    raw["layers"][0]["Conv2D"]["filters"] = {"choice": [2, 3, 4], "name": "filters"}
    study = search(raw, pruner="median", seed=1, studies_dir=tmp_path, splits=tiny_splits)
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned and all(t.params["lr"] == 1e-7 and t.user_attrs["epochs"] < 3 for t in pruned)


def test_fidelity_and_retrain_at_full_fidelity(tmp_path: Path, tiny_npz: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    import archtune.data.split as split_module

    def never(*_a, **_k):
        raise AssertionError("the test split was read during a search")

    monkeypatch.setattr(split_module, "test_split", never)
    study = search(space(TINY_SPACE, tiny_npz, epochs=2), trials=1, train_subset=100, epochs=1)
    t = best_trial(study)
    assert t.user_attrs["epochs"] == 1 and t.user_attrs["fidelity"] == {"epochs": 1,
                                                                         "train_subset": 100}
    run = retrain("tiny")
    assert run.metrics["status"] == "complete" and run.metrics["epochs_run"] == 2
    assert run.metrics["data"]["n_train"] == 240  # all the train split, not the subset
    assert run.spec.train.seed == t.user_attrs["seed"]
    assert json.loads((run.path / "search.json").read_text())["trial"] == t.number


def test_retrain_reuses_a_trial_run_trained_at_full_fidelity(tmp_path: Path, tiny_npz: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A search without a coarse pass, with kept runs: retrain copies the best trial's run out
    (its dev split evaluated) instead of training it again; a coarse pass is retrained."""
    import archtune.training

    study = search(space(TINY_SPACE, tiny_npz, epochs=2), trials=2, studies_dir=tmp_path,
                   study="full", execution=Execution(keep_runs=True))
    best = best_trial(study)
    calls: list[int] = []
    real = archtune.training.train
    monkeypatch.setattr(archtune.training, "train", lambda *a, **k: calls.append(1) or real(*a, **k))
    run = retrain("full", studies_dir=tmp_path, run_dir=tmp_path / "r")
    assert calls == []  # nothing trained again
    record = json.loads((run.path / "search.json").read_text())
    assert record["trial"] == best.number and record["reused_run"] == best.user_attrs["run_dir"]
    assert run.spec.train.seed == best.user_attrs["seed"] and run.metrics["epochs_run"] == 2
    assert (run.path / "eval_dev.json").is_file() and run.evaluation("dev")["n"] > 0
    coarse = search(space(TINY_SPACE, tiny_npz, epochs=2), trials=1, epochs=1, studies_dir=tmp_path,
                    study="coarse", execution=Execution(keep_runs=True))
    assert best_trial(coarse).user_attrs["epochs"] == 1
    calls.clear()
    retrain("coarse", studies_dir=tmp_path, run_dir=tmp_path / "r2")
    assert calls == [1]  # a coarse trial's run is not the full spec: trained again


def test_coarse_pass_larger_than_the_data_trains_on_all_of_it(tmp_path: Path, tiny_npz: Path) -> None:
    # the train split of tiny_npz has 240 images: a space's 12,000 means "all of them"
    study = search(space(TINY_SPACE, tiny_npz, epochs=1), trials=1, train_subset=12000,
                   studies_dir=tmp_path, study="s12000")
    t = best_trial(study)
    assert t.state.name == "COMPLETE" and t.user_attrs["fidelity"]["train_subset"] is None
    study = search(space(TINY_SPACE, tiny_npz, epochs=1), trials=1, train_subset=239,
                   studies_dir=tmp_path, study="s239")  # one fewer: a real subset
    assert best_trial(study).user_attrs["fidelity"]["train_subset"] == 239


def test_a_coarse_pass_on_smaller_data_sees_as_many_images(tmp_path: Path, tiny_npz: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """1 epoch of 480 images on a 240-image train split: 2 epochs; the space's 4 epochs cap it."""
    import logging

    from archtune.search import coarse_epochs

    caplog.set_level(logging.INFO, logger="archtune.search")
    study = search(space(TINY_SPACE, tiny_npz, epochs=4), trials=1, train_subset=480, epochs=1,
                   pruner="hyperband", studies_dir=tmp_path, study="s480")
    t = best_trial(study)
    assert t.user_attrs["fidelity"] == {"epochs": 2, "train_subset": None}
    assert len(t.user_attrs["history"]) == 2
    assert "at most 2 epochs instead of 1" in caplog.text
    study = search(space(TINY_SPACE, tiny_npz, epochs=4), trials=1, train_subset=12000, epochs=1,
                   studies_dir=tmp_path, study="s12000")
    assert best_trial(study).user_attrs["fidelity"]["epochs"] == 4  # 50 epochs' worth, capped
    assert coarse_epochs(3, 12000, 12000) == coarse_epochs(3, 12000, 50000) == 3
    assert coarse_epochs(None, 12000, 100) is None and coarse_epochs(3, None, 100) == 3
    assert coarse_epochs(4, 12000, 1600, full=24) == 24 and coarse_epochs(4, 12000, 1600) == 30
    assert coarse_epochs(4, 12000, 9000, full=24) == 6
    assert coarse_epochs(4, 12000, 9000, full=2) == 4  # never fewer epochs than asked


def test_refine_searches_a_narrowed_space_at_full_fidelity(tmp_path: Path, tiny_splits) -> None:
    raw = space(TINY_SPACE, epochs=1)
    search(raw, trials=3, train_subset=100, studies_dir=tmp_path, splits=tiny_splits)
    fine = search(raw, refine=tmp_path / "tiny", trials=1, studies_dir=tmp_path, splits=tiny_splits)
    info = open_study(fine.study_name, tmp_path)[1]
    assert fine.study_name == "tiny-refine" and info["refined_from"] == "tiny"
    assert info["train_subset"] is None and len(info["refine_top"]) == 3
    assert info["space_hash"] != open_study("tiny", tmp_path)[1]["space_hash"]


def test_a_trial_whose_remote_worker_went_silent_is_retried(tmp_path: Path, tiny_splits) -> None:
    """Optuna's heartbeat: a trial of another machine without a heartbeat for longer than the
    grace period is failed and queued again with its parameters."""
    import sqlite3

    from archtune.search import attach

    raw = space(TINY_SPACE, epochs=1)
    search(raw, trials=1, studies_dir=tmp_path, splits=tiny_splits)
    handle = attach("tiny", studies_dir=tmp_path)
    with pytest.warns(UserWarning, match="Heartbeat"):
        lost = handle.study.ask()  # a trial another machine started, then lost
    lost.suggest_categorical("train.optimizer", ["sgd", "adam"])
    handle.storage.set_trial_system_attr(lost._trial_id, "archtune:worker",
                                         {"host": "elsewhere", "boot": "", "pid": 1})
    handle.storage.record_heartbeat(lost._trial_id)
    with sqlite3.connect(tmp_path / "tiny" / "study.db") as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")
    study = search(raw, trials=2, studies_dir=tmp_path, splits=tiny_splits)
    trials = {t.number: t for t in study.get_trials()}
    assert trials[lost.number].state.name == "FAIL"
    retry = [t for t in trials.values() if t.system_attrs.get("failed_trial") == lost.number]
    assert len(retry) == 1 and retry[0].state.name == "COMPLETE"
    assert retry[0].params["train.optimizer"] == trials[lost.number].params["train.optimizer"]
    df = trials_dataframe(study).set_index("number")
    assert "retried as trial" in df.loc[lost.number, "error"]
    assert df.loc[retry[0].number, "retry_of"] == lost.number


def test_ctrl_c_puts_the_running_trial_back_in_the_queue(tmp_path: Path, tiny_splits,
                                                        monkeypatch) -> None:
    import sys

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["archtune.training"], "train", interrupted)
    raw = space(TINY_SPACE, epochs=1)
    with pytest.raises(KeyboardInterrupt):
        search(raw, trials=1, studies_dir=tmp_path, splits=tiny_splits)
    monkeypatch.undo()
    trials = open_study("tiny", tmp_path)[0].get_trials()
    assert [t.state.name for t in trials] == ["FAIL", "WAITING"]
    study = search(raw, trials=1, studies_dir=tmp_path, splits=tiny_splits)
    assert [t.state.name for t in study.get_trials()] == ["FAIL", "COMPLETE"]
    assert study.trials[1].params == trials[0].params


def test_start_points_run_first(tmp_path: Path, tiny_splits) -> None:
    raw = space(TINY_SPACE, epochs=1)
    first = {"conv.n": 1, "conv.1.filters": 4, "train.lr": 0.02, "train.optimizer": "adam"}
    raw["search"] = {"start": [first]}
    study = search(raw, trials=2, studies_dir=tmp_path, splits=tiny_splits)
    assert study.trials[0].params == first and len(study.trials) == 2


def test_a_continuous_space_cannot_be_a_grid(tmp_path: Path) -> None:
    with pytest.raises(ArchtuneError, match="train.lr' is a continuous range"):
        search(space(TINY_SPACE), sampler="grid", studies_dir=tmp_path / "studies")
    assert not (tmp_path / "studies").exists()
