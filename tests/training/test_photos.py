"""Recipe keys for photos and unequal classes: random resized crops, colour jitter and
``train.balance`` (loss weights or a class-balanced sampler); a folder run records its data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import archtune.training.loop as loop
from archtune.config import AugmentConfig, TrainConfig, train_config
from archtune.errors import ArchtuneError
from archtune.specs import spec_from_dict
from archtune.training import train
from archtune.training.augment import augment, color_jitter, resized_crop
from archtune.training.loop import class_weights, epoch_order


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_resized_crop_zooms_per_image() -> None:
    x = torch.linspace(0, 1, 16).repeat(4, 3, 16, 1)  # a horizontal ramp
    out = resized_crop(x, [0.25, 0.5], [1.0, 1.0], _gen())
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1
    spans = out[:, 0, 8, -1] - out[:, 0, 8, 0]
    assert (spans < 0.8).all()  # each shows a part of the ramp, stretched
    assert len(set(spans.round(decimals=3).tolist())) > 1  # a box of its own per image
    same = resized_crop(x, [1.0, 1.0], [1.0, 1.0], _gen())
    assert torch.allclose(same, x, atol=1e-5)  # the whole image: unchanged


def test_color_jitter_ranges_and_grey() -> None:
    x = torch.rand(8, 3, 6, 6)
    out = color_jitter(x, 0.4, 0.4, 0.4, _gen())
    assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1 and not torch.equal(out, x)
    grey = torch.rand(8, 1, 6, 6)
    assert torch.equal(color_jitter(grey, 0, 0, 0.9, _gen()), grey)  # no saturation of grey
    assert torch.equal(color_jitter(x, 0, 0, 0, _gen()), x)


def test_augment_keys_default_off_and_seeded() -> None:
    cfg = AugmentConfig()
    assert cfg.crop.scale is None and not cfg.color_jitter.active and not cfg.active
    on = train_config({"augment": {"crop": {"scale": [0.5, 1.0]},
                                   "color_jitter": {"brightness": 0.2, "saturation": 0.3}}}).augment
    assert on.active
    x = torch.rand(5, 3, 8, 8)
    assert torch.equal(augment(x, on, _gen(1)), augment(x, on, _gen(1)))


@pytest.mark.parametrize("raw, message", [
    ({"augment": {"crop": {"scale": [0.8, 0.5]}}}, r"train.augment.crop.scale: must be \[min, max\]"),
    ({"augment": {"color_jitter": {"contrast": 2}}}, r"train.augment.color_jitter.contrast: must be in"),
    ({"augment": {"color_jiter": {}}}, r"did you mean 'color_jitter'"),
    ({"balance": "weight"}, r"train.balance.*did you mean 'weights'"),
])
def test_bad_keys_are_named(raw: dict, message: str) -> None:
    with pytest.raises(ArchtuneError, match=message):
        train_config(raw)


def test_class_weights_inverse_frequency() -> None:
    w = class_weights(torch.tensor([0] * 30 + [1] * 10))
    assert torch.allclose(w, torch.tensor([40 / 60, 40 / 20]))
    assert torch.allclose(class_weights(torch.tensor([0, 1, 2])), torch.ones(3))


def test_sampler_draws_classes_equally() -> None:
    y = torch.tensor([0] * 900 + [1] * 100)
    order = epoch_order(y, "sampler", _gen())
    assert len(order) == 1000
    share = (y[order] == 1).float().mean().item()
    assert 0.44 < share < 0.56  # about half, where a shuffle gives 10%
    plain = epoch_order(y, "none", _gen())
    assert sorted(plain.tolist()) == list(range(1000))


def _tiny(balance: str) -> tuple[torch.Tensor, torch.Tensor, TrainConfig]:
    torch.manual_seed(0)
    x, y = torch.rand(40, 1, 4, 4), torch.tensor([0] * 30 + [1] * 10)
    return x, y, train_config({"balance": balance, "batch_size": 8, "grad_norm_every": 0})


def test_weights_reach_the_loss(monkeypatch) -> None:
    seen: list[torch.Tensor | None] = []
    real = F.cross_entropy

    def spy(*args, **kwargs):
        seen.append(kwargs.get("weight"))
        return real(*args, **kwargs)

    monkeypatch.setattr(loop.F, "cross_entropy", spy)
    for balance in ("weights", "none"):
        x, y, cfg = _tiny(balance)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        sched = torch.optim.lr_scheduler.ConstantLR(opt, factor=1.0)
        loop.train_epoch(model, x, y, cfg, opt, sched, _gen(), precision="fp32", channels_last=False)
    weighted, plain = seen[:5], seen[5:]
    assert all(w is not None and torch.allclose(w, torch.tensor([40 / 60, 2.0])) for w in weighted)
    assert all(w is None for w in plain)


def _photos(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for k, (cls, n) in enumerate((("a", 9), ("b", 3))):
        (root / cls).mkdir(parents=True)
        for i in range(n):
            h, w = rng.integers(10, 20, 2)
            a = np.full((h, w, 3), 40 + 150 * k, dtype=np.uint8)
            Image.fromarray(a).save(root / cls / f"{i}.png")
    (root / "b" / "broken.png").write_bytes(b"not a png")
    return root


def test_folder_run_records_its_data(tmp_path: Path) -> None:
    spec = spec_from_dict({"name": "photo", "layers": [
        {"Conv2D": {"filters": 2, "kernel_size": 3}}, {"AdaptiveAvgPooling2D": 2}, "Flatten",
        {"Dense": "classes"}],
        "train": {"epochs": 1, "batch_size": 4, "balance": "sampler", "precision": "fp32",
                  "augment": {"crop": {"scale": [0.6, 1.0]}, "color_jitter": {"brightness": 0.2}}},
        "data": {"dataset": str(_photos(tmp_path / "photos")), "skip_bad_files": True,
                 "resize": "crop", "dev_fraction": 0.25}})
    run = train(spec, run_dir=tmp_path / "run", progress=False, device="cpu")
    data = json.loads((tmp_path / "run" / "metrics.json").read_text())["data"]
    assert data["skipped_files"]["count"] == 1 and "broken.png" in data["skipped_files"]["first"][0]
    assert data["size_policy"] == "median" and data["resize"] == "crop" and data["channels"] == 3
    h, w = data["image_size"]
    assert run.spec.input_shape == (h, w, 3) and not run.spec.input_auto
    assert run.spec.data.resize == "crop"
