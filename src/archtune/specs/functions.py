"""The activation and initialiser tables: one entry per name a spec may use (timm's create_act).

A spec's ``activation`` and ``*_initializer`` arguments are checked against these tables' keys,
and the model builder creates the modules and draws the weights from the same entries. torch is
imported on first use, so reading and checking specs stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Activation:
    """An activation name's torch module: ``torch.nn.<module>(**kwargs)``; None: identity."""

    module: str | None
    kwargs: dict[str, Any] = field(default_factory=dict)

    def create(self) -> nn.Module | None:
        if self.module is None:
            return None
        from torch import nn

        return getattr(nn, self.module)(**self.kwargs)


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation(None),
    "relu": Activation("ReLU", {"inplace": True}),
    "leaky_relu": Activation("LeakyReLU", {"negative_slope": 0.2, "inplace": True}),  # Keras 3's slope
    "elu": Activation("ELU", {"inplace": True}),
    "selu": Activation("SELU", {"inplace": True}),
    "tanh": Activation("Tanh"),
    "sigmoid": Activation("Sigmoid"),
    "gelu": Activation("GELU"),
    "silu": Activation("SiLU"),
    "swish": Activation("SiLU"),
    "softmax": Activation("Softmax", {"dim": 1}),
}


def create_activation(name: str | None) -> nn.Module | None:
    """The module of an activation name (None for ``linear`` or no activation)."""
    return None if name is None else ACTIVATIONS[name].create()


def _fans(w: torch.Tensor) -> tuple[int, int]:
    receptive = w[0][0].numel() if w.dim() > 2 else 1
    return w.shape[1] * receptive, w.shape[0] * receptive


def _torch_init() -> Any:
    from torch.nn import init

    return init


def _trunc(w: torch.Tensor, std: float) -> None:
    # Keras' *_normal initialisers draw from a normal truncated at two standard deviations;
    # 0.8796 is the std of a unit normal truncated there, corrected for as Keras does.
    std = std / 0.87962566103423978
    _torch_init().trunc_normal_(w, std=std, a=-2 * std, b=2 * std)


def _uniform(w: torch.Tensor, bound: float) -> None:
    _torch_init().uniform_(w, -bound, bound)


# Keras kernel initialisers on torch.nn.init (fan-in/fan-out computed the same way).
INITIALIZERS: dict[str, Callable[[torch.Tensor], object]] = {
    "glorot_uniform": lambda w: _torch_init().xavier_uniform_(w),
    "glorot_normal": lambda w: _trunc(w, math.sqrt(2.0 / sum(_fans(w)))),
    "he_uniform": lambda w: _uniform(w, math.sqrt(6 / _fans(w)[0])),
    "he_normal": lambda w: _trunc(w, math.sqrt(2.0 / _fans(w)[0])),
    "lecun_uniform": lambda w: _uniform(w, math.sqrt(3 / _fans(w)[0])),
    "lecun_normal": lambda w: _trunc(w, math.sqrt(1.0 / _fans(w)[0])),
    "orthogonal": lambda w: _torch_init().orthogonal_(w),
    "random_normal": lambda w: _torch_init().normal_(w, std=0.05),
    "random_uniform": lambda w: _uniform(w, 0.05),
    "zeros": lambda w: _torch_init().zeros_(w),
    "ones": lambda w: _torch_init().ones_(w),
}


# those that also initialise a vector (a bias): the others need a weight matrix's fan-in/out
VECTOR_INITIALIZERS = ("random_normal", "random_uniform", "zeros", "ones")
assert set(VECTOR_INITIALIZERS) <= set(INITIALIZERS)


def initialize(module: nn.Conv2d | nn.Linear, kernel: str, bias: str) -> None:
    """Draw a layer's weights with the ``kernel`` initialiser and its bias with ``bias``."""
    import torch

    with torch.no_grad():
        INITIALIZERS[kernel](module.weight)
        if module.bias is not None:
            INITIALIZERS[bias](module.bias)
