"""An exponential moving average of a model's weights (and BatchNorm statistics), on
``torch.optim.swa_utils.AveragedModel``; its copy is what training evaluates and saves."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

AverageFn = Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]


def _ema(decay: float) -> AverageFn:
    """AveragedModel's ``multi_avg_fn``: lerp towards the current weights by 1 - d, where d
    warms up as (1 + n) / (10 + n) to ``decay`` so the random initial weights fade fast."""

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], n: torch.Tensor) -> None:
        if not torch.is_floating_point(averaged[0]):  # counters such as num_batches_tracked
            for a, c in zip(averaged, current, strict=True):
                a.copy_(c)
            return
        steps = float(n)
        torch._foreach_lerp_(averaged, current, 1.0 - min(decay, (1 + steps) / (10 + steps)))

    return update


class WeightAverage:
    """``update()`` after each optimiser step; ``model`` is the averaged copy."""

    def __init__(self, model: nn.Module, decay: float):
        self._avg = AveragedModel(model, multi_avg_fn=_ema(decay), use_buffers=True)
        self._source = model

    @property
    def model(self) -> nn.Module:
        return self._avg.module

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._avg.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self._avg.load_state_dict(state)

    def update(self) -> None:
        self._avg.update_parameters(self._source)
