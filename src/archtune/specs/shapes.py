"""Shape inference, parameter counts and FLOPs, computed from a spec before any model exists.

Shapes are tracked channels-first internally ((C, H, W) or (F,)) and shown Keras-style
((None, H, W, C)). FLOPs count 2 x multiply-accumulates of Conv2D and Dense layers plus one
operation per element of the cheap layers, per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ArchtuneError
from .layers import Layer
from .schema import Spec

Shape = tuple[int, ...]


@dataclass
class LayerInfo:
    index: int
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable: int
    flops: int

    @property
    def keras_shape(self) -> str:
        return keras_shape(self.output_shape)

    @property
    def name(self) -> str:
        return f"{self.layer.type.lower()}_{self.index}"


def keras_shape(shape: Shape) -> str:
    dims = shape if len(shape) == 1 else (shape[1], shape[2], shape[0])
    return "(None, " + ", ".join(str(d) for d in dims) + ")"


def conv_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return math.ceil(size / stride)
    return (size - effective) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _spatial(layer: Layer, shape: Shape, where: str) -> Shape:
    if len(shape) != 3:
        raise ArchtuneError(
            f"{where}: needs a 3-D input (height, width, channels) but gets {keras_shape(shape)}; "
            f"{layer.type} cannot follow Flatten, Dense or global pooling")
    return shape


def _layer_shape(layer: Layer, shape: Shape, where: str) -> tuple[Shape, int, int, int]:
    """Return (output shape, params, trainable params, flops) of one layer."""
    a = layer.args
    t = layer.type
    numel = math.prod(shape)
    if t == "Conv2D":
        c, h, w = _spatial(layer, shape, where)
        (kh, kw), (sh, sw), (dh, dw) = a["kernel_size"], a["strides"], a["dilation_rate"]
        if a["padding"] == "same" and (sh > 1 or sw > 1) and (dh > 1 or dw > 1):
            raise ArchtuneError(f"{where}: strides > 1 together with dilation_rate > 1 is not supported")
        oh = conv_out(h, kh, sh, dh, a["padding"])
        ow = conv_out(w, kw, sw, dw, a["padding"])
        if oh < 1 or ow < 1:
            raise ArchtuneError(
                f"{where}: kernel {kh}x{kw} (dilation {dh}x{dw}) does not fit the {h}x{w} input with "
                f"padding 'valid'; use padding 'same', a smaller kernel or fewer pooling layers before it")
        f = a["filters"]
        params = kh * kw * c * f + (f if a["use_bias"] else 0)
        return (f, oh, ow), params, params, 2 * kh * kw * c * f * oh * ow
    if t in ("MaxPooling2D", "AveragePooling2D"):
        c, h, w = _spatial(layer, shape, where)
        (ph, pw) = a["pool_size"]
        (sh, sw) = a["strides"] or a["pool_size"]
        oh, ow = conv_out(h, ph, sh, 1, a["padding"]), conv_out(w, pw, sw, 1, a["padding"])
        if oh < 1 or ow < 1:
            raise ArchtuneError(
                f"{where}: pool {ph}x{pw} does not fit the {h}x{w} input; use padding 'same' or remove "
                f"a pooling layer")
        return (c, oh, ow), 0, 0, c * oh * ow * ph * pw
    if t in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        c, _, _ = _spatial(layer, shape, where)
        return (c,), 0, 0, numel
    if t == "Flatten":
        return (numel,), 0, 0, 0
    if t == "Dense":
        if len(shape) != 1:
            raise ArchtuneError(
                f"{where}: Dense needs a flat input but gets {keras_shape(shape)}; add a Flatten "
                f"(or GlobalAveragePooling2D) layer before it")
        units = a["units"]
        params = shape[0] * units + (units if a["use_bias"] else 0)
        return (units,), params, params, 2 * shape[0] * units
    if t == "BatchNormalization":
        c = shape[0]
        return shape, 4 * c, 2 * c, 2 * numel
    if t in ("Dropout", "Activation", "LeakyReLU"):
        return shape, 0, 0, 0 if t == "Dropout" else numel
    raise AssertionError(t)


def infer_shapes(spec: Spec) -> list[LayerInfo]:
    """Infer every layer's output shape; raise naming the layer when one does not fit."""
    shape: Shape = spec.chw
    infos = []
    for i, layer in enumerate(spec.layers):
        where = f"layer {i} ({layer.type})"
        out, params, trainable, flops = _layer_shape(layer, shape, where)
        act = layer.args.get("activation")
        if layer.type in ("Conv2D", "Dense") and act not in (None, "linear"):
            flops += math.prod(out)
        infos.append(LayerInfo(i, layer, shape, out, params, trainable, flops))
        shape = out
    if len(shape) != 1:
        raise ArchtuneError(
            f"the last layer outputs {keras_shape(shape)}; a classifier must end with a flat "
            f"output: add Flatten and Dense(num_classes)")
    return infos


def output_units(spec: Spec) -> int:
    return infer_shapes(spec)[-1].output_shape[0]


@dataclass
class Totals:
    params: int
    trainable: int
    flops: int


def totals(infos: list[LayerInfo]) -> Totals:
    return Totals(
        params=sum(i.params for i in infos),
        trainable=sum(i.trainable for i in infos),
        flops=sum(i.flops for i in infos),
    )
