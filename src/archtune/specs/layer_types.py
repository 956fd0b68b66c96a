"""The built-in layer types, one registered entry each: Keras arguments, shape rule (output
shape, parameters, FLOPs per image) and build rule (torch modules).

FLOPs count 2 x multiply-accumulates of Conv2D and Dense layers plus one operation per element
of the cheap layers (and of a Conv2D's or Dense's activation). Build rules import torch when
a model is built, so that reading and checking specs does not.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError, short
from .functions import initialize
from .layers import (
    Arg,
    Kind,
    Layer,
    LayerType,
    Out,
    Shape,
    _choice,
    normalize_layer,
    register_kind,
    register_layer,
)
from .shapes import LayerInfo, conv_out, infer_layers, keras_shape, same_padding, totals

if TYPE_CHECKING:
    from torch import nn


def _spatial(layer: Layer, shape: Shape, where: str) -> Shape:
    if len(shape) != 3:
        raise ArchtuneError(
            f"{where}: needs a 3-D input (height, width, channels) but gets {keras_shape(shape)}; "
            f"{layer.type} cannot follow Flatten, Dense or global pooling")
    return shape


def _activation_flops(args: dict[str, Any], out: Shape) -> int:
    return 0 if args["activation"] in (None, "linear") else math.prod(out)


def _pad4(info: LayerInfo, kernel: list[int], stride: list[int], dilation: list[int]) -> tuple[int, ...]:
    """Keras 'same' padding of the layer's input as (left, right, top, bottom)."""
    _, h, w = info.input_shape
    top, bottom = same_padding(h, kernel[0], stride[0], dilation[0])
    left, right = same_padding(w, kernel[1], stride[1], dilation[1])
    return (left, right, top, bottom)


# ---------------------------------------------------------------- Conv2D


def _conv_shape(layer: Layer, shape: Shape, where: str) -> Out:
    a = layer.args
    c, h, w = _spatial(layer, shape, where)
    (kh, kw), (sh, sw), (dh, dw) = a["kernel_size"], a["strides"], a["dilation_rate"]
    if a["padding"] == "same" and (sh > 1 or sw > 1) and (dh > 1 or dw > 1):
        raise ArchtuneError(f"{where}: strides > 1 together with dilation_rate > 1 is not supported")
    oh, ow = conv_out(h, kh, sh, dh, a["padding"]), conv_out(w, kw, sw, dw, a["padding"])
    if oh < 1 or ow < 1:
        raise ArchtuneError(
            f"{where}: kernel {kh}x{kw} (dilation {dh}x{dw}) does not fit the {h}x{w} input with "
            f"padding 'valid'; use padding 'same', a smaller kernel or fewer pooling layers before it")
    f = a["filters"]
    out = (f, oh, ow)
    params = kh * kw * c * f + (f if a["use_bias"] else 0)
    return Out(out, params, 2 * kh * kw * c * f * oh * ow + _activation_flops(a, out))


def _conv_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    a = info.layer.args
    k, s, d = a["kernel_size"], a["strides"], a["dilation_rate"]
    pad = _pad4(info, k, s, d) if a["padding"] == "same" else (0, 0, 0, 0)
    symmetric = pad[0] == pad[1] and pad[2] == pad[3]
    conv = nn.Conv2d(info.input_shape[0], a["filters"], tuple(k), tuple(s),
                     padding=(pad[2], pad[0]) if symmetric else 0, dilation=tuple(d), bias=a["use_bias"])
    initialize(conv, a["kernel_initializer"], a["bias_initializer"])
    return ([] if symmetric else [nn.ZeroPad2d(pad)]) + [conv]


_WEIGHTS = {"activation": Arg("activation", None), "use_bias": Arg("bool", True),
            "kernel_initializer": Arg("initializer", "glorot_uniform"),
            "bias_initializer": Arg("bias_initializer", "zeros")}

