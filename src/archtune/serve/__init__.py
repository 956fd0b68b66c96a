"""Use a trained model: predict image files, export (ONNX, TorchScript), serve over HTTP.

The public names load lazily (``archtune.commands.serve`` is imported by every ``archtune``
command, so this package must not pull in torch or FastAPI by itself)::

    from archtune.serve import Predictor, create_app, export_model, load_image, predict_images
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Predictor": "predict", "Prediction": "predict", "predict_images": "predict", "image_files": "predict",
    "InputFormat": "preprocess", "PreparedImage": "preprocess", "ImageError": "preprocess",
    "load_image": "preprocess", "prepare_image": "preprocess", "open_image": "preprocess",
    "pixels_from_json": "preprocess",
    "export_model": "export", "export_onnx": "export", "export_torchscript": "export",
    "ExportResult": "export", "read_torchscript_metadata": "export",
    "create_app": "app", "Limits": "inputs", "MicroBatcher": "batcher",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archtune.serve' has no attribute '{name}'")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
