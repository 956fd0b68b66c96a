"""The report of one run: what :mod:`.run_data` gathered, laid out as HTML sections."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from ..evaluate import capacity_verdict
from ..training.runs import Run
from . import sections as rs
from .html import Section, render_page, write_atomic
from .inspect import check_image_index
from .run_data import RunData, collect

log = logging.getLogger(__name__)
__all__ = ["RunData", "collect", "run_report", "run_sections", "section_plan"]


def run_report(run: Run | str | Path, output: str | Path | None = None, *,
               data_dir: str | None = None, device: str | None = None,
               images: tuple[int, ...] = (0,), sample: int = 1000) -> Path:
    """Write a self-contained HTML report of a run (default ``<run>/report.html``).

    ``images`` are dev-split indices whose activation maps are shown; ``sample`` dev images
    are searched for dead filters. Returns the report's path.
    """
    rd = collect(run, data_dir=data_dir, device=device)
    if rd.splits is not None:
        for i in images:
            check_image_index(i, len(rd.splits.dev), "dev")
    out = Path(output) if output else rd.run.path / "report.html"
    page = render_page(f"Run report: {rd.name}", _subtitle(rd), run_sections(rd, images, sample))
    write_atomic(out, page)
    log.info("wrote %s", out)
    return out


def _subtitle(rd: RunData) -> str:
    r = rd.run
    members = [m for m in (r.metrics.get("ensemble") or {}).get("members", []) if m.get("chosen")]
    lead = (f"an ensemble of {len(members)} runs (retrain --ensemble): the spec, curves, filters and "
            "activations below are its lead member's; accuracies are the ensemble's - "
            if members else "")
    return (f"{lead}spec '{r.spec.name}' - status {r.status} - {r.metrics.get('epochs_run', 0)} "
            f"epochs - data {r.spec.data.dataset} - run folder {r.path}")


def section_plan(rd: RunData, images: tuple[int, ...] = (0,), sample: int = 1000
                 ) -> list[tuple[str, Callable[[], Section]]]:
    """The sections of a run report, in order, as (id, builder): test metrics only when the run
    has a saved test evaluation (``archtune evaluate --split test``)."""
    plan: list[tuple[str, Callable[[], Section]]] = [
        ("overview", lambda: rs.overview(rd)), ("architecture", lambda: rs.architecture(rd)),
        ("config", lambda: rs.configuration(rd)), ("curves", lambda: rs.curves(rd)),
        ("capacity", lambda: rs.capacity(rd, capacity_verdict(
            rd.run.history_rows, 1 / max(len(rd.run.classes), 1)))),
        ("dev-metrics", lambda: rs.dev_metrics(rd))]
    if rd.test_eval:
        plan.append(("test-metrics", lambda: rs.test_metrics(rd)))
    plan += [("mistakes", lambda: rs.mistakes(rd)), ("data", lambda: rs.data_views(rd)),
             ("filters", lambda: rs.filters(rd)), ("activations", lambda: rs.activations(rd, images)),
             ("dead", lambda: rs.dead(rd, sample)), ("gradients", lambda: rs.gradients(rd))]
    return plan


def run_sections(rd: RunData, images: tuple[int, ...] = (0,), sample: int = 1000) -> list[Section]:
    """Every section of a run report, built in order."""
    return [build() for _, build in section_plan(rd, images, sample)]
