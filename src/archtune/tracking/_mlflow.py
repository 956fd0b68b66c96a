"""MLflow: one MLflow run per archtune run or trial, through ``MlflowClient`` (no global
active run, so worker processes and threads do not interfere)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..callbacks import Callback
from ..errors import ArchtuneError
from ._params import replanned_epochs, run_params

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from ..specs import Spec

log = logging.getLogger(__name__)
_CLIENTS: dict[str, MlflowClient] = {}
PARENT_TAG = "mlflow.parentRunId"
STATUS = {"complete": "FINISHED", "interrupted": "KILLED", "stopped": "KILLED"}
BATCH = 100  # MLflow takes at most 100 parameters per call


def client(uri: str) -> MlflowClient:
    """A client of ``uri`` (one per process), checked by listing an experiment."""
    if uri not in _CLIENTS:
        from mlflow.tracking import MlflowClient

        try:
            c = MlflowClient(tracking_uri=uri)
            c.search_experiments(max_results=1)
        except Exception as err:  # MLflow raises many types for a bad URI or a dead server
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ArchtuneError(f"--mlflow-uri {uri}: cannot use this MLflow store: "
                                f"{first[:300]}") from None
        _CLIENTS[uri] = c
    return _CLIENTS[uri]


def artifact_root(uri: str) -> str | None:
    """Artifacts of a local SQLite store go beside its file (``mlruns/``), not into whatever
    folder the process happens to run in; other stores keep their own default."""
    if not uri.startswith("sqlite:///") or uri in ("sqlite:///", "sqlite:///:memory:"):
        return None
    return (Path(uri[len("sqlite:///"):]).resolve().parent / "mlruns").as_uri()


def experiment_id(c: MlflowClient, name: str) -> str:
    found = c.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        return str(c.create_experiment(name, artifact_location=artifact_root(c.tracking_uri)))
    except Exception:  # another process created it just now
        found = c.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def _log_params(c: MlflowClient, run_id: str, params: dict[str, Any]) -> None:
    from mlflow.entities import Param

    items = [Param(k, str(v)[:6000]) for k, v in params.items()]
    for i in range(0, len(items), BATCH):
        c.log_batch(run_id, params=items[i:i + BATCH])


class MLflowLogger(Callback):
    """Parameters at the start; per-epoch metrics with the epoch as step; at the end the
    final metrics, the run folder as artifacts and the run's status.

    An MLflow error after the start is logged once and stops this logger, not the training.
    """

    def __init__(self, uri: str, experiment: str = "archtune", *, kind: str = "run",
                 name: str | None = None, parent: str | None = None,
                 params: dict[str, Any] | None = None, tags: dict[str, str] | None = None):
        self.uri, self.experiment, self.kind, self.name = uri, experiment, kind, name
        self.parent, self.params, self.tags = parent, params or {}, tags or {}
        self.run_id: str | None = None

    def on_train_start(self, run_dir: Path, spec: Spec, info: dict[str, Any]) -> None:
        c = client(self.uri)
        tags = {"archtune.kind": self.kind, "archtune.run_dir": str(run_dir), **self.tags}
        if self.parent:
            tags[PARENT_TAG] = self.parent
        run = c.create_run(experiment_id(c, self.experiment), run_name=self.name or run_dir.name,
                           tags=tags)
        self.run_id = run.info.run_id
        _log_params(c, self.run_id, {**run_params(spec, info), **self.params})

    def _safely(self, what: str, action: Any) -> None:
        if self.run_id is None:
            return
        try:
            action(client(self.uri), self.run_id)
        except Exception as err:  # keep training; say once why MLflow stopped recording
            log.warning("MLflow logging stopped (%s): %s", what, str(err).splitlines()[0][:200])
            self.run_id = None

    def on_epoch_end(self, epoch: int, row: dict[str, float], grad_norms: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        values = {k: v for k, v in row.items() if k != "epoch"}
        values |= {f"grad_norm/{layer}": v for layer, v in grad_norms.items()}
        metrics = [Metric(k, float(v), now, epoch) for k, v in values.items()]
        self._safely(f"epoch {epoch}", lambda c, run: c.log_batch(run, metrics=metrics))

    def on_train_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        def finish(c: MlflowClient, run: str) -> None:
            best = metrics.get("best") or {}
            final = {f"best_{k}": best[k] for k in ("dev_accuracy", "dev_loss") if k in best}
            final |= {"epochs_run": metrics.get("epochs_run", 0),
                      "train_seconds": metrics.get("train_seconds", 0.0)}
            if metrics.get("best_epoch") is not None:
                final["best_epoch"] = metrics["best_epoch"]
            for key, value in final.items():
                c.log_metric(run, key, float(value))
            c.set_tag(run, "archtune.status", str(metrics.get("status")))
            epochs = replanned_epochs(metrics)  # params cannot change once logged: a tag says it
            if epochs is not None:
                c.set_tag(run, "archtune.epochs_trained", str(epochs))
            c.log_artifacts(run, str(run_dir))
            c.set_terminated(run, STATUS.get(str(metrics.get("status")), "FAILED"))

        self._safely("end of run", finish)
        self.run_id = None


def start_study_run(uri: str, experiment: str, study: str, info: dict[str, Any]) -> str:
    """The MLflow run of a study (parent of its trials' runs): found by its tags when the
    study resumes, else created; marked running."""
    c = client(uri)
    exp = experiment_id(c, experiment)
    found = c.search_runs([exp], filter_string=f"tags.`archtune.kind` = 'study' and "
                                               f"tags.`archtune.study` = '{study}'", max_results=1)
    if found:
        run_id = found[0].info.run_id
        c.update_run(run_id, status="RUNNING")
        return str(run_id)
    run = c.create_run(exp, run_name=study, tags={"archtune.kind": "study", "archtune.study": study})
    keys = ("sampler", "pruner", "seed", "trials", "fraction", "train_subset", "epochs", "storage")
    _log_params(c, run.info.run_id, {"space": info.get("space", {}).get("name"),
                                     **{k: info.get(k) for k in keys}})
    return str(run.info.run_id)


def end_study_run(uri: str, run_id: str, best: float | None, status: str) -> None:
    try:
        c = client(uri)
        if best is not None:
            c.log_metric(run_id, "best_dev_accuracy", float(best))
        c.set_terminated(run_id, status)
    except Exception as err:  # the study itself is safe in its storage
        log.warning("MLflow: could not close the study's run: %s", str(err).splitlines()[0][:200])
