"""Activation maps, dead filters and first-layer weights reach the layers inside Residual blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archtune import build_model, load_spec
from archtune.errors import ArchtuneError
from archtune.models import module_at
from archtune.report.inspect import (
    activation_maps,
    activation_point,
    check_conv_layer,
    conv_layers,
    dead_filters,
    first_layer_weights,
)


def _conv(filters: int, **kw) -> dict:
    return {"Conv2D": {"filters": filters, "kernel_size": 3, "padding": "same", **kw}}


SPEC = {"name": "res-probe", "input_shape": [8, 8, 1], "layers": [
    {"Residual": {"layers": [_conv(4), {"BatchNormalization": {}}, {"Activation": "relu"},
                             _conv(3, activation="relu")]}},
    "Flatten", {"Dense": {"units": 2, "activation": "softmax"}}]}


@pytest.fixture
def model_and_spec():
    torch.manual_seed(0)
    spec = load_spec(SPEC)
    model = build_model(spec).eval()
    conv = module_at(model, (0, 0))
    with torch.no_grad():  # filter 2 of the first nested conv never fires after BN + ReLU
        conv.bias.fill_(1e3)
        conv.bias[2] = -1e4
    return model, spec


def test_nested_conv_layers_are_addressed_block_dot_layer(model_and_spec) -> None:
    _, spec = model_and_spec
    assert conv_layers(spec) == ["0.0", "0.3"]
    assert activation_point(spec, "0.0") == "0.2" and activation_point(spec, "0.3") == "0.3"
    check_conv_layer(spec, "0.3")
    with pytest.raises(ArchtuneError, match=r"layer 0.1 \(BatchNormalization\) is not a Conv2D layer; "
                                            r"conv layers of 'res-probe': 0.0 \(residual_0.conv2d_0\)"):
        check_conv_layer(spec, "0.1")
    with pytest.raises(ArchtuneError, match="layer 0.7 does not exist"):
        check_conv_layer(spec, "0.7")


def test_activation_maps_of_a_nested_conv_equal_a_manual_forward(model_and_spec) -> None:
    model, spec = model_and_spec
    image = torch.rand(1, 8, 8)
    maps = activation_maps(model, spec, image, ["0.0", "0.3"])
    assert [m.name for m in maps] == ["residual_0.conv2d_0", "residual_0.conv2d_3"]
    x = (image[None] - model.mean) / model.std
    conv, bn, conv2 = module_at(model, (0, 0)), module_at(model, (0, 1)), module_at(model, (0, 3))[0]
    first = F.relu(bn(conv(x)))
    np.testing.assert_allclose(maps[0].maps, first[0].detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps[1].maps, F.relu(conv2(first))[0].detach().numpy(), rtol=1e-5,
                               atol=1e-5)


def test_dead_filters_and_first_weights_inside_a_block(model_and_spec) -> None:
    model, spec = model_and_spec
    found = {d.layer: (d.name, d.dead) for d in dead_filters(model, spec, torch.rand(16, 1, 8, 8))}
    assert found["0.0"] == ("residual_0.conv2d_0", [2])
    assert set(found) == {"0.0", "0.3"}
    w, kind = first_layer_weights(model, spec)
    assert kind == "filter" and w.shape == (4, 1, 3, 3)
