"""The recipe techniques of fast small-CNN trainers, each a ``train:`` key, off by default."""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import yaml

from archtune import ArchtuneError, build_model, load_spec, train
from archtune.config import TrainConfig
from archtune.specs import spec_from_dict
from archtune.training import load_checkpoint
from archtune.training.augment import alternating_flips, shift
from archtune.training.ema import WeightAverage
from archtune.training.inits import dirac_init, whiten_init
from archtune.training.loop import loss_and_accuracy, predict_log_probs, predict_logits
from archtune.training.optim import lr_factor, make_optimizer
from archtune.training.techniques import Techniques, resolve_flips

from .test_train import tiny

NEW_KEYS = {"tta_translate": 0, "ema": 0.0, "norm_lr": 1.0, "norm_weight_decay": True,
            "whiten": False, "dirac_init": False, "compile": False}


def test_new_keys_are_off_by_default_and_checked() -> None:
    cfg = TrainConfig()
    assert {k: getattr(cfg, k) for k in NEW_KEYS} == NEW_KEYS and not cfg.augment.alternate_flip
    for key, value, message in [
        ("ema", 0.2, "train.ema: must be 0 .off. or a decay in .0.5, 1."),
        ("tta_translate", 9, "train.tta_translate: must be between 0 and 4"),
        ("norm_lr", 0, "train.norm_lr: must be > 0"),
        ("tta", "sometimes", "train.tta: expected true, false or auto, got 'sometimes'"),
        ("schedule", "triangle", "unknown value 'triangle'.*did you mean 'triangular'"),
        ("emma", 0.9, "unknown key 'emma'.*did you mean 'ema'"),
    ]:
        with pytest.raises(ArchtuneError, match=message):
            load_spec("cnn-small", [f"train.{key}={json.dumps(value)}"])


@pytest.mark.parametrize("dataset, hflip, tta, expected", [
    ("fashion-mnist", "auto", "auto", (True, True)),
    ("mnist", "auto", "auto", (False, False)),
    ("my_digits.npz", "auto", "auto", (False, False)),
    ("mnist", True, "auto", (True, True)),  # the user said so
    ("fashion-mnist", "auto", False, (True, False)),
])
def test_flips_auto_follow_the_data_set(dataset: str, hflip, tta, expected) -> None:
    spec = load_spec("cnn-small", [f"data.dataset={dataset}", f"train.augment.hflip={hflip}",
                                   f"train.tta={tta}"])
    cfg = resolve_flips(spec).train
    assert (cfg.augment.hflip, cfg.tta) == expected


