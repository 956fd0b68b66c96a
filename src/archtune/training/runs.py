"""Run folders: everything needed to reload, evaluate, report on and serve a trained model.

Layout of ``runs/<name>/``::

    spec.yaml        the resolved spec (layers, train, data), enough to rebuild the model
    env.json         versions, device, precision (and why), threads, seed
    history.csv      one row per epoch: lr, train/dev loss and accuracy, seconds
    grad_norms.csv   mean per-layer gradient norm per epoch
    best.pt          best weights (+ spec, classes, normalisation), written as training goes
    metrics.json     status (running/complete/interrupted/failed), best epoch, dev metrics
    eval_<split>.json  written by ``archtune evaluate``
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml

from ..errors import ArchtuneError
from ..models import ArchtuneNet, build_model
from ..specs import Spec, spec_from_dict

if TYPE_CHECKING:
    import pandas as pd

RUN_FILES = ("spec.yaml", "metrics.json")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, so a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
    os.replace(tmp, path)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        if rows:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
    os.replace(tmp, path)


def read_csv(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as f:
        return [{k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(f)]


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
    tmp = path.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[ArchtuneNet, dict[str, Any]]:
    """Rebuild the model from a checkpoint alone (it carries spec, classes and normalisation)."""
    path = Path(path)
    if not path.is_file():
        raise ArchtuneError(f"{path}: no checkpoint (training may have stopped before its first epoch)")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise ArchtuneError(f"{path}: not a readable archtune checkpoint ({err})") from None
    spec = spec_from_dict(ckpt["spec"], source=str(path))
    model = build_model(spec, ckpt["mean"], ckpt["std"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    return model.to(device), ckpt


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
        from ..notebook.cards import run_html

        return run_html(self)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def classes(self) -> list[str]:
        return list(self.metrics.get("classes", []))

    @property
    def status(self) -> str:
        return str(self.metrics.get("status", "unknown"))

    def load_model(self, device: str | torch.device = "cpu") -> ArchtuneNet:
        """The best weights (cached after the first call, or as left by ``train``)."""
        if self._model is None:
            self._model = load_checkpoint(self.path / "best.pt", device)[0]
        return self._model.to(device)

    def evaluation(self, split: str) -> dict[str, Any] | None:
        p = self.path / f"eval_{split}.json"
        return json.loads(p.read_text()) if p.exists() else None


def load_run(path: str | Path) -> Run:
    """Load a run folder; raises a clear error when the folder is not a run."""
    path = Path(path)
    if not path.exists():
        raise ArchtuneError(f"{path}: no such run folder")
    missing = [f for f in RUN_FILES if not (path / f).is_file()]
    if not path.is_dir() or missing:
        raise ArchtuneError(f"{path}: not an archtune run folder (missing {', '.join(missing) or 'files'})")
    try:
        raw = yaml.safe_load((path / "spec.yaml").read_text())
        metrics = json.loads((path / "metrics.json").read_text())
        env = json.loads((path / "env.json").read_text()) if (path / "env.json").exists() else {}
    except (yaml.YAMLError, json.JSONDecodeError) as err:
        raise ArchtuneError(f"{path}: a run file is not readable: {err}") from None
    spec = spec_from_dict(raw, source=str(path / "spec.yaml"))
    return Run(path, spec, metrics, env, read_csv(path / "history.csv"), read_csv(path / "grad_norms.csv"))


def list_runs(root: str | Path = "runs") -> list[Run]:
    """Every readable run folder directly under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = []
    for p in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime):
        if (p / "metrics.json").is_file():
            try:
                runs.append(load_run(p))
            except ArchtuneError:
                continue
    return runs
