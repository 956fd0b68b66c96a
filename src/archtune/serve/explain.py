"""What the web page shows besides the probabilities: the input as the model sees it and the
activation maps of the first conv layer, as small PNG data URLs (viridis colours)."""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from PIL import Image

from .predict import Predictor
from .preprocess import to_png

# viridis at 9 evenly spaced points (matplotlib's values), interpolated to 256 entries
_VIRIDIS_STOPS = np.array([
    [68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]], dtype=np.float64)
VIRIDIS = np.stack([np.interp(np.linspace(0, 8, 256), np.arange(9), _VIRIDIS_STOPS[:, i])
                    for i in range(3)], axis=1).round().astype(np.uint8)


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def activation_pngs(maps: np.ndarray) -> list[bytes]:
    """One PNG per map of (F, H, W), on a common scale for the layer (so weak maps look weak)."""
    lo, hi = min(0.0, float(maps.min())), float(maps.max())
    scaled = (maps - lo) / (hi - lo) if hi - lo > 1e-12 else np.zeros_like(maps)
    idx = np.clip(np.rint(scaled * 255), 0, 255).astype(np.uint8)
    out = []
    for m in idx:
        buf = io.BytesIO()
        Image.fromarray(VIRIDIS[m]).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def explain_image(predictor: Predictor, pixels: np.ndarray) -> dict[str, Any]:
    """The input PNG and first-conv activation maps of one image (C, H, W); maps None for MLPs."""
    c, h, w = pixels.shape
    result: dict[str, Any] = {"input": {"png": data_url(to_png(pixels)), "width": w, "height": h,
                                        "channels": c},
                              "activations": None}
    found = predictor.activations(pixels)
    if found is not None:
        name, maps = found
        inactive = int((maps.reshape(len(maps), -1).max(axis=1) <= 0).sum())
        result["activations"] = {"layer": name, "shape": list(maps.shape),
                                 "min": float(maps.min()), "max": float(maps.max()),
                                 "inactive": inactive,
                                 "maps": [data_url(p) for p in activation_pngs(maps)]}
    return result
