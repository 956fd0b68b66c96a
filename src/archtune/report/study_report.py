"""The report of a whole search: history, importances, parallel coordinates, slices, learning
curves of every trial, the sortable trials table and the best trial's run report."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ArchtuneError
from ..search import best_record, costs_of, public_url, read_finals
from ..training.runs import load_run
from ..tuning import fidelity, read_state, spending
from . import data as plot_data
from . import figures as fg
from . import study as sy
from .export import paused
from .figures_study import (
    draw_cost_curve,
    draw_front,
    draw_history,
    draw_importances,
    draw_intermediate,
    draw_parallel,
    draw_slices,
)
from .html import (
    Section,
    cards,
    details,
    figure,
    kv_table,
    link,
    note,
    num,
    pre,
    render_page,
    table,
    write_atomic,
)
from .run import run_report

log = logging.getLogger(__name__)


def study_report(folder: str | Path, output: str | Path | None = None, *,
                 best_report: bool = True, data_dir: str | None = None,
                 device: str | None = None) -> Path:
    """Write a self-contained HTML report of a study folder (default ``<study>/report.html``).

    With ``best_report`` the best trial's run report is written into its run folder (when the
    trial kept one) and linked from the page.
    """

    sd = sy.load_study_data(folder)
    if not sd.trials:
        raise ArchtuneError(f"{sd.folder}: the study has no trials yet; nothing to report")
    out = Path(output) if output else sd.folder / "report.html"
    objective = sd.meta.objective or "objective"
    best = best_record(sd.trials, sd.direction)
    sections = [_overview(sd, best), _best(sd, best, out, best_report, data_dir, device),
                *_finalists(sd), *_tune(sd), _history(sd, objective), *_front(sd), _importances(sd), _parallel(sd, objective),
                _slices(sd, objective), _intermediate(sd, objective), _trials(sd, objective),
                _space(sd)]
    subtitle = (f"{_trial_count(sd)} - {sd.direction} {objective} - sampler "
                f"{sd.meta.sampler or '-'}, pruner {sd.meta.pruner or '-'} - {sd.folder}")
    write_atomic(out, render_page(f"Study report: {sd.name}", subtitle, sections))
    log.info("wrote %s", out)
    return out


def _meta_value(sd: sy.StudyData, key: str) -> str:
    value = str(sd.meta.to_dict().get(key, sd.direction if key == "direction" else "-"))
    return public_url(value) if key == "storage" else value  # never a password in a page


def _waiting(sd: sy.StudyData) -> int:
    return sum(t.status == "waiting" for t in sd.trials)


def _trial_count(sd: sy.StudyData) -> str:
    """'4 trials run (168 more waiting in the queue)': queued trials have not run."""
    waiting = _waiting(sd)
    ran = len(sd.trials) - waiting
    text = f"{ran:,} trial{'s' if ran != 1 else ''} run"
    return text + (f" ({waiting:,} more waiting in the queue)" if waiting else "")


def _hours(seconds: float) -> str:
    return f"{seconds:,.1f} s ({seconds / 3600:.2f} h)"


def _overview(sd: sy.StudyData, best: sy.TrialRecord | None) -> Section:
    summary = sy.status_summary(sd.trials)
    total_cpu = sum(s[2] for s in summary)
    counts = dict((s[0], s[1]) for s in summary)
    body = cards([("trials run", f"{len(sd.trials) - _waiting(sd):,}"),
                  ("complete", f"{counts.get('complete', 0):,}"),
                  ("pruned", f"{counts.get('pruned', 0):,}"),
                  ("best " + (sd.meta.objective or "value"),
                   "-" if best is None else f"{best.value:.4f}"),
                  ("CPU time", f"{total_cpu / 3600:.2f} h")])
    rows = [(status, n, (_hours(cpu), cpu), (f"{cpu / total_cpu:.0%}" if total_cpu else "-",
                                             cpu / total_cpu if total_cpu else 0.0))
            for status, n, cpu in summary]
    body += table(["status", "trials", "CPU time", "share of CPU time"], rows, id="status-table")
    body += note("CPU time: the trials' recorded durations (duration_s), summed per status."
                 + (f" Waiting trials are queued and have not run: {_trial_count(sd)}."
                    if _waiting(sd) else ""))
    keys = ("study", "direction", "objective", "sampler", "pruner", "seed", "created", "storage",
            "space_hash", "archtune")
    body += kv_table([(k, _meta_value(sd, k)) for k in keys], id="study-meta")
    return Section("overview", "Overview", body)


def trial_run_dir(sd: sy.StudyData, t: sy.TrialRecord) -> Path | None:
    """The trial's run folder: its ``run_dir`` attribute, else ``<study>/trials/<number>``."""
    candidates = []
    raw = t.attrs.get("run_dir")
    if raw:
        p = Path(raw)
        candidates += [p] if p.is_absolute() else [p, sd.folder / p, sd.folder / "trials" / p.name]
    candidates.append(sd.folder / "trials" / str(t.number))
    return next((c for c in candidates if (c / "metrics.json").is_file()), None)


