"""Keras-style model summary, computed from the spec alone."""

from __future__ import annotations

from .schema import Spec
from .shapes import infer_shapes, keras_shape, totals


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def summary_rows(spec: Spec) -> list[tuple[str, str, int, int]]:
    """(layer, output shape, params, flops) per layer: the data behind :func:`summary`."""
    return [(f"{i.name} ({i.layer.type})", i.keras_shape, i.params, i.flops) for i in infer_shapes(spec)]


class Summary(str):
    """The summary text; shown as is (not quoted) at a prompt, as a table in a notebook."""

    spec: Spec

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        from ..notebook.cards import spec_html

        return spec_html(self.spec)


def summary(spec: Spec) -> Summary:
    """Return the summary table as text: per-layer output shape, params and FLOPs, then totals."""
    infos = infer_shapes(spec)
    t = totals(infos)
    rows = summary_rows(spec)
    w1 = max(28, *(len(r[0]) for r in rows)) + 2
    w2 = max(24, *(len(r[1]) for r in rows)) + 2
    width = w1 + w2 + 12 + 10
    line = "_" * width
    out = [f'Model: "{spec.name}"', line,
           f"{'Layer (type)':<{w1}}{'Output Shape':<{w2}}{'Param #':>12}{'FLOPs':>10}", "=" * width]
    out.append(f"{'input':<{w1}}{keras_shape(spec.chw):<{w2}}{0:>12}{'0':>10}")
    for name, shape, params, flops in rows:
        out.append(f"{name:<{w1}}{shape:<{w2}}{params:>12,}{human(flops):>10}")
    out += ["=" * width,
            f"Total params: {t.params:,}",
            f"Trainable params: {t.trainable:,}",
            f"Non-trainable params: {t.params - t.trainable:,}",
            f"FLOPs per image: {t.flops:,} ({human(t.flops)}; 2 x multiply-adds)",
            line]
    text = Summary("\n".join(out))
    text.spec = spec
    return text