register_layer(LayerType(
    "Conv2D", {"filters": Arg("pos_int"), "kernel_size": Arg("pair"), "strides": Arg("pair", 1),
               "padding": Arg("padding", "valid"), "dilation_rate": Arg("pair", 1), **_WEIGHTS},
    _conv_shape, _conv_build, doc="2-D convolution (Keras 'same' padding puts the extra pixel after)",
    aliases=("Conv2d", "Convolution2D")))


# ---------------------------------------------------------------- pooling


def _pool_shape(layer: Layer, shape: Shape, where: str) -> Out:
    a = layer.args
    c, h, w = _spatial(layer, shape, where)
    (ph, pw) = a["pool_size"]
    (sh, sw) = a["strides"] or a["pool_size"]
    oh, ow = conv_out(h, ph, sh, 1, a["padding"]), conv_out(w, pw, sw, 1, a["padding"])
    if oh < 1 or ow < 1:
        raise ArchtuneError(f"{where}: pool {ph}x{pw} does not fit the {h}x{w} input; use padding "
                            f"'same' or remove a pooling layer")
    return Out((c, oh, ow), flops=c * oh * ow * ph * pw)


def _pool_build(kind: str) -> Any:
    def build(info: LayerInfo, builder: Any) -> list[nn.Module]:
        from torch import nn

        a = info.layer.args
        k = a["pool_size"]
        s = a["strides"] or k
        if a["padding"] == "same":
            pad = _pad4(info, k, s, [1, 1])
            if any(pad):
                return [builder.SamePool2d(kind, k, s, pad)]
        return [nn.MaxPool2d(tuple(k), tuple(s)) if kind == "max" else nn.AvgPool2d(tuple(k), tuple(s))]
    return build


_POOL = {"pool_size": Arg("pair", 2), "strides": Arg("pair_or_none", None),
         "padding": Arg("padding", "valid")}
register_layer(LayerType("MaxPooling2D", _POOL, _pool_shape, _pool_build("max"),
                         doc="max pooling (strides default to pool_size)", primary="pool_size",
                         aliases=("MaxPool2D",)))
register_layer(LayerType("AveragePooling2D", _POOL, _pool_shape, _pool_build("avg"),
                         doc="average pooling ('same' padding averages real pixels only)",
                         primary="pool_size", aliases=("AvgPool2D",)))


def _global_shape(layer: Layer, shape: Shape, where: str) -> Out:
    c, _, _ = _spatial(layer, shape, where)
    return Out((c,), flops=math.prod(shape))


def _global_build(kind: str) -> Any:
    def build(info: LayerInfo, builder: Any) -> list[nn.Module]:
        from torch import nn

        pool = nn.AdaptiveAvgPool2d(1) if kind == "avg" else nn.AdaptiveMaxPool2d(1)
        return [pool, nn.Flatten()]
    return build


register_layer(LayerType("GlobalAveragePooling2D", {}, _global_shape, _global_build("avg"),
                         doc="mean of each channel: (H, W, C) -> (C,)"))
register_layer(LayerType("GlobalMaxPooling2D", {}, _global_shape, _global_build("max"),
                         doc="max of each channel: (H, W, C) -> (C,)"))


def _adaptive_shape(layer: Layer, shape: Shape, where: str) -> Out:
    c, h, w = _spatial(layer, shape, where)
    oh, ow = layer.args["output_size"]  # a larger grid repeats pixels, as PyTorch's does
    return Out((c, oh, ow), flops=0 if (oh, ow) == (h, w) else c * max(h * w, oh * ow))


def _adaptive_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    size = tuple(info.layer.args["output_size"])
    if tuple(info.input_shape[1:]) == size:  # already the grid: exactly the identity
        return [nn.Identity()]
    return [builder.AdaptivePool2d(info.input_shape[1:], size)]


register_layer(LayerType(
    "AdaptiveAvgPooling2D", {"output_size": Arg("pair")}, _adaptive_shape, _adaptive_build,
    doc="average pooling to a fixed output_size grid whatever the input size (the bins of "
        "PyTorch's AdaptiveAvgPool2d; the identity when the input already has that size), so a "
        "Flatten-Dense head keeps its parameters on larger images",
    primary="output_size", aliases=("AdaptiveAvgPool2D",)))


