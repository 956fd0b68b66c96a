"""HTML cards for notebooks: the key numbers and a small curve, as pandas and Optuna objects
render themselves. Each ``*_html`` function is pure (data in, HTML text out); the classes'
``_repr_html_`` methods call them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TYPE_CHECKING, Any

from ._svg import COLORS, Series, curve

if TYPE_CHECKING:

    from ..search import SearchSpace
    from ..specs import Spec
    from ..training import Run

CARD = ("font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; font-size: 12px; "
        "border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; margin: 2px 0; "
        "display: inline-block; max-width: 980px; background: #fff; color: #1f2328")
CELL = "padding: 1px 8px 1px 0; text-align: {align}; border: none; white-space: nowrap"
BADGE = {"complete": "#1a7f37", "running": "#9a6700", "interrupted": "#bc4c00",
         "stopped": "#bc4c00", "died": "#cf222e", "failed": "#cf222e"}


def pct(v: Any) -> str:
    return "-" if not isinstance(v, int | float) or math.isnan(v) else f"{v * 100:.2f}%"


def short(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def num(v: Any, digits: int = 4) -> str:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return "-" if v is None else escape(str(v))
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if math.isnan(v) else f"{v:.{digits}g}"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, bold_row: int | None = None,
          max_rows: int = 40) -> str:
    """A compact table; numbers right-aligned, the rest left; ``bold_row`` highlighted."""
    def cell(v: Any, tag: str = "td") -> str:
        right = isinstance(v, int | float) and not isinstance(v, bool)
        text = num(v) if right else escape(str(v))
        return f'<{tag} style="{CELL.format(align="right" if right else "left")}">{text}</{tag}>'

    head = "".join(cell(h, "th") for h in headers)
    body = []
    for i, row in enumerate(rows[:max_rows]):
        style = ' style="font-weight: 600"' if i == bold_row else ""
        body.append(f"<tr{style}>{''.join(cell(v) for v in row)}</tr>")
    if len(rows) > max_rows:
        body.append(f'<tr><td colspan="{len(headers)}" style="color: #666">... '
                    f'{len(rows) - max_rows} more</td></tr>')
    return (f'<table style="border-collapse: collapse; margin: 4px 0; font-size: 11px">'
            f'<thead><tr style="border-bottom: 1px solid #d0d7de">{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def card(title: str, facts: Sequence[tuple[str, str]], *, badge: str | None = None,
         figures: Sequence[str] = (), below: Sequence[str] = ()) -> str:
    """Title (and status badge), key facts on the left, curves on the right, tables below."""
    tag = ""
    if badge:
        color = BADGE.get(badge, "#57606a")
        tag = (f' <span style="background: {color}; color: #fff; border-radius: 8px; '
               f'padding: 0 6px; font-size: 11px">{escape(badge)}</span>')
    rows = "".join(f'<tr><td style="{CELL.format(align="left")}; color: #57606a">{escape(k)}</td>'
                   f'<td style="{CELL.format(align="left")}">{v}</td></tr>' for k, v in facts)
    figs = "".join(f"<div>{f}</div>" for f in figures if f)
    return (f'<div class="archtune-card" style="{CARD}">'
            f'<div style="font-size: 13px; font-weight: 600; margin-bottom: 4px">{title}{tag}</div>'
            f'<div style="display: flex; gap: 16px; align-items: flex-start; flex-wrap: wrap">'
            f'<table style="border-collapse: collapse; font-size: 12px">{rows}</table>{figs}</div>'
            f'{"".join(below)}</div>')


def history_figures(rows: Sequence[dict[str, float]]) -> list[str]:
    """Accuracy and loss per epoch, train and dev."""
    def col(key: str) -> list[float]:
        return [float(r.get(key, math.nan)) for r in rows]

    return [curve([Series("train", col("train_accuracy"), COLORS["train"]),
                   Series("dev", col("dev_accuracy"), COLORS["dev"])], title="accuracy / epoch",
                  percent=True),
            curve([Series("train", col("train_loss"), COLORS["train"]),
                   Series("dev", col("dev_loss"), COLORS["dev"])], title="loss / epoch")]


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


def evaluation_html(result: dict[str, Any]) -> str:
    classes = list(result.get("per_class", {}))
    cap = result.get("capacity") or {}
    facts = [("images", num(result.get("n"))),
             ("accuracy", f"<b>{pct(result.get('accuracy'))}</b>"),
             ("loss", num(result.get("loss"))), ("macro F1", num(result.get("macro_f1"))),
             ("capacity", f"{escape(str(cap.get('verdict', '-')))}: "
                          f"{escape(str(cap.get('reason', '')))}")]
    per_class = table(["class", "precision", "recall", "F1", "support"],
                      [[c, round(v["precision"], 4), round(v["recall"], 4), round(v["f1"], 4),
                        v["support"]] for c, v in result.get("per_class", {}).items()])
    title = f"Evaluation on the {escape(str(result.get('split', '?')))} split" + (
        " (flip TTA)" if result.get("tta") else "")
    return card(title, facts, below=[f'<div style="display: flex; gap: 16px; flex-wrap: wrap">'
                                     f'{per_class}{confusion_html(classes, result)}</div>'])


def confusion_html(classes: list[str], result: dict[str, Any]) -> str:
    matrix = result.get("confusion_matrix") or []
    if not matrix:
        return ""
    top = max(max(row) for row in matrix) or 1
    short = [escape(c[:5]) for c in classes]
    head = "".join(f'<th style="padding: 1px 3px; font-weight: 400">{s}</th>' for s in short)
    rows = []
    for c, row in zip(short, matrix, strict=False):
        cells = "".join(
            f'<td style="padding: 1px 3px; text-align: right; background: rgba(31,119,180,'
            f'{v / top:.2f}); color: {"#fff" if v / top > 0.5 else "#1f2328"}">{v}</td>'
            for v in row)
        rows.append(f'<tr><th style="padding: 1px 3px; font-weight: 400; text-align: left">'
                    f'{c}</th>{cells}</tr>')
    return (f'<table style="border-collapse: collapse; font-size: 10px; margin: 4px 0" '
            f'title="rows: true class, columns: predicted"><tr><th></th>{head}</tr>'
            f'{"".join(rows)}</table>')


def spec_html(spec: Spec) -> str:
    from ..specs.shapes import infer_shapes, keras_shape, totals

    infos = infer_shapes(spec)
    t = totals(infos)
    cfg = spec.train
    h, w, c = spec.input_shape
    facts = [("input", f"{h} x {w} x {c}"),
             ("output", f"{infos[-1].output_shape[0]} classes" if infos else "-"),
             ("params", f"<b>{t.params:,}</b> ({t.trainable:,} trainable)"),
             ("FLOPs/image", f"{t.flops:,}"),
             ("training", f"{escape(cfg.optimizer)} lr {cfg.lr:g}, batch {cfg.batch_size}, "
                          f"{cfg.epochs} epochs")]
    if spec.description:
        facts.insert(0, ("about", escape(spec.description[:120])))
    rows = [["input", keras_shape(spec.chw), 0, 0]]
    rows += [[f"{i.name} ({i.layer.type})", i.keras_shape, i.params, i.flops] for i in infos]
    return card(f"Spec {escape(spec.name)}", facts,
                below=[table(["layer (type)", "output shape", "params", "FLOPs"], rows, max_rows=60)])


def space_html(space: SearchSpace) -> str:
    from ..errors import ArchtuneError

    try:
        grid = f"{len(space.grid()):,} candidates"
    except ArchtuneError:
        grid = "not a grid (continuous dimensions)"
    s = space.settings
    facts = [("dimensions", str(len(space.dims))), ("grid", grid),
             ("strategy", f"sampler {escape(str(s.sampler or 'tpe'))}, pruner "
                          f"{escape(str(s.pruner_name))}, {s.trials or 'default'} trials")]
    rows = [[d.name, d.kind, d.describe()] for d in space.dims]
    return card(f"Search space {escape(space.name)}", facts,
                below=[table(["dimension", "kind", "values"], rows, max_rows=60)])
