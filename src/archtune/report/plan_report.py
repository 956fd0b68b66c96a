"""The compact report of a plan: at most 5 A4 pages when printed (``--pdf``).

Page 1: the summary table of every model and the findings; then the overlaid learning curves
and gradient flow, the best model's confusion matrix and per-class F1 (test split once it was
evaluated), each search's history and importances, and a plain-language description of every
architecture and training setup, read from the specs.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Any

from ..data import load_dataset
from ..errors import ArchtuneError
from ..evaluate import evaluate
from . import data as plot_data
from . import figures as fg
from . import study as sy
from .figures_plan import WIDTH, draw_best, draw_plan_curves, draw_search
from .html import Html, Section, esc, figure, link, note, pct, render_page, table, write_atomic
from .plan_data import MIN_IMPORTANCE_TRIALS, PlanData, PlanRun, PlanSearch, load_plan_data

log = logging.getLogger(__name__)


def plan_report(folder: str | Path, output: str | Path | None = None, *,
                data_dir: str | None = None, device: str | None = None) -> Path:
    """Write the report of a plan folder (default ``<plan>/report.html``); returns its path."""
    plan = load_plan_data(folder)
    out = Path(output) if output else plan.folder / "report.html"
    # printed: 1 summary | 2 curves, best model | 3 gradient flow, searches | 4 models, method
    sections = [summary(plan, out), curves(plan), best_model(plan, data_dir, device),
                gradients(plan)]
    sections += [search_section(plan, s) for s in plan.searches]
    sections += [models(plan), method(plan)]
    subtitle = (f"{len(plan.runs)} models, {len(plan.searches)} "
                f"search{'es' if len(plan.searches) != 1 else ''} - plan folder {plan.folder}")
    write_atomic(out, render_page(f"Plan report: {plan.name}", subtitle,
                                  [s for s in sections if s is not None]))
    log.info("wrote %s", out)
    return out


def _seconds(v: Any) -> str:
    if not isinstance(v, int | float) or math.isnan(v):
        return "-"
    return f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min"


def _acc(value: float | None, small: str = "") -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ("-", -1.0)
    text = esc(pct(value)) + (f'<br><span class="small">{esc(small)}</span>' if small else "")
    return (Html(text), value)


def _name_cell(r: PlanRun, out: Path) -> Any:
    report = r.run.path / "report.html"
    label = r.name + (" (search)" if r.source == "search" else "")
    if report.is_file():
        return link(os.path.relpath(report.resolve(), out.resolve().parent), label)
    return label


def _short_weights(r: PlanRun) -> str:
    w = r.dev["weights"].replace(" weights", "").replace(", as measured during training",
                                                          ", in training")
    return w


def summary(plan: PlanData, out: Path) -> Section:
    rows = []
    best = plan.best
    for r in plan.runs:
        m = r.run.metrics
        v = r.verdict["verdict"] + (" (not learning)" if not r.learned else "")
        rows.append((_name_cell(r, out), r.text["architecture"][:3], m.get("params"),
                     (f"{(m.get('flops') or 0) / 1e6:.2f}", m.get("flops")),
                     (f"{m.get('epochs_run')} ({m.get('best_epoch')})", m.get("epochs_run")),
                     (_seconds(m.get("train_seconds")), m.get("train_seconds")),
                     _acc(r.dev["accuracy"], _short_weights(r)),
                     _acc(r.test["accuracy"] if r.test else None),
                     (pd_ratio(r), r.grads.first_over_last if r.grads else -1.0),
                     Html(f'<span class="verdict {esc(r.verdict["verdict"])}">{esc(v)}</span>')))
    body = f'<p class="lead">{esc(plan.description)}</p>' if plan.description else ""
    body += _data_line(plan)
    body += table(["model", "kind", "params", "MFLOPs", "epochs (best)", "time", "dev acc",
                   "test acc", "grad first/last", "verdict"], rows, id="plan-table",
                  sortable=True)
    body += note("Dev accuracy: the kept weights (the best epoch by the spec's monitor) evaluated "
                 "on the dev split after training, in fp32, with flip test-time augmentation where "
                 "the spec asks for it; the same number appears in every archtune report. Test "
                 "accuracy: one evaluation of the test split at the end of the plan. Grad "
                 "first/last: the first weight layer's gradient norm over the last one's.")
    body += _findings(plan, best)
    if plan.missing:
        body += note("Not in this report yet: " + "; ".join(plan.missing) + ".")
    return Section("summary", "Summary", body)


def pd_ratio(r: PlanRun) -> str:
    return plot_data.ratio_text(r.grads).split(" (")[0] if r.grads else "-"


def _data_line(plan: PlanData) -> str:
    if not plan.runs:
        return ""
    r = plan.runs[0].run
    d, m = r.spec.data, r.metrics.get("data", {})
    tested = next((x.test for x in plan.runs if x.test), None)
    test = f" / {tested['n']:,} test" if tested else ""
    return (f"<p>Data: {esc(d.dataset)}, {m.get('n_train', 0):,} train / {m.get('n_dev', 0):,} "
            f"dev{test} images (dev: {d.dev_fraction:g} of the training data, stratified, split "
            f"seed {d.split_seed}); the test images are read only by the final evaluation.</p>")


def _findings(plan: PlanData, best: PlanRun | None) -> str:
    items = []
    if best is not None:
        test = f", test {pct(best.test['accuracy'])}" if best.test else ""
        items.append(f"Best model by dev accuracy: <b>{esc(best.name)}</b> "
                     f"({esc(best.run.spec.name)}), dev {pct(best.dev['accuracy'])}{test}.")
    for kind in ("MLP", "CNN"):
        group = [r for r in plan.runs if r.text["architecture"].startswith(kind)]
        if group:
            top = max(group, key=lambda r: r.dev["accuracy"])
            items.append(f"Best {kind}: {esc(top.name)}, dev {pct(top.dev['accuracy'])}"
                         + (f", test {pct(top.test['accuracy'])}" if top.test else "") + ".")
    for r in plan.runs:
        g = r.grads
        if g is not None and len(g.layers) > 1 and g.first_over_last <= 0.01:
            items.append(f"Vanishing gradients in {esc(r.name)}: its first layer's gradient norm "
                         f"is {esc(plot_data.ratio_text(g))}"
                         + ("; it does not learn (chance level)." if not r.learned else "."))
    for s in plan.searches:
        counts = {st: n for st, n, _ in sy.status_summary(s.study.trials)}
        done = sum(n for st, n in counts.items() if st != "waiting")
        line = (f"Search {esc(s.name)}: {done} trials ({counts.get('complete', 0)} complete, "
                f"{counts.get('pruned', 0)} pruned)")
        if s.best is not None and s.best.value is not None:
            line += f", best search dev {pct(s.best.value)} (trial {s.best.number})"
        trial = s.retrained.get("trial")
        model = next((r for r in plan.runs if r.source == "search" and r.name == s.name), None)
        if trial is not None and model is not None:
            line += (f"; trial {trial} retrained on all the data: dev {pct(model.dev['accuracy'])}"
                     + (f", test {pct(model.test['accuracy'])}" if model.test else ""))
        items.append(line + ".")
    return "<ul class=\"findings\">" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def curves(plan: PlanData) -> Section | None:
    if not plan.runs:
        return None
    c = {r.name: r.curves for r in plan.runs}
    body = figure(draw_plan_curves(c, {r.name: r.learned for r in plan.runs}),
                  "Dev accuracy and dev loss per epoch of every model, as measured during "
                  "training.", id="fig-plan-curves")
    return Section("curves", "Learning curves", body, css="page")


def gradients(plan: PlanData) -> Section | None:
    profiles = {r.name: r.grads for r in plan.runs if r.grads is not None and len(r.grads.layers) > 1}
    if not profiles:
        return None
    body = figure(fg.draw_grad_profiles(profiles, size=(WIDTH, 2.6)),
                  "Each weight layer's mean gradient norm at the last epoch, input side on the "
                  "left (log scale). A line that falls steeply towards the input shows vanishing "
                  "gradients.", id="fig-plan-gradients")
    return Section("gradients", "Gradient flow", body, css="page")


def _best_eval(best: PlanRun, data_dir: str | None, device: str | None
               ) -> tuple[dict[str, Any] | None, str]:
    if best.test:
        return best.test, "test split"
    saved = best.run.evaluation("dev")
    if saved:
        return saved, "dev split"

    try:
        return evaluate(best.run, "dev", data_dir=data_dir, device=device, save=False), "dev split"
    except ArchtuneError as err:
        log.warning("no confusion matrix for %s: %s", best.name, err)
        return None, ""


def best_model(plan: PlanData, data_dir: str | None, device: str | None) -> Section | None:
    best = plan.best
    if best is None:
        return None
    result, split = _best_eval(best, data_dir, device)
    title = f"Best model: {best.name}"
    if result is None:
        return Section("best", title, note("Its evaluation needs the data set, which could not be "
                                           "loaded."))
    classes = list(result["per_class"])
    conf = plot_data.confusion_from_counts(result["confusion_matrix"], classes)
    body = (f"<p>{esc(best.name)} ({esc(best.text['architecture'])}): {split} accuracy "
            f"<b>{pct(result['accuracy'])}</b>, macro F1 {result['macro_f1']:.4f}.</p>")
    body += figure(draw_best(conf, plot_data.class_scores(result["per_class"]), split),
                   f"Rows: true class, columns: predicted, on the {split}; each cell: the share of "
                   f"the true class, in %. Right: per-class precision, recall and F1 (value: F1).",
                   id="fig-plan-best")
    worst = sorted(result["per_class"].items(), key=lambda kv: kv[1]["f1"])[:2]
    body += note("Hardest classes: " + ", ".join(f"{c} (F1 {m['f1']:.2f})" for c, m in worst) + ".")
    body += _mistakes(best, result, split, data_dir)
    return Section("best", title, body)


def _mistakes(best: PlanRun, result: dict[str, Any], split: str, data_dir: str | None) -> str:
    """The most confidently wrong test images of the best model (left out without the data)."""

    wrong = result.get("most_confident_wrong") or []
    if split != "test split" or not wrong:
        return ""
    d = best.run.spec.data
    try:
        ds = load_dataset(d.dataset, data_dir=data_dir or d.data_dir, channels=d.channels,
                          image_size=tuple(d.image_size) if d.image_size else None)
    except ArchtuneError as err:
        return note(f"The mistaken images need the data set ({err}).")
    import torch

    idx = torch.tensor([w.get("source_index", w["index"]) for w in wrong[:8]])
    x = ds.x_test[idx].float().div(255).numpy()
    grid = plot_data.mistakes_grid(x, wrong, limit=8)
    grid.titles = [f"{w['true'][:11]}\nas {w['predicted'][:11]} {w['probability']:.0%}"
                   for w in wrong[:8]]  # short: eight fit across the page
    return figure(fg.draw_grid(grid, cell=0.88), "The test images it got wrong with the highest "
                  "confidence: true label, the label it gave and its probability.",
                  id="fig-plan-mistakes")


def search_section(plan: PlanData, s: PlanSearch) -> Section:
    sd = s.study
    meta = sd.meta
    objective = meta.objective or "objective"
    fid = []
    if meta.train_subset:
        fid.append(f"{meta.train_subset:,} training images")
    if meta.epochs:
        fid.append(f"at most {meta.epochs} epochs")
    dev = plan.state.get("steps", {}).get(f"search:{s.name}", {}).get("dev_images")
    if dev:
        fid.append(f"scored on {dev:,} dev images")
    body = (f"<p>Space {esc((meta.space or {}).get('name', '-'))}: sampler "
            f"{esc(meta.sampler)}"
            + (f" ({meta.candidates:,} of a {meta.grid_size:,}-point grid)"
               if meta.candidates else "")
            + f", pruner {esc(meta.pruner)}, seed {esc(meta.seed)}"
            + (f"; each trial: {esc(', '.join(fid))}" if fid else "") + ".</p>")
    body += figure(draw_search(sy.history(sd.trials, sd.direction), s.importances, s.n_complete,
                               objective, minimum=MIN_IMPORTANCE_TRIALS),
                   f"Left: {objective} of every trial (pruned ones at their last value) and the "
                   f"best so far. Right: how much each parameter decides whether a trial lands "
                   f"among the best (PED-ANOVA), from {s.n_complete} complete trials.",
                   id=f"fig-search-{s.name}")
    if s.best is not None:
        params = ", ".join(f"{k}={sy.param_text(v)}" for k, v in s.best.params.items())
        body += f'<p class="small">Best trial {s.best.number}: {esc(params)}.</p>'
    pick = s.retrained.get("pick")
    if s.retrained.get("trial") is not None:
        why = ("the best trial" if pick == "best" else "the cheapest trial within one standard "
               "error of the best (one-standard-error rule)")
        body += note(f"Retrained: trial {s.retrained['trial']}, {why}, on all the training data "
                     f"with its full recipe.")
    return Section(f"search-{s.name}", f"Search: {s.name}", body)


def models(plan: PlanData) -> Section:
    rows = [(r.name, r.text["architecture"], r.text["init"], r.text["activations"],
             r.text["regularisation"], r.text["training"]) for r in plan.runs]
    body = table(["model", "architecture", "initialisation", "activations", "regularisation",
                  "optimiser, schedule, batch, epochs"], rows, id="models-table")
    return Section("models", "Architectures and training setups", '<div class="dense">' + body
                   + "</div>", css="page")


def method(plan: PlanData) -> Section:
    env = plan.runs[0].run.env if plan.runs else {}
    steps = plan.state.get("steps", {})
    total = sum(float(v.get("seconds") or 0) for v in steps.values())
    items = [f"Reproduce: <code>archtune plan {esc(plan.folder)}</code> (reuses what is done), "
             f"then <code>archtune report {esc(plan.folder)} --pdf</code>.",
             f"Compute: {_seconds(total)} of training, searching and testing in total "
             f"({esc(env.get('device', '-'))}, {esc(env.get('threads', '-'))} threads, "
             f"{esc(env.get('precision', '-'))} training, torch {esc(env.get('torch', '-'))}).",
             "Every run is seeded (spec train.seed) and saved in runs/NAME/ with its resolved "
             "spec, history, gradient norms, best weights and metrics; each search's trials are "
             "in studies/NAME/ (archtune trials / best / report).",
             "The test split was read only by the final evaluation of each model, after every "
             "choice (early stopping, search, retrain pick) was made on the dev split."]
    if plan.searches:
        items.append("Search trials were trained at a coarse fidelity and scored as listed "
                     "above; their dev accuracies are not comparable with the full runs'.")
    return Section("method", "Method and reproduction",
                   '<ul class="small">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")

