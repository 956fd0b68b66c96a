"""Look inside a trained model: activation maps of conv layers, dead filters, first-layer weights.

Layers are numbered as in the spec (``model.blocks[i]`` is spec layer ``i``); a layer inside a
block (a Residual's ``layers``) is ``"i.j"``, layer ``j`` of block ``i``. A layer's activation is
read after the element-wise layers that directly follow it in its list (BatchNormalization,
Activation, LeakyReLU, Dropout), so ``Conv2D -> BatchNormalization -> Activation(relu)`` is
inspected after the ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ArchtuneError
from ..models import ArchtuneNet, module_at
from ..specs import Nested, Spec, infer_shapes, parse_ref, walk
from .data import ImageGrid

ELEMENTWISE = ("BatchNormalization", "Activation", "LeakyReLU", "Dropout")
Ref = int | str  # 3 (spec layer 3) or "3.1" (layer 1 inside block 3)


@dataclass
class ActivationMaps:
    """Feature maps (C, H, W) of one conv layer for one image."""

    layer: Ref  # spec index of the Conv2D layer ("3.1" inside a block)
    name: str  # e.g. "conv2d_0", "residual_3.conv2d_1"
    maps: np.ndarray

    @property
    def channel_max(self) -> np.ndarray:
        return self.maps.reshape(len(self.maps), -1).max(axis=1)


@dataclass
class DeadLayer:
    """Channels (filters or units) of one layer that never activate on a sample of images."""

    layer: Ref
    name: str
    kind: str  # "filters" or "units"
    total: int
    dead: list[int]
    max_activation: np.ndarray  # per channel, over every image and position

    @property
    def n_dead(self) -> int:
        return len(self.dead)


def spec_layers(spec: Spec) -> dict[Ref, Nested]:
    """Every layer on a main path (shortcut projections left out), nested ones included."""
    return {n.ref: n for n in walk(infer_shapes(spec)) if all(isinstance(a, int) for a in n.address)}


def as_ref(ref: Ref) -> Ref:
    """3, "3" -> 3; "3.1" stays "3.1" (how :func:`spec_layers` keys layers)."""
    address = parse_ref(ref)
    return address[0] if len(address) == 1 else ".".join(map(str, address))


def layer_name(spec: Spec, index: Ref) -> str:
    return spec_layers(spec)[as_ref(index)].name


def conv_layers(spec: Spec) -> list[Ref]:
    return [ref for ref, n in spec_layers(spec).items() if n.info.layer.type == "Conv2D"]


def activation_point(spec: Spec, index: Ref) -> Ref:
    """The last layer of layer ``index``'s element-wise chain in its list (where it is inspected)."""
    found = spec_layers(spec)[as_ref(index)]
    end, siblings = found.info.index, found.siblings
    while end + 1 < len(siblings) and siblings[end + 1].layer.type in ELEMENTWISE:
        end += 1
    return as_ref(".".join(map(str, found.address[:-1] + (end,))))


def check_conv_layer(spec: Spec, index: Ref) -> None:
    """Raise a clear error when ``index`` is not a Conv2D layer of the spec."""
    layers, convs = spec_layers(spec), conv_layers(spec)
    listed = ", ".join(f"{i} ({layers[i].name})" for i in convs) or "none: this is an MLP"
    ref = as_ref(index)
    if ref not in layers:
        raise ArchtuneError(f"layer {index} does not exist: '{spec.name}' has layers 0 to "
                            f"{len(spec.layers) - 1} (a layer inside block 3 is 3.0, 3.1, ...); "
                            f"its conv layers: {listed}")
    if ref not in convs:
        raise ArchtuneError(f"layer {index} ({layers[ref].info.layer.type}) is not a Conv2D layer; "
                            f"conv layers of '{spec.name}': {listed}")


def check_image_index(index: int, n: int, split: str) -> None:
    if not 0 <= index < n:
        raise ArchtuneError(f"image {index} is out of range: the {split} split has {n:,} images "
                            f"(indices 0 to {n - 1})")