def _best(sd: sy.StudyData, best: sy.TrialRecord | None, out: Path, write_report: bool,
          data_dir: str | None, device: str | None) -> Section:
    title = "Best trial"
    if best is None:
        return Section("best", title, note("No trial has completed yet."))
    a = best.attrs
    items = [("trial", best.number), ("value", best.value), ("epochs", a.get("epochs")),
             ("duration (s)", _seconds(a.get("duration_s"))), ("parameters", a.get("params_count")),
             ("FLOPs per image", a.get("flops")), ("seed", a.get("seed"))]
    body = kv_table([(k, v if v is not None else "-") for k, v in items], id="best")
    body += table(["parameter", "value"], [(k, _shown(v)) for k, v in best.params.items()],
                  id="best-params")
    body += _best_run(sd, best, out, write_report, data_dir, device)
    return Section("best", title, body)


def _best_run(sd: sy.StudyData, best: sy.TrialRecord, out: Path, write_report: bool,
              data_dir: str | None, device: str | None) -> str:

    run_dir = trial_run_dir(sd, best)
    if run_dir is None:
        return note("The best trial kept no run folder, so there is no run report to link; "
                    "'archtune retrain STUDY' trains it again into one.")
    try:
        run = load_run(run_dir)
        curves = plot_data.learning_curves(run.history_rows, run.metrics)
        with paused():  # its figures belong to the run's report, not this one's --figures
            report = run_report(run, data_dir=data_dir, device=device) if write_report \
                else run_dir / "report.html"
    except ArchtuneError as err:
        return note(f"The best trial's run folder {run_dir} cannot be reported on: {err}")
    body = ""
    if report.is_file():
        href = os.path.relpath(report.resolve(), out.resolve().parent)
        body += f'<p id="best-run-link">Full run report of the best trial: {link(href, href)}</p>'
    body += figure(fg.draw_curves(curves), f"Learning curves of trial {best.number} "
                   f"({run_dir}).", id="fig-best-curves")
    return body


def _finalists(sd: sy.StudyData) -> list[Section]:
    """The noise-aware choice before retraining (finalists.json), when one was made."""

    finals = read_finals(sd.folder)
    if finals is None:
        return []
    rows = [[f.trial, (num(f.search_value), f.search_value) if f.search_value is not None else "-",
             ", ".join(f"{d:.2%}" for d in f.dev), (f"{f.mean:.2%}", f.mean),
             (f"±{f.spread:.2%}", f.spread), ", ".join(map(str, f.seeds))]
            for f in finals.finalists]
    body = note(finals.verdict() + ".")
    body += table(["trial", "search dev", "full-fidelity dev per seed", "mean", "spread", "seeds"],
                  rows, id="finalists-table")
    body += note("Each finalist was trained again on the whole train split for "
                 + (f"{finals.epochs} epochs" if finals.epochs else "its spec's epochs")
                 + " with its own seed and derived ones; spread: half the range over seeds. The "
                 "winner must beat the runner-up by more than the larger spread or one binomial "
                 "standard error of the dev accuracy to count as distinguishable.")
    if finals.left_out:
        body += note("Left out of the round (a run that cannot finish one epoch in its share "
                     "of the time budget would overrun it): " + "; ".join(finals.left_out) + ".")
    return [Section("finalists", "Finalists: the choice before retraining", body)]


