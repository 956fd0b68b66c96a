"""Keras kernel initialisers mapped to torch.nn.init (fan-in/fan-out computed the same way)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn


def _fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def _trunc(w: torch.Tensor, std: float) -> None:
    # Keras' *_normal initialisers draw from a normal truncated at two standard deviations;
    # 0.8796 is the std of a unit normal truncated there, corrected for as Keras does.
    std = std / 0.87962566103423978
    nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


INITIALIZERS: dict[str, Callable[[torch.Tensor], object]] = {
    "glorot_uniform": nn.init.xavier_uniform_,
    "glorot_normal": lambda w: _trunc(w, math.sqrt(2.0 / sum(_fans(w)))),
    "he_uniform": lambda w: nn.init.uniform_(w, -math.sqrt(6 / _fans(w)[0]), math.sqrt(6 / _fans(w)[0])),
    "he_normal": lambda w: _trunc(w, math.sqrt(2.0 / _fans(w)[0])),
    "lecun_uniform": lambda w: nn.init.uniform_(w, -math.sqrt(3 / _fans(w)[0]), math.sqrt(3 / _fans(w)[0])),
    "lecun_normal": lambda w: _trunc(w, math.sqrt(1.0 / _fans(w)[0])),
    "orthogonal": nn.init.orthogonal_,
    "random_normal": lambda w: nn.init.normal_(w, std=0.05),
    "random_uniform": lambda w: nn.init.uniform_(w, -0.05, 0.05),
    "zeros": nn.init.zeros_,
    "ones": nn.init.ones_,
}


def initialize(module: nn.Conv2d | nn.Linear, kernel: str, bias: str) -> None:
    with torch.no_grad():
        INITIALIZERS[kernel](module.weight)
        if module.bias is not None:
            INITIALIZERS[bias](module.bias)
