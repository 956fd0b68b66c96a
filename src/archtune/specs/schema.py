"""A spec: an architecture as data (Keras-style layer list) plus its train and data sections."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from .._files import check_nesting, parse_yaml, read_data
from .._validate import check_keys, kind_of
from ..config import DataConfig, TrainConfig, data_config, to_dict, train_config
from ..errors import ArchtuneError, short
from .card import spec_html
from .layers import CLASSES, Layer, bind_classes, normalize_layer
from .shapes import infer_shapes

SPEC_KEYS = ("name", "description", "input_shape", "layers", "train", "data", "search")
DEFAULT_INPUT_SHAPE = (28, 28, 1)  # Keras order: height, width, channels
AUTO = "auto"  # input_shape of a spec that takes its data's (absent means the same)
# An unbound spec is shown, counted and checked at its stand-in shape until it meets its data:
# the height and width of its data section's image_size (else DEFAULT_INPUT_SHAPE's), and
# its data section's channels (else 1).
UNBOUND_CLASSES = 10  # units of a 'classes' layer until the spec meets its data (Fashion-MNIST's, MNIST's)


@dataclass
class Spec:
    """A validated spec. ``input_shape`` is Keras-ordered (height, width, channels)."""

    name: str
    layers: list[Layer]
    input_shape: tuple[int, int, int] = DEFAULT_INPUT_SHAPE
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)
    description: str = ""
    class_layers: tuple[int, ...] = ()  # layers whose units are the data's classes, not yet bound
    input_auto: bool = False  # input_shape is a stand-in until the spec meets its data

    @property
    def chw(self) -> tuple[int, int, int]:
        h, w, c = self.input_shape
        return (c, h, w)

    def to_dict(self) -> dict[str, Any]:
        layers = [layer.to_dict() for layer in self.layers]
        for i in self.class_layers:
            layers[i]["Dense"]["units"] = CLASSES
        return {
            "name": self.name,
            "description": self.description,
            "input_shape": AUTO if self.input_auto else list(self.input_shape),
            "layers": layers,
            "train": to_dict(self.train),
            "data": to_dict(self.data),
        }

    def for_classes(self, classes: int) -> Spec:
        """This spec with its ``units: classes`` layers given ``classes`` units (itself when it
        has none): what training on a data set of that many classes builds and saves."""
        if not self.class_layers:
            return self
        return spec_from_dict(self.to_dict(), source=f"spec '{self.name}'", classes=classes)

    def for_input(self, input_shape: tuple[int, int, int]) -> Spec:
        """This spec bound to data of ``input_shape`` (height, width, channels) when it does not
        pin its own (itself otherwise): what training on such data builds and saves."""
        if not self.input_auto:
            return self
        raw = self.to_dict() | {"input_shape": list(input_shape)}
        return spec_from_dict(raw, source=f"spec '{self.name}'")  # units: classes stay marked

    def with_epochs(self, epochs: int) -> Spec:
        """This spec with its train section's ``epochs`` replaced (everything else shared)."""
        return replace(self, train=replace(self.train, epochs=epochs))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def __repr__(self) -> str:
        h, w, c = self.input_shape
        return f"<Spec '{self.name}': {len(self.layers)} layers, input {h}x{w}x{c}>"

    def _repr_html_(self) -> str:
        return spec_html(self)


MAX_INPUT_SIDE = 16_384  # largest height, width or channel count a spec may declare


def stand_in_shape(data: DataConfig) -> tuple[int, int, int]:
    """The shape an unbound spec (``input_shape: auto``) is shown and checked at before it
    meets its data: its ``data.image_size`` (else 28 x 28) and ``data.channels`` (else 1)."""
    h, w = data.image_size or DEFAULT_INPUT_SHAPE[:2]
    return (h, w, data.channels or DEFAULT_INPUT_SHAPE[2])


def _input_shape(value: Any) -> tuple[int, int, int]:
    if (not isinstance(value, list | tuple) or len(value) not in (2, 3)
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        raise ArchtuneError(
            f"input_shape: expected [height, width, channels] of positive integers, got {short(value)}")
    h, w, *c = value
    if max(value) > MAX_INPUT_SIDE:
        raise ArchtuneError(f"input_shape: each value must be at most {MAX_INPUT_SIDE:,}, got {short(value)}")
    return (h, w, c[0] if c else 1)


def spec_from_dict(raw: dict[str, Any], *, source: str = "spec", classes: int | None = None) -> Spec:
    """Validate a spec dict (layers, train, data) and infer/check all shapes.

    A Dense layer of ``layers`` may have ``units: classes``: one unit per class of the data set.
    With ``classes`` given, those layers get that many units for good; without, they count
    ``UNBOUND_CLASSES`` units (for summaries) and stay marked, so that training binds them
    (:meth:`Spec.for_classes`) and ``to_dict`` writes ``classes`` back.
    """
    if not isinstance(raw, dict):
        raise ArchtuneError(f"{source}: a spec must be a mapping with 'layers', got {kind_of(raw)}")
    check_nesting(raw, source)
    try:
        check_keys(raw, SPEC_KEYS, source)
        if "search" in raw:
            raise ArchtuneError(
                "this is a search space ('search' section); use it with 'archtune search'")
        layers_raw = raw.get("layers")
        if not isinstance(layers_raw, list) or not layers_raw:
            raise ArchtuneError("'layers' must be a non-empty list of layers")
        bound = [bind_classes(entry, UNBOUND_CLASSES if classes is None else classes) for entry in layers_raw]
        layers = [normalize_layer(entry, i) for i, (entry, _) in enumerate(bound)]
        data = data_config(raw.get("data"))
        shape = raw.get("input_shape", AUTO)
        auto = shape is None or shape == AUTO
        spec = Spec(
            name=str(raw.get("name") or "spec"),
            description=str(raw.get("description") or ""),
            layers=layers,
            input_shape=stand_in_shape(data) if auto else _input_shape(shape),
            train=train_config(raw.get("train")),
            data=data,
            class_layers=() if classes is not None else tuple(i for i, (_, mark) in enumerate(bound) if mark),
            input_auto=auto,
        )
        infer_shapes(spec)
    except ArchtuneError as err:
        msg = str(err)
        raise ArchtuneError(msg if msg.startswith(source) else f"{source}: {msg}") from None
    return spec


def read_spec_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML or JSON spec file into a dict (no validation)."""
    path = Path(path)
    if not path.exists():
        raise ArchtuneError(f"{path}: no such spec file")
    data = read_data(path, "spec file")
    if not isinstance(data, dict):
        raise ArchtuneError(f"{path}: a spec must be a mapping with 'layers', got {kind_of(data)}")
    data.setdefault("name", path.stem)
    return data


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` overrides (values parsed as YAML) to a copy of a spec dict."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ArchtuneError(f"--set {short(item)}: expected KEY=VALUE, e.g. train.lr=0.05")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if parts[0] not in ("train", "data", "input_shape", "name", "description"):
            raise ArchtuneError(f"--set {short(item)}: only train.*, data.*, name and description can be set")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ArchtuneError(f"--set {short(item)}: '{part}' is not a section")
        node[parts[-1]] = parse_yaml(value, f"--set {key}")
    return out