def _tune(sd: sy.StudyData) -> list[Section]:
    """A tune's rungs, where its minutes went and how well each rung predicted the next
    (tune.json), when the study is a tune's."""
    state = read_state(sd.folder)
    if state is None:
        return []
    spent = spending(state)
    b = spent["budget"] or 1.0
    body = note(f"Budget {b:.0f} s, {spent['elapsed']:.0f} s spent: the delivered weights "
                f"{spent['delivered']:.0f} s ({spent['delivered'] / b:.0%}), exploration "
                f"{spent['explore']:.0f} s ({spent['explore'] / b:.0%}), the rest "
                f"{spent['other']:.0f} s ({spent['other'] / b:.0%}: loading, timing, dev passes, "
                "writing)." + (f" Delivered: {state.delivered}, dev {state.dev_accuracy:.2%}."
                               if state.delivered and state.dev_accuracy is not None else ""))
    rows = [[c.label, c.status, " / ".join(f"{s:.2%}" for s in c.scores) or "-",
             " / ".join(f"{s:.2%}" for s in c.ranked) or "-",
             c.epochs[-1] if c.epochs else 0, f"{c.seconds[-1]:.0f}" if c.seconds else "-"]
            for c in state.candidates]
    at = ", ".join(f"rung {r}: epoch {e}" for r, e in enumerate(state.compared_at))
    body += table(["trial", "status", "dev at each rung's end", "dev at the compared epoch"
                   + (f" ({at})" if at else ""), "epochs", "training s"], rows, id="tune-table")
    lines = [f"rung {f['rung']} -> {f['next']}: Spearman "
             + ("n/a" if f["spearman"] is None else f"{f['spearman']:+.2f}")
             + f" over {f['trials']} trials, {f['reversed']} of {f['pairs']} pairs reversed"
             for f in fidelity(state)]
    if lines:
        body += note("Fidelity, from this tune's own trials: " + "; ".join(lines) + ".")
    return [Section("tune", "Tune: rungs and where the minutes went", body)]


def _history(sd: sy.StudyData, objective: str) -> Section:
    h = sy.history(sd.trials, sd.direction)
    fig = draw_history(h, objective, sd.direction)
    body = figure(fig, f"{objective} of every complete trial (blue), pruned trials at their last "
                       f"reported value (grey), and the best value so far (red).", id="fig-history")
    c = sy.cost_curve(sd.trials, sd.direction)
    if c.minutes:
        body += figure(draw_cost_curve(c, objective),
                       f"Best {objective} against the CPU-minutes spent: {c.minutes[-1]:,.1f} "
                       f"CPU-minutes in all, every trial's duration counted (pruned, failed and "
                       f"invalid ones too).", id="fig-cost")
    return Section("history", "Optimisation history", body)


def _front(sd: sy.StudyData) -> list[Section]:
    """Multi-objective studies: the Pareto front, drawn and listed."""

    f = sy.front_data(sd)
    if f is None:
        return []
    costs = f.objectives[1:]
    if not f.front:
        return [Section("pareto", "Pareto front", note("No complete trial yet: no front."))]
    body = figure(draw_front(f), f"Every complete trial's {f.objectives[0]} against its "
                  f"{costs[0]} (blue); red: the trials no other trial beats on "
                  f"{' and '.join(f.objectives)} at once.", id="fig-pareto")
    rows = [(t.number, (f"{(t.value or 0) * 100:.2f}%", t.value),
             *[(f"{v:,.4g}", v) for v in costs_of(t.attrs, f.objectives)],
             t.attrs.get("epochs", "-"), ", ".join(f"{k}={sy.param_text(v)}" for k, v in t.params.items()))
            for t in f.front]
    body += table(["trial", f.objectives[0], *costs, "epochs", "parameters"], rows, id="pareto-table")
    body += note(f"{len(f.front)} of {len(f.numbers)} complete trials are on the front. Pruning "
                 "judged each trial against the finished trials of similar cost (within a factor "
                 "of 2), not against the whole study. Retrain one with archtune retrain STUDY "
                 "--trial N.")
    return [Section("pareto", "Pareto front: accuracy against cost", body)]


