from __future__ import annotations

import json
import math
import random

import pytest
import torch

from archtune import ArchtuneError, build_model, list_specs, load_spec
from archtune.specs import infer_shapes, spec_from_dict, summary, totals

# MISSION.md's reference architectures, parameter for parameter
REFERENCE_PARAMS = {
    "mlp-small": 101_770, "mlp-medium": 118_282, "mlp-large": 134_794,
    "cnn-small": 63_050, "cnn-medium": 50_186, "cnn-large": 398_090, "cnn-classic": 542_230,
}


@pytest.mark.parametrize("name", sorted(REFERENCE_PARAMS))
def test_reference_parameter_counts(name: str) -> None:
    spec = load_spec(name)
    assert totals(infer_shapes(spec)).params == REFERENCE_PARAMS[name]
    assert f"Total params: {REFERENCE_PARAMS[name]:,}" in summary(spec)


@pytest.mark.parametrize("name", list_specs())
def test_every_builtin_builds_and_matches_inferred_shapes(name: str) -> None:
    """Generated from the registry: a new built-in spec is tested without new test code."""
    spec = load_spec(name)
    infos = infer_shapes(spec)
    model = build_model(spec)
    n_params = sum(p.numel() for p in model.parameters())
    n_buffers = sum(b.numel() for k, b in model.named_buffers() if "running" in k)
    assert n_params + n_buffers == totals(infos).params
    assert n_params == totals(infos).trainable
    x = torch.rand(3, *spec.chw)
    out = x
    for info, block in zip(infos, model.blocks, strict=True):
        out = block(out) if info.index else block((x - model.mean) / model.std)
        assert tuple(out.shape[1:]) == info.output_shape, info.name
    assert model(x).shape == (3, infos[-1].output_shape[0])


def test_keras_shapes_cnn_large_and_classic() -> None:
    large = [i.keras_shape for i in infer_shapes(load_spec("cnn-large"))]
    assert large[:8] == ["(None, 28, 28, 32)", "(None, 14, 14, 32)", "(None, 14, 14, 64)",
                         "(None, 7, 7, 64)", "(None, 7, 7, 128)", "(None, 4, 4, 128)",
                         "(None, 4, 4, 256)", "(None, 2, 2, 256)"]
    classic = [i.keras_shape for i in infer_shapes(load_spec("cnn-classic"))]
    assert classic == ["(None, 26, 26, 32)", "(None, 13, 13, 32)", "(None, 5408)", "(None, 100)",
                       "(None, 10)"]


def test_flops_by_hand() -> None:
    spec = spec_from_dict({"layers": [{"Conv2D": {"filters": 4, "kernel_size": 3}}, "Flatten",
                                      {"Dense": {"units": 10}}]})
    conv, _, dense = infer_shapes(spec)
    assert conv.flops == 2 * 3 * 3 * 1 * 4 * 26 * 26
    assert dense.flops == 2 * 26 * 26 * 4 * 10


def _random_conv_stack(rng: random.Random) -> dict:
    layers = []
    for _ in range(rng.randint(1, 3)):
        layers.append({"Conv2D": {"filters": rng.choice([2, 3]), "kernel_size": rng.choice([1, 2, 3, 5]),
                                  "strides": rng.choice([1, 2]), "padding": "same"}})
        layers.append({rng.choice(["MaxPooling2D", "AveragePooling2D"]):
                       {"pool_size": rng.choice([2, 3]), "padding": rng.choice(["same", "valid"]),
                        "strides": rng.choice([None, 1, 2])}})
    layers += ["Flatten", {"Dense": {"units": 10}}]
    return {"input_shape": [rng.randint(9, 17), rng.randint(9, 17), rng.choice([1, 3])], "layers": layers}


def test_same_padding_and_pooling_shapes_agree_with_torch() -> None:
    """Inferred shapes equal what the built module produces, for random stride/pool combos."""
    rng = random.Random(0)
    checked = 0
    for _ in range(60):
        raw = _random_conv_stack(rng)
        try:
            spec = spec_from_dict(raw)
        except ArchtuneError:
            continue  # an impossible stack is rejected before building
        model = build_model(spec)
        out = model(torch.rand(2, *spec.chw))
        assert out.shape == (2, 10)
        checked += 1
    assert checked > 20


def test_avg_pool_same_counts_only_real_pixels() -> None:
    spec = spec_from_dict({"input_shape": [3, 3, 1], "layers": [
        {"AveragePooling2D": {"pool_size": 2, "padding": "same"}}, "Flatten", {"Dense": {"units": 1}}]})
    pool = build_model(spec).blocks[0]
    out = pool(torch.ones(1, 1, 3, 3))
    assert out.shape == (1, 1, 2, 2)
    assert torch.allclose(out, torch.ones_like(out))


