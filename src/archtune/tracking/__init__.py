"""Experiment loggers, optional and off by default: TensorBoard and MLflow.

::
    at.train(spec, loggers="tensorboard")                  # events in <run>/tensorboard/
    at.train(spec, loggers=["tensorboard", "mlflow"])      # MLflow: sqlite:///mlflow.db here
    at.train(spec, loggers="mlflow", mlflow_uri="http://127.0.0.1:5000")
    search(space, execution=Execution(loggers="mlflow"))  # one MLflow run per trial, nested under the study's

TensorBoard: one ``SummaryWriter`` per run or trial with per-epoch losses, accuracies, learning
rate, seconds and per-layer gradient norms, then the hyperparameters with the final metrics
(the HParams tab). MLflow: the parameters, the same per-epoch metrics with their epoch as step,
the final metrics and the run folder as artifacts. MLflow's URI defaults to
``MLFLOW_TRACKING_URI``, else a local SQLite store ``sqlite:///mlflow.db`` (MLflow 3 refuses
its older ``./mlruns`` file store unless ``MLFLOW_ALLOW_FILE_STORE=true``); the experiment is
``MLFLOW_EXPERIMENT_NAME``, else "archtune".
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError, unknown
from ._mlflow import MLflowLogger, client, end_study_run, start_study_run
from ._params import scalar
from ._tensorboard import TensorBoardLogger

if TYPE_CHECKING:
    from ..callbacks import Callback

KINDS = ("tensorboard", "mlflow")
DEFAULT_MLFLOW_URI = "sqlite:///mlflow.db"
_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow"}  # kind -> module to import


@dataclass(frozen=True)
class Tracking:
    """Which loggers to use and where they write (picklable, so worker processes of a search
    rebuild the same loggers)."""

    kinds: tuple[str, ...] = ()
    mlflow_uri: str = DEFAULT_MLFLOW_URI
    experiment: str = "archtune"
    study: str | None = None  # set by a search: the study whose trials are logged
    tensorboard_dir: str | None = None  # a search's trials write <dir>/trial-<number>
    parent_run: str | None = None  # the study's MLflow run, parent of the trials' runs

    def __bool__(self) -> bool:
        return bool(self.kinds)


def resolve(loggers: str | Sequence[str] | Tracking | None, mlflow_uri: str | None = None
            ) -> Tracking:
    """Check the logger names (and that their packages are installed; MLflow's store is
    opened once to fail now rather than after the first epoch)."""
    if isinstance(loggers, Tracking):
        return loggers if mlflow_uri is None else replace(loggers, mlflow_uri=mlflow_uri)
    names = [loggers] if isinstance(loggers, str) else list(loggers or ())
    for name in names:
        if name not in KINDS:
            raise unknown("logger", str(name), KINDS, "--log")
        if importlib.util.find_spec(_PACKAGES[name]) is None:
            raise ArchtuneError(f"--log {name}: the {name} package is not installed; install it "
                                f"with: pip install 'archtune[{name}]'")
    if mlflow_uri is not None and "mlflow" not in names:
        raise ArchtuneError("--mlflow-uri is for the MLflow logger: add --log mlflow")
    t = Tracking(tuple(dict.fromkeys(names)),
                 mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_MLFLOW_URI,
                 os.environ.get("MLFLOW_EXPERIMENT_NAME") or "archtune")
    if "mlflow" in t.kinds:
        client(t.mlflow_uri)
    return t


def run_loggers(t: Tracking) -> list[Callback]:
    """The loggers of one ``train()`` run (TensorBoard writes into ``<run>/tensorboard``)."""
    out: list[Callback] = []
    if "tensorboard" in t.kinds:
        out.append(TensorBoardLogger())
    if "mlflow" in t.kinds:
        out.append(MLflowLogger(t.mlflow_uri, t.experiment, kind="run"))
    return out


def trial_loggers(t: Tracking | None, number: int, params: dict[str, Any]) -> list[Callback]:
    """The loggers of one trial of a search (see :func:`for_study`)."""
    if not t:
        return []
    out: list[Callback] = []
    hparams = {k: scalar(v) for k, v in params.items()}
    if "tensorboard" in t.kinds:
        folder = Path(t.tensorboard_dir or "tensorboard") / f"trial-{number:04d}"
        out.append(TensorBoardLogger(folder, hparams=hparams))
    if "mlflow" in t.kinds:
        out.append(MLflowLogger(t.mlflow_uri, t.experiment, kind="trial",
                                name=f"{t.study}-trial-{number}", parent=t.parent_run,
                                params=hparams, tags={"archtune.study": t.study or "",
                                                      "archtune.trial": str(number)}))
    return out


def for_study(t: Tracking, name: str, folder: Path, info: dict[str, Any]) -> Tracking:
    """The settings a search hands its trials: TensorBoard under ``<study>/tensorboard``, and
    the study's MLflow parent run (found again when the study resumes, else created)."""
    if not t:
        return t
    parent = None
    if "mlflow" in t.kinds:
        parent = start_study_run(t.mlflow_uri, t.experiment, name, info)
    return replace(t, study=name, tensorboard_dir=str(Path(folder) / "tensorboard"),
                   parent_run=parent)


def end_study(t: Tracking | None, best: float | None, status: str) -> None:
    """Close the study's MLflow run (``status``: FINISHED or KILLED) with its best value."""
    if t and t.parent_run:
        end_study_run(t.mlflow_uri, t.parent_run, best, status)
