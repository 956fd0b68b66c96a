"""Run folders: everything needed to reload, evaluate, report on and serve a trained model.

Layout of ``runs/<name>/``::

    spec.yaml        the resolved spec (layers, train, data), enough to rebuild the model
    env.json         versions, device, precision (and why), threads, seed
    history.csv      one row per epoch: lr, train/dev loss and accuracy, seconds
    grad_norms.csv   mean per-layer gradient norm per epoch
    best.pt          best weights (+ spec, classes, normalisation), written as training goes
    metrics.json     status (running/complete/interrupted/stopped), best epoch, dev metrics,
                     and the training process (host, pid): a ``running`` run whose process is
                     gone from this machine reads as ``died``
    eval_<split>.json  written by ``archtune evaluate``

Every file is validated when read back (:mod:`archtune._files`): a damaged or foreign file is
an :class:`ArchtuneError` naming the file and what is wrong.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from .._files import read_data, read_numeric_csv, read_object
from .._html import card, history_figures, num, pct
from .._process import is_gone
from .._validate import check_fields, kind_of
from ..errors import ArchtuneError
from ..models import ArchtuneNet, EnsembleNet, build_model
from ..specs import Spec, spec_from_dict

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

RUN_FILES = ("spec.yaml", "metrics.json")
STATUSES = ("running", "complete", "interrupted", "stopped", "failed")
# What each file must hold (name -> type; other keys are left alone).
METRICS_FIELDS: dict[str, Any] = {
    "status": Literal[STATUSES], "spec": str, "classes": list[str], "params": int, "flops": int,
    "seed": int, "epochs_run": int, "best_epoch": int | None, "best": dict[str, float] | None,
    "train_seconds": float, "stopped_early": bool, "started": str, "finished": str,
    "data": dict[str, Any], "process": dict[str, Any]}
ENV_FIELDS: dict[str, Any] = {"archtune": str, "torch": str, "device": str, "precision": str,
                              "threads": int, "seed": int}
EVAL_FIELDS: dict[str, Any] = {
    "split": str, "n": int, "accuracy": float, "loss": float, "macro_f1": float, "tta": bool,
    "per_class": dict[str, dict[str, float]], "confusion_matrix": list[list[int]],
    "most_confident_wrong": list[dict[str, Any]], "capacity": dict[str, Any]}
CHECKPOINT_FIELDS: dict[str, Any] = {
    "spec": dict[str, Any], "classes": list[str], "mean": list[float] | None,
    "std": list[float] | None, "epoch": int, "state_dict": dict[str, Any]}
# An ensemble's checkpoint: the lead member's spec and the classes, then one entry per member
# (its own spec, normalisation and weights); see :func:`save_ensemble_checkpoint`.
ENSEMBLE_FIELDS: dict[str, Any] = {"spec": dict[str, Any], "classes": list[str],
                                   "members": list[dict[str, Any]]}
MEMBER_FIELDS: dict[str, Any] = {"spec": dict[str, Any], "mean": list[float] | None,
                                 "std": list[float] | None, "epoch": int,
                                 "state_dict": dict[str, Any], "run": str}
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy")


def temp_beside(path: Path) -> Path:
    """A temporary name next to ``path`` that no other process or thread uses, for writing a
    file then renaming it into place (two workers may write the same study.json at once)."""
    return path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically, so a crash never leaves half a file."""
    tmp = temp_beside(path)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, so a crash never leaves half a file."""
    write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = temp_beside(path)
    with tmp.open("w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    os.replace(tmp, path)


def new_run_dir(spec_name: str, root: str | Path = "runs") -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{spec_name}-{stamp}"
    path, i = base, 1
    while path.exists():
        path, i = Path(f"{base}-{i}"), i + 1
    return path


def save_checkpoint(path: Path, model: ArchtuneNet, spec: Spec, classes: list[str], epoch: int) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "spec": spec.to_dict(),
        "classes": list(classes),
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        "epoch": epoch,
        "state_dict": state,
    }
    tmp = temp_beside(path)
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def save_ensemble_checkpoint(path: Path, members: list[tuple[ArchtuneNet, Spec, int, str]],
                             classes: list[str]) -> None:
    """Write an ensemble's checkpoint: each member as (model, spec, epoch, run folder it came
    from), the first the lead; :func:`load_checkpoint` rebuilds it as an :class:`EnsembleNet`."""
    ckpt = {
        "spec": members[0][1].to_dict(),
        "classes": list(classes),
        "members": [{"spec": spec.to_dict(), "mean": model.mean.flatten().tolist(),
                     "std": model.std.flatten().tolist(), "epoch": epoch, "run": str(run),
                     "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}
                    for model, spec, epoch, run in members],
    }
    tmp = temp_beside(path)
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def _rebuild(entry: dict[str, Any], classes: int, where: str) -> ArchtuneNet:
    spec = spec_from_dict(entry["spec"], source=where, classes=classes)
    try:
        model = build_model(spec, entry["mean"], entry["std"])
        model.load_state_dict(entry["state_dict"])
    except (RuntimeError, ValueError, TypeError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArchtuneError(f"{where}: the weights do not fit the checkpoint's spec ({reason})") from None
    return model


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[ArchtuneNet, dict[str, Any]]:
    """Rebuild the model from a checkpoint alone (it carries spec, classes and normalisation);
    an ensemble's checkpoint gives an :class:`EnsembleNet` of its members."""
    path = Path(path)
    if not path.is_file():
        raise ArchtuneError(f"{path}: no checkpoint (training may have stopped before its first epoch)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArchtuneError(f"{path}: not a readable archtune checkpoint ({reason})") from None
    if not isinstance(ckpt, dict):
        raise ArchtuneError(f"{path}: not an archtune checkpoint (it holds {kind_of(ckpt)})")
    if "members" in ckpt:
        check_fields(ckpt, ENSEMBLE_FIELDS, str(path), required=tuple(ENSEMBLE_FIELDS))
        if not ckpt["members"]:
            raise ArchtuneError(f"{path}: an ensemble checkpoint with no members")
        members = []
        for i, entry in enumerate(ckpt["members"]):
            where = f"{path}: members[{i}]"
            check_fields(entry, MEMBER_FIELDS, where, required=tuple(MEMBER_FIELDS))
            members.append(_rebuild(entry, len(ckpt["classes"]), where))
        model: ArchtuneNet = EnsembleNet(members)
    else:
        check_fields(ckpt, CHECKPOINT_FIELDS, str(path), required=tuple(CHECKPOINT_FIELDS))
        model = _rebuild(ckpt, len(ckpt["classes"]), str(path))
    model.eval()
    return model.to(device), ckpt


def _checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file records, or None when it is missing or unreadable."""
    try:
        epoch = torch.load(path, map_location="cpu", weights_only=True).get("epoch")
    except Exception:  # missing, truncated or foreign: the caller falls back to metrics.json
        return None
    return epoch if isinstance(epoch, int) and not isinstance(epoch, bool) else None


@dataclass
class Run:
    """A run folder, loaded. ``load_model()`` rebuilds the best weights; ``history`` is a
    DataFrame of the epochs (``history_rows`` the same as a list of dicts)."""

    path: Path
    spec: Spec
    metrics: dict[str, Any]
    env: dict[str, Any] = field(default_factory=dict)
    history_rows: list[dict[str, float]] = field(default_factory=list)
    grad_norms: list[dict[str, float]] = field(default_factory=list)
    _model: ArchtuneNet | None = field(default=None, repr=False)

    @property
    def history(self) -> pd.DataFrame:
        """One row per epoch: epoch, lr, train/dev loss and accuracy, seconds."""
        import pandas as pd

        df = pd.DataFrame(self.history_rows)
        return df.astype({"epoch": int}) if "epoch" in df else df

    def __repr__(self) -> str:
        best = (self.metrics.get("best") or {}).get("dev_accuracy")
        acc = f", best dev accuracy {best * 100:.2f}%" if isinstance(best, float) else ""
        return (f"<Run {self.name}: {self.spec.name}, {self.status}, "
                f"{self.metrics.get('epochs_run', 0)} epochs{acc}>")

    def _repr_html_(self) -> str:
        return run_html(self)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes", []))

    @property
    def status(self) -> str:
        """running | complete | interrupted | stopped, or ``died``: recorded as running by a
        process of this machine that is gone (killed, or the machine slept through it)."""
        status = str(self.metrics.get("status", "unknown"))
        if status == "running" and is_gone(self.metrics.get("process")):
            return "died"
        return status

    def status_note(self) -> str | None:
        """One sentence on a run that did not complete (None for a complete or live one)."""
        status = self.status
        if status in ("complete", "running"):
            return None
        process = self.metrics.get("process") or {}
        why = (f"its training process (pid {process.get('pid')} on {process.get('host')}) is "
               f"gone" if status == "died" else f"it is marked {status}")
        best = _checkpoint_epoch(self.path / "best.pt")  # the file itself: a process killed
        if best is None:  # between writing it and metrics.json leaves the metrics behind
            best = self.metrics.get("best_epoch")
        kept = (f"its best checkpoint is epoch {best} of {self.metrics.get('epochs_run', 0)} run"
                if best is not None else "it saved no checkpoint")
        return f"run {self.name} {'died' if status == 'died' else 'did not finish'}: {why}; {kept}"

    def load_model(self, device: str | torch.device = "cpu") -> ArchtuneNet:
        """The best weights (cached after the first call, or as left by ``train``)."""
        if self._model is None:
            self._model = load_checkpoint(self.path / "best.pt", device)[0]
        return self._model.to(device)

    def evaluation(self, split: str) -> dict[str, Any] | None:
        """The saved ``eval_<split>.json`` (validated), or None when there is none."""
        p = self.path / f"eval_{split}.json"
        return read_object(p, EVAL_FIELDS, ("split", "n", "accuracy"), "run file") \
            if p.exists() else None


@dataclass
class UnreadableRun:
    """A folder that looks like a run but cannot be read, and why."""

    path: Path
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


def load_run(path: str | Path, *, model: ArchtuneNet | None = None) -> Run:
    """Load a run folder; raises a clear error when the folder is not a run or a file in it is
    damaged (each file is validated: types, required keys, CSV rows). ``model``: the run's
    best weights already in memory (``load_model`` then returns it instead of reading best.pt)."""
    path = Path(path)
    if not path.exists():
        raise ArchtuneError(f"{path}: no such run folder")
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if not path.is_dir() or missing:
        raise ArchtuneError(f"{path}: not an archtune run folder (missing {', '.join(missing) or 'files'})")
    metrics = read_object(path / "metrics.json", METRICS_FIELDS, ("status", "classes"), "run file")
    env = read_object(path / "env.json", ENV_FIELDS, (), "run file") \
        if (path / "env.json").exists() else {}
    spec = spec_from_dict(read_data(path / "spec.yaml", "run file"), source=str(path / "spec.yaml"),
                          classes=len(metrics["classes"]))  # a run's outputs are its classes
    history = read_numeric_csv(path / "history.csv", HISTORY_COLUMNS) \
        if (path / "history.csv").exists() else []
    grads = read_numeric_csv(path / "grad_norms.csv", ("epoch",)) \
        if (path / "grad_norms.csv").exists() else []
    return Run(path, spec, metrics, env, history, grads, model)


def scan_runs(root: str | Path = "runs") -> list[Run | UnreadableRun]:
    """Every run folder directly under ``root``, oldest first: loaded, or unreadable with the
    reason. A folder holding none of spec.yaml, metrics.json and best.pt is not a run."""
    root = Path(root)
    if not root.is_dir():
        return []
    found: list[tuple[float, Run | UnreadableRun]] = []
    for p in root.iterdir():
        if not p.is_dir() or not any((p / f).exists() for f in (*RUN_FILES, "best.pt")):
            continue
        try:
            mtime = p.stat().st_mtime
            found.append((mtime, load_run(p)))
        except ArchtuneError as err:
            found.append((mtime, UnreadableRun(p, str(err).removeprefix(f"{p}/"))))
        except OSError as err:
            found.append((0.0, UnreadableRun(p, err.strerror or str(err))))
    return [r for _, r in sorted(found, key=lambda item: (item[0], item[1].name))]


def list_runs(root: str | Path = "runs") -> list[Run]:
    """Every readable run folder directly under ``root``, oldest first (each unreadable one is
    logged as a warning; :func:`scan_runs` returns them too)."""
    runs = []
    for r in scan_runs(root):
        if isinstance(r, UnreadableRun):
            log.warning("%s: unreadable run folder: %s", r.path, r.reason)
        else:
            runs.append(r)
    return runs


def run_html(run: Run) -> str:
    m, best = run.metrics, run.metrics.get("best") or {}
    data = m.get("data") or {}
    planned = run.spec.train.epochs
    epochs = f"{m.get('epochs_run', 0)} of {planned}"
    if m.get("best_epoch") is not None:
        epochs += f", best {m['best_epoch']}" + (" (stopped early)" if m.get("stopped_early") else "")
    facts = [("spec", f"{escape(run.spec.name)}: {num(m.get('params'))} params, "
                      f"{num(m.get('flops'))} FLOPs/image"),
             ("data", f"{escape(str(data.get('dataset', '-')))}: train {num(data.get('n_train'))}, "
                      f"dev {num(data.get('n_dev'))}"),
             ("epochs", epochs),
             ("best dev", f"<b>{pct(best.get('dev_accuracy'))}</b> accuracy, loss "
                          f"{num(best.get('dev_loss'))}")]
    test = run.evaluation("test")
    if test:
        facts.append(("test", f"<b>{pct(test.get('accuracy'))}</b> accuracy, loss {num(test.get('loss'))}"))
    env = run.env
    facts.append(("time", f"{m.get('train_seconds', 0):.0f}s on {escape(str(env.get('device', '?')))}"
                          f" ({escape(str(env.get('precision', '?')))})"))
    facts.append(("folder", f"<code>{escape(str(run.path))}</code>"))
    return card(f"Run {escape(run.name)}", facts, badge=run.status,
                figures=history_figures(run.history_rows))
