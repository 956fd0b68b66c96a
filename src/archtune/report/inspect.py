"""Look inside a trained model: activation maps of conv layers, dead filters, first-layer weights.

Layers are numbered as in the spec (``model.blocks[i]`` is spec layer ``i``). A layer's
activation is read after the element-wise layers that directly follow it (BatchNormalization,
Activation, LeakyReLU, Dropout), so ``Conv2D -> BatchNormalization -> Activation(relu)`` is
inspected after the ReLU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ArchtuneError
from ..models import ArchtuneNet
from ..specs import Spec
from .data import ImageGrid

ELEMENTWISE = ("BatchNormalization", "Activation", "LeakyReLU", "Dropout")


@dataclass
class ActivationMaps:
    """Feature maps (C, H, W) of one conv layer for one image."""

    layer: int  # spec index of the Conv2D layer
    name: str  # e.g. "conv2d_0"
    maps: np.ndarray

    @property
    def channel_max(self) -> np.ndarray:
        return self.maps.reshape(len(self.maps), -1).max(axis=1)


@dataclass
class DeadLayer:
    """Channels (filters or units) of one layer that never activate on a sample of images."""

    layer: int
    name: str
    kind: str  # "filters" or "units"
    total: int
    dead: list[int]
    max_activation: np.ndarray  # per channel, over every image and position

    @property
    def n_dead(self) -> int:
        return len(self.dead)


def layer_name(spec: Spec, index: int) -> str:
    return f"{spec.layers[index].type.lower()}_{index}"


def conv_layers(spec: Spec) -> list[int]:
    return [i for i, layer in enumerate(spec.layers) if layer.type == "Conv2D"]


def activation_point(spec: Spec, index: int) -> int:
    """The last spec index of layer ``index``'s element-wise chain (where it is inspected)."""
    end = index
    while end + 1 < len(spec.layers) and spec.layers[end + 1].type in ELEMENTWISE:
        end += 1
    return end


def check_conv_layer(spec: Spec, index: int) -> None:
    """Raise a clear error when ``index`` is not a Conv2D layer of the spec."""
    convs = conv_layers(spec)
    listed = ", ".join(f"{i} ({layer_name(spec, i)})" for i in convs) or "none: this is an MLP"
    if not 0 <= index < len(spec.layers):
        raise ArchtuneError(f"layer {index} does not exist: '{spec.name}' has layers 0 to "
                            f"{len(spec.layers) - 1}; its conv layers: {listed}")
    if index not in convs:
        raise ArchtuneError(f"layer {index} ({spec.layers[index].type}) is not a Conv2D layer; "
                            f"conv layers of '{spec.name}': {listed}")


def check_image_index(index: int, n: int, split: str) -> None:
    if not 0 <= index < n:
        raise ArchtuneError(f"image {index} is out of range: the {split} split has {n:,} images "
                            f"(indices 0 to {n - 1})")


@torch.no_grad()
def capture(model: ArchtuneNet, x: torch.Tensor, points: list[int]) -> dict[int, torch.Tensor]:
    """Outputs of ``model.blocks[i]`` for each i in ``points`` on a batch ``x`` (eval mode)."""
    model.eval()
    out: dict[int, torch.Tensor] = {}
    handles = []
    for i in points:
        def hook(_m: torch.nn.Module, _inp: object, output: torch.Tensor, i: int = i) -> None:
            out[i] = output.detach().float().clone()  # clone: a later in-place ReLU may reuse it
        handles.append(model.blocks[i].register_forward_hook(hook))
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return out


def activation_maps(model: ArchtuneNet, spec: Spec, image: torch.Tensor,
                    layers: list[int] | None = None) -> list[ActivationMaps]:
    """Feature maps of the given conv layers (default: all) for one image (C, H, W)."""
    layers = conv_layers(spec) if layers is None else layers
    for i in layers:
        check_conv_layer(spec, i)
    points = {i: activation_point(spec, i) for i in layers}
    got = capture(model, image.unsqueeze(0), sorted(set(points.values())))
    return [ActivationMaps(i, layer_name(spec, i), got[points[i]][0].cpu().numpy()) for i in layers]


def _inspected_layers(spec: Spec) -> list[int]:
    """Conv2D and hidden Dense layers followed by a non-linearity (the output layer excluded)."""
    found = []
    for i, layer in enumerate(spec.layers[:-1]):
        if layer.type not in ("Conv2D", "Dense"):
            continue
        chain = spec.layers[i:activation_point(spec, i) + 1]
        own = layer.args.get("activation") not in (None, "linear")
        if own or any(c.type in ("Activation", "LeakyReLU") for c in chain):
            found.append(i)
    return found


def dead_filters(model: ArchtuneNet, spec: Spec, x: torch.Tensor, *, threshold: float = 0.0,
                 batch_size: int = 500) -> list[DeadLayer]:
    """Per layer, the channels whose activation never exceeds ``threshold`` on any image of ``x``.

    Conv2D layers report filters (max over images and positions); hidden Dense layers report
    units.
    """
    layers = _inspected_layers(spec)
    points = {i: activation_point(spec, i) for i in layers}
    maxima: dict[int, torch.Tensor] = {}
    for start in range(0, len(x), batch_size):
        got = capture(model, x[start:start + batch_size], sorted(set(points.values())))
        for i in layers:
            a = got[points[i]]
            m = a.amax(dim=(0, 2, 3)) if a.dim() == 4 else a.amax(dim=0)
            maxima[i] = m if i not in maxima else torch.maximum(maxima[i], m)
    out = []
    for i in layers:
        m = maxima[i].cpu().numpy() if i in maxima else np.zeros(0)
        kind = "filters" if spec.layers[i].type == "Conv2D" else "units"
        dead = [int(c) for c in np.flatnonzero(m <= threshold)]
        out.append(DeadLayer(i, layer_name(spec, i), kind, len(m), dead, m))
    return out


def first_layer_weights(model: ArchtuneNet, spec: Spec) -> tuple[np.ndarray, str] | None:
    """The first weight layer's kernel and its kind ("filter"/"unit"), if it can be seen as images.

    A Conv2D kernel always can; a Dense layer can when only Flatten (or nothing) precedes it.
    """
    for i, layer in enumerate(spec.layers):
        if layer.type not in ("Conv2D", "Dense"):
            continue
        if layer.type == "Dense" and not all(p.type == "Flatten" for p in spec.layers[:i]):
            return None
        cls = torch.nn.Conv2d if layer.type == "Conv2D" else torch.nn.Linear
        module = next(m for m in model.blocks[i].modules() if isinstance(m, cls))
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
