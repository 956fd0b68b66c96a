"""Activation maps and dead filters on constructed models whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from archtune import build_model, load_spec
from archtune.errors import ArchtuneError
from archtune.report.inspect import (
    activation_maps,
    activation_point,
    check_conv_layer,
    check_image_index,
    conv_layers,
    dead_filters,
    first_layer_weights,
    maps_grid,
)

SPEC = {
    "name": "probe",
    "input_shape": [12, 12, 1],
    "layers": [
        {"Conv2D": {"filters": 6, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": 2},
        {"Conv2D": {"filters": 5, "kernel_size": 3}},
        {"BatchNormalization": {}},
        {"Activation": "relu"},
        "Flatten",
        {"Dense": {"units": 7, "activation": "relu"}},
        {"Dense": {"units": 3, "activation": "softmax"}},
    ],
}


@pytest.fixture
def model_and_spec():
    spec = load_spec(SPEC)
    torch.manual_seed(0)
    model = build_model(spec).eval()
    with torch.no_grad():  # live channels get a large positive bias, dead ones a large negative
        conv0 = model.blocks[0][0]
        conv0.bias.fill_(5.0)
        conv0.bias[[1, 4]] = -1e4  # channels 1 and 4 of layer 0 can never be positive
        conv2 = model.blocks[2]
        conv2.bias.fill_(1e3)
        conv2.bias[3] = -1e4  # ...and BN (identity at init) keeps channel 3 of layer 2 negative
        dense = model.blocks[6][0]
        dense.bias.fill_(1e6)
        dense.bias[[0, 2, 5]] = -1e7  # three dead units
    return model, spec


def test_dead_filters_counts_known_dead_channels(model_and_spec) -> None:
    model, spec = model_and_spec
    x = torch.rand(64, 1, 12, 12)
    layers = dead_filters(model, spec, x, batch_size=20)
    got = {d.layer: (d.kind, d.total, d.dead) for d in layers}
    assert got == {0: ("filters", 6, [1, 4]), 2: ("filters", 5, [3]), 6: ("units", 7, [0, 2, 5])}
    assert all(d.max_activation.shape == (d.total,) for d in layers)
    assert [d.n_dead for d in layers] == [2, 1, 3]


def test_activation_point_follows_elementwise_chain(model_and_spec) -> None:
    _, spec = model_and_spec
    assert conv_layers(spec) == [0, 2]
    assert activation_point(spec, 0) == 0 and activation_point(spec, 2) == 4
    assert activation_point(spec, 6) == 6


def test_activation_maps_equal_a_manual_forward(model_and_spec) -> None:
    model, spec = model_and_spec
    image = torch.rand(1, 12, 12)
    maps = activation_maps(model, spec, image)
    assert [m.layer for m in maps] == [0, 2] and maps[0].name == "conv2d_0"
    conv0 = model.blocks[0][0]
    x = (image[None] - model.mean) / model.std
    expected0 = F.relu(conv0(x))[0].detach().numpy()
    np.testing.assert_allclose(maps[0].maps, expected0, rtol=1e-5, atol=1e-6)
    pooled = F.max_pool2d(F.relu(conv0(x)), 2)
    expected2 = F.relu(model.blocks[3](model.blocks[2](pooled)))[0].detach().numpy()
    np.testing.assert_allclose(maps[1].maps, expected2, rtol=1e-5, atol=1e-6)
    assert maps[0].maps.shape == (6, 12, 12) and maps[1].maps.shape == (5, 4, 4)
    np.testing.assert_array_equal(maps[0].channel_max[[1, 4]], [0.0, 0.0])
    grid = maps_grid(maps[0])
    assert grid.highlight == [False, True, False, False, True, False]


def test_layer_and_image_checks_say_what_is_wrong(model_and_spec) -> None:
    _, spec = model_and_spec
    with pytest.raises(ArchtuneError, match=r"layer 1 \(MaxPooling2D\) is not a Conv2D layer; "
                                            r"conv layers of 'probe': 0 \(conv2d_0\), 2 \(conv2d_2\)"):
        check_conv_layer(spec, 1)
    with pytest.raises(ArchtuneError, match="layer 9 does not exist"):
        check_conv_layer(spec, 9)
    with pytest.raises(ArchtuneError, match=r"image 10 is out of range: the test split has 10 "
                                            r"images \(indices 0 to 9\)"):
        check_image_index(10, 10, "test")
    with pytest.raises(ArchtuneError):
        check_image_index(-1, 10, "test")
    check_image_index(9, 10, "test")


def test_first_layer_weights(model_and_spec) -> None:
    model, spec = model_and_spec
    w, kind = first_layer_weights(model, spec)
    assert kind == "filter" and w.shape == (6, 1, 3, 3)
    mlp = load_spec("mlp-deep-sigmoid")
    got = first_layer_weights(build_model(mlp), mlp)
    assert got is not None and got[1] == "unit" and got[0].shape == (8, 784)
