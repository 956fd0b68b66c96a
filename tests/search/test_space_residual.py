"""A search space may put dimensions inside a Residual block and repeat the block."""

from __future__ import annotations

import pytest

from archtune import ArchtuneError
from archtune.search import load_space
from archtune.specs import infer_shapes, spec_from_dict


def _stage(name: str) -> dict:
    width = {"choice": [4, 8], "name": f"{name}_width"}
    block = {"Residual": {"layers": [
        {"Conv2D": {"filters": width, "kernel_size": 3, "padding": "same", "use_bias": False}},
        {"BatchNormalization": {}},
        {"Activation": {"choice": ["relu", "gelu"]}}],
        "shortcut": "auto", "activation": "relu"}}
    return {"repeat": {"int": [1, 2]}, "block": [block], "name": name}


def test_dimensions_inside_repeated_residual_blocks() -> None:
    raw = {"name": "res-space", "input_shape": [8, 8, 1],
           "layers": [_stage("stage"), "Flatten", {"Dense": {"units": 10, "activation": "softmax"}}],
           "train": {"epochs": 1}}
    s = load_space(raw)
    assert s.names == ["stage.n", "stage.1.stage_width", "stage.1.0.layers.2",
                       "stage.2.stage_width", "stage.2.0.layers.2"]
    grid = s.grid()
    assert len(grid) == 2 * 2 + (2 * 2) ** 2  # each repeat has its own width and activation
    for params in grid:
        spec = spec_from_dict(s.resolve(params))
        blocks = [i for i in infer_shapes(spec) if i.layer.type == "Residual"]
        assert len(blocks) == params["stage.n"]
        widths = [params[f"stage.{k}.stage_width"] for k in range(1, len(blocks) + 1)]
        assert [b.output_shape for b in blocks] == [(w, 8, 8) for w in widths]
        # a projection shortcut exactly where the channels change (1 -> w1, w1 -> w2)
        assert [any(c.branch for c in b.children) for b in blocks] == [
            a != b for a, b in zip([1, *widths], widths, strict=False)]
        acts = [b.children[2].layer.args["activation"] for b in blocks]
        assert acts == [params[f"stage.{k}.0.layers.2"] for k in range(1, len(blocks) + 1)]


def test_a_bad_value_inside_a_block_is_caught_when_the_space_loads() -> None:
    raw = {"name": "bad", "input_shape": [8, 8, 1], "layers": [
        {"Residual": {"layers": [{"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same"}}],
                      "shortcut": {"choice": ["auto", "sideways"]}}},
        "Flatten", {"Dense": 10}]}
    with pytest.raises(ArchtuneError, match=r"with layers.0.shortcut = \"sideways\": layer 0 "
                                            r"\(Residual\).shortcut: unknown shortcut 'sideways'"):
        load_space(raw)
