"""Experiment loggers: what TensorBoard and MLflow hold after a run and a search, read back
with their own readers (EventAccumulator, MlflowClient)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from archtune import ArchtuneError, train
from archtune.search import Execution, search
from archtune.tracking import _mlflow as mlflow_logger
from archtune.tracking import resolve
from tests._cli import run_cli
from tests.search.conftest import TINY_SPACE, space
from tests.training.test_train import tiny


def events(folder: Path) -> EventAccumulator:
    ea = EventAccumulator(str(folder))
    ea.Reload()
    return ea


def hparams(ea: EventAccumulator) -> dict[str, object]:
    content = ea.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    info = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info
    return {k: v.string_value or v.number_value for k, v in info.hparams.items()}


def mlflow_runs(uri: str, kind: str) -> list:
    c = MlflowClient(uri)
    exp = c.get_experiment_by_name("archtune").experiment_id
    return c.search_runs([exp], filter_string=f"tags.`archtune.kind` = '{kind}'",
                         order_by=["attributes.start_time ASC"])


def test_a_run_logs_every_epoch_to_tensorboard_and_mlflow(tiny_splits, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = train(tiny(epochs=2, lr=0.02), splits=tiny_splits, run_dir=tmp_path / "r",
                progress=False, loggers=["tensorboard", "mlflow"], mlflow_uri=uri)
    h = run.history
    ea = events(run.path / "tensorboard")
    for tag, column in (("accuracy/dev", "dev_accuracy"), ("loss/train", "train_loss"), ("lr", "lr")):
        got = ea.Scalars(tag)
        assert [s.step for s in got] == [1, 2]
        assert [s.value for s in got] == pytest.approx(list(h[column]), rel=1e-5)
    layers = [k for k in run.grad_norms[0] if k != "epoch"]
    assert layers and all(f"grad_norm/{k}" in ea.Tags()["scalars"] for k in layers)
    hp = hparams(ea)
    assert hp["train.lr"] == pytest.approx(0.02) and hp["train.optimizer"] == "adam"
    best = run.metrics["best"]["dev_accuracy"]
    assert ea.Scalars("hparam/dev_accuracy")[0].value == pytest.approx(best)

    (r,) = mlflow_runs(uri, "run")
    c = MlflowClient(uri)
    assert r.info.status == "FINISHED" and r.info.run_name == "r"
    assert r.data.params["train.lr"] == "0.02" and r.data.params["spec"] == "tiny"
    history = c.get_metric_history(r.info.run_id, "dev_accuracy")
    assert [(m.step, m.value) for m in history] == list(zip([1, 2], h["dev_accuracy"], strict=True))
    assert r.data.metrics["best_dev_accuracy"] == pytest.approx(best)
    assert {"metrics.json", "best.pt", "history.csv"} <= {a.path for a in c.list_artifacts(r.info.run_id)}
    assert r.info.artifact_uri.startswith((tmp_path / "mlruns").as_uri())  # beside mlflow.db


def test_a_re_planned_run_tells_the_loggers_the_epochs_it_trained(tiny_splits, tmp_path: Path,
                                                                   monkeypatch) -> None:
    """The loggers get the spec when training starts; a time budget that re-plans changes its
    epochs later. TensorBoard's hparams then carry the epochs trained, MLflow (whose params are
    fixed once logged) a tag."""
    from archtune.training import budget

    real = budget.time_epoch

    def optimistic(fit, final_dev):  # noqa: ANN001, ANN202  (epochs look 4x faster than they are)
        step_s, epoch_s, final_s = real(fit, final_dev)
        return step_s / 4, epoch_s / 4, final_s

    monkeypatch.setattr(budget, "time_epoch", optimistic)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    run = train(tiny(epochs=2, schedule="onecycle", patience=None), splits=tiny_splits,
                run_dir=tmp_path / "r", progress=False, minutes=0.1, threads=1,
                loggers=["tensorboard", "mlflow"], mlflow_uri=uri)
    plan = run.metrics["time_budget"]
    assert plan["epochs_final"] != plan["epochs"]  # it re-planned
    assert hparams(events(run.path / "tensorboard"))["train.epochs"] == plan["epochs_final"]
    (r,) = mlflow_runs(uri, "run")
    assert r.data.params["train.epochs"] == str(plan["epochs"])  # as logged at the start
    assert r.data.tags["archtune.epochs_trained"] == str(plan["epochs_final"])


def test_search_logs_one_run_per_trial_nested_under_the_study(tiny_splits, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    raw = space(TINY_SPACE, epochs=2)
    kw = dict(pruner="none", studies_dir=tmp_path, splits=tiny_splits,
              execution=Execution(loggers=["tensorboard", "mlflow"], mlflow_uri=uri))
    search(raw, trials=2, **kw)
    study = search(raw, trials=3, **kw)  # resumed: the same study run gets the third trial
    trials = study.get_trials()
    (parent,) = mlflow_runs(uri, "study")
    assert parent.info.run_name == "tiny" and parent.info.status == "FINISHED"
    assert parent.data.metrics["best_dev_accuracy"] == pytest.approx(study.best_value)
    children = mlflow_runs(uri, "trial")
    assert [r.data.tags["archtune.trial"] for r in children] == ["0", "1", "2"]
    c = MlflowClient(uri)
    for t, r in zip(trials, children, strict=True):
        assert r.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert r.data.params["conv.n"] == str(t.params["conv.n"])
        steps = [(m.step, m.value) for m in c.get_metric_history(r.info.run_id, "dev_accuracy")]
        assert steps == list(t.intermediate_values.items())
        ea = events(tmp_path / "tiny" / "tensorboard" / f"trial-{t.number:04d}")
        got = ea.Scalars("accuracy/dev")
        assert [s.step for s in got] == list(t.intermediate_values)
        assert [s.value for s in got] == pytest.approx(list(t.intermediate_values.values()))
        assert hparams(ea)["train.lr"] == pytest.approx(t.params["train.lr"])


def test_an_mlflow_failure_mid_run_does_not_stop_training(tiny_splits, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow_logger.client(uri)
    original = client.log_batch

    def flaky(run_id: str, **kw: object) -> None:
        if "metrics" in kw:
            raise ConnectionError("server went away")
        original(run_id, **kw)

    monkeypatch.setattr(client, "log_batch", flaky)
    with caplog.at_level(logging.WARNING, logger="archtune.tracking"):
        run = train(tiny(epochs=2), splits=tiny_splits, run_dir=tmp_path / "r", progress=False,
                    loggers="mlflow", mlflow_uri=uri)
    assert run.status == "complete" and run.metrics["epochs_run"] == 2
    messages = [r.getMessage() for r in caplog.records]
    assert messages.count("MLflow logging stopped (epoch 1): server went away") == 1
    (r,) = mlflow_runs(uri, "run")  # the run exists with its parameters, not its epochs
    assert r.data.params["spec"] == "tiny" and "dev_accuracy" not in r.data.metrics


def test_logger_names_and_uris_are_checked_before_training(tmp_path: Path, capsys,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ArchtuneError, match="unknown logger 'tensorbord' \\(did you mean 'tensorboard'"):
        resolve(["tensorbord"])
    with pytest.raises(ArchtuneError, match="--mlflow-uri is for the MLflow logger"):
        resolve([], mlflow_uri="sqlite:///x.db")
    with pytest.raises(ArchtuneError, match="--mlflow-uri nosuch://x: cannot use this MLflow store"):
        resolve("mlflow", mlflow_uri="nosuch://x")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["train", "cnn-small", "--log", "wandb", "--run-dir", "r"], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown logger 'wandb'" in err
    assert not (tmp_path / "r").exists()


def test_worker_processes_log_their_trials_and_this_process_sees_each_finish(
        tiny_npz: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHTUNE_THREADS", "1")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    finished: list[int] = []
    study = search(space(TINY_SPACE, tiny_npz, epochs=1), trials=2, jobs=2, pruner="none",
                   studies_dir=tmp_path, execution=Execution(
                       loggers="mlflow", mlflow_uri=uri, on_trial=lambda s, t: finished.append(t.number)))
    numbers = sorted(t.number for t in study.get_trials())
    assert sorted(finished) == numbers and len(numbers) == 2  # each once, from the parent
    (parent,) = mlflow_runs(uri, "study")
    children = mlflow_runs(uri, "trial")
    assert sorted(int(r.data.tags["archtune.trial"]) for r in children) == numbers
    assert {r.data.tags["mlflow.parentRunId"] for r in children} == {parent.info.run_id}
    c = MlflowClient(uri)
    assert all(len(c.get_metric_history(r.info.run_id, "dev_accuracy")) == 1 for r in children)


def test_the_cli_passes_log_to_training(tiny_npz: Path, tmp_path: Path, capsys,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["-q", "train", "cnn-small", "--data", str(tiny_npz), "--epochs", "1",
                              "--run-dir", "r", "--log", "tensorboard"], capsys)
    assert code == 0, err
    assert [s.step for s in events(tmp_path / "r" / "tensorboard").Scalars("loss/dev")] == [1]
