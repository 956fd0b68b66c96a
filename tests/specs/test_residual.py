"""Residual blocks in specs: shapes, parameters and FLOPs by hand, the forward pass, errors."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import yaml

from archtune import ArchtuneError, build_model, load_spec
from archtune.models import module_at
from archtune.specs import infer_shapes, spec_from_dict, summary, summary_rows, totals, walk


def _conv(filters: int, strides: int = 1, **kw) -> dict:
    return {"Conv2D": {"filters": filters, "kernel_size": 3, "strides": strides, "padding": "same",
                       "use_bias": False, **kw}}


def _block(filters: int, strides: int = 1, **kw) -> dict:
    return {"Residual": {"layers": [_conv(filters, strides), "BatchNormalization",
                                    {"Activation": "relu"}, _conv(filters), "BatchNormalization"],
                         "activation": "relu", **kw}}


def test_resnet20_parameters_equal_a_hand_count() -> None:
    """ResNet-20 (He et al., CIFAR variant) on 28x28x1: stem, 3 stages x 3 blocks (16, 32, 64
    filters), 1x1 conv + BN projections where a stage halves the size, GAP, Dense(10)."""
    def conv(cin: int, cout: int, k: int = 3) -> int:
        return k * k * cin * cout

    def bn(c: int) -> int:
        return 4 * c  # gamma, beta (trainable); running mean, running variance

    def block(cin: int, c: int) -> int:
        projection = conv(cin, c, 1) + bn(c) if cin != c else 0
        return conv(cin, c) + bn(c) + conv(c, c) + bn(c) + projection

    params = (conv(1, 16) + bn(16) + 3 * block(16, 16) + block(16, 32) + 2 * block(32, 32)
              + block(32, 64) + 2 * block(64, 64) + 64 * 10 + 10)
    bn_channels = 16 + 3 * 2 * 16 + (3 * 2 + 1) * 32 + (3 * 2 + 1) * 64
    spec = load_spec("resnet-20")
    t = totals(infer_shapes(spec))
    assert (t.params, t.trainable) == (params, params - 2 * bn_channels) == (273_754, 272_186)
    model = build_model(spec)
    assert sum(p.numel() for p in model.parameters()) == t.trainable
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    convs = [n for n in walk(infer_shapes(spec)) if n.info.layer.type == "Conv2D"]
    assert len(convs) == 19 + 2  # 19 3x3 convs + 2 projections (the 20th layer is the Dense)


def test_shapes_flops_and_shortcut_choice() -> None:
    spec = spec_from_dict({"input_shape": [8, 8, 4], "layers": [
        _block(4), _block(6, strides=2), _block(6, shortcut="conv"), "Flatten", {"Dense": 2}]})
    same, down, forced = infer_shapes(spec)[:3]
    assert [c.branch for c in same.children] == [""] * 5  # identity: no shortcut layers
    assert [(c.branch, c.layer.type) for c in down.children[5:]] == [
        ("shortcut", "Conv2D"), ("shortcut", "BatchNormalization")]
    proj = down.children[5]
    assert proj.layer.args["strides"] == [2, 2] and proj.layer.args["kernel_size"] == [1, 1]
    assert down.output_shape == (6, 4, 4) and forced.output_shape == (6, 4, 4)
    assert len(forced.children) == 7  # shortcut: conv projects even when the shape is kept
    # FLOPs by hand: 2 x MACs per conv, 2 per BN element, 1 per ReLU/addition element
    n = 8 * 8 * 4
    conv_flops = 2 * 9 * 4 * 4 * 8 * 8
    assert same.flops == 2 * conv_flops + 2 * (2 * n) + n + n + n
    assert same.params == 2 * 9 * 4 * 4 + 2 * 16
    m = 4 * 4 * 6
    assert down.flops == (2 * 9 * 4 * 6 * 16 + 2 * 9 * 6 * 6 * 16 + 2 * 2 * m + m  # main path
                          + 2 * 4 * 6 * 16 + 2 * m  # 1x1 projection and its BN
                          + m + m)  # addition, ReLU


def test_forward_is_layers_plus_shortcut_then_activation() -> None:
    spec = spec_from_dict({"input_shape": [8, 8, 3], "layers": [
        _block(3), _block(5, strides=2), "Flatten", {"Dense": 2}]})
    torch.manual_seed(0)
    model = build_model(spec).eval()
    x = torch.randn(4, 3, 8, 8)
    inner = module_at(model, (0,))[0]  # the Residual module (its ReLU follows it)
    expected = F.relu(inner.layers(x) + x)
    assert torch.allclose(model.blocks[0](x), expected)
    y = model.blocks[0](x)
    down = module_at(model, (1,))[0]
    assert torch.allclose(model.blocks[1](y), F.relu(down.layers(y) + down.shortcut(y)))
    assert isinstance(module_at(model, (1, "shortcut", 0)), torch.nn.Conv2d)


def test_an_inplace_activation_first_does_not_change_the_shortcut() -> None:
    """Pre-activation blocks start with ReLU; made in-place it would zero the identity's input."""
    spec = spec_from_dict({"input_shape": [6, 6, 2], "layers": [
        {"Residual": [{"Activation": "relu"}, _conv(2)]}, "Flatten", {"Dense": 2}]})
    model = build_model(spec).eval()
    x = torch.randn(3, 2, 6, 6)
    conv = module_at(model, (0, 1))
    with torch.no_grad():
        assert torch.allclose(model.blocks[0](x.clone()), x + conv(F.relu(x)))


