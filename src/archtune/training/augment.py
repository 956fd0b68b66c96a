"""Batch augmentation on tensors: every op is vectorised over the batch (no per-image Python)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..config import AugmentConfig


def hflip(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=gen, device=gen.device) < 0.5
    return torch.where(flip.to(x.device)[:, None, None, None], x.flip(3), x)


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


def augment(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply the configured augmentations to a batch of images in [0, 1] (before standardising)."""
    if cfg.hflip:
        x = hflip(x, gen)
    if cfg.translate:
        x = translate(x, cfg.translate, gen)
    if cfg.erase:
        x = erase(x, cfg.erase, gen)
    return x
