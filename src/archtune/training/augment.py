"""Batch augmentation on tensors: every op is vectorised over the batch (no per-image Python)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import AugmentConfig


def hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return flip_where(x, torch.rand(x.shape[0], generator=gen, device=gen.device) < 0.5)


def flip_where(x: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Mirror the images of the batch where ``flip`` (one bool per image) is true."""
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)


def alternating_flips(phase: torch.Tensor, epoch: int) -> torch.Tensor:
    """Which images to mirror in ``epoch`` (1-based) under alternating flips (airbench): each
    image keeps a random phase bit and is mirrored on every other epoch, so it is seen both ways
    in turn, where random flips may show it the same way several epochs running."""
    return phase ^ (epoch % 2 == 0)


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """The batch moved by (dy, dx) pixels (down and right when positive), zero-filled."""
    h, w = x.shape[-2:]
    p = max(abs(dy), abs(dx))
    padded = F.pad(x, (p, p, p, p))
    return padded[..., p - dy:p - dy + h, p - dx:p - dx + w]


def translate(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by its own random (dy, dx) in [-max_shift, max_shift], zero-filled."""
    n, c, h, w = x.shape
    p = max_shift
    padded = F.pad(x, (p, p, p, p))
    shifts = torch.randint(0, 2 * p + 1, (2, n), generator=gen, device=gen.device).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + shifts[0][:, None]
    cols = torch.arange(w, device=x.device)[None, :] + shifts[1][:, None]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows[:, None, :, None], cols[:, None, None, :]]


def erase(x: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Random erasing: with probability ``prob`` zero one rectangle covering 2-25% of the image."""
    n, _, h, w = x.shape
    dev = gen.device
    area = torch.empty(n, device=dev).uniform_(0.02, 0.25, generator=gen) * h * w
    ratio = torch.exp(torch.empty(n, device=dev).uniform_(-1.2, 1.2, generator=gen))
    eh = (area * ratio).sqrt().clamp(1, h).long()
    ew = (area / ratio).sqrt().clamp(1, w).long()
    y0 = (torch.rand(n, generator=gen, device=dev) * (h - eh + 1)).long()
    x0 = (torch.rand(n, generator=gen, device=dev) * (w - ew + 1)).long()
    on = torch.rand(n, generator=gen, device=dev) < prob
    r = torch.arange(h, device=dev)[None, :]
    cidx = torch.arange(w, device=dev)[None, :]
    in_rows = (r >= y0[:, None]) & (r < (y0 + eh)[:, None])
    in_cols = (cidx >= x0[:, None]) & (cidx < (x0 + ew)[:, None])
    mask = (in_rows[:, :, None] & in_cols[:, None, :] & on[:, None, None]).to(x.device)
    return x.masked_fill(mask[:, None], 0.0)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return torch.empty(n, device=gen.device).uniform_(lo, hi, generator=gen)


def resized_crop(x: torch.Tensor, scale: list[float], ratio: list[float],
                 gen: torch.Generator) -> torch.Tensor:
    """Random resized crop: each image's own random box (``scale``: share of the area,
    ``ratio``: width / height), stretched back to the full size, in one ``grid_sample``."""
    n = x.shape[0]
    area = _uniform(n, scale[0], scale[1], gen)
    log_r = _uniform(n, float(torch.tensor(ratio[0]).log()), float(torch.tensor(ratio[1]).log()), gen)
    r = log_r.exp()
    sw, sh = (area * r).sqrt().clamp(max=1.0), (area / r).sqrt().clamp(max=1.0)  # box / image
    cx = (torch.rand(n, generator=gen, device=gen.device) * 2 - 1) * (1 - sw)  # centre in [-1, 1]
    cy = (torch.rand(n, generator=gen, device=gen.device) * 2 - 1) * (1 - sh)
    theta = torch.zeros(n, 2, 3, device=gen.device)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = sw, cx, sh, cy
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def color_jitter(x: torch.Tensor, brightness: float, contrast: float, saturation: float,
                 gen: torch.Generator) -> torch.Tensor:
    """Random brightness, contrast and (3 channels) saturation factors, one each per image,
    in [1 - v, 1 + v]; pixels stay in [0, 1]."""
    n, c = x.shape[:2]

    def factor(v: float) -> torch.Tensor:
        return _uniform(n, 1 - v, 1 + v, gen).to(device=x.device, dtype=x.dtype)[:, None, None, None]

    if brightness:
        x = x * factor(brightness)
    if contrast:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * factor(contrast) + mean
    if saturation and c == 3:
        grey = (x * x.new_tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
        x = (x - grey) * factor(saturation) + grey
    return x.clamp(0.0, 1.0)


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
            flip: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the configured augmentations to a batch of images in [0, 1] (before standardising).

    ``flip`` (one bool per image) says which images to mirror when ``hflip`` is on; without it
    each image is mirrored with probability 0.5.
    """
    if cfg.hflip is True:
        x = hflip(x, gen) if flip is None else flip_where(x, flip)
    if cfg.crop.scale is not None:
        x = resized_crop(x, cfg.crop.scale, cfg.crop.ratio, gen)
    if cfg.translate:
        x = translate(x, cfg.translate, gen)
    if cfg.color_jitter.active:
        j = cfg.color_jitter
        x = color_jitter(x, j.brightness, j.contrast, j.saturation, gen)
    if cfg.erase:
        x = erase(x, cfg.erase, gen)
    return x
