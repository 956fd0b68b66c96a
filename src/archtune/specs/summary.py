"""Keras-style model summary, computed from the spec alone; the table of layer types as text."""

from __future__ import annotations

import json

from ..errors import ArchtuneError, short
from .card import spec_html
from .functions import ACTIVATIONS, INITIALIZERS
from .layers import KINDS, LAYER_TYPES, list_layers
from .schema import UNBOUND_CLASSES, Spec
from .shapes import infer_shapes, keras_shape, totals, walk


def human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f}{unit}"
    return str(int(n))


def summary_rows(spec: Spec) -> list[tuple[str, str, int, int]]:
    """(layer, output shape, params, flops) per layer: the data behind :func:`summary`.

    Layers inside a block (a Residual's) follow it, indented two spaces per level; a block's
    own row counts everything inside it, so only the top-level rows add up to the totals.
    """
    rows = []
    for found in walk(infer_shapes(spec)):
        i = found.info
        branch = f"{i.branch}: " if i.branch else ""
        rows.append((f"{'  ' * found.depth}{branch}{i.name} ({i.layer.type})", i.keras_shape,
                     i.params, i.flops))
    return rows


class Summary(str):
    """The summary text; shown as is (not quoted) at a prompt, as a table in a notebook."""

    spec: Spec

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
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
    if spec.input_auto:  # input_shape: auto, not bound to a data set yet
        h, w, c = spec.input_shape
        fixed = (f"its data resized to {h}x{w} (data.image_size)" if spec.data.image_size
                 else "the data's size")
        out.insert(-1, f"input_shape: auto, shown at {h}x{w}x{c} here; training takes {fixed} and "
                       f"the data's channels (archtune summary SPEC --data DATA shows that model)")
    if spec.class_layers:  # units: classes, not bound to a data set yet
        out.insert(-1, f"Dense layer {', '.join(map(str, spec.class_layers))}: units: classes, "
                       f"counted as {UNBOUND_CLASSES} here; training gives it one unit a class of its data")
    text = Summary("\n".join(out))
    text.spec = spec
    return text


def _default(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def layers_table(pattern: str = "*") -> str:
    """The registered layer types matching ``pattern`` with their arguments (kind, default),
    then the activation and initialiser names: what ``archtune layers`` prints."""
    names = list_layers(pattern)
    if not names:
        raise ArchtuneError(f"no layer type matches {short(pattern)}; the types are: {', '.join(list_layers())}")
    args = {n: [(key, KINDS[arg.kind].describe, "required" if arg.required else f"default {_default(arg.default)}")
                for key, arg in LAYER_TYPES[n].args.items()] for n in names}
    rows = [row for n in names for row in args[n]]
    w1, w2 = (max((len(r[i]) for r in rows), default=0) + 2 for i in (0, 1))
    out = []
    for name in names:
        lt = LAYER_TYPES[name]
        also = f" (also {', '.join(lt.aliases)})" if lt.aliases else ""
        bare = f"; a bare value sets {lt.primary}" if lt.primary else ""
        out.append(f"{name}{also}: {lt.doc}{bare}")
        out += [f"    {key:<{w1}}{kind:<{w2}}{default}" for key, kind, default in args[name]]
    out += ["", f"activations: {', '.join(ACTIVATIONS)}", f"initializers: {', '.join(INITIALIZERS)}"]
    return "\n".join(out)