@pytest.mark.parametrize("layers, message", [
    ([{"Conv2DD": {"filters": 3, "kernel_size": 3}}], "did you mean 'Conv2D'"),
    ([{"Conv2D": {"filter": 3, "kernel_size": 3}}], "did you mean 'filters'"),
    ([{"Conv2D": {"filters": 3, "kernel_size": 3}}, {"Dense": {"units": 10}}], "add a Flatten"),
    (["Flatten", {"Dropout": {"rate": -0.1}}, {"Dense": {"units": 10}}], "layer 1 (Dropout).rate"),
    ([{"Conv2D": {"filters": 3, "kernel_size": 3, "activation": "rleu"}}], "did you mean 'relu'"),
    ([{"MaxPooling2D": {"pool_size": 2}}] * 5 + ["Flatten", {"Dense": {"units": 10}}], "layer 4 (MaxPooling2D)"),
    ([{"Conv2D": {"filters": 3}}], "missing required argument 'kernel_size'"),
    ([{"Conv2D": {"filters": 3, "kernel_size": 3}}], "must end with a flat output"),
])
def test_bad_specs_name_the_layer_and_problem(layers: list, message: str) -> None:
    with pytest.raises(ArchtuneError, match=None) as err:
        spec_from_dict({"layers": layers})
    assert message in str(err.value)


def test_bad_train_section_gets_suggestion() -> None:
    with pytest.raises(ArchtuneError, match="did you mean 'lr'"):
        load_spec("cnn-small", ["train.lrr=0.1"])
    with pytest.raises(ArchtuneError, match="optimizer.*did you mean 'adam'"):
        load_spec("cnn-small", ["train.optimizer=adma"])
    with pytest.raises(ArchtuneError, match="did you mean 'cnn-small'"):
        load_spec("cnn-smal")


def test_overrides_and_round_trip(tmp_path) -> None:
    spec = load_spec("cnn-classic", ["train.lr=0.05", "train.augment.hflip=true"])
    assert spec.train.lr == 0.05 and spec.train.augment.hflip
    again = spec_from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again.to_dict() == spec.to_dict()
    path = tmp_path / "mine.yaml"
    path.write_text(spec.to_yaml())
    assert load_spec(path).to_dict() == spec.to_dict()


def test_softmax_on_last_layer_is_folded_into_the_loss() -> None:
    model = build_model(load_spec("mlp-small"))
    out = model(torch.rand(4, 1, 28, 28))
    assert not torch.allclose(out.sum(1), torch.ones(4))  # logits, not probabilities
    assert torch.allclose(model.predict_proba(torch.rand(4, 1, 28, 28)).sum(1), torch.ones(4))


def test_he_uniform_bounds() -> None:
    model = build_model(load_spec("cnn-classic"))
    w = model.blocks[0][0].weight if isinstance(model.blocks[0], torch.nn.Sequential) else model.blocks[0].weight
    assert w.abs().max() <= math.sqrt(6 / 9) + 1e-6
    assert w.abs().max() > 0.5 * math.sqrt(6 / 9)


def test_units_classes_is_bound_to_the_data_and_written_back() -> None:
    """``units: classes``: 10 in summaries until bound; bound specs are concrete (what a run saves)."""
    raw = {"name": "c", "layers": ["Flatten", {"Dense": {"units": "classes", "activation": "softmax"}}]}
    spec = spec_from_dict(raw)
    assert spec.class_layers == (1,) and totals(infer_shapes(spec)).params == 784 * 10 + 10
    assert spec.to_dict()["layers"][1]["Dense"]["units"] == "classes"
    assert spec_from_dict(spec.to_dict()).to_dict() == spec.to_dict()  # round trip keeps it
    five = spec.for_classes(5)
    assert five.class_layers == () and five.to_dict()["layers"][1]["Dense"]["units"] == 5
    assert totals(infer_shapes(five)).params == 784 * 5 + 5
    assert five.for_classes(3) is five  # bound for good: a mismatch is check_fits's to report
    assert "Dense layer 1: units: classes, counted as 10" in summary(spec)
    assert "units: classes" not in summary(five)
    assert spec_from_dict({"layers": ["Flatten", {"type": "Linear", "units": "classes"}]},
                          classes=3).to_dict()["layers"][1]["Dense"]["units"] == 3
    assert spec_from_dict({"layers": ["Flatten", {"Dense": "classes"}]}).class_layers == (1,)
    for name in list_specs():  # every built-in fits any number of classes
        assert load_spec(name).class_layers, name
    with pytest.raises(ArchtuneError, match=r"layer 1 \(Dense\)\.units.*did you mean 'classes'"):
        spec_from_dict({"layers": ["Flatten", {"Dense": {"units": "clases"}}]})
    nested = {"layers": ["Flatten", {"Residual": {"layers": [{"Dense": {"units": "classes"}}]}}]}
    with pytest.raises(ArchtuneError, match="top-level list only"):
        spec_from_dict(nested)
