"""Specs adapt to their data: ``input_shape: auto`` takes the data's size and channels; the
reference specs name the size they were designed for; explicit shapes are still checked."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archtune.data import check_input
from archtune.errors import ArchtuneError
from archtune.models import build_model
from archtune.models.build import AdaptivePool2d
from archtune.specs import infer_shapes, list_specs, load_spec, spec_from_dict, summary, totals
from tests._cli import run_cli

REFERENCE_PARAMS = {  # at 28 x 28 x 1 and 10 classes, as their descriptions say
    "mlp-small": 101_770, "mlp-medium": 118_282, "mlp-large": 134_794, "mlp-deep-relu": 6_730,
    "mlp-deep-sigmoid": 6_730, "cnn-small": 63_050, "cnn-medium": 50_186, "cnn-large": 398_090,
    "cnn-classic": 542_230, "default": 1_631_914, "accurate": 658_042, "resnet-20": 273_754,
}


def _bound(name: str, size: int, channels: int, classes: int = 5):
    """The spec as training on data of size x size x channels (after its size policy) binds it."""
    spec = load_spec(name)
    h, w = spec.data.image_size or (size, size)
    return spec.for_input((h, w, channels)).for_classes(classes)


@pytest.mark.parametrize("name", list_specs())
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [28, 32, 64])
def test_every_builtin_builds_for_any_channels_and_size(name: str, channels: int, size: int) -> None:
    spec = _bound(name, size, channels)
    assert not spec.input_auto and spec.input_shape[2] == channels
    text = summary(spec)
    assert f"(None, {spec.input_shape[0]}, {spec.input_shape[1]}, {channels})" in text
    model = build_model(spec).eval()
    with torch.no_grad():
        out = model(torch.rand(2, channels, *spec.input_shape[:2]))
    assert out.shape == (2, 5)


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_reference_counts_hold_at_28x28x1(name: str) -> None:
    spec = load_spec(name)
    assert spec.input_auto and spec.input_shape == (28, 28, 1)  # the stand-in shape
    assert totals(infer_shapes(spec)).params == REFERENCE_PARAMS[name]
    assert totals(infer_shapes(spec.for_input((28, 28, 1)))).params == REFERENCE_PARAMS[name]


@pytest.mark.parametrize("name", list_specs())
def test_builtins_either_pool_globally_or_name_their_size(name: str) -> None:
    small, large = (totals(infer_shapes(_bound(name, s, 3))).params for s in (28, 96))
    assert small == large  # parameters do not grow with the image


def test_default_pools_to_7x7_and_is_the_identity_on_28x28() -> None:
    spec = load_spec("default")
    kinds = [la.type for la in spec.layers]
    i = kinds.index("Flatten") - 1
    assert kinds[i] == "AdaptiveAvgPooling2D"
    model = build_model(spec.for_input((28, 28, 1)))
    assert isinstance(model.blocks[i], torch.nn.Identity)
    big = build_model(spec.for_input((64, 48, 3)))
    assert isinstance(big.blocks[i], AdaptivePool2d)
    assert f"blocks.adaptiveavgpooling2d_{i}.rows" not in big.state_dict()
    info = infer_shapes(spec.for_input((28, 28, 1)))[i]
    assert info.output_shape == (64, 7, 7) and info.flops == 0


@pytest.mark.parametrize("name", ["default", "accurate"])
def test_the_recipes_stem_pools_large_images_and_leaves_small_ones(name: str) -> None:
    spec = load_spec(name)
    assert spec.layers[0].type == "Downscale2D"
    small = infer_shapes(spec.for_input((64, 64, 3)))[0]
    assert small.output_shape == (3, 64, 64) and small.flops == 0
    assert isinstance(build_model(spec.for_input((28, 28, 1))).blocks[0], torch.nn.Identity)
    large = infer_shapes(spec.for_input((128, 100, 3)))[0]
    assert large.output_shape == (3, 64, 50)  # factor 2: the long side within 64
    odd = infer_shapes(spec.for_input((200, 90, 3)))[0]
    assert odd.output_shape == (3, 50, 22)  # factor 4; pixels past a whole window dropped
    x = torch.rand(2, 3, 128, 100)
    assert build_model(spec.for_input((128, 100, 3)).for_classes(5))(x).shape == (2, 5)


@pytest.mark.parametrize("size, out", [((10, 11), (7, 7)), ((9, 5), (3, 2)), ((8, 8), (4, 4)),
                                       ((3, 3), (7, 7))])
def test_adaptive_pooling_matches_torch(size: tuple[int, int], out: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size)
    got = AdaptivePool2d(size, out)(x)
    torch.testing.assert_close(got, torch.nn.AdaptiveAvgPool2d(out)(x), atol=1e-6, rtol=1e-5)


def test_default_takes_small_images_too() -> None:
    spec = load_spec("default").for_input((12, 12, 3))  # pooled to 3x3, then spread to 7x7
    assert totals(infer_shapes(spec)).params == totals(infer_shapes(load_spec("default"))).params + 576


def test_auto_is_written_back_and_absent_means_auto() -> None:
    layers = ["Flatten", {"Dense": "classes"}]
    for raw in ({"layers": layers}, {"input_shape": "auto", "layers": layers}):
        spec = spec_from_dict(raw)
        assert spec.input_auto and spec.to_dict()["input_shape"] == "auto"
        assert spec_from_dict(spec.to_dict()).input_auto
    bound = spec_from_dict({"layers": layers}).for_input((5, 6, 3)).for_classes(4)
    assert bound.to_dict()["input_shape"] == [5, 6, 3]
    assert totals(infer_shapes(bound)).params == 5 * 6 * 3 * 4 + 4


def test_stand_in_follows_the_data_section() -> None:
    spec = spec_from_dict({"layers": ["Flatten", {"Dense": 2}],
                           "data": {"image_size": [12, 10], "channels": 3}})
    assert spec.input_shape == (12, 10, 3) and spec.input_auto
    assert "input_shape: auto, shown at 12x10x3" in summary(spec)


def test_pinned_input_shape_is_kept_and_checked() -> None:
    spec = spec_from_dict({"input_shape": [28, 28, 1], "layers": ["Flatten", {"Dense": 2}]})
    assert not spec.input_auto and spec.for_input((32, 32, 3)) is spec
    with pytest.raises(ArchtuneError, match=re.escape(
            "spec 'a' expects input_shape [28, 28, 1] but the data set's images are [32, 32, 3]; "
            "set input_shape: [32, 32, 3] in the spec")):
        check_input(kind="spec", name="a", input_shape=spec.input_shape, chw=(3, 32, 32))


def _rgb_folder(root: Path, sizes: list[tuple[int, int]]) -> Path:
    rng = np.random.default_rng(0)
    for k, cls in enumerate(("cat", "dog")):
        (root / cls).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{k}{i}.png")
    return root


def test_summary_with_data_shows_the_trained_model(tmp_path: Path, capsys) -> None:
    folder = _rgb_folder(tmp_path / "photos", [(32, 32)] * 3)
    code, out, _ = run_cli(["summary", "default", "--data", str(folder)], capsys)
    assert code == 0 and "(None, 32, 32, 3)" in out and "input_shape: auto" not in out
    assert "(None, 2)" in out and "units: classes" not in out  # its two classes
    code, out, _ = run_cli(["summary", "cnn-small", "--data", str(folder)], capsys)
    assert code == 0 and "(None, 28, 28, 3)" in out  # resized to the size it was designed for
    code, out, _ = run_cli(["summary", "resnet-20", "--data", str(folder), "--image-size", "40x48"],
                           capsys)
    assert code == 0 and "(None, 40, 48, 3)" in out
    pinned = tmp_path / "pinned.yaml"
    pinned.write_text("input_shape: [28, 28, 1]\nlayers: [Flatten, {Dense: classes}]\n")
    code, _, err = run_cli(["summary", str(pinned), "--data", str(folder)], capsys)
    assert code == 2 and "expects input_shape [28, 28, 1] but the data set's images are [32, 32, 3]" in err
