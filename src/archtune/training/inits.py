"""Initialisations from fast CIFAR-10 training (airbench): identity (dirac) convolutions and a
first convolution fixed to whiten the image patches of the training data."""

from __future__ import annotations

import logging

import torch
from torch import nn

from ..errors import ArchtuneError
from ..models import ArchtuneNet, module_at

log = logging.getLogger(__name__)


@torch.no_grad()
def dirac_init(model: nn.Module) -> int:
    """Make each convolution's first in-channels filters the identity (the rest keep their
    initialisation), so a deep stack starts close to passing its input through; returns how
    many convolutions were changed."""
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups == 1]
    for conv in convs:
        nn.init.dirac_(conv.weight[:conv.in_channels])
    return len(convs)


def first_conv(model: ArchtuneNet) -> nn.Conv2d:
    """The convolution of spec layer 0; a clear error when layer 0 is not a Conv2D."""
    first = model.layer_infos[0].layer.type
    if first != "Conv2D":
        raise ArchtuneError(f"train.whiten: whitening sets the first layer's filters, so layer 0 "
                            f"must be a Conv2D, not {first}")
    return next(m for m in module_at(model, (0,)).modules() if isinstance(m, nn.Conv2d))


@torch.no_grad()
def patch_covariance(x: torch.Tensor, kernel: tuple[int, int], chunk: int = 500) -> torch.Tensor:
    """The (C*kh*kw)^2 second-moment matrix of every kh x kw patch of the images x (N, C, H, W),
    its rows ordered as a Conv2D weight's (channel, row, column)."""
    kh, kw = kernel
    d = x.shape[1] * kh * kw
    total, count = torch.zeros(d, d, dtype=torch.float64, device=x.device), 0
    for start in range(0, len(x), chunk):
        p = x[start:start + chunk].float().unfold(2, kh, 1).unfold(3, kw, 1)  # N, C, H', W', kh, kw
        p = p.permute(0, 2, 3, 1, 4, 5).reshape(-1, d).double()
        total += p.T @ p
        count += len(p)
    return total / max(count, 1)


@torch.no_grad()
def whiten_init(model: ArchtuneNet, x: torch.Tensor, *, images: int = 5000, eps: float = 5e-4) -> None:
    """Set the first Conv2D's filters to the top principal directions of the (standardised)
    training patches, each scaled by 1/sqrt(its variance), as +v and -v pairs, and fix them
    (no gradient; the bias, if any, still trains). It needs an even number of filters, at most
    2 x (channels x kernel area)."""
    conv = first_conv(model)
    out, c, kh, kw = conv.weight.shape
    d = c * kh * kw
    if out % 2 or out > 2 * d:
        raise ArchtuneError(
            f"train.whiten: the first Conv2D has {out} filters; whitening a {kh}x{kw} kernel on "
            f"{c} channel(s) needs an even number of filters up to {2 * d} (e.g. filters: {2 * d})")
    xs = (x[:images].float() - model.mean) / model.std
    values, vectors = torch.linalg.eigh(patch_covariance(xs, (kh, kw)))
    order = values.argsort(descending=True)[:out // 2]
    w = (vectors[:, order].T / (values[order, None].clamp_min(0) + eps).sqrt()).float()
    w = w.reshape(-1, c, kh, kw)
    conv.weight.copy_(torch.cat([w, -w]).to(conv.weight))
    conv.weight.requires_grad_(False)
    log.info("whitened the first Conv2D (%d filters of %dx%d) from %d training images",
             out, kh, kw, len(xs))
