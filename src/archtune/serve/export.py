"""Export a run's best model to ONNX or TorchScript, checked against PyTorch.

Both exports take float32 images (N, C, H, W) with pixels in [0, 1] (preprocessed as
:mod:`archtune.serve.preprocess` documents); the per-channel standardisation is inside the
graph. They carry what a user needs besides the weights, as JSON strings under the keys of
:func:`export_metadata` (``classes``, ``input_shape``, ``mean``, ``std``, ``preprocessing``, ...):

* ONNX: ``metadata_props`` of the model; outputs ``logits`` and ``probabilities``, a dynamic
  batch axis. Read with ``onnxruntime.InferenceSession(p).get_modelmeta().custom_metadata_map``.
* TorchScript: the extra file ``archtune.json`` (``torch.jit.load(p, _extra_files=d)`` with
  ``d = {"archtune.json": ""}``); ``forward`` returns logits, ``predict_proba`` probabilities.

After writing, the export is run (onnxruntime / torch.jit.load) on check images and compared
with the PyTorch model: the largest absolute difference of probabilities and the number of
images whose argmax agrees are reported in an :class:`ExportResult`.
"""

from __future__ import annotations

import copy
import json
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._version import __version__
from ..errors import ArchtuneError
from ..training.runs import Run
from .predict import Predictor
from .preprocess import __doc__ as PREPROCESSING_DOC

log = logging.getLogger(__name__)
FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
TOLERANCE = 1e-4  # largest acceptable |p_export - p_torch|
TORCHSCRIPT_META = "archtune.json"


@dataclass
class ExportResult:
    """Where the export went and how closely it matches PyTorch on the check images."""

    path: Path
    format: str
    n_checked: int
    max_abs_diff: float  # of probabilities
    argmax_agree: int

    @property
    def ok(self) -> bool:
        return self.argmax_agree == self.n_checked and self.max_abs_diff < TOLERANCE

    def describe(self) -> str:
        size = self.path.stat().st_size / 1024
        return (f"wrote {self.path} ({size:,.0f} KB, {self.format}); checked against PyTorch on "
                f"{self.n_checked} images: max |difference| of probabilities "
                f"{self.max_abs_diff:.2e}, same argmax on {self.argmax_agree}/{self.n_checked}")