def _downscale_factor(h: int, w: int, max_side: int) -> int:
    """The smallest integer factor that brings the longer side within ``max_side`` (1: none)."""
    return max(1, math.ceil(max(h, w) / max_side))


def _downscale_shape(layer: Layer, shape: Shape, where: str) -> Out:
    c, h, w = _spatial(layer, shape, where)
    f = _downscale_factor(h, w, layer.args["max_side"])
    return Out((c, h // f, w // f), flops=0 if f == 1 else c * h * w)


def _downscale_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    _, h, w = info.input_shape
    f = _downscale_factor(h, w, info.layer.args["max_side"])
    return [nn.Identity() if f == 1 else nn.AvgPool2d(f, f)]


register_layer(LayerType(
    "Downscale2D", {"max_side": Arg("pos_int", 64)}, _downscale_shape, _downscale_build,
    doc="a stem for large images: average-pools by the smallest integer factor that brings the "
        "longer side within max_side (pixels past a whole window are dropped); the identity on "
        "images already that small, so a recipe costs the same on them",
    primary="max_side"))


# ---------------------------------------------------------------- Flatten, Dense


def _flatten_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    return [nn.Flatten()]


register_layer(LayerType("Flatten", {}, lambda layer, shape, where: Out((math.prod(shape),)),
                         _flatten_build, doc="(H, W, C) -> (H*W*C,)"))


def _dense_shape(layer: Layer, shape: Shape, where: str) -> Out:
    a = layer.args
    if len(shape) != 1:
        raise ArchtuneError(
            f"{where}: Dense needs a flat input but gets {keras_shape(shape)}; add a Flatten "
            f"(or GlobalAveragePooling2D) layer before it")
    units = a["units"]
    params = shape[0] * units + (units if a["use_bias"] else 0)
    return Out((units,), params, 2 * shape[0] * units + _activation_flops(a, (units,)))


def _dense_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    a = info.layer.args
    lin = nn.Linear(info.input_shape[0], a["units"], bias=a["use_bias"])
    initialize(lin, a["kernel_initializer"], a["bias_initializer"])
    return [lin]


register_layer(LayerType("Dense", {"units": Arg("units"), **_WEIGHTS}, _dense_shape, _dense_build,
                         doc="fully connected layer", primary="units", aliases=("Linear",)))


# ---------------------------------------------------------------- shape-preserving layers


def _dropout_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    return [nn.Dropout(info.layer.args["rate"])]


def _batchnorm_shape(layer: Layer, shape: Shape, where: str) -> Out:
    c = shape[0]
    return Out(shape, 4 * c, 2 * math.prod(shape), trainable=2 * c)


def _batchnorm_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    a = info.layer.args
    cls = nn.BatchNorm2d if len(info.input_shape) == 3 else nn.BatchNorm1d
    return [cls(info.input_shape[0], eps=a["epsilon"], momentum=1.0 - a["momentum"])]


def _leaky_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    return [nn.LeakyReLU(info.layer.args["negative_slope"], inplace=True)]


def _elementwise(layer: Layer, shape: Shape, where: str) -> Out:
    return Out(shape, flops=math.prod(shape))


register_layer(LayerType("Dropout", {"rate": Arg("rate")}, lambda layer, shape, where: Out(shape),
                         _dropout_build, doc="zeroes a share of its inputs while training",
                         primary="rate"))
register_layer(LayerType(
    "BatchNormalization", {"momentum": Arg("unit_float", 0.99), "epsilon": Arg("pos_float", 1e-3)},
    _batchnorm_shape, _batchnorm_build, doc="batch normalisation (Keras momentum convention)",
    aliases=("BatchNorm",)))
register_layer(LayerType("Activation", {"activation": Arg("activation")}, _elementwise,
                         lambda info, builder: [], doc="an activation function on its own",
                         primary="activation"))
register_layer(LayerType("LeakyReLU", {"negative_slope": Arg("pos_float", 0.3)}, _elementwise,
                         _leaky_build, doc="leaky ReLU with its own slope (Keras default 0.3)",
                         primary="negative_slope"))


# ---------------------------------------------------------------- Residual


SHORTCUTS = ("auto", "identity", "conv")


def _layer_list(value: Any, where: str) -> list[Layer]:
    if not isinstance(value, list) or not value:
        raise ArchtuneError(f"{where}: expected a non-empty list of layers, got {short(value)}")
    return [normalize_layer(v.to_dict() if isinstance(v, Layer) else v, i, prefix=where)
            for i, v in enumerate(value)]


register_kind("layers", Kind("a list of layers", _layer_list,
                             [{"Conv2D": {"filters": 2, "kernel_size": 3, "padding": "same"}}]))
register_kind("shortcut", Kind(" | ".join(SHORTCUTS), _choice("shortcut", SHORTCUTS), "conv"))


def _projection(layers: list[Layer], shape: Shape, out: Shape, where: str) -> list[Layer]:
    """The shortcut's layers: a strided 1x1 Conv2D (a Dense for flat inputs), then BatchNorm
    with the momentum of the block's own first BatchNormalization."""
    momentum = next((la.args["momentum"] for la in layers if la.type == "BatchNormalization"), 0.99)
    bn = {"BatchNormalization": {"momentum": momentum}}
    weights = {"use_bias": False, "kernel_initializer": "he_normal"}
    if len(shape) != len(out):
        raise ArchtuneError(
            f"{where}: its layers turn {keras_shape(shape)} into {keras_shape(out)}; a shortcut "
            f"can change channels and size but not flatten: keep Flatten, Dense and global pooling "
            f"outside the block")
    if len(shape) == 1:
        return [normalize_layer({"Dense": {"units": out[0], **weights}}, 0), normalize_layer(bn, 1)]
    (_, h, w), (_, oh, ow) = shape, out
    stride = [math.ceil(h / oh), math.ceil(w / ow)]
    if conv_out(h, 1, stride[0], 1, "valid") != oh or conv_out(w, 1, stride[1], 1, "valid") != ow:
        raise ArchtuneError(
            f"{where}: its layers turn {h}x{w} into {oh}x{ow}, which no strided 1x1 shortcut can "
            f"match; use padding 'same' inside the block")
    conv = {"Conv2D": {"filters": out[0], "kernel_size": 1, "strides": stride, **weights}}
    return [normalize_layer(conv, 0), normalize_layer(bn, 1)]


def _residual_shape(layer: Layer, shape: Shape, where: str) -> Out:
    a = layer.args
    main = infer_layers(a["layers"], shape, where=f"{where}.layers")
    out = main[-1].output_shape
    if out == shape and a["shortcut"] != "conv":
        side: list[LayerInfo] = []
    elif a["shortcut"] == "identity":
        raise ArchtuneError(
            f"{where}: an identity shortcut needs layers that keep the shape, but they turn "
            f"{keras_shape(shape)} into {keras_shape(out)}; use shortcut: auto (a 1x1 projection)")
    else:
        side = [dataclasses.replace(i, branch="shortcut") for i in
                infer_layers(_projection(a["layers"], shape, out, where), shape, f"{where}.shortcut")]
    t, s = totals(main), totals(side)
    flops = t.flops + s.flops + math.prod(out) + _activation_flops(a, out)  # + the addition
    return Out(out, t.params + s.params, flops, t.trainable + s.trainable, tuple(main + side))


def _residual_build(info: LayerInfo, builder: Any) -> list[nn.Module]:
    from torch import nn

    main = [c for c in info.children if not c.branch]
    side = [c for c in info.children if c.branch == "shortcut"]
    return [builder.Residual(builder.layers(main), builder.layers(side) if side else nn.Identity())]


register_layer(LayerType(
    "Residual", {"layers": Arg("layers"), "shortcut": Arg("shortcut", "auto"),
                 "activation": Arg("activation", None)},
    _residual_shape, _residual_build,
    doc="output = layers(x) + shortcut(x), then the activation; shortcut auto: identity when the "
        "layers keep the shape, else a strided 1x1 Conv2D + BatchNorm (conv: always projects)",
    primary="layers", aliases=("ResidualBlock",)))
