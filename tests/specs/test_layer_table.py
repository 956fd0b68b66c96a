"""The table of layer types: generated tests for every entry, ``archtune layers``, and a new type
(one that holds nested layers) registered as one entry."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

from archtune import ArchtuneError, build_model
from archtune.specs import (
    ACTIVATIONS,
    INITIALIZERS,
    KINDS,
    LAYER_TYPES,
    Arg,
    Kind,
    LayerType,
    Out,
    infer_layers,
    infer_shapes,
    list_layers,
    register_kind,
    register_layer,
    spec_from_dict,
    summary,
    totals,
)
from archtune.specs.layers import TYPE_ALIASES, is_layer_name, normalize_layer
from tests._cli import run_cli


def _entry(name: str, arg: str | None = None) -> dict[str, Any]:
    """A layer of type ``name`` with its required arguments, and ``arg`` too, set to examples."""
    lt = LAYER_TYPES[name]
    return {name: {k: KINDS[a.kind].example for k, a in lt.args.items() if a.required or k == arg}}


def _spec_around(entry: dict[str, Any]):
    """The layer in an image context if it takes images, else after a Flatten; (spec, its index)."""
    for before in ([], ["Flatten"]):
        raw = {"input_shape": [9, 8, 2], "layers": [*before, entry, "Flatten", {"Dense": 3}]}
        try:
            return spec_from_dict(raw), len(before)
        except ArchtuneError:
            continue
    raise AssertionError(f"{entry} fits neither an image nor a flat input")


@pytest.mark.parametrize("name, arg", [(n, a) for n in list_layers()
                                       for a in [None, *(k for k, v in LAYER_TYPES[n].args.items()
                                                         if not v.required)]])
def test_every_layer_type_builds_what_its_shape_rule_says(name: str, arg: str | None) -> None:
    """Generated from the table: a new layer type or argument is tested without new test code."""
    spec, k = _spec_around(_entry(name, arg))
    info = infer_shapes(spec)[k]
    model = build_model(spec).eval()
    block = model.blocks[k]
    trainable = sum(p.numel() for p in block.parameters())
    running = sum(b.numel() for n, b in block.named_buffers() if "running" in n)
    assert (trainable, trainable + running) == (info.trainable, info.params)
    x = model.blocks[:k](torch.rand(2, *spec.chw))
    assert tuple(block(x).shape[1:]) == info.output_shape
    assert info.flops >= 0 and info.name == f"{name.lower()}_{k}"


def test_aliases_and_bare_values_come_from_the_table() -> None:
    for alias, name in TYPE_ALIASES.items():
        assert normalize_layer({alias: _entry(name)[name]}, 0).type == name
    for name, lt in LAYER_TYPES.items():
        if lt.primary is not None:
            value = KINDS[lt.args[lt.primary].kind].example  # normalised as its kind says
            assert normalize_layer({name: value}, 0).args[lt.primary] == lt.args[lt.primary].check(value, "")


def test_activation_and_initialiser_names_are_the_tables_keys() -> None:
    model = build_model(spec_from_dict({"input_shape": [4, 4, 1], "layers": [
        "Flatten", *({"Dense": {"units": 2, "activation": a}} for a in ACTIVATIONS),
        *({"Dense": {"units": 2, "kernel_initializer": i}} for i in INITIALIZERS)]}))
    assert model(torch.rand(3, 1, 4, 4)).shape == (3, 2)
    with pytest.raises(ArchtuneError, match="unknown initializer 'he_unifrom' .*did you mean 'he_uniform'"):
        spec_from_dict({"layers": ["Flatten", {"Dense": {"units": 2, "kernel_initializer": "he_unifrom"}}]})
    with pytest.raises(ArchtuneError, match=r"layer 1 \(Dense\).bias_initializer: 'orthogonal' needs a "
                                            r"weight matrix; a bias takes one of: random_normal"):
        spec_from_dict({"layers": ["Flatten", {"Dense": {"units": 2, "bias_initializer": "orthogonal"}}]})


def test_layers_command_lists_every_type_with_its_arguments(capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run_cli(["layers"], capsys)
    assert code == 0
    for name, lt in LAYER_TYPES.items():
        assert f"\n{name}" in f"\n{out}" and all(key in out for key in lt.args)
    assert "kernel_size" in out and "required" in out and "default glorot_uniform" in out
    assert ", ".join(ACTIVATIONS) in out and ", ".join(INITIALIZERS) in out
    code, out, _ = run_cli(["layers", "*pool*"], capsys)
    assert "MaxPooling2D" in out and "Conv2D" not in out
    code, _, err = run_cli(["layers", "Resnet*"], capsys)
    assert code == 2 and "no layer type matches 'Resnet*'" in err


# ---------------------------------------------------------------- a new type, one entry


class _AddInput(nn.Module):
    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x) + x


def _nested(value: Any, where: str) -> list:
    if not isinstance(value, list) or not value:
        raise ArchtuneError(f"{where}: expected a non-empty list of layers, got {value!r}")
    return [normalize_layer(v, i, prefix=f"{where}") for i, v in enumerate(value)]


def _add_input_shape(layer, shape, where) -> Out:
    children = infer_layers(layer.args["layers"], shape, where=f"{where}.layers")
    if children[-1].output_shape != shape:
        raise ArchtuneError(f"{where}: its layers must keep the shape")
    t = totals(children)
    return Out(shape, t.params, t.flops + len(shape), t.trainable, tuple(children))


@pytest.fixture
def add_input_type() -> Iterator[LayerType]:
    register_kind("test_layers", Kind("a list of layers", _nested, ["BatchNormalization"]))
    entry = register_layer(LayerType(
        "TestAddInput", {"layers": Arg("test_layers")}, _add_input_shape,
        lambda info, builder: [_AddInput(builder.layers(info.children))], doc="layers(x) + x"))
    yield entry
    del LAYER_TYPES["TestAddInput"], KINDS["test_layers"]


def test_a_type_with_nested_layers_is_one_entry(add_input_type: LayerType) -> None:
    conv = {"Conv2D": {"filters": 2, "kernel_size": 3, "padding": "same"}}
    spec = spec_from_dict({"input_shape": [6, 6, 2], "layers": [
        {"TestAddInput": {"layers": [conv, "BatchNormalization"]}}, "Flatten", {"Dense": 3}]})
    outer = infer_shapes(spec)[0]
    assert [c.name for c in outer.children] == ["conv2d_0", "batchnormalization_1"]
    assert outer.params == 3 * 3 * 2 * 2 + 2 + 4 * 2 and "TestAddInput" in summary(spec)
    model = build_model(spec).eval()
    assert sum(p.numel() for p in model.parameters()) == totals(infer_shapes(spec)).trainable
    x = torch.rand(2, 2, 6, 6)
    assert torch.allclose(model.blocks[0](x), model.blocks[0].inner(x) + x)
    assert is_layer_name("TestAddInput")
    with pytest.raises(ArchtuneError, match=r"layer 0 \(TestAddInput\).layers 1: unknown layer type"):
        spec_from_dict({"layers": [{"TestAddInput": {"layers": [conv, "Batchnorm"]}}]})
    with pytest.raises(ArchtuneError, match=r"layer 0 \(TestAddInput\).layers 0 \(Conv2D\): kernel 3x3"):
        spec_from_dict({"input_shape": [2, 2, 1], "layers": [
            {"TestAddInput": {"layers": [{"Conv2D": {"filters": 1, "kernel_size": 3}}]}}]})