class _WithProbabilities(nn.Module):
    """The model with a second output: softmax probabilities (ONNX graphs carry both)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(x)
        return logits, logits.softmax(dim=1)


def export_metadata(predictor: Predictor) -> dict[str, str]:
    """Key -> string (JSON for structures) describing classes, input and preprocessing."""
    model, fmt = predictor.model, predictor.format
    return {
        "archtune_version": __version__,
        "name": predictor.name,
        "classes": json.dumps(predictor.classes),
        "input_shape": json.dumps([fmt.height, fmt.width, fmt.channels]),
        "input_layout": "float32 (N, C, H, W), pixels in [0, 1]",
        "mean": json.dumps(model.mean.flatten().tolist()),
        "std": json.dumps(model.std.flatten().tolist()),
        "standardisation": "inside the graph: (x - mean) / std per channel",
        "background": fmt.background or "unknown",
        "resize": fmt.resize,
        "outputs": "logits, probabilities",
        "preprocessing": (PREPROCESSING_DOC or "").strip(),
        "spec": json.dumps(predictor.spec.to_dict()),
    }


def _cpu_model(predictor: Predictor) -> nn.Module:
    """A contiguous-format CPU copy of the model (the predictor's own is left as it is)."""
    return copy.deepcopy(predictor.model).to("cpu", memory_format=torch.contiguous_format).eval()


def check_images(predictor: Predictor, n: int = 256, seed: int = 0) -> torch.Tensor:
    """n seeded random images (uniform in [0, 1]) of the model's input shape."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, *predictor.format.chw), generator=gen)


def _compare(reference: np.ndarray, other: np.ndarray) -> tuple[float, int]:
    diff = float(np.abs(reference - other).max()) if len(reference) else 0.0
    return diff, int((reference.argmax(1) == other.argmax(1)).sum())


def _onnx_probabilities(path: Path, x: np.ndarray, batch: int = 256) -> np.ndarray:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(["probabilities"], {"image": x[i:i + batch]})[0]
                           for i in range(0, len(x), batch)])


def export_onnx(predictor: Predictor, path: str | Path, *, check: torch.Tensor | None = None,
                opset: int = 17) -> ExportResult:
    """Write an ONNX model with metadata, check it with onnxruntime (see the module doc)."""
    import onnx

    path = Path(path)
    model = _WithProbabilities(_cpu_model(predictor)).eval()
    example = torch.zeros((2, *predictor.format.chw))
    axes = {"image": {0: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notice
        torch.onnx.export(model, (example,), str(path), input_names=["image"],
                          output_names=["logits", "probabilities"], dynamic_axes=axes,
                          opset_version=opset, dynamo=False)
    proto = onnx.load(str(path))
    for key, value in export_metadata(predictor).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = f"archtune model '{predictor.name}': pixels in [0, 1] -> logits, probabilities"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    x = check if check is not None else check_images(predictor)
    reference = predictor.probabilities(x)
    diff, agree = _compare(reference, _onnx_probabilities(path, x.numpy().astype(np.float32)))
    return ExportResult(path, "onnx", len(x), diff, agree)


def export_torchscript(predictor: Predictor, path: str | Path, *,
                       check: torch.Tensor | None = None) -> ExportResult:
    """Write a traced TorchScript module with ``archtune.json`` metadata; check it reloaded."""
    path = Path(path)
    model = _cpu_model(predictor)
    example = torch.zeros((2, *predictor.format.chw))
    meta = json.dumps(export_metadata(predictor), indent=1)
    with torch.no_grad(), warnings.catch_warnings():
        # recent torch releases deprecate TorchScript; it is still what many tools load
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace_module(model, {"forward": example, "predict_proba": example})
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_META: meta})
        loaded = torch.jit.load(str(path), map_location="cpu")
    x = check if check is not None else check_images(predictor)
    reference = predictor.probabilities(x)
    with torch.inference_mode():
        other = torch.cat([loaded.predict_proba(x[i:i + 256]) for i in range(0, len(x), 256)])
    diff, agree = _compare(reference, other.numpy())
    return ExportResult(path, "torchscript", len(x), diff, agree)


def read_torchscript_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata dict stored in a TorchScript export's ``archtune.json``."""
    extra = {TORCHSCRIPT_META: ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra[TORCHSCRIPT_META])


def export_model(run: Run | str | Path | Predictor, fmt: str = "onnx", path: str | Path | None = None,
           *, check: torch.Tensor | None = None) -> ExportResult:
    """Export a run's best model as ``fmt`` (onnx | torchscript) to ``path``.

    ``path`` defaults to ``<run>/model.onnx`` or ``<run>/model.torchscript.pt``; ``check``
    images (N, C, H, W) in [0, 1] default to 256 seeded random ones.
    """
    if fmt not in FORMATS:
        raise ArchtuneError(f"unknown export format '{fmt}'; expected one of: {', '.join(FORMATS)}")
    predictor = run if isinstance(run, Predictor) else Predictor.from_run(run)
    if path is None:
        if predictor.run is None:
            raise ArchtuneError("give an output path when exporting a checkpoint file")
        path = predictor.run.path / f"model{SUFFIXES[fmt]}"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    do = export_onnx if fmt == "onnx" else export_torchscript
    result = do(predictor, path, check=check)
    log.debug("%s", result.describe())
    if not result.ok:
        log.warning("%s export differs from PyTorch more than expected (tolerance %.0e)",
                    fmt, TOLERANCE)
    return result