def test_nested_blocks_summary_and_round_trip() -> None:
    raw = {"name": "nest", "input_shape": [8, 8, 2], "layers": [
        {"Residual": {"layers": [{"Residual": [_conv(2)]}, {"Activation": "relu"}]}},
        _block(4, strides=2), "GlobalAveragePooling2D", {"Dense": 3}]}
    spec = spec_from_dict(raw)
    names = [r[0] for r in summary_rows(spec)]
    assert names[:4] == ["residual_0 (Residual)", "  residual_0 (Residual)", "    conv2d_0 (Conv2D)",
                         "  activation_1 (Activation)"]
    assert "  shortcut: conv2d_0 (Conv2D)" in names
    assert "Total params: " + f"{totals(infer_shapes(spec)).params:,}" in summary(spec)
    again = spec_from_dict(yaml.safe_load(spec.to_yaml()))
    assert again.to_dict() == spec.to_dict()
    assert [n.ref for n in walk(infer_shapes(again))][:4] == [0, "0.0", "0.0.0", "0.1"]


@pytest.mark.parametrize("layers, message", [
    ([{"Residual": {"layers": [_conv(4)], "shortcut": "identity"}}],
     r"layer 0 \(Residual\): an identity shortcut needs layers that keep the shape, but they turn "
     r"\(None, 8, 8, 2\) into \(None, 8, 8, 4\); use shortcut: auto"),
    ([{"Residual": [{"Conv2D": {"filters": 2, "kernel_size": 3}}]}],
     r"turn 8x8 into 6x6, which no strided 1x1 shortcut can match; use padding 'same'"),
    ([{"Residual": ["Flatten", {"Dense": 3}]}], r"a shortcut can change channels and size but not "
                                                r"flatten"),
    ([{"Residual": {"layers": [_conv(2)], "shortcut": "projection"}}],
     r"layer 0 \(Residual\).shortcut: unknown shortcut 'projection'"),
    ([{"Residual": {"layers": [{"Residual": [_conv(2), "BatchNormalisation"]}]}}],
     r"layer 0 \(Residual\).layers 0 \(Residual\).layers 1: unknown layer type "
     r"'BatchNormalisation'.*did you mean 'BatchNormalization'"),
    ([{"Residual": []}], r"layer 0 \(Residual\).layers: expected a non-empty list of layers"),
])
def test_errors_name_the_block_and_the_fix(layers: list, message: str) -> None:
    with pytest.raises(ArchtuneError, match=message):
        spec_from_dict({"input_shape": [8, 8, 2], "layers": [*layers, "Flatten", {"Dense": 2}]})


def test_flat_residual_projects_with_a_dense_layer() -> None:
    spec = spec_from_dict({"input_shape": [4, 4, 1], "layers": [
        "Flatten", {"Residual": [{"Dense": {"units": 8, "activation": "relu"}}]}, {"Dense": 2}]})
    block = infer_shapes(spec)[1]
    assert [c.layer.type for c in block.children if c.branch] == ["Dense", "BatchNormalization"]
    assert block.params == (16 * 8 + 8) + 16 * 8 + 4 * 8
    assert build_model(spec)(torch.rand(2, 1, 4, 4)).shape == (2, 2)
