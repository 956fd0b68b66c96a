"""The table of layer types a spec may use, with their Keras argument names.

Each entry maps an argument to (kind, default). ``REQUIRED`` marks arguments without a
default. Kinds are checked by :func:`normalize_layer`, which turns a user's layer entry
into ``Layer(type, args)`` with every argument filled in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchtuneError, did_you_mean, short, unknown

REQUIRED = object()

ACTIVATIONS = ("linear", "relu", "leaky_relu", "elu", "selu", "tanh", "sigmoid", "gelu", "silu",
               "swish", "softmax")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform",
                "lecun_normal", "orthogonal", "random_normal", "random_uniform", "zeros", "ones")
PADDINGS = ("valid", "same")

_CONV = {
    "filters": ("pos_int", REQUIRED),
    "kernel_size": ("pair", REQUIRED),
    "strides": ("pair", 1),
    "padding": ("padding", "valid"),
    "dilation_rate": ("pair", 1),
    "activation": ("activation", None),
    "use_bias": ("bool", True),
    "kernel_initializer": ("initializer", "glorot_uniform"),
    "bias_initializer": ("initializer", "zeros"),
}
_POOL = {"pool_size": ("pair", 2), "strides": ("pair_or_none", None), "padding": ("padding", "valid")}
_DENSE = {
    "units": ("pos_int", REQUIRED),
    "activation": ("activation", None),
    "use_bias": ("bool", True),
    "kernel_initializer": ("initializer", "glorot_uniform"),
    "bias_initializer": ("initializer", "zeros"),
}

LAYER_TYPES: dict[str, dict[str, tuple[str, Any]]] = {
    "Conv2D": _CONV,
    "MaxPooling2D": _POOL,
    "AveragePooling2D": _POOL,
    "GlobalAveragePooling2D": {},
    "GlobalMaxPooling2D": {},
    "Flatten": {},
    "Dense": _DENSE,
    "Dropout": {"rate": ("rate", REQUIRED)},
    "BatchNormalization": {"momentum": ("unit_float", 0.99), "epsilon": ("pos_float", 1e-3)},
    "Activation": {"activation": ("activation", REQUIRED)},
    "LeakyReLU": {"negative_slope": ("pos_float", 0.3)},
}
ALIASES = {"alpha": "negative_slope", "stride": "strides", "kernel": "kernel_size", "dilation": "dilation_rate"}
# The argument a bare value fills, as in Keras' Dense(10), Dropout(0.3), Activation("relu").
PRIMARY = {"Dense": "units", "Dropout": "rate", "Activation": "activation", "LeakyReLU": "negative_slope",
           "MaxPooling2D": "pool_size", "AveragePooling2D": "pool_size"}
# Layer names people also write (Keras 1 / PyTorch spellings) mapped to ours.
TYPE_ALIASES = {"Conv2d": "Conv2D", "Convolution2D": "Conv2D", "MaxPool2D": "MaxPooling2D",
                "AvgPool2D": "AveragePooling2D", "Linear": "Dense", "BatchNorm": "BatchNormalization"}


@dataclass
class Layer:
    type: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {self.type: dict(self.args)} if self.args else {self.type: {}}


def _check(kind: str, value: Any, where: str) -> Any:
    def fail(expected: str) -> ArchtuneError:
        return ArchtuneError(f"{where}: expected {expected}, got {short(value)}")

    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "pos_int":
        if not is_int or value < 1:
            raise fail("a positive integer")
        return value
    if kind in ("pair", "pair_or_none"):
        if value is None and kind == "pair_or_none":
            return None
        pair = [value, value] if is_int else value
        if (not isinstance(pair, list | tuple) or len(pair) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in pair)):
            raise fail("a positive integer or a pair [h, w] of positive integers")
        return list(pair)
    if kind == "padding":
        if value not in PADDINGS:
            raise unknown("padding", str(value), PADDINGS, where)
        return value
    if kind == "activation":
        if value is None:
            return None
        if value not in ACTIVATIONS:
            raise unknown("activation", str(value), ACTIVATIONS, where)
        return value
    if kind == "initializer":
        if value not in INITIALIZERS:
            raise unknown("initializer", str(value), INITIALIZERS, where)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise fail("true or false")
        return value
    if kind == "rate":
        if not is_num or not 0 <= value < 1:
            raise fail("a dropout rate in [0, 1)")
        return float(value)
    if kind == "unit_float":
        if not is_num or not 0 <= value < 1:
            raise fail("a number in [0, 1)")
        return float(value)
    if kind == "pos_float":
        if not is_num or value <= 0:
            raise fail("a positive number")
        return float(value)
    raise AssertionError(kind)


def normalize_layer(entry: Any, index: int) -> Layer:
    """Turn ``{Conv2D: {filters: 32}}`` or ``{type: Conv2D, filters: 32}`` into a full Layer."""
    where = f"layer {index}"
    if isinstance(entry, str):
        type_name, raw = entry, {}
    elif isinstance(entry, dict) and "type" in entry:
        type_name, raw = entry["type"], {k: v for k, v in entry.items() if k != "type"}
    elif isinstance(entry, dict) and len(entry) == 1:
        ((type_name, raw),) = entry.items()
        raw = {} if raw is None else raw
    else:
        raise ArchtuneError(
            f"{where}: expected '{{LayerType: {{arg: value}}}}' or '{{type: LayerType, ...}}', got {short(entry)}")
    type_name = TYPE_ALIASES.get(str(type_name), str(type_name))
    if type_name not in LAYER_TYPES:
        raise unknown("layer type", type_name, LAYER_TYPES, where)
    where = f"layer {index} ({type_name})"
    if not isinstance(raw, dict) and type_name in PRIMARY:
        raw = {PRIMARY[type_name]: raw}
    if not isinstance(raw, dict):
        raise ArchtuneError(f"{where}: arguments must be a mapping, got {short(raw)}")
    table = LAYER_TYPES[type_name]
    args: dict[str, Any] = {}
    for key, value in raw.items():
        key = ALIASES.get(key, key)
        if key not in table:
            hint = did_you_mean(str(key), table)
            allowed = ", ".join(table) or "no arguments"
            raise ArchtuneError(f"{where}: unknown argument '{key}'{hint}; {type_name} takes {allowed}")
        args[key] = _check(table[key][0], value, f"{where}.{key}")
    for key, (_, default) in table.items():
        if key not in args:
            if default is REQUIRED:
                raise ArchtuneError(f"{where}: missing required argument '{key}'")
            args[key] = _check(table[key][0], default, f"{where}.{key}")
    return Layer(type_name, args)