def test_a_run_saves_the_decided_flips(tiny_splits, tmp_path: Path) -> None:
    raw = tiny(epochs=1, augment={"hflip": "auto"}, tta="auto")
    raw["data"] = {"dataset": "mnist"}
    run = train(raw, splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    saved = yaml.safe_load((run.path / "spec.yaml").read_text())["train"]
    assert saved["augment"]["hflip"] is False and saved["tta"] is False
    assert run.spec.train.augment.hflip is False


def test_alternating_flips_mirror_each_image_every_other_epoch() -> None:
    spec = spec_from_dict(tiny(augment={"hflip": True, "alternate_flip": True}))
    gen = torch.Generator().manual_seed(0)
    tech = Techniques(build_model(spec), spec.train, torch.rand(1000, 1, 28, 28), gen)
    e1, e2, e3 = (tech.flips(e) for e in (1, 2, 3))
    assert torch.equal(e1, e3) and torch.equal(e1, ~e2)
    assert 400 < int(e1.sum()) < 600
    off = spec_from_dict(tiny(augment={"hflip": True}))
    assert Techniques(build_model(off), off.train, torch.rand(10, 1, 28, 28), gen).flips(1) is None
    assert torch.equal(alternating_flips(torch.tensor([True, False]), 4), torch.tensor([False, True]))


def test_training_mirrors_the_images_alternate_flips_choose(tiny_splits, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from archtune.training import loop, trainer

    seen = []

    def spy(x, cfg, gen, flip=None):  # noqa: ANN001, ANN202
        seen.append(flip)
        return augment(x, cfg, gen, flip)

    augment = loop.augment
    monkeypatch.setattr(loop, "augment", spy)
    epochs = []
    real = trainer.train_epoch
    monkeypatch.setattr(trainer, "train_epoch", lambda *a, **kw: epochs.append(kw["flips"]) or real(*a, **kw))
    train(tiny(epochs=2, augment={"hflip": True, "alternate_flip": True}), splits=tiny_splits,
          run_dir=tmp_path / "r", progress=False)
    assert torch.equal(epochs[0], ~epochs[1]) and len(epochs[0]) == len(tiny_splits.train.y)
    assert all(f is not None and len(f) == 32 for f in seen)  # each batch got its images' flips


def test_moving_average_follows_the_weights() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    avg = WeightAverage(model, 0.5)
    start = model.weight.detach().clone()
    avg.update()  # the first update copies
    with torch.no_grad():
        model.weight.add_(1.0)
    avg.update()  # decay warms up: min(0.5, (1 + 1) / (10 + 1)) = 2/11 kept
    expected = start * 2 / 11 + (start + 1.0) * 9 / 11
    assert torch.allclose(avg.model.weight, expected)
    assert avg.model is not model


def test_the_moving_average_is_evaluated_and_saved(tiny_splits, tmp_path: Path) -> None:
    raws = {}

    def keep_raw(epoch: int, row: dict) -> None:
        raws[epoch] = copy.deepcopy(model.state_dict())

    spec = spec_from_dict(tiny(ema=0.9, epochs=2, monitor="dev_accuracy"))
    torch.manual_seed(0)
    model = build_model(spec)
    run = train(spec, splits=tiny_splits, run_dir=tmp_path / "r", progress=False, model=model,
                epoch_callback=keep_raw)
    saved, ckpt = load_checkpoint(run.path / "best.pt")
    best = ckpt["epoch"]
    loss, _ = loss_and_accuracy(predict_logits(saved, tiny_splits.dev.x), tiny_splits.dev.y)
    assert loss == pytest.approx(run.history_rows[best - 1]["dev_loss"], abs=2e-3)
    raw_w = raws[best]["blocks.conv2d_0.0.weight"].cpu()  # trained where the run ran (CUDA too)
    saved_w = saved.state_dict()["blocks.conv2d_0.0.weight"]
    assert not torch.allclose(raw_w, saved_w)  # the average, not the trained weights


def test_batchnorm_parameters_get_their_own_lr_and_decay() -> None:
    spec = spec_from_dict(tiny(optimizer="sgd", lr=0.1, weight_decay=0.01, norm_lr=64))
    model = build_model(spec)
    bn = {id(p) for p in model.blocks[2].parameters()}
    groups = make_optimizer(model, spec.train).param_groups
    assert [len(g["params"]) for g in groups] == [4, 2]
    assert {id(p) for p in groups[1]["params"]} == bn
    assert (groups[1]["lr"], groups[1]["weight_decay"]) == pytest.approx((6.4, 0.01 / 64))
    assert (groups[0]["lr"], groups[0]["weight_decay"]) == (0.1, 0.01)
    no_decay = spec_from_dict(tiny(weight_decay=0.01, norm_weight_decay=False))
    groups = make_optimizer(build_model(no_decay), no_decay.train).param_groups
    assert groups[1]["weight_decay"] == 0.0 and groups[1]["lr"] == groups[0]["lr"]
    assert len(make_optimizer(model, TrainConfig()).param_groups) == 1


def test_triangular_schedule() -> None:
    cfg = TrainConfig(schedule="triangular", warmup_frac=0.25)
    f = [lr_factor(cfg, s, 100, 10) for s in range(101)]
    assert f[0] == pytest.approx(0.2) and f[25] == pytest.approx(1.0) and f[100] == 0.0
    assert f[10] == pytest.approx(0.2 + 0.8 * 10 / 25) and f[60] == pytest.approx(1 - 35 / 75)


def test_shift_tta_averages_shifted_views() -> None:
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    assert shift(x, 1, 1)[0, 0, 3, 3] == 1.0 and shift(x, -2, 0)[0, 0, 0, 2] == 1.0
    torch.manual_seed(0)
    model = build_model(spec_from_dict(tiny())).eval()
    imgs = torch.rand(6, 1, 28, 28)

    def p(v: torch.Tensor, flip: bool) -> torch.Tensor:
        q = model(v).softmax(1)
        return (q + model(v.flip(3)).softmax(1)) / 2 if flip else q

    with torch.no_grad():
        for flip in (False, True):
            expected = p(imgs, flip) / 2 + (p(shift(imgs, 1, 1), flip) + p(shift(imgs, -1, -1), flip)) / 4
            got = predict_log_probs(model, imgs, tta=flip, tta_translate=1).exp()
            assert torch.allclose(got, expected, atol=1e-5)


def _whiten_spec(filters: int, first: dict | None = None) -> dict:
    conv = first or {"Conv2D": {"filters": filters, "kernel_size": 2, "use_bias": False}}
    return {"input_shape": [12, 12, 1], "layers": [conv, "Flatten", {"Dense": 2}],
            "train": {"whiten": True}}


def test_whitening_decorrelates_the_patches() -> None:
    torch.manual_seed(0)
    x = torch.rand(300, 1, 12, 12)
    x = x + torch.roll(x, 1, dims=3)  # neighbouring pixels correlate
    model = build_model(spec_from_dict(_whiten_spec(8)))
    whiten_init(model, x)
    conv = model.blocks[0]
    assert not conv.weight.requires_grad
    with torch.no_grad():
        out = conv((x - model.mean) / model.std)[:, :4].permute(0, 2, 3, 1).reshape(-1, 4)
    cov = out.T @ out / len(out)
    assert torch.allclose(cov, torch.eye(4), atol=0.02)  # whitened: unit variance, uncorrelated
    assert torch.allclose(conv.weight[4:], -conv.weight[:4])
    for spec, message in [(_whiten_spec(9), "needs an even number of filters up to 8"),
                          (_whiten_spec(10), "needs an even number of filters up to 8"),
                          (_whiten_spec(0, "Flatten"), "layer 0 must be a Conv2D, not Flatten")]:
        with pytest.raises(ArchtuneError, match=message):
            whiten_init(build_model(spec_from_dict(spec)), x)


def test_dirac_init_passes_the_input_through() -> None:
    spec = spec_from_dict({"input_shape": [6, 6, 3], "layers": [
        {"Conv2D": {"filters": 5, "kernel_size": 3, "padding": "same", "use_bias": False}},
        "Flatten", {"Dense": 2}]})
    model = build_model(spec)
    assert dirac_init(model) == 1
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        y = model.blocks[0](x)
    assert torch.allclose(y[:, :3], x) and not torch.allclose(y[:, 3:], torch.zeros_like(y[:, 3:]))


def test_all_techniques_together_still_learn(tiny_splits, tmp_path: Path) -> None:
    raw = tiny(optimizer="sgd", nesterov=True, lr=0.05, epochs=4, schedule="triangular",
               ema=0.9, norm_lr=4, norm_weight_decay=False, weight_decay=5e-4, dirac_init=True,
               whiten=True, augment={"hflip": "auto", "alternate_flip": True, "translate": 1},
               tta="auto", tta_translate=1)
    raw["layers"][0] = {"Conv2D": {"filters": 8, "kernel_size": 2, "padding": "same"}}
    run = train(raw, splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    assert run.history_rows[-1]["dev_accuracy"] > 0.5
    assert run.spec.train.augment.hflip is True and run.spec.train.tta is True


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_training_matches_eager(tmp_path: Path) -> None:
    """torch.compile changes speed, not results (compiling takes about a minute on 2 cores)."""
    from tests.conftest import make_splits, unavailable

    if not (os.environ.get("CXX") or shutil.which("g++")):  # what torch's inductor runs on the CPU
        unavailable("torch.compile needs a C++ compiler: g++ on PATH, or $CXX (scripts/services.sh "
                    "installs g++)")

    splits = make_splits(64, 32)
    raw = tiny(epochs=1, precision="fp32")  # fp32, no dropout: compiled kernels draw other masks
    raw["layers"] = [layer for layer in raw["layers"] if "Dropout" not in layer]
    runs = [train(raw | {"train": raw["train"] | {"compile": c}}, splits=splits,
                  run_dir=tmp_path / str(c), progress=False) for c in (False, True)]
    eager, compiled = (r.history_rows[0] for r in runs)
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-2)  # fused kernels round differently
    assert compiled["dev_loss"] == pytest.approx(eager["dev_loss"], rel=1e-2)


def test_gradient_norms_reach_layers_inside_blocks(tiny_splits, tmp_path: Path) -> None:
    raw = tiny(epochs=1)
    raw["layers"].insert(1, {"Residual": [{"Conv2D": {"filters": 6, "kernel_size": 3, "padding": "same"}}]})
    run = train(raw, splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    assert set(run.grad_norms[0]) == {"epoch", "conv2d_0", "residual_1.conv2d_0",
                                      "residual_1.shortcut.conv2d_0", "dense_6"}
    assert all(v > 0 for v in run.grad_norms[0].values())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["accurate", "resnet-20"])
def test_builtin_recipes_learn_from_a_small_real_subset(name: str, real_data: Path, tmp_path: Path) -> None:
    """Each new built-in recipe, as shipped but shortened (2 epochs, 1,536 images), learns."""
    spec = load_spec(name, ["train.epochs=2", "train.batch_size=64", "data.train_subset=1536",
                            "data.dev_fraction=0.02"])
    run = train(spec, run_dir=tmp_path / name, progress=False)
    assert run.spec.train.augment.hflip is True  # auto: Fashion-MNIST is mirror-symmetric
    assert run.history_rows[-1]["dev_accuracy"] > 0.3  # chance is 0.1


def test_evaluate_uses_the_runs_shift_tta_unless_told(tiny_splits, tmp_path: Path) -> None:
    from archtune import evaluate

    run = train(tiny(epochs=1, augment={"hflip": True}, tta=True, tta_translate=1), splits=tiny_splits,
                run_dir=tmp_path / "r", progress=False)
    dev = tiny_splits.dev
    model = run.load_model()

    def loss(**kw) -> float:  # cross-entropy of the averaged views: differs with every view set
        return F.cross_entropy(predict_log_probs(model, dev.x, **kw), dev.y).item()

    cases = [({}, 1, loss(tta=True, tta_translate=1)), ({"tta_translate": 0}, 0, loss(tta=True)),
             ({"tta": False}, 0, loss())]
    assert len({round(c[2], 6) for c in cases}) == 3
    for kw, shift_px, expected in cases:
        result = evaluate(run, "dev", data=dev, save=False, **kw)
        assert result["tta_translate"] == shift_px and result["loss"] == pytest.approx(expected)
