"""The table of layer types a spec may use: one registered :class:`LayerType` per type.

An entry holds everything about its type: the Keras argument names with their kinds and
defaults, the rule that gives the output shape, parameters and FLOPs from the input shape, and
the rule that builds its torch modules. :func:`normalize_layer` (specs and search spaces), the
shape inference and summary (:mod:`.shapes`), the model builder (:mod:`archtune.models`) and
``archtune layers`` all read this one table. The built-in entries are in :mod:`.layer_types`;
a new type is one more ``register_layer`` call.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError, did_you_mean, short, unknown
from .functions import ACTIVATIONS, INITIALIZERS, VECTOR_INITIALIZERS

if TYPE_CHECKING:
    from torch import nn

    from .shapes import LayerInfo

REQUIRED: Any = object()
PADDINGS = ("valid", "same")
Shape = tuple[int, ...]  # channels first: (C, H, W) or (F,)


@dataclass
class Layer:
    type: str
    args: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """``{type: {arg: value}}``, nested layers (a Residual's) as dicts too."""
        return {self.type: {key: _plain(value) for key, value in self.args.items()}}


def _plain(value: Any) -> Any:
    if isinstance(value, Layer):
        return value.to_dict()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# ---------------------------------------------------------------- argument kinds


@dataclass(frozen=True)
class Kind:
    """A kind of argument value: ``check(value, where)`` returns it normalised or raises;
    ``example`` is a valid value (tests generated from the table use it)."""

    describe: str
    check: Callable[[Any, str], Any]
    example: Any


def _fail(where: str, expected: str, value: Any) -> ArchtuneError:
    return ArchtuneError(f"{where}: expected {expected}, got {short(value)}")


MAX_INT_ARG = 1_000_000  # largest integer a layer argument takes (filters, units, kernel, ...)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT_ARG


def _is_num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _number(test: Callable[[float], bool], expected: str, cast: type = float) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if not _is_num(value) or not test(value) or (cast is int and not _is_int(value)):
            raise _fail(where, expected, value)
        return cast(value)
    return check


def _pair(value: Any, where: str) -> list[int]:
    pair = [value, value] if _is_int(value) else value
    if not isinstance(pair, list | tuple) or len(pair) != 2 or not all(_is_int(v) and v >= 1 for v in pair):
        raise _fail(where, f"a positive integer or a pair [h, w] of positive integers up to {MAX_INT_ARG:,}", value)
    return list(pair)


def _choice(name: str, options: Sequence[str] | dict[str, Any], optional: bool = False
            ) -> Callable[[Any, str], Any]:
    def check(value: Any, where: str) -> Any:
        if value is None and optional:
            return None
        if not isinstance(value, str):
            raise _fail(where, f"one of: {', '.join(options)}", value)
        if value not in options:
            raise unknown(name, value, options, where)
        return value
    return check


CLASSES = "classes"  # a top-level Dense layer's units: one per class of the data it is trained on


_count = _number(lambda v: v >= 1, f"a positive integer up to {MAX_INT_ARG:,} or '{CLASSES}'", int)


def _units(value: Any, where: str) -> int:
    if isinstance(value, str):
        hint = (" ('classes' is taken by a Dense layer of the top-level list only)" if value == CLASSES
                else did_you_mean(value, [CLASSES]))
        raise ArchtuneError(f"{where}: expected a positive integer or '{CLASSES}' (one unit a class "
                            f"of the data set), got {short(value)}{hint}")
    return _count(value, where)


def _bias_initializer(value: Any, where: str) -> str:
    _choice("initializer", INITIALIZERS)(value, where)
    if value not in VECTOR_INITIALIZERS:
        raise ArchtuneError(f"{where}: '{value}' needs a weight matrix; a bias takes one of: "
                            f"{', '.join(VECTOR_INITIALIZERS)}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "true or false", value)
    return value


KINDS: dict[str, Kind] = {
    "pos_int": Kind("a positive integer", _number(lambda v: v >= 1, f"a positive integer up to {MAX_INT_ARG:,}", int), 3),
    "units": Kind(f"a positive integer or '{CLASSES}'", _units, 10),
    "pair": Kind("an integer or [h, w]", _pair, [2, 2]),
    "pair_or_none": Kind("an integer, [h, w] or null",
                         lambda v, where: None if v is None else _pair(v, where), 1),
    "padding": Kind(" | ".join(PADDINGS), _choice("padding", PADDINGS), "same"),
    "activation": Kind("an activation name", _choice("activation", ACTIVATIONS, optional=True), "tanh"),
    "initializer": Kind("an initialiser name", _choice("initializer", INITIALIZERS), "he_normal"),
    "bias_initializer": Kind(" | ".join(VECTOR_INITIALIZERS), _bias_initializer, "random_uniform"),
    "bool": Kind("true | false", _bool, False),
    "rate": Kind("a number in [0, 1)", _number(lambda v: 0 <= v < 1, "a dropout rate in [0, 1)"), 0.25),
    "unit_float": Kind("a number in [0, 1)", _number(lambda v: 0 <= v < 1, "a number in [0, 1)"), 0.9),
    "pos_float": Kind("a positive number", _number(lambda v: v > 0, "a positive number"), 0.5),
}


def register_kind(name: str, kind: Kind) -> Kind:
    """Add an argument kind (e.g. a list of nested layers) for layer types to use."""
    if name in KINDS:
        raise ValueError(f"argument kind '{name}' is already registered")
    KINDS[name] = kind
    return kind


@dataclass(frozen=True)
class Arg:
    """One argument of a layer type: its kind (a key of :data:`KINDS`) and default."""

    kind: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, value: Any, where: str) -> Any:
        return KINDS[self.kind].check(value, where)


# ---------------------------------------------------------------- layer types


@dataclass(frozen=True)
class Out:
    """What a layer type's shape rule returns for one input shape."""

    shape: Shape
    params: int = 0
    flops: int = 0
    trainable: int | None = None  # None: all params are trainable
    children: tuple[LayerInfo, ...] = ()  # the inferred layers nested inside this one, if any


ShapeRule = Callable[["Layer", Shape, str], Out]  # (layer, input shape, where) -> Out
BuildRule = Callable[["LayerInfo", Any], "list[nn.Module]"]  # (info, models.build.Builder)


@dataclass(frozen=True)
class LayerType:
    """A registered layer type: arguments, shape rule and build rule (see the module doc).

    ``shape(layer, input_shape, where)`` raises an ArchtuneError naming ``where`` when the layer
    cannot take that input. ``build(info, builder)`` returns the layer's torch modules, without
    its ``activation`` argument's module (the builder appends that one for every type).
    """

    name: str
    args: dict[str, Arg]
    shape: ShapeRule
    build: BuildRule
    doc: str = ""
    primary: str | None = None  # the argument a bare value fills: Dense(10), Dropout(0.3)
    aliases: tuple[str, ...] = ()  # other spellings (Keras 1 / PyTorch names)


LAYER_TYPES: dict[str, LayerType] = {}
TYPE_ALIASES: dict[str, str] = {}  # alias -> registered name
ARG_ALIASES = {"alpha": "negative_slope", "stride": "strides", "kernel": "kernel_size",
               "dilation": "dilation_rate"}


def register_layer(entry: LayerType) -> LayerType:
    """Add a layer type to the table (its name and aliases must be new)."""
    for name in (entry.name, *entry.aliases):
        if name in LAYER_TYPES or name in TYPE_ALIASES:
            raise ValueError(f"layer type '{name}' is already registered")
    if entry.primary is not None and entry.primary not in entry.args:
        raise ValueError(f"{entry.name}: primary argument '{entry.primary}' is not an argument")
    LAYER_TYPES[entry.name] = entry
    TYPE_ALIASES.update({alias: entry.name for alias in entry.aliases})
    return entry


def layer_type(name: str, where: str = "") -> LayerType:
    """The entry of a layer type name or alias; unknown names get a did-you-mean."""
    name = TYPE_ALIASES.get(name, name)
    if name not in LAYER_TYPES:
        raise unknown("layer type", name, LAYER_TYPES, where)
    return LAYER_TYPES[name]


def is_layer_name(name: object) -> bool:
    """Whether ``name`` is a registered layer type or one of its aliases."""
    return name in LAYER_TYPES or name in TYPE_ALIASES


def list_layers(pattern: str = "*") -> list[str]:
    """Registered layer type names matching a glob pattern, in registration order."""
    return [n for n in LAYER_TYPES if fnmatch.fnmatchcase(n.lower(), pattern.lower())]


def _split_entry(entry: Any, where: str) -> tuple[str, Any]:
    if isinstance(entry, str):
        return entry, {}
    if isinstance(entry, dict) and "type" in entry:
        return entry["type"], {k: v for k, v in entry.items() if k != "type"}
    if isinstance(entry, dict) and len(entry) == 1:
        ((type_name, raw),) = entry.items()
        return type_name, {} if raw is None else raw
    raise ArchtuneError(
        f"{where}: expected '{{LayerType: {{arg: value}}}}' or '{{type: LayerType, ...}}', got {short(entry)}")


def bind_classes(entry: Any, classes: int) -> tuple[Any, bool]:
    """A raw layer with a Dense layer's ``units: classes`` set to ``classes``, and whether it had
    that (any other entry comes back as it is, for :func:`normalize_layer` to check)."""
    try:
        type_name, raw = _split_entry(entry, "layer")
    except ArchtuneError:
        return entry, False
    if TYPE_ALIASES.get(type_name, type_name) != "Dense":
        return entry, False
    if raw == CLASSES:
        return {type_name: classes}, True
    if isinstance(raw, dict) and raw.get("units") == CLASSES:
        return {type_name: {**raw, "units": classes}}, True
    return entry, False


def normalize_layer(entry: Any, index: int, *, prefix: str = "layer") -> Layer:
    """Turn ``{Conv2D: {filters: 32}}`` or ``{type: Conv2D, filters: 32}`` into a full Layer.

    Errors name ``<prefix> <index>`` (a layer nested in layer 3 would pass ``layer 3.layers``).
    """
    type_name, raw = _split_entry(entry, f"{prefix} {index}")
    lt = layer_type(str(type_name), f"{prefix} {index}")
    where = f"{prefix} {index} ({lt.name})"
    if not isinstance(raw, dict) and lt.primary is not None:
        raw = {lt.primary: raw}
    if not isinstance(raw, dict):
        raise ArchtuneError(f"{where}: arguments must be a mapping, got {short(raw)}")
    args: dict[str, Any] = {}
    for key, value in raw.items():
        key = ARG_ALIASES.get(key, key)
        if key not in lt.args:
            allowed = ", ".join(lt.args) or "no arguments"
            raise ArchtuneError(f"{where}: unknown argument '{key}'{did_you_mean(str(key), lt.args)}; "
                                f"{lt.name} takes {allowed}")
        args[key] = lt.args[key].check(value, f"{where}.{key}")
    for key, arg in lt.args.items():
        if key not in args:
            if arg.required:
                raise ArchtuneError(f"{where}: missing required argument '{key}'")
            args[key] = arg.check(arg.default, f"{where}.{key}")
    return Layer(lt.name, args)
