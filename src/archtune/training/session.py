"""A run trained in pieces: paused, saved, continued from its checkpoint, and finished.

``archtune tune`` trains many candidates a little, keeps the best and continues them where they
stopped instead of starting again. Each candidate is a :class:`Session` over a normal run folder:
``advance`` trains more epochs, ``pause`` writes ``state.pt`` (weights, moving average, optimiser,
schedule step, random generator, history) beside ``best.pt`` (the weights as they are now, so
the folder is a readable run at every pause), ``Session.resume`` continues it in a new process,
``set_end`` plans the schedule's cool-down to end at a given epoch, and ``finish`` evaluates the
final weights on dev as ``train`` does and marks the run complete.

Paused runs use the ``wsd`` schedule (warm-up, stable, decay): while the learning rate is
stable, a run can be continued for as long as wanted and its scores compared with another's;
the decay is placed only once the run's end is known.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..data import Splits
from ..errors import ArchtuneError
from ..specs import Spec, spec_from_dict
from .budget import _timed, time_epoch
from .loop import predict_log_probs
from .optim import _Factor, wsd_steps
from .run_writer import RunWriter
from .runs import Run, load_run, temp_beside
from .trainer import _epoch, _final_dev, _Fit, _prepare, _run_facts, as_trained, check_compatible

log = logging.getLogger(__name__)

STATE_FILE = "state.pt"  # a paused run's whole training state, beside best.pt
STATE_VERSION = 1

EpochHook = Callable[[int, dict[str, float]], None]


class Session:
    """One run trained epoch by epoch on demand (see the module's text). Build one with
    :meth:`start` or :meth:`resume`."""

    def __init__(self, fit: _Fit, writer: RunWriter, epoch: int = 0, seconds: float = 0.0):
        self.fit, self.writer = fit, writer
        self.epoch = epoch  # epochs trained
        self.seconds = seconds  # wall seconds spent in those epochs (training and dev pass)

    @classmethod
    def start(cls, spec: Spec, splits: Splits, run_dir: str | Path, *, device: str | None = None,
              threads: int | None = None) -> Session:
        """A new run of ``spec`` (schedule ``wsd``; its ``epochs`` the longest it may train) in
        ``run_dir``."""
        if spec.train.schedule != "wsd":
            raise ArchtuneError(f"{spec.name}: a run trained in pieces needs schedule 'wsd', "
                                f"not '{spec.train.schedule}'")
        spec = check_compatible(as_trained(spec, len(splits.classes), quiet=True), splits)
        fit = _prepare(spec, splits, None, device, threads)
        return cls(fit, RunWriter(Path(run_dir), spec, fit.env, _run_facts(spec, splits)))

    @classmethod
    def resume(cls, run_dir: str | Path, splits: Splits, *, device: str | None = None,
               threads: int | None = None) -> Session:
        """Continue the run paused in ``run_dir`` from its ``state.pt``."""
        path = Path(run_dir)
        state = read_state(path)
        spec = spec_from_dict(state["spec"], source=f"{path / STATE_FILE}: spec")
        fit = _prepare(spec, splits, None, device, threads)
        fit.model.load_state_dict(state["model"])
        fit.tech.load_average_state(state["average"])
        fit.opt.load_state_dict(state["optimizer"])
        fit.sched.last_epoch = state["step"]
        fit.sched._last_lr = [g["lr"] for g in fit.opt.param_groups]  # as step() leaves it
        fit.gen.set_state(state["generator"])
        fit.precision = state["precision"]
        history = state["history"]
        writer = RunWriter.reopen(path, spec, state["env"], state["metrics"], history)
        return cls(fit, writer, epoch=len(history), seconds=state["seconds"])

    @property
    def path(self) -> Path:
        return self.writer.path

    @property
    def spec(self) -> Spec:
        return self.fit.spec

    @property
    def history(self) -> list[dict[str, float]]:
        return self.writer.history

    @property
    def score(self) -> float | None:
        """Dev accuracy of the evaluated weights (the moving average with ``ema``) after the
        last epoch."""
        return self.history[-1]["dev_accuracy"] if self.history else None

    @property
    def epoch_s(self) -> float:
        """Mean wall seconds of an epoch so far (the first excluded when there are more)."""
        rows = self.history[1:] or self.history
        return sum(r["seconds"] for r in rows) / len(rows) if rows else 0.0

    @property
    def decay_epoch(self) -> int:
        """The epoch after which the learning rate starts to fall."""
        total = self.spec.train.epochs * self.fit.steps
        return (total - wsd_steps(self.spec.train, total)[1]) // self.fit.steps

    @property
    def warmup_epochs(self) -> int:
        """Epochs until the warm-up has ended."""
        steps = self.fit.steps
        return -(-wsd_steps(self.spec.train, self.spec.train.epochs * steps)[0] // steps)

    def final_eval_s(self) -> float:
        """Seconds :meth:`finish`'s dev evaluation will take (fp32, the spec's test-time
        augmentation), timed on up to 1,000 dev images."""
        fit, cfg = self.fit, self.spec.train
        return _timed(lambda x: predict_log_probs(
            fit.tech.evaluated, x, batch_size=cfg.eval_batch_size, channels_last=fit.channels_last,
            tta=cfg.tta, tta_translate=cfg.tta_translate), fit.x_dev, images=1000)

    def advance(self, epochs: int = 1, on_epoch: EpochHook | None = None) -> None:
        """Train ``epochs`` more epochs (never past the spec's ``epochs``)."""
        for _ in range(min(epochs, self.spec.train.epochs - self.epoch)):
            self.epoch += 1
            t0 = time.perf_counter()
            row, grads = _epoch(self.fit, self.writer, self.epoch, progress=False)
            self.seconds += time.perf_counter() - t0
            self.writer.epoch(row, grads, self.seconds)
            if on_epoch is not None:
                on_epoch(self.epoch, row)

    def set_end(self, epochs: int, cooldown: int) -> None:
        """End the run after ``epochs`` epochs in all, the last ``cooldown`` of them decaying
        the learning rate; the spec (spec.yaml) is rewritten to say so exactly. The run must
        still be before the decay of both the old and the new plan."""
        steps, total = self.fit.steps, epochs * self.fit.steps
        cfg = self.spec.train
        warm = wsd_steps(cfg, cfg.epochs * steps)[0]
        cool = min(cooldown * steps, total - max(warm, self.epoch * steps))  # after the warm-up
        if self.epoch >= epochs or self.epoch > self.decay_epoch or cool < 1:
            raise ArchtuneError(f"{self.path}: cannot end after epoch {epochs} with {cooldown} "
                                f"epochs of decay: {self.epoch} epochs are trained")
        train = dataclasses.replace(cfg, epochs=epochs, warmup_frac=warm / total,
                                    cooldown_frac=min(cool / total, 0.999))
        spec = dataclasses.replace(self.spec, train=train)
        for factor in {id(f): f for f in self.fit.sched.lr_lambdas}.values():
            if not isinstance(factor, _Factor):
                raise TypeError("set_end: not a schedule from make_scheduler")
            factor.cfg, factor.total, factor.stretches = train, total, []
        self.fit.spec = spec
        self.writer.respec(spec)

    def pause(self) -> None:
        """Write ``state.pt`` (to continue from) and ``best.pt`` (the weights now)."""
        if not self.history:
            return
        fit = self.fit
        self.writer.best(fit.tech.evaluated, fit.classes, self.history[-1])
        state = {"version": STATE_VERSION, "spec": self.spec.to_dict(),
                 "model": _cpu(fit.model.state_dict()), "average": fit.tech.average_state(),
                 "optimizer": fit.opt.state_dict(), "step": fit.sched.last_epoch,
                 "generator": fit.gen.get_state(), "precision": fit.precision,
                 "seconds": self.seconds, "history": self.history, "env": _plain(self.writer.env),
                 "metrics": _plain(self.writer.metrics)}
        tmp = temp_beside(self.path / STATE_FILE)
        torch.save(state, tmp)
        os.replace(tmp, self.path / STATE_FILE)

    def stop(self, reason: str) -> None:
        """End the run here (a candidate that was not promoted): its folder keeps the weights
        as they are (best.pt) and says why it stopped; the training state is dropped."""
        if self.history:
            self.writer.best(self.fit.tech.evaluated, self.fit.classes, self.history[-1])
        self.writer.update_metrics(status="stopped", stopped=reason)
        self.writer.finish(self.seconds)
        (self.path / STATE_FILE).unlink(missing_ok=True)

    def finish(self) -> Run:
        """Mark the run complete with its final weights (not the best epoch's: the decay
        ends here) evaluated on dev as ``train`` does; returns the loaded run."""
        fit, row = self.fit, self.history[-1]
        self.writer.best(fit.tech.evaluated, fit.classes, row)
        if fit.tech.evaluated is not fit.model:
            fit.model.load_state_dict(fit.tech.evaluated.state_dict())
        self.writer.metrics["dev"] = _final_dev(fit, self.epoch, self.history)
        self.writer.update_metrics(status="complete")
        self.writer.finish(self.seconds)
        (self.path / STATE_FILE).unlink(missing_ok=True)
        return load_run(self.path, model=fit.model.to(memory_format=torch.contiguous_format).eval())


def measure(spec: Spec, splits: Splits, *, device: str | None = None,
            threads: int | None = None) -> tuple[float, float]:
    """(seconds of one epoch with its dev pass, seconds of the final dev evaluation) of
    ``spec`` on ``splits``, timed on a throwaway copy of the run (a few seconds)."""
    spec = check_compatible(as_trained(spec, len(splits.classes), quiet=True), splits)
    _, epoch_s, final_s = time_epoch(_prepare(spec, splits, None, device, threads), final_dev=True)
    return epoch_s, final_s


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    """As JSON holds it (a torch version object becomes its text), so the state loads with
    ``weights_only``."""
    return json.loads(json.dumps(data, default=str))


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in state.items()}


STATE_KEYS = ("version", "spec", "model", "average", "optimizer", "step", "generator",
              "precision", "seconds", "history", "env", "metrics")


def read_state(path: Path) -> dict[str, Any]:
    """The validated ``state.pt`` of a paused run folder."""
    file = path / STATE_FILE
    if not file.is_file():
        raise ArchtuneError(f"{path}: no {STATE_FILE} to continue from (the run was not paused, "
                            "or it finished)")
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise ArchtuneError(f"{file}: not a readable training state ({reason})") from None
    if not isinstance(state, dict) or any(k not in state for k in STATE_KEYS):
        missing = [k for k in STATE_KEYS if not isinstance(state, dict) or k not in state]
        raise ArchtuneError(f"{file}: not an archtune training state (missing {', '.join(missing)})")
    if state["version"] != STATE_VERSION:
        raise ArchtuneError(f"{file}: training state version {state['version']}, expected "
                            f"{STATE_VERSION}")
    return state
