"""A spec's card in a notebook: input, output, parameters, FLOPs and the layer table."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from .._html import card, table
from .shapes import infer_shapes, keras_shape, totals

if TYPE_CHECKING:
    from .schema import Spec


def spec_html(spec: Spec) -> str:
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
