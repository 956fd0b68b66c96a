"""Predict with a trained run: image files (or arrays) in, top-k classes with probabilities out.

A :class:`Predictor` holds what a run folder says about its model: the weights and input
standardisation (inside the model, from ``best.pt``), the class names, and the input size and
channels (from the spec). Files go through :mod:`archtune.serve.preprocess`, in batches.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import ArchtuneError
from ..models import ArchtuneNet, EnsembleNet
from ..specs import Spec, spec_from_dict
from ..training.loop import predict_logits
from ..training.runs import Run, load_checkpoint, load_run
from .preprocess import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageError,
    InputFormat,
    PreparedImage,
    load_image,
)

log = logging.getLogger(__name__)


@dataclass
class Prediction:
    """One image's prediction: the best class, the top k, and every class's probability."""

    label: str
    index: int
    probability: float
    top: list[tuple[str, float]]
    probabilities: list[float]

    def to_dict(self, *, all_classes: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"label": self.label, "index": self.index,
                               "probability": self.probability,
                               "top": [{"label": c, "probability": p} for c, p in self.top]}
        if all_classes:
            out["probabilities"] = self.probabilities
        return out


def image_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (their image files, recursively, sorted) into a list of files."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file()
                           and f.suffix.lower() in IMAGE_EXTENSIONS
                           and not any(part.startswith(".") for part in f.relative_to(p).parts))
            if not found:
                raise ArchtuneError(f"{p}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in folder")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise ArchtuneError(f"{p}: no such file or folder")
    return out


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def first_conv_block(model: ArchtuneNet) -> tuple[str, nn.Module] | None:
    """(name, block) of the first spec layer holding a convolution, or None (an MLP)."""
    for name, block in model.blocks.named_children():
        if any(isinstance(m, nn.Conv2d) for m in block.modules()):
            return name, block
    return None


class Predictor:
    """A trained model ready to predict, with its classes and input format (from the run)."""

    def __init__(self, model: ArchtuneNet, classes: Sequence[str], spec: Spec, *,
                 run: Run | None = None, device: str | torch.device = "cpu", batch_size: int = 256):
        if len(classes) == 0:
            raise ArchtuneError(f"{spec.name}: the checkpoint has no class names")
        self.device = torch.device(device)
        self.channels_last = any(isinstance(m, nn.Conv2d) for m in model.modules())
        model = model.to(self.device).eval()
        self.model = model.to(memory_format=torch.channels_last) if self.channels_last else model
        self.classes = list(classes)
        self.spec = spec
        self.format = InputFormat.from_spec(spec)
        self.name = spec.name
        self.run = run
        self.batch_size = batch_size

    @classmethod
    def from_run(cls, run: Run | str | Path, *, device: str | torch.device = "cpu",
                 batch_size: int = 256) -> Predictor:
        """Load a run folder (or a ``best.pt`` checkpoint file): weights, classes, spec."""
        path = run.path if isinstance(run, Run) else Path(run)
        if path.is_file():
            model, ckpt = load_checkpoint(path, device)
            return cls(model, ckpt["classes"], spec_from_dict(ckpt["spec"], source=str(path),
                                                              classes=len(ckpt["classes"])),
                       device=device, batch_size=batch_size)
        loaded = run if isinstance(run, Run) else load_run(path)
        model, ckpt = load_checkpoint(path / "best.pt", device)
        return cls(model, ckpt["classes"], loaded.spec, run=loaded, device=device,
                   batch_size=batch_size)

    def prepare(self, source: bytes | str | Path | Image.Image, *, invert: str = "auto",
                max_pixels: int = DEFAULT_MAX_PIXELS) -> PreparedImage:
        """An image file (path, bytes, or an image from :func:`.preprocess.open_header`) as
        this model sees it; see :mod:`.preprocess`."""
        return load_image(source, self.format, invert=invert, max_pixels=max_pixels)

    def probabilities(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities (N, K) of a batch (N, C, H, W) of pixels in [0, 1]."""
        t = torch.as_tensor(x, dtype=torch.float32).to(self.device)
        if tuple(t.shape[1:]) != self.format.chw:
            raise ArchtuneError(f"expected images of shape {self.format.chw}, got {tuple(t.shape[1:])}")
        logits = predict_logits(self.model, t, batch_size=self.batch_size,
                                channels_last=self.channels_last)
        return logits.softmax(1).cpu().numpy()

    def decode(self, probs: np.ndarray, top: int = 3) -> list[Prediction]:
        """Turn probability rows into :class:`Prediction` objects with the top ``top`` classes."""
        k = max(1, min(top, len(self.classes)))
        out = []
        for row in probs:
            order = np.argsort(-row, kind="stable")[:k]
            out.append(Prediction(self.classes[order[0]], int(order[0]), float(row[order[0]]),
                                  [(self.classes[i], float(row[i])) for i in order],
                                  [float(p) for p in row]))
        return out

    def predict_arrays(self, x: np.ndarray | torch.Tensor, *, top: int = 3) -> list[Prediction]:
        """Predict a batch of pixel arrays (N, C, H, W) in [0, 1]."""
        return self.decode(self.probabilities(x), top)

    def predict_files(self, paths: Iterable[str | Path], *, top: int = 3, invert: str = "auto",
                      max_pixels: int = DEFAULT_MAX_PIXELS, workers: int = 2) -> list[dict[str, Any]]:
        """Predict image files and folders in batches; one JSON-ready dict per file, in order.

        An unreadable file gives ``{"file": ..., "error": ...}`` and does not stop the others.
        ``workers`` threads decode the next batch while the model runs on this one (Pillow
        releases the GIL while decoding).
        """
        chunks = list(_chunks(image_files(paths), self.batch_size))
        results: list[dict[str, Any]] = []

        def prepare(path: Path) -> PreparedImage | ImageError:
            try:
                return self.prepare(path, invert=invert, max_pixels=max_pixels)
            except ImageError as err:
                return err

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            pending = [pool.submit(prepare, f) for f in chunks[0]] if chunks else []
            for i, chunk in enumerate(chunks):
                prepared = [f.result() for f in pending]
                pending = [pool.submit(prepare, f) for f in chunks[i + 1]] if i + 1 < len(chunks) else []
                results += self._rows(chunk, prepared, top)
        return results

    def _rows(self, files: Sequence[Path], prepared: list[PreparedImage | ImageError],
              top: int) -> list[dict[str, Any]]:
        good = [p for p in prepared if isinstance(p, PreparedImage)]
        preds = iter(self.predict_arrays(np.stack([p.pixels for p in good]), top=top) if good else [])
        rows: list[dict[str, Any]] = []
        for path, p in zip(files, prepared, strict=True):
            if isinstance(p, ImageError):
                log.debug("%s", p)
                rows.append({"file": str(path), "code": p.code,
                             "error": str(p).removeprefix(f"{path}: ")})
            else:
                rows.append({"file": str(path), **next(preds).to_dict(), "inverted": p.inverted})
        return rows

    @torch.inference_mode()
    def activations(self, pixels: np.ndarray) -> tuple[str, np.ndarray] | None:
        """Output maps (F, H', W') of the first conv layer for one image (C, H, W), or None."""
        found = first_conv_block(self.model)
        if found is None:
            return None
        name, block = found
        captured: list[torch.Tensor] = []
        handle = block.register_forward_hook(lambda _m, _i, out: captured.append(out.detach().clone()))
        try:
            self.model.eval()(torch.as_tensor(pixels, dtype=torch.float32)[None].to(self.device))
        finally:
            handle.remove()
        if isinstance(self.model, EnsembleNet):  # its layers are its lead member's: say so
            name = f"{name} of the lead member (1 of {len(self.model.members)} averaged)"
        return name, captured[0][0].float().cpu().numpy()


def predict_images(run: Run | str | Path, paths: Iterable[str | Path], *, top: int = 3,
            invert: str = "auto", device: str = "cpu") -> list[dict[str, Any]]:
    """Predict image files and folders with a run's best weights (see :meth:`Predictor.predict_files`)."""
    return Predictor.from_run(run, device=device).predict_files(paths, top=top, invert=invert)
