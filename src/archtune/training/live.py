"""Live output in a notebook: a table of epochs that updates in place while ``train`` runs,
and one line per finished trial while ``search`` runs."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._html import card, pct, table
from .._svg import COLORS, Series, curve
from ..callbacks import Callback

if TYPE_CHECKING:

    from ..specs import Spec

COLUMNS = ("epoch", "lr", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "seconds")


class EpochsView:
    """The epochs so far of one run: HTML (table and accuracy curve) or plain text."""

    def __init__(self, name: str, epochs: int):
        self.name, self.epochs = name, epochs
        self.rows: list[dict[str, float]] = []
        self.status = "running"
        self.best_epoch: int | None = None

    def _cells(self, r: dict[str, float]) -> list[Any]:
        return [int(r["epoch"]), f"{r['lr']:.2e}", round(r["train_loss"], 4), pct(r["train_accuracy"]),
                round(r["dev_loss"], 4), pct(r["dev_accuracy"]), f"{r['seconds']:.1f}s"]

    def _repr_html_(self) -> str:
        rows = [self._cells(r) for r in self.rows]
        best = next((i for i, r in enumerate(self.rows) if r["epoch"] == self.best_epoch), None)
        acc = curve([Series("train", [r["train_accuracy"] for r in self.rows], COLORS["train"]),
                     Series("dev", [r["dev_accuracy"] for r in self.rows], COLORS["dev"])],
                    title="accuracy / epoch", percent=True)
        facts = [("epoch", f"{len(self.rows)} of {self.epochs}")]
        if self.rows:
            top = max(self.rows, key=lambda r: r["dev_accuracy"])
            facts.append(("best dev", f"<b>{pct(top['dev_accuracy'])}</b> (epoch {int(top['epoch'])})"))
        headers = ["epoch", "lr", "train loss", "train acc", "dev loss", "dev acc", "time"]
        return card(f"Training {escape(self.name)}", facts, badge=self.status, figures=[acc],
                    below=[table(headers, rows, bold_row=best, max_rows=500)] if rows else [])

    def __repr__(self) -> str:
        lines = [f"training {self.name}: {self.status}, epoch {len(self.rows)} of {self.epochs}",
                 f"{'epoch':>5}  {'lr':>8}  {'train loss':>10}  {'train acc':>9}  {'dev loss':>8}  "
                 f"{'dev acc':>7}  {'time':>6}"]
        for r in self.rows:
            mark = " *" if r["epoch"] == self.best_epoch else ""
            lines.append(f"{int(r['epoch']):>5}  {r['lr']:>8.2e}  {r['train_loss']:>10.4f}  "
                         f"{r['train_accuracy'] * 100:>8.2f}%  {r['dev_loss']:>8.4f}  "
                         f"{r['dev_accuracy'] * 100:>6.2f}%  {r['seconds']:>5.1f}s{mark}")
        return "\n".join(lines)


class EpochTable(Callback):
    """Displays an :class:`EpochsView` in the running cell and updates it after each epoch."""

    def __init__(self) -> None:
        self.view: EpochsView | None = None
        self.handle: Any = None

    def on_train_start(self, run_dir: Path, spec: Spec, info: dict[str, Any]) -> None:
        from IPython.display import display

        self.view = EpochsView(run_dir.name, spec.train.epochs)
        self.handle = display(self.view, display_id=True)

    def on_epoch_end(self, epoch: int, row: dict[str, float], grad_norms: dict[str, float]) -> None:
        if self.view is not None:
            self.view.rows.append({k: float(row[k]) for k in COLUMNS})
            self._update()

    def on_train_end(self, run_dir: Path, metrics: dict[str, Any]) -> None:
        if self.view is not None:
            self.view.status = str(metrics.get("status"))
            self.view.best_epoch = metrics.get("best_epoch")
            self._update()

    def _update(self) -> None:
        if self.handle is not None:
            self.handle.update(self.view)
