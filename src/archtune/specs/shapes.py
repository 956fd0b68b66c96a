"""Shape inference, parameter counts and FLOPs, computed from a spec before any model exists.

Shapes are tracked channels-first internally ((C, H, W) or (F,)) and shown Keras-style
((None, H, W, C)). Each layer type's own rule (in the table of :mod:`.layers`) gives its
output shape, parameters and FLOPs per image; this module walks a list of layers with it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ArchtuneError
from .layers import Layer, Shape, layer_type

if TYPE_CHECKING:
    from .schema import Spec


@dataclass
class LayerInfo:
    index: int
    layer: Layer
    input_shape: Shape
    output_shape: Shape
    params: int
    trainable: int
    flops: int
    children: list[LayerInfo] = field(default_factory=list)  # layers nested inside this one
    branch: str = ""  # "" on a block's main path; "shortcut" for a Residual's projection

    @property
    def keras_shape(self) -> str:
        return keras_shape(self.output_shape)

    @property
    def name(self) -> str:
        return f"{self.layer.type.lower()}_{self.index}"


Address = tuple[int | str, ...]  # (3,) layer 3; (3, 1) layer 1 inside it; (3, "shortcut", 0)


@dataclass(frozen=True)
class Nested:
    """A layer found by :func:`walk`: where it sits (its address) and what it is."""

    address: Address
    name: str  # "conv2d_3", "residual_3.conv2d_1", "residual_3.shortcut.conv2d_0"
    info: LayerInfo
    siblings: list[LayerInfo]  # the list it is in (its block's main path or branch)

    @property
    def ref(self) -> int | str:
        """How a user names it: 3 for a top-level layer, "3.1" for layer 1 inside layer 3."""
        return self.address[0] if len(self.address) == 1 else ".".join(map(str, self.address))

    @property
    def depth(self) -> int:
        return sum(isinstance(part, int) for part in self.address) - 1


def walk(infos: Sequence[LayerInfo], *, address: Address = (), prefix: str = "") -> Iterator[Nested]:
    """Every layer, nested ones included, depth first in spec order."""
    for info in infos:
        here, name = address + (info.index,), prefix + info.name
        yield Nested(here, name, info, list(infos))
        branches: dict[str, list[LayerInfo]] = {}
        for child in info.children:
            branches.setdefault(child.branch, []).append(child)
        for branch, kids in branches.items():
            yield from walk(kids, address=here + ((branch,) if branch else ()),
                            prefix=f"{name}.{branch + '.' if branch else ''}")


def parse_ref(ref: int | str) -> Address:
    """``3`` or ``"3"`` -> (3,); ``"3.1"`` -> (3, 1); ``"3.shortcut.0"`` -> (3, "shortcut", 0)."""
    parts = str(ref).split(".")
    return tuple(int(p) if p.lstrip("-").isdigit() else p for p in parts)


def keras_shape(shape: Shape) -> str:
    dims = shape if len(shape) == 1 else (shape[1], shape[2], shape[0])
    return "(None, " + ", ".join(str(d) for d in dims) + ")"


def conv_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    effective = (kernel - 1) * dilation + 1
    if padding == "same":
        return -(-size // stride)  # ceil, in integers
    return (size - effective) // stride + 1


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Keras/TensorFlow 'same' padding: (before, after), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def infer_layers(layers: Sequence[Layer], input_shape: Shape, where: str = "layer") -> list[LayerInfo]:
    """Each layer's input and output shape, parameters and FLOPs, from its type's shape rule.

    ``input_shape`` is channels first. ``where`` prefixes the layer number in errors.
    """
    infos = []
    shape = input_shape
    for i, layer in enumerate(layers):
        out = layer_type(layer.type).shape(layer, shape, f"{where} {i} ({layer.type})")
        trainable = out.params if out.trainable is None else out.trainable
        infos.append(LayerInfo(i, layer, shape, out.shape, out.params, trainable, out.flops,
                               list(out.children)))
        shape = out.shape
    return infos


def infer_shapes(spec: Spec) -> list[LayerInfo]:
    """Infer every layer's output shape; raise naming the layer when one does not fit."""
    infos = infer_layers(spec.layers, spec.chw)
    shape = infos[-1].output_shape if infos else spec.chw
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