def _importances(sd: sy.StudyData) -> Section:
    n = len(sd.complete)
    if n < sy.MIN_IMPORTANCE_TRIALS:
        return Section("importances", "Parameter importances", note(
            f"Parameter importances need at least {sy.MIN_IMPORTANCE_TRIALS} complete trials to "
            f"mean anything; this study has {n}."))
    imp = sy.importances(sd)
    if not imp:
        return Section("importances", "Parameter importances",
                       note(f"Parameter importances could not be estimated from {n} complete "
                            f"trials."))
    body = figure(draw_importances(imp), f"How much each parameter decides whether a trial "
                  f"lands among the best (Optuna's PED-ANOVA evaluator), from {n} complete trials; "
                  f"with few trials, read them as hints.", id="fig-importances")
    body += table(["parameter", "importance"], sorted(imp.items(), key=lambda kv: -kv[1]),
                  id="importances-table")
    return Section("importances", "Parameter importances", body)


def _parallel(sd: sy.StudyData, objective: str) -> Section:
    p = sy.parallel(sd.trials, sd.params, objective)
    if not len(p.values):
        return Section("parallel", "Parallel coordinates", note("No complete trials yet."))
    return Section("parallel", "Parallel coordinates", figure(
        draw_parallel(p), "Each line is a complete trial through its parameter values "
        "(categorical axes list their choices; log-scaled parameters use a log axis). "
        "Conditional parameters a trial did not use are skipped.", id="fig-parallel"))


def _slices(sd: sy.StudyData, objective: str) -> Section:
    s = sy.slices(sd.trials, sd.params)
    if not s or not any(len(x.y) for x in s):
        return Section("slices", "Slice plots", note("No complete trials yet."))
    return Section("slices", "Slice plots", figure(
        draw_slices(s, objective), f"{objective} against each parameter's value.",
        id="fig-slices"))


def _intermediate(sd: sy.StudyData, objective: str) -> Section:
    curves = sy.intermediate(sd.trials)
    if not curves:
        return Section("intermediate", "Learning curves of all trials",
                       note("No trial reported per-epoch values."))
    return Section("intermediate", "Learning curves of all trials", figure(
        draw_intermediate(curves, objective), f"{objective} reported after each epoch; pruned "
        f"trials stop early.", id="fig-intermediate"))


def _seconds(v: Any) -> Any:
    return (f"{v:.1f}", v) if isinstance(v, int | float) else "-"


def _shown(v: Any) -> Any:
    """A parameter value rounded for reading; the raw value sorts."""
    if isinstance(v, float):
        return (sy.param_text(v), v)
    return v if isinstance(v, int | str) else sy.param_text(v)


def _trials(sd: sy.StudyData, objective: str) -> Section:
    names = list(sd.params)
    headers = ["trial", "status", objective] + names + ["epochs", "duration (s)", "params",
                                                         "FLOPs", "error / stopped"]
    rows = []
    waiting = _waiting(sd)
    for t in sorted(sd.trials, key=lambda t: t.number):
        if t.status == "waiting":
            continue
        a = t.attrs
        value = t.value if t.value is not None else a.get("dev_accuracy")
        params = [_shown(t.params[n]) if n in t.params else ("-", "") for n in names]
        rows.append([t.number, t.status, (num(value), value) if value is not None else ("-", ""),
                     *params, a.get("epochs", "-"), _seconds(a.get("duration_s")),
                     a.get("params_count", "-"), a.get("flops", "-"),
                     str(a.get("error") or a.get("stopped") or "")[:120]])
    body = note(f"{len(rows):,} trials; click a column header to sort. For pruned trials the "
                f"value is the best {objective} reached before pruning."
                + (f" {waiting:,} waiting trials (queued, not run yet) are not listed." if waiting
                   else "") + (" Printed: the first 40 rows." if len(rows) > 40 else ""))
    body += table(headers, rows, id="trials-table", sortable=True, scroll=True).replace(
        'class="sortable"', 'class="sortable print-first"', 1)
    return Section("trials", "Trials", body)


def _space(sd: sy.StudyData) -> Section:
    space = sd.meta.space
    text = json.dumps(space, indent=2, default=str) if space is not None else "(not recorded)"
    return Section("space", "Search space", details("the search space as recorded in study.json",
                                                    pre(text)))
