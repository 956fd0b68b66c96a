"""ONNX and TorchScript exports: same outputs as PyTorch, metadata carried along."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from archtune import ArchtuneError, build_model, load_spec
from archtune.serve import Predictor, export_model, read_torchscript_metadata
from archtune.serve.export import TOLERANCE, check_images
from archtune.training import Run


def _check_metadata(meta: dict[str, str], predictor: Predictor) -> None:
    assert json.loads(meta["classes"]) == predictor.classes
    assert json.loads(meta["input_shape"]) == [28, 28, 1]
    assert json.loads(meta["mean"]) == pytest.approx(predictor.model.mean.flatten().tolist())
    assert json.loads(meta["std"]) == pytest.approx(predictor.model.std.flatten().tolist())
    assert "inverted" in meta["preprocessing"] and meta["background"] == "dark"
    assert json.loads(meta["spec"])["name"] == predictor.name


def test_onnx_export_matches_pytorch_and_carries_metadata(tiny_run: Run, tmp_path: Path) -> None:
    predictor = Predictor.from_run(tiny_run.path)
    result = export_model(predictor, "onnx", tmp_path / "m.onnx")
    assert result.ok and result.n_checked == 256 and result.max_abs_diff < TOLERANCE
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    _check_metadata(session.get_modelmeta().custom_metadata_map, predictor)
    x = check_images(predictor, 7, seed=3)  # a batch size never seen at export
    logits, probs = session.run(["logits", "probabilities"], {"image": x.numpy()})
    assert logits.shape == (7, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(probs, predictor.probabilities(x), atol=TOLERANCE)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_export_matches_pytorch_and_carries_metadata(tiny_run: Run) -> None:
    result = export_model(tiny_run.path, "torchscript")  # default path: in the run folder
    assert result.path == tiny_run.path / "model.torchscript.pt" and result.ok
    predictor = Predictor.from_run(tiny_run.path)
    _check_metadata(read_torchscript_metadata(result.path), predictor)
    loaded = torch.jit.load(str(result.path))
    x = check_images(predictor, 5, seed=4)
    with torch.inference_mode():
        assert torch.allclose(loaded(x).softmax(1), loaded.predict_proba(x))
        np.testing.assert_allclose(loaded.predict_proba(x).numpy(), predictor.probabilities(x),
                                   atol=TOLERANCE)


@pytest.mark.parametrize("name", ["cnn-large", "cnn-classic", "resnet-20"])
def test_exports_of_other_architectures(name: str, tmp_path: Path) -> None:
    """'same' pooling (pads with -inf), valid convs, Dense stacks, residual blocks with identity
    and projection shortcuts: all survive export."""
    spec = load_spec(name)
    torch.manual_seed(0)
    model = build_model(spec, [0.3], [0.35])
    for m in model.modules():  # BatchNorm statistics as after training, not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    predictor = Predictor(model, [f"k{i}" for i in range(10)], spec)
    x = check_images(predictor, 64)
    for fmt in ("onnx", "torchscript"):
        result = export_model(predictor, fmt, tmp_path / f"m.{fmt}", check=x)
        assert result.ok, result.describe()


def test_export_errors(tiny_run: Run) -> None:
    with pytest.raises(ArchtuneError, match="unknown export format 'tflite'"):
        export_model(tiny_run.path, "tflite")
    with pytest.raises(ArchtuneError, match="give an output path"):
        export_model(tiny_run.path / "best.pt", "onnx")


@pytest.mark.slow
def test_exports_agree_on_1000_real_test_images(tiny_run: Run, real_test_images: tuple,
                                                tmp_path: Path) -> None:
    """The acceptance check: same argmax on all 1,000 images, probabilities within 1e-4."""
    x_u8, _, _ = real_test_images
    x = torch.from_numpy(x_u8).float().div(255)[:, None]
    predictor = Predictor.from_run(tiny_run.path)
    for fmt in ("onnx", "torchscript"):
        result = export_model(predictor, fmt, tmp_path / f"m.{fmt}", check=x)
        assert result.n_checked == 1000 and result.argmax_agree == 1000
        assert result.max_abs_diff < 1e-4