@torch.no_grad()
def capture(model: ArchtuneNet, x: torch.Tensor, points: list[Ref]) -> dict[Ref, torch.Tensor]:
    """Outputs of the spec layer at each ref in ``points`` on a batch ``x`` (eval mode)."""
    model.eval()
    out: dict[Ref, torch.Tensor] = {}
    handles = []
    for i in points:
        def hook(_m: torch.nn.Module, _inp: object, output: torch.Tensor, i: Ref = i) -> None:
            out[i] = output.detach().float().clone()  # clone: a later in-place ReLU may reuse it
        handles.append(module_at(model, parse_ref(i)).register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def activation_maps(model: ArchtuneNet, spec: Spec, image: torch.Tensor,
                    layers: list[Ref] | None = None) -> list[ActivationMaps]:
    """Feature maps of the given conv layers (default: all) for one image (C, H, W)."""
    layers = conv_layers(spec) if layers is None else [as_ref(i) for i in layers]
    for i in layers:
        check_conv_layer(spec, i)
    points = {i: activation_point(spec, i) for i in layers}
    got = capture(model, image.unsqueeze(0), list(dict.fromkeys(points.values())))
    return [ActivationMaps(i, layer_name(spec, i), got[points[i]][0].cpu().numpy()) for i in layers]


def _inspected_layers(spec: Spec) -> list[Ref]:
    """Conv2D and hidden Dense layers followed by a non-linearity (the output layer excluded)."""
    found = []
    last = len(spec.layers) - 1
    for ref, n in spec_layers(spec).items():
        layer = n.info.layer
        if layer.type not in ("Conv2D", "Dense") or ref == last:
            continue
        chain = n.siblings[n.info.index:parse_ref(activation_point(spec, ref))[-1] + 1]
        own = layer.args.get("activation") not in (None, "linear")
        if own or any(c.layer.type in ("Activation", "LeakyReLU") for c in chain):
            found.append(ref)
    return found


def dead_filters(model: ArchtuneNet, spec: Spec, x: torch.Tensor, *, threshold: float = 0.0,
                 batch_size: int = 500) -> list[DeadLayer]:
    """Per layer, the channels whose activation never exceeds ``threshold`` on any image of ``x``.

    Conv2D layers report filters (max over images and positions); hidden Dense layers report
    units.
    """
    layers = _inspected_layers(spec)
    points = {i: activation_point(spec, i) for i in layers}
    maxima: dict[Ref, torch.Tensor] = {}
    for start in range(0, len(x), batch_size):
        got = capture(model, x[start:start + batch_size], list(dict.fromkeys(points.values())))
        for i in layers:
            a = got[points[i]]
            m = a.amax(dim=(0, 2, 3)) if a.dim() == 4 else a.amax(dim=0)
            maxima[i] = m if i not in maxima else torch.maximum(maxima[i], m)
    out = []
    for i in layers:
        m = maxima[i].cpu().numpy() if i in maxima else np.zeros(0)
        kind = "filters" if spec_layers(spec)[i].info.layer.type == "Conv2D" else "units"
        dead = [int(c) for c in np.flatnonzero(m <= threshold)]
        out.append(DeadLayer(i, layer_name(spec, i), kind, len(m), dead, m))
    return out


def first_layer_weights(model: ArchtuneNet, spec: Spec) -> tuple[np.ndarray, str] | None:
    """The first weight layer's kernel and its kind ("filter"/"unit"), if it can be seen as images.

    A Conv2D kernel always can; a Dense layer can when only Flatten (or nothing) precedes it.
    """
    for n in spec_layers(spec).values():
        layer = n.info.layer
        if layer.type not in ("Conv2D", "Dense"):
            continue
        if layer.type == "Dense" and not all(p.type == "Flatten" for p in spec.layers[:n.address[0]]):
            return None
        cls = torch.nn.Conv2d if layer.type == "Conv2D" else torch.nn.Linear
        module = next(m for m in module_at(model, n.address).modules() if isinstance(m, cls))
        return module.weight.detach().cpu().numpy(), "filter" if cls is torch.nn.Conv2d else "unit"
    return None


def maps_grid(maps: ActivationMaps, *, limit: int = 32) -> ImageGrid:
    """One layer's feature maps on one shared colour scale (dead maps look flat dark)."""
    m = maps.maps[:limit]
    hi = float(max(m.max(), 1e-12)) if m.size else 1.0
    lo = float(min(m.min(), 0.0)) if m.size else 0.0
    titles = [f"ch {c} (max {v:.2g})" for c, v in enumerate(maps.channel_max[:limit])]
    return ImageGrid(m, titles, ncols=min(len(m), 8), cmap="viridis", shared_range=(lo, hi),
                     highlight=[bool(v <= 0) for v in maps.channel_max[:limit]])
