from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch

from archtune import ArchtuneError, load_run, train
from archtune.config import AugmentConfig, TrainConfig
from archtune.training import load_checkpoint
from archtune.training.augment import augment, erase, translate
from archtune.training.optim import lr_factor

TINY = {
    "name": "tiny",
    "layers": [
        {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 4}},
        {"BatchNormalization": {}},
        "Flatten",
        {"Dropout": {"rate": 0.1}},
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 3},
}


def tiny(**train_overrides) -> dict:
    raw = json.loads(json.dumps(TINY))
    raw["train"].update(train_overrides)
    return raw


def test_run_folder_contents_and_reload(tiny_splits, tmp_path: Path) -> None:
    run = train(tiny(), splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    for name in ("spec.yaml", "env.json", "history.csv", "grad_norms.csv", "best.pt", "metrics.json"):
        assert (run.path / name).is_file(), name
    assert run.status == "complete" and run.metrics["epochs_run"] == 3
    assert len(run.history_rows) == 3
    assert run.history_rows[-1]["dev_accuracy"] > 0.5  # the synthetic task is learnable
    env = json.loads((run.path / "env.json").read_text())
    assert env["precision"] in ("fp32", "bf16") and env["seed"] == 0 and "torch" in env
    # checkpoint/restore: the reloaded best weights give the same outputs
    x = tiny_splits.dev.x[:16]
    with torch.no_grad():
        expected = run.load_model()(x)
    again = load_run(run.path).load_model()
    with torch.no_grad():
        assert torch.allclose(again(x), expected, atol=1e-5)
    model, ckpt = load_checkpoint(run.path / "best.pt")
    assert ckpt["classes"] == tiny_splits.classes and ckpt["epoch"] == run.metrics["best_epoch"]


def test_same_seed_same_history(tiny_splits, tmp_path: Path) -> None:
    spec = tiny(augment={"hflip": True, "translate": 2, "erase": 0.5})
    a = train(spec, splits=tiny_splits, run_dir=tmp_path / "a", progress=False)
    b = train(spec, splits=tiny_splits, run_dir=tmp_path / "b", progress=False)
    c = train(tiny(seed=1, augment={"hflip": True, "translate": 2, "erase": 0.5}),
              splits=tiny_splits, run_dir=tmp_path / "c", progress=False)
    keys = ("train_loss", "dev_loss", "dev_accuracy")
    assert [[h[k] for k in keys] for h in a.history_rows] == [[h[k] for k in keys] for h in b.history_rows]
    assert [h["train_loss"] for h in a.history_rows] != [h["train_loss"] for h in c.history_rows]


def test_early_stopping_restores_best(tiny_splits, tmp_path: Path) -> None:
    # a huge constant lr makes the dev loss blow up after the first epochs
    run = train(tiny(lr=5.0, optimizer="sgd", epochs=12, patience=2), splits=tiny_splits,
                run_dir=tmp_path / "r", progress=False)
    assert run.metrics["stopped_early"]
    assert run.metrics["epochs_run"] == run.metrics["best_epoch"] + 2
    best = min(h["dev_loss"] for h in run.history_rows)
    assert run.metrics["best"]["dev_loss"] == pytest.approx(best)


def test_interrupt_leaves_valid_run(tiny_splits, tmp_path: Path) -> None:
    def stop(epoch: int, row: dict) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(tiny(), splits=tiny_splits, run_dir=tmp_path / "r", progress=False, epoch_callback=stop)
    run = load_run(tmp_path / "r")
    assert run.status == "interrupted" and run.metrics["epochs_run"] == 2
    assert run.load_model()(tiny_splits.dev.x[:2]).shape == (2, 10)


def test_existing_run_folder_is_not_overwritten(tiny_splits, tmp_path: Path) -> None:
    train(tiny(epochs=1), splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    before = (tmp_path / "r" / "metrics.json").read_text()
    with pytest.raises(ArchtuneError, match="already holds a run"):
        train(tiny(epochs=1), splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    assert (tmp_path / "r" / "metrics.json").read_text() == before


def test_mismatched_classes_or_shape(tiny_splits, tmp_path: Path) -> None:
    raw = tiny()
    raw["layers"][-1] = {"Dense": {"units": 7}}
    with pytest.raises(ArchtuneError, match="units: 10"):
        train(raw, splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    raw = tiny()
    raw["input_shape"] = [32, 32, 3]
    with pytest.raises(ArchtuneError, match=r"input_shape: \[28, 28, 1\]"):
        train(raw, splits=tiny_splits, run_dir=tmp_path / "r2", progress=False)


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "step"), ("adamw", "cosine"),
                                                 ("rmsprop", "onecycle"), ("adam", "constant")])
def test_optimizers_and_schedules_train(tiny_splits, tmp_path: Path, optimizer: str, schedule: str) -> None:
    lr = {"sgd": 0.05, "adamw": 0.01, "rmsprop": 0.001, "adam": 0.01}[optimizer]
    run = train(tiny(optimizer=optimizer, schedule=schedule, lr=lr, step_size=1, epochs=3,
                     weight_decay=1e-4, label_smoothing=0.1),
                splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    assert run.history_rows[-1]["train_loss"] < run.history_rows[0]["train_loss"]
    lrs = [h["lr"] for h in run.history_rows]
    if schedule == "constant":
        assert lrs == [lr] * 3
    elif schedule == "step":
        assert lrs == pytest.approx([lr, lr * 0.1, lr * 0.01])
    else:
        assert lrs[-1] < max(lrs)


def test_lr_factor_shapes() -> None:
    cfg = TrainConfig(schedule="onecycle", epochs=10, warmup_frac=0.25)
    f = [lr_factor(cfg, s, 1000, 100) for s in range(1000)]
    assert f[0] == pytest.approx(0.04) and max(f) == pytest.approx(1.0, abs=1e-3)
    assert f.index(max(f)) == 250 and f[-1] < 1e-3
    cos = TrainConfig(schedule="cosine", epochs=10)
    assert lr_factor(cos, 500, 1000, 100) == pytest.approx(0.5)


def test_augmentations_are_per_image_and_shape_preserving() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    out = translate(x, 3, gen)
    assert out.shape == x.shape
    assert torch.allclose(out.sum((1, 2, 3)), x.sum((1, 2, 3)))  # the square is never cut off
    centres = (out[:, 0].nonzero()[:, 1:].float()).view(64, -1, 2).mean(1)
    assert len({tuple(c.tolist()) for c in centres}) > 10  # shifts differ between images
    assert (out.sum((1, 2, 3)) > 0).all()
    erased = erase(torch.ones(200, 1, 28, 28), 0.5, gen)
    hit = (erased == 0).flatten(1).any(1).float().mean().item()
    assert 0.35 < hit < 0.65
    flipped = augment(torch.arange(28.0).expand(100, 1, 28, 28), AugmentConfig(hflip=True), gen)
    n_flipped = (flipped[:, 0, 0, 0] == 27).sum().item()
    assert 25 < n_flipped < 75


def test_grad_norms_recorded_per_layer(tiny_splits, tmp_path: Path) -> None:
    run = train(tiny(epochs=2, grad_norm_every=1), splits=tiny_splits, run_dir=tmp_path / "r",
                progress=False)
    assert len(run.grad_norms) == 2
    layers = [k for k in run.grad_norms[0] if k != "epoch"]
    assert layers == ["conv2d_0", "dense_5"]
    assert all(run.grad_norms[0][k] > 0 for k in layers)


def test_bf16_precision_is_recorded_and_trains(tiny_splits, tmp_path: Path) -> None:
    run = train(tiny(epochs=2, precision="bf16"), splits=tiny_splits, run_dir=tmp_path / "r",
                progress=False)
    env = json.loads((run.path / "env.json").read_text())
    assert env["precision"] == "bf16" and env["precision_reason"] == "requested"
    assert run.history_rows[-1]["train_loss"] < run.history_rows[0]["train_loss"]


def test_auto_precision_falls_back_to_fp32_without_native_bf16(monkeypatch) -> None:
    from archtune.training import device

    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert device.resolve_precision("auto", torch.device("cpu"))[0] == "fp32"
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert device.resolve_precision("auto", torch.device("cpu")) == ("bf16", "auto: cpu supports bf16")
    with pytest.raises(ArchtuneError, match="no CUDA device") if not torch.cuda.is_available() else _noop():
        device.pick_device("cuda")


def test_thread_counts_out_of_range_are_refused(monkeypatch, capsys) -> None:
    from archtune.training import device
    from tests._cli import run_cli

    before = torch.get_num_threads()
    for bad in (0, -3, 10**20, True):
        with pytest.raises(ArchtuneError, match="threads: expected 1 to 4096"):
            device.set_threads(bad)
    monkeypatch.setenv("ARCHTUNE_THREADS", "two")
    with pytest.raises(ArchtuneError, match="ARCHTUNE_THREADS: expected a whole number.*two"):
        device.set_threads(None)
    monkeypatch.setenv("ARCHTUNE_THREADS", "0")
    with pytest.raises(ArchtuneError, match="ARCHTUNE_THREADS: expected 1 to 4096"):
        device.set_threads(None)
    assert torch.get_num_threads() == before  # nothing was set
    code, _, err = run_cli(["train", "--threads", "99999999999999999999"], capsys)
    assert code == 2 and "--threads" in err and "Traceback" not in err


def test_the_bf16_check_forgives_a_few_images_on_a_small_dev_split() -> None:
    from archtune.training.trainer import bf16_tolerance

    assert bf16_tolerance(12_000) == 0.005  # 60 images
    assert bf16_tolerance(600) == 0.005
    assert bf16_tolerance(240) == 3 / 240  # 2 images (0.83 points) no longer fall back to fp32
    assert bf16_tolerance(0) == 3.0


class _noop:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_auto_bf16_is_checked_against_fp32_after_epoch_one(tiny_splits, tmp_path: Path, monkeypatch) -> None:
    trainer = importlib.import_module("archtune.training.trainer")

    monkeypatch.setattr(trainer, "resolve_precision", lambda req, dev: ("bf16", "auto: cpu supports bf16"))
    run = train(tiny(epochs=2), splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    env = json.loads((run.path / "env.json").read_text())
    check = env["bf16_check"]
    assert set(check) == {"dev_accuracy_bf16", "dev_accuracy_fp32", "tolerance"}
    assert check["tolerance"] == trainer.bf16_tolerance(len(tiny_splits.dev.y))
    agree = abs(check["dev_accuracy_bf16"] - check["dev_accuracy_fp32"]) <= check["tolerance"]
    assert env["precision"] == ("bf16" if agree else "fp32")
