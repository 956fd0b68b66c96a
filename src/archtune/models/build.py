"""Spec -> torch module. One table maps activation names to layers (timm's create_act)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..specs.layers import Layer
from ..specs.schema import Spec
from ..specs.shapes import LayerInfo, infer_shapes, same_padding
from .init import initialize

ACTIVATION_LAYERS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "leaky_relu": lambda: nn.LeakyReLU(0.2, inplace=True),  # Keras 3's default slope
    "elu": lambda: nn.ELU(inplace=True),
    "selu": lambda: nn.SELU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "softmax": lambda: nn.Softmax(dim=1),
}


def create_activation(name: str | None) -> nn.Module | None:
    if name in (None, "linear"):
        return None
    return ACTIVATION_LAYERS[name]()


class SamePool2d(nn.Module):
    """Keras 'same' pooling: pad (extra pixel after) then pool; averages count real pixels only."""

    def __init__(self, kind: str, kernel: Sequence[int], stride: Sequence[int], pad: tuple[int, ...]):
        super().__init__()
        self.kind, self.kernel, self.stride, self.pad = kind, tuple(kernel), tuple(stride), pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "max":
            return F.max_pool2d(F.pad(x, self.pad, value=float("-inf")), self.kernel, self.stride)
        ones = torch.ones_like(x[:1, :1])
        total = F.avg_pool2d(F.pad(x, self.pad), self.kernel, self.stride)
        count = F.avg_pool2d(F.pad(ones, self.pad), self.kernel, self.stride)
        return total / count


def _pad4(info: LayerInfo, kernel: Sequence[int], stride: Sequence[int], dilation: Sequence[int]) -> tuple[int, ...]:
    _, h, w = info.input_shape
    top, bottom = same_padding(h, kernel[0], stride[0], dilation[0])
    left, right = same_padding(w, kernel[1], stride[1], dilation[1])
    return (left, right, top, bottom)


def _conv(info: LayerInfo) -> list[nn.Module]:
    a = info.layer.args
    k, s, d = a["kernel_size"], a["strides"], a["dilation_rate"]
    pad = _pad4(info, k, s, d) if a["padding"] == "same" else (0, 0, 0, 0)
    symmetric = pad[0] == pad[1] and pad[2] == pad[3]
    conv = nn.Conv2d(info.input_shape[0], a["filters"], tuple(k), tuple(s),
                     padding=(pad[2], pad[0]) if symmetric else 0, dilation=tuple(d), bias=a["use_bias"])
    initialize(conv, a["kernel_initializer"], a["bias_initializer"])
    return ([] if symmetric else [nn.ZeroPad2d(pad)]) + [conv]


def _pool(info: LayerInfo) -> nn.Module:
    a = info.layer.args
    k = a["pool_size"]
    s = a["strides"] or k
    kind = "max" if info.layer.type == "MaxPooling2D" else "avg"
    if a["padding"] == "same":
        pad = _pad4(info, k, s, (1, 1))
        if any(pad):
            return SamePool2d(kind, k, s, pad)
    return nn.MaxPool2d(tuple(k), tuple(s)) if kind == "max" else nn.AvgPool2d(tuple(k), tuple(s))


def _dense(info: LayerInfo) -> nn.Linear:
    a = info.layer.args
    lin = nn.Linear(info.input_shape[0], a["units"], bias=a["use_bias"])
    initialize(lin, a["kernel_initializer"], a["bias_initializer"])
    return lin


def _modules(info: LayerInfo, fold_softmax: bool) -> list[nn.Module]:
    layer: Layer = info.layer
    a, t = layer.args, layer.type
    if t == "Conv2D":
        mods = _conv(info)
    elif t in ("MaxPooling2D", "AveragePooling2D"):
        mods = [_pool(info)]
    elif t == "GlobalAveragePooling2D":
        mods = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    elif t == "GlobalMaxPooling2D":
        mods = [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
    elif t == "Flatten":
        mods = [nn.Flatten()]
    elif t == "Dense":
        mods = [_dense(info)]
    elif t == "Dropout":
        mods = [nn.Dropout(a["rate"])]
    elif t == "BatchNormalization":
        cls = nn.BatchNorm2d if len(info.input_shape) == 3 else nn.BatchNorm1d
        mods = [cls(info.input_shape[0], eps=a["epsilon"], momentum=1.0 - a["momentum"])]
    elif t == "LeakyReLU":
        mods = [nn.LeakyReLU(a["negative_slope"], inplace=True)]
    elif t == "Activation":
        mods = []
    else:
        raise AssertionError(t)
    act = a.get("activation")
    if not (fold_softmax and act == "softmax"):
        mod = create_activation(act)
        if mod is not None:
            mods.append(mod)
    return mods


class ArchtuneNet(nn.Module):
    """The model built from a spec: input standardisation, then the spec's layers.

    ``forward`` returns logits; a softmax on the last layer is folded into the loss and applied
    by :meth:`predict_proba`. ``blocks`` holds one module per spec layer, so hooks and plots can
    address "layer 2" exactly as the spec numbers it.
    """

    def __init__(self, spec: Spec, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        infos = infer_shapes(spec)
        c = spec.chw[0]
        self.register_buffer("mean", torch.tensor(mean or [0.0] * c, dtype=torch.float32).view(1, c, 1, 1))
        self.register_buffer("std", torch.tensor(std or [1.0] * c, dtype=torch.float32).view(1, c, 1, 1))
        last = len(infos) - 1
        blocks = OrderedDict()
        for info in infos:
            mods = _modules(info, fold_softmax=info.index == last)
            blocks[info.name] = mods[0] if len(mods) == 1 else nn.Sequential(*mods)
        self.blocks = nn.Sequential(blocks)
        self.spec_name = spec.name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks((x - self.mean) / self.std)

    @torch.no_grad()
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x).float().softmax(dim=1)


def build_model(spec: Spec, mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ArchtuneNet:
    """Build the torch module of a validated spec (weights initialised as the spec says)."""
    return ArchtuneNet(spec, mean, std)
