"""The comparison report: several runs side by side (one table, overlaid curves, confusions)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import ArchtuneError
from ..evaluate import capacity_verdict, evaluate
from ..training.runs import Run, load_run
from . import data as plot_data
from . import figures as fg
from .html import (
    Html,
    Section,
    esc,
    figure,
    link,
    note,
    num,
    pct,
    render_page,
    table,
    write_atomic,
)
from .run_data import DataCache, RunData, collect, dev_accuracy

log = logging.getLogger(__name__)


def _labels(runs: Sequence[Run]) -> list[str]:
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    return [str(r.path) for r in runs]


def compare_report(runs: Sequence[Run | str | Path], output: str | Path = "compare.html", *,
                   data_dir: str | None = None, device: str | None = None,
                   test: bool = False) -> Path:
    """Write an HTML page comparing runs; returns its path.

    Each run must have at least one epoch of history. Dev confusion matrices are computed from
    the runs' checkpoints and data (left out, with a note, where the data cannot be loaded).
    With ``test`` every run not yet evaluated on the test split is evaluated first
    (``eval_test.json`` written, as ``archtune evaluate --split test`` does).
    """
    if len(runs) < 2:
        raise ArchtuneError("compare needs at least two runs")
    loaded = [r if isinstance(r, Run) else load_run(r) for r in runs]
    if test:
        for r in loaded:
            if r.evaluation("test") is None:
                evaluate(r, "test", data_dir=data_dir, device=device)
    cache: DataCache = {}
    rds = [collect(r, data_dir=data_dir, device=device, cache=cache) for r in loaded]
    labels = _labels(loaded)
    out = Path(output)
    sections = [_table(rds, labels, out), _curves(rds, labels), _confusions(rds, labels),
                _gradients(rds, labels)]
    title = "Comparison: " + ", ".join(labels)
    subtitle = f"{len(rds)} runs - " + ", ".join(sorted({rd.run.spec.data.dataset for rd in rds}))
    write_atomic(out, render_page(title if len(title) < 90 else f"Comparison of {len(rds)} runs",
                                  subtitle, sections))
    log.info("wrote %s", out)
    return out


def _report_link(rd: RunData, label: str, out: Path) -> str | Html:
    report = rd.run.path / "report.html"
    if not report.is_file():
        return label
    return link(os.path.relpath(report.resolve(), out.resolve().parent), label)


def _verdict(rd: RunData) -> str:
    """The capacity verdict; a run at chance level is under-fitting: not learning."""
    k = max(len(rd.run.classes), 1)
    verdict = capacity_verdict(rd.run.history_rows, 1 / k)
    if verdict["reason"].startswith("not learning"):
        return f"{verdict['verdict']}: not learning (chance is {pct(1 / k, 0)})"
    return str(verdict["verdict"])


def _table(rds: Sequence[RunData], labels: Sequence[str], out: Path) -> Section:
    rows = []
    for rd, label in zip(rds, labels, strict=True):
        m = rd.run.metrics
        test = rd.test_eval["accuracy"] if rd.test_eval else None
        f1 = rd.test_eval["macro_f1"] if rd.test_eval else None
        dev = dev_accuracy(rd)
        ratio = rd.grads.first_over_last if rd.grads and len(rd.grads.layers) > 1 else None
        rows.append((_report_link(rd, label, out), rd.run.spec.name, m.get("params"), m.get("flops"),
                     m.get("epochs_run"), m.get("best_epoch"),
                     (f"{m.get('train_seconds', 0):.1f}", m.get("train_seconds", 0)),
                     (pct(dev), dev), (pct(test), test if test is not None else -1.0),
                     (num(f1), f1 if f1 is not None else -1.0),
                     (plot_data.ratio_text(rd.grads), ratio if ratio is not None else -1.0),
                     _verdict(rd)))
    headers = ["run", "spec", "params", "FLOPs", "epochs", "best epoch", "time (s)", "dev acc",
               "test acc", "test macro F1", "grad norm first/last", "verdict"]
    body = table(headers, rows, id="compare-table", sortable=True)
    body += note("Dev accuracy: the kept weights (best epoch) evaluated on the dev split in fp32, "
                 "with flip TTA where the spec asks for it (the same number as 'archtune runs' "
                 "and the run report). Test metrics only where the test split was evaluated "
                 "('archtune evaluate --split test' or 'compare --test'). Grad norm first/last: "
                 "the first weight layer's mean gradient norm over the last one's, at the last "
                 "epoch. Click a column to sort.")
    return Section("table", "Runs side by side", body)


def _curves(rds: Sequence[RunData], labels: Sequence[str]) -> Section:
    fig = fg.draw_overlaid_curves({lb: rd.curves for rd, lb in zip(rds, labels, strict=True)})
    return Section("curves", "Learning curves", figure(
        fig, "Loss and accuracy per epoch of every run: dev solid, train dashed.", id="fig-curves"))


def _confusions(rds: Sequence[RunData], labels: Sequence[str]) -> Section:
    confs = {lb: plot_data.confusion_from_counts(rd.dev_eval["confusion_matrix"], rd.run.classes)
             for rd, lb in zip(rds, labels, strict=True) if rd.dev_eval}
    body = ""
    if confs:
        body = figure(fg.draw_confusions(confs), "Dev confusion matrices, row-normalised "
                      "(rows: true class, columns: predicted).", id="fig-confusions")
    for rd, lb in zip(rds, labels, strict=True):
        if not rd.dev_eval:
            body += note(f"{lb}: no dev confusion matrix ({'; '.join(rd.missing) or 'no data'}).")
    return Section("confusion", "Confusion matrices", body)


def _gradients(rds: Sequence[RunData], labels: Sequence[str]) -> Section:
    profiles = {lb: rd.grads for rd, lb in zip(rds, labels, strict=True)
                if rd.grads is not None and len(rd.grads.layers) > 1}
    if not profiles:
        return Section("gradients", "Gradient norms", note("No gradient norms were recorded."))
    items = "".join(f'<li>{esc(lb)}: <b id="ratio-{i}">{plot_data.ratio_text(g)}</b></li>'
                    for i, (lb, g) in enumerate(profiles.items()))
    body = (f"<p>First-layer gradient norm over last-layer gradient norm (last epoch):</p>"
            f"<ul>{items}</ul>")
    body += figure(fg.draw_grad_profiles(profiles), "Mean weight-gradient norm per layer at the "
                   "last epoch, input side on the left (log scale). A line falling steeply towards "
                   "the input shows vanishing gradients.", id="fig-grad-profiles")
    return Section("gradients", "Gradient norms", body)
