"""Optimisers and learning-rate schedules from a TrainConfig."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from ..config import TrainConfig


def param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The trainable parameters, BatchNorm's in their own group when ``norm_lr`` or
    ``norm_weight_decay`` treat them apart: lr x norm_lr, and a weight decay that keeps the
    decay per step (lr x weight_decay) of the other parameters, or none."""
    norm = {id(p) for m in model.modules() if isinstance(m, nn.modules.batchnorm._NormBase)
            for p in m.parameters()}
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.norm_lr == 1.0 and cfg.norm_weight_decay:
        return [{"params": params}]
    decay = cfg.weight_decay / cfg.norm_lr if cfg.norm_weight_decay else 0.0
    groups = [{"params": [p for p in params if id(p) not in norm]},
              {"params": [p for p in params if id(p) in norm], "lr": cfg.lr * cfg.norm_lr,
               "weight_decay": decay}]
    return [g for g in groups if g["params"]]


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = param_groups(model, cfg)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    # fused kernels update all parameters in one pass (CPU and CUDA, float32 parameters)
    fused = all(p.dtype == torch.float32 for g in params for p in g["params"])
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
    raise AssertionError(cfg.optimizer)


def lr_factor(cfg: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Multiplier of the base lr at a given optimiser step (0-based)."""
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "step":
        return cfg.gamma ** (step // (cfg.step_size * steps_per_epoch))
    if cfg.schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * min(step / max(total_steps, 1), 1.0)))
    if cfg.schedule == "wsd":  # warm-up from lr/25, stable at lr, linear decay to lr/1e4
        warm, decay = wsd_steps(cfg, total_steps)
        if step < warm:
            return 0.04 + 0.96 * step / warm
        return max(min(1.0, (total_steps - step) / decay), 1e-4)
    warm = max(int(cfg.warmup_frac * total_steps), 1)
    if cfg.schedule == "triangular":  # linear up from lr/5 to lr, then linear down to 0
        if step < warm:
            return 0.2 + 0.8 * step / warm
        return max(1.0 - (step - warm) / max(total_steps - warm, 1), 0.0)
    # one-cycle: linear warm-up from lr/25 to lr, then cosine down to lr/1e4
    if step < warm:
        return 0.04 + 0.96 * step / warm
    t = min((step - warm) / max(total_steps - warm, 1), 1.0)
    return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * t))


def wsd_steps(cfg: TrainConfig, total_steps: int) -> tuple[int, int]:
    """(warm-up, decay) optimiser steps of schedule ``wsd`` over ``total_steps`` (rounded, so a
    spec written from whole steps gives them back exactly)."""
    return (max(round(cfg.warmup_frac * total_steps), 1),
            max(round(cfg.cooldown_frac * total_steps), 1))


class _Factor:
    """The lr factor at optimiser step ``s`` (LambdaLR's lambda), for a schedule of ``total``
    steps; :func:`stretch_schedule` re-plans the part not yet run."""

    def __init__(self, cfg: TrainConfig, total: int, steps_per_epoch: int):
        self.cfg, self.total, self.steps_per_epoch = cfg, total, steps_per_epoch
        self.stretches: list[tuple[int, int, int]] = []  # (at step, old end, new end), in order

    def __call__(self, step: int) -> float:
        s: float = step
        for at, old, new in reversed(self.stretches):  # back to the steps of the first plan
            if s > at:
                s = at + (s - at) * (old - at) / (new - at)
        return lr_factor(self.cfg, s, self.total, self.steps_per_epoch)  # type: ignore[arg-type]

    def end(self) -> int:
        return self.stretches[-1][2] if self.stretches else self.total


def make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step scheduler (call ``step()`` after every optimiser step)."""
    return torch.optim.lr_scheduler.LambdaLR(opt, _Factor(cfg, cfg.epochs * steps_per_epoch,
                                                          steps_per_epoch))


STRETCHED = ("cosine", "onecycle", "triangular", "wsd")  # the schedules whose shape depends on their length


def stretch_schedule(sched: torch.optim.lr_scheduler.LambdaLR, at_step: int, total_steps: int) -> None:
    """Re-plan a schedule from :func:`make_scheduler` that has run ``at_step`` steps to end at
    ``total_steps`` instead: the rest of its curve is stretched (or squeezed) to the new length,
    so the lr at ``at_step`` is unchanged and the curve still ends where it would have. Constant
    and step schedules do not depend on their length and are left as they are."""
    for factor in {id(f): f for f in sched.lr_lambdas}.values():  # one object for every group
        if not isinstance(factor, _Factor):
            raise TypeError("stretch_schedule: not a schedule from make_scheduler")
        if factor.cfg.schedule not in STRETCHED or total_steps == factor.end():
            continue
        if not at_step < min(total_steps, factor.end()):
            raise ValueError(f"stretch_schedule: step {at_step} is not before the end of the "
                             f"schedule ({factor.end()} steps) and the new end ({total_steps})")
        factor.stretches.append((at_step, factor.end(), total_steps))
