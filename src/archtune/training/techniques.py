"""The ``train:`` keys beyond the basic loop, applied to one run: flips decided by the data set
(``auto``), alternating flips, a moving average of the weights, identity and whitening
initialisation, and torch.compile. :class:`Techniques` is what :func:`~.trainer.train` asks for
the model to train, the model to evaluate and save, and this epoch's flips."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import torch
from torch import nn

from ..config import TrainConfig
from ..data import mirror_symmetric
from ..models import ArchtuneNet
from ..specs import Spec
from .augment import alternating_flips
from .ema import WeightAverage
from .inits import dirac_init, whiten_init

log = logging.getLogger(__name__)


def resolve_flips(spec: Spec, *, quiet: bool = False) -> Spec:
    """The spec with ``augment.hflip: auto`` decided by its data set (on only where a mirrored
    image keeps its class) and ``tta: auto`` following hflip (flip TTA helps a model trained on
    flips and hurts one that was not); ``quiet``: without logging the choice."""
    cfg = spec.train
    if cfg.augment.hflip != "auto" and cfg.tta != "auto":
        return spec
    hflip = cfg.augment.hflip
    if hflip == "auto":
        hflip, why = mirror_symmetric(spec.data.dataset)
        if not quiet:
            log.info("train.augment.hflip auto: %s (%s)", "on" if hflip else "off", why)
    tta = hflip if cfg.tta == "auto" else cfg.tta
    augment = dataclasses.replace(cfg.augment, hflip=hflip)
    return dataclasses.replace(spec, train=dataclasses.replace(cfg, augment=augment, tta=tta))


class Techniques:
    """Set up at the start of a run (after the model is built and seeded, before the optimiser):
    initialisations are applied at once; the rest is asked for during training."""

    def __init__(self, model: ArchtuneNet, cfg: TrainConfig, x_train: torch.Tensor,
                 gen: torch.Generator):
        if cfg.dirac_init:
            log.info("identity-initialised %d convolutions", dirac_init(model))
        if cfg.whiten:
            whiten_init(model, x_train)
        alternate = cfg.augment.alternate_flip and cfg.augment.hflip is True
        # drawn by the run's CPU generator (the same phases on any device), kept beside the data
        self._phase = ((torch.rand(len(x_train), generator=gen, device=gen.device) < 0.5)
                       .to(x_train.device) if alternate else None)
        self._average = WeightAverage(model, cfg.ema) if cfg.ema else None
        self._model = model
        self.train_model: nn.Module = torch.compile(model) if cfg.compile else model

    def flips(self, epoch: int) -> torch.Tensor | None:
        """Which training images to mirror in ``epoch`` (1-based); None: at random, or none."""
        return None if self._phase is None else alternating_flips(self._phase, epoch)

    @property
    def after_step(self) -> Callable[[], None] | None:
        return None if self._average is None else self._average.update

    def average_state(self) -> dict[str, torch.Tensor] | None:
        """The moving average's state (None without ``ema``), to continue a paused run."""
        return None if self._average is None else self._average.state_dict()

    def load_average_state(self, state: dict[str, torch.Tensor] | None) -> None:
        if self._average is not None and state is not None:
            self._average.load_state_dict(state)

    @property
    def evaluated(self) -> nn.Module:
        """The model whose dev accuracy is recorded and whose weights are saved: the moving
        average when ``ema`` is on, else the trained model."""
        return self._model if self._average is None else self._average.model
