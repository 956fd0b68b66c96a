"""Train one epoch and evaluate in batches: the hot path, kept small and allocation-light."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TrainConfig
from ..models import weight_layers
from .augment import augment, shift
from .device import autocast


@dataclass
class EpochStats:
    loss: float
    accuracy: float
    grad_norms: dict[str, float]


def param_layers(model: nn.Module) -> dict[str, torch.Tensor]:
    """Weight tensor of each spec layer that has one (nested layers too), keyed by its name."""
    return dict(weight_layers(model))  # type: ignore[arg-type]


def to_model_layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    gen: torch.Generator,
    *,
    precision: str,
    channels_last: bool,
    on_step: Callable[[int, float, float], None] | None = None,
    flips: torch.Tensor | None = None,
    after_step: Callable[[], None] | None = None,
) -> EpochStats:
    """One pass over (x, y) in shuffled mini-batches; returns running loss/accuracy and grad norms.

    ``flips`` (one bool per image of x) fixes which images are mirrored this epoch (alternating
    flips); ``after_step()`` runs after every optimiser step (a moving average of the weights).
    """
    model.train()
    device = x.device
    n = x.shape[0]
    order = epoch_order(y, cfg.balance, gen).to(device)
    weight = class_weights(y) if cfg.balance == "weights" else None
    layers = param_layers(model) if cfg.grad_norm_every else {}
    norm_sums = {k: 0.0 for k in layers}
    norm_count = 0
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    seen = 0
    steps = n // cfg.batch_size if n >= cfg.batch_size else 1  # drop the ragged last batch
    for step in range(steps):
        idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        xb, yb = x[idx], y[idx]
        if cfg.augment.active:
            xb = augment(xb, cfg.augment, gen, None if flips is None else flips[idx])
        xb = to_model_layout(xb, channels_last)
        with autocast(device, precision):
            logits = model(xb)
            loss = F.cross_entropy(logits.float(), yb, weight=weight,
                                   label_smoothing=cfg.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if layers and step % cfg.grad_norm_every == 0:
            norms = torch.stack(torch._foreach_norm([p.grad for p in layers.values()])).tolist()
            for k, v in zip(layers, norms, strict=True):
                norm_sums[k] += v
            norm_count += 1
        opt.step()
        sched.step()
        if after_step is not None:
            after_step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.detach().argmax(1) == yb).sum()
        seen += len(idx)
        if on_step is not None and (step % 20 == 0 or step == steps - 1):
            on_step(step + 1, loss_sum.item() / seen, correct.item() / seen)
    grad = {k: v / norm_count for k, v in norm_sums.items()} if norm_count else {}
    return EpochStats(loss_sum.item() / seen, correct.item() / seen, grad)


def class_weights(y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy weights inversely proportional to each class's frequency in ``y``, so that
    every class weighs the same in the loss (1 for balanced classes; a class absent gets 0)."""
    counts = torch.bincount(y).float()
    w = torch.where(counts > 0, counts.sum() / (len(counts) * counts.clamp(min=1)), 0.0)
    return w.to(y.device)


def epoch_order(y: torch.Tensor, balance: str, gen: torch.Generator) -> torch.Tensor:
    """The indices of one epoch: a shuffle of all images; with ``balance: sampler``, as many
    drawn with replacement with each class equally likely."""
    n = len(y)
    if balance != "sampler":
        return torch.randperm(n, generator=gen, device=gen.device)
    yc = y.to(gen.device)
    per_image = 1.0 / torch.bincount(yc).float()[yc]
    return torch.multinomial(per_image, n, replacement=True, generator=gen)


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000,
                   precision: str = "fp32", channels_last: bool = False) -> torch.Tensor:
    """Logits for all of x in batches (float32, on x's device)."""
    return _in_batches(lambda xb: model(xb).float(), model, x, batch_size, precision, channels_last)


@torch.inference_mode()
def predict_log_probs(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000,
                      precision: str = "fp32", channels_last: bool = False,
                      tta: bool = False, tta_translate: int = 0) -> torch.Tensor:
    """Log-probabilities for all of x in batches (float32, on x's device).

    ``tta`` (flip test-time augmentation) averages the probabilities of each image and its
    mirror. ``tta_translate`` (multi-crop, as airbench) gives half the weight to those views of
    the image moved by that many pixels up-left and down-right.
    """
    def views(xb: torch.Tensor) -> torch.Tensor:
        p = model(xb).float().softmax(1)
        return (p + model(xb.flip(3)).float().softmax(1)) / 2 if tta else p

    def scores(xb: torch.Tensor) -> torch.Tensor:
        if not tta and not tta_translate:
            return model(xb).float().log_softmax(1)
        p = views(xb)
        if tta_translate:
            s = tta_translate
            p = (p + (views(shift(xb, s, s)) + views(shift(xb, -s, -s))) / 2) / 2
        return p.log()

    return _in_batches(scores, model, x, batch_size, precision, channels_last)


def _in_batches(fn: Callable[[torch.Tensor], torch.Tensor], model: nn.Module, x: torch.Tensor,
                batch_size: int, precision: str, channels_last: bool) -> torch.Tensor:
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        with autocast(x.device, precision):
            out.append(fn(to_model_layout(x[i:i + batch_size], channels_last)))
    return torch.cat(out) if out else torch.empty(0)


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    loss = F.cross_entropy(logits, y).item()
    acc = (logits.argmax(1) == y).float().mean().item()
    return loss, acc
