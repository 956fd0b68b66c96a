"""``train()``: one call from a spec to a saved, reloadable run folder."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..data import Splits, channel_stats, check_fits, load_data
from ..models import ArchtuneNet, build_model
from ..specs import Spec, infer_shapes, load_spec, output_units, totals
from .budget import Replanner, check_minutes, plan_epochs
from .device import environment, memory_format, pick_device, resolve_precision, set_threads
from .loop import loss_and_accuracy, predict_log_probs, predict_logits, train_epoch
from .observers import run_callbacks
from .optim import make_optimizer, make_scheduler, stretch_schedule
from .run_writer import RunWriter
from .runs import Run, load_run, new_run_dir
from .techniques import Techniques, resolve_flips

if TYPE_CHECKING:
    from .budget import Replanner

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


class StopTraining(Exception):  # noqa: N818 (a request, not an error)
    """Raised by an ``epoch_callback`` to end a run on purpose (a search pruning a trial): the
    run ends ``stopped`` with its best checkpoint, logged at INFO rather than as a warning, and
    the exception reaches the caller of :func:`train`."""


def load_splits(spec: Spec) -> Splits:
    """The train/dev splits of the data set named in ``spec.data`` (the test split is not touched)."""
    return load_data(spec.data).splits


def check_compatible(spec: Spec, splits: Splits) -> Spec:
    """The spec as trained on ``splits``: an ``input_shape: auto`` takes the data's size and
    channels, its ``units: classes`` layers the data's number of classes; raise unless its
    input shape and outputs fit the data."""
    c, h, w = splits.input_shape
    spec = spec.for_input((h, w, c)).for_classes(len(splits.classes))
    check_fits(splits, kind="spec", name=spec.name, input_shape=spec.input_shape,
               units=output_units(spec))
    return spec


def as_trained(spec: Spec, classes: int, *, quiet: bool = False,
               input_shape: tuple[int, int, int] | None = None) -> Spec:
    """The spec a run of ``spec`` on data of ``classes`` classes (and of ``input_shape``, height,
    width, channels, when given) trains and saves (spec.yaml): ``auto`` flips decided (logged
    unless ``quiet``), ``units: classes`` and ``input_shape: auto`` bound."""
    spec = resolve_flips(spec, quiet=quiet).for_classes(classes)
    return spec.for_input(input_shape) if input_shape is not None else spec


def _is_better(value: float, best: float | None, monitor: str, min_delta: float) -> bool:
    if best is None:
        return True
    return value < best - min_delta if monitor == "dev_loss" else value > best + min_delta


class _Progress:
    """A tqdm bar per epoch (renders in notebooks through tqdm.auto)."""

    def __init__(self, enabled: bool, steps: int, epoch: int, epochs: int):
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=steps, desc=f"epoch {epoch}/{epochs}", leave=False, unit="batch")
        self.done = 0

    def step(self, step: int, loss: float, acc: float) -> None:
        if self.bar is not None:
            self.bar.update(step - self.done)
            self.done = step
            self.bar.set_postfix(loss=f"{loss:.4f}", acc=f"{acc:.4f}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def train(
    spec: Spec | str | Path | dict[str, Any],
    *,
    splits: Splits | None = None,
    run_dir: str | Path | None = None,
    runs_root: str | Path = "runs",
    device: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    epoch_callback: EpochCallback | None = None,
    model: ArchtuneNet | None = None,
    callbacks: Sequence[Any] = (),
    loggers: Any = None,
    mlflow_uri: str | None = None,
    final_dev: bool = True,
    minutes: float | None = None,
) -> Run:
    """Train a spec and save the run folder; returns the loaded :class:`Run` (model included).

    ``epoch_callback(epoch, row)`` is called after each epoch with the history row; raising
    from it stops training (the run folder is finalised first; raise :class:`StopTraining` when
    that is the plan rather than a fault). Ctrl-C leaves a valid run
    folder marked ``interrupted`` that holds the best checkpoint so far.

    ``callbacks`` (see :mod:`archtune.callbacks`) are told when the run starts, after
    each epoch and when it ends. ``loggers`` names experiment loggers: "tensorboard", "mlflow" or
    both (``mlflow_uri``: where MLflow records, default ``sqlite:///mlflow.db``). With
    ``progress`` in a notebook, a table of per-epoch metrics updates in place. With ``final_dev``
    the kept weights are evaluated on the dev split as ``evaluate`` does (fp32, the spec's
    TTA) and recorded as ``metrics["dev"]``: the run's one dev accuracy.

    ``minutes`` is a time budget for the whole call: the spec's ``epochs`` become as many as fit,
    planned from a few timed steps of the run itself and re-planned from its own epochs as it
    goes (see :mod:`archtune.training.budget`); the plan, its re-plans and the wall time it took
    are recorded in metrics.json as ``time_budget``.
    """
    started = time.perf_counter()
    check_minutes(minutes)
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    hooks = run_callbacks(callbacks, loggers, mlflow_uri, progress)
    splits = splits if splits is not None else load_splits(spec)
    spec = check_compatible(as_trained(spec, len(splits.classes)), splits)
    facts = _run_facts(spec, splits)
    spec, replan = _time_budget(spec, splits, minutes, started, final_dev, model, device, threads)
    if replan is not None:
        facts["time_budget"] = replan.to_dict()
    fit = _prepare(spec, splits, model, device, threads)
    path = Path(run_dir) if run_dir else new_run_dir(spec.name, runs_root)
    writer = RunWriter(path, spec, fit.env, facts)
    log.info("run folder: %s (device %s, precision %s, %d threads)", path, fit.x_train.device,
             fit.precision, fit.env["threads"])
    try:
        best_state = _run_epochs(fit, writer, hooks, progress, epoch_callback, final_dev, replan)
    finally:
        if replan is not None:
            writer.update_metrics(time_budget=replan.to_dict() | {"wall_s": time.perf_counter() - started})
    if best_state is not None:
        fit.model.load_state_dict(best_state)  # restore the best weights
    return load_run(path, model=fit.model.to(memory_format=torch.contiguous_format).eval())


def _time_budget(spec: Spec, splits: Splits, minutes: float | None, started: float,
                 final_dev: bool, model: ArchtuneNet | None, device: str | None,
                 threads: int | None) -> tuple[Spec, Replanner | None]:
    """The spec with as many epochs as ``minutes`` hold, and the re-planner that keeps them
    fitting (the spec as it is and None without a budget)."""
    if minutes is None:
        return spec, None
    plan = plan_epochs(spec, lambda s, m: _prepare(s, splits, m, device, threads),
                       minutes * 60, started, final_dev, model)
    return spec.with_epochs(plan.epochs), Replanner(plan, started)


@dataclass
class _Fit:
    """What the epochs of one run work on."""

    spec: Spec
    model: ArchtuneNet
    classes: list[str]
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_dev: torch.Tensor
    y_dev: torch.Tensor
    opt: torch.optim.Optimizer
    sched: Any
    gen: torch.Generator
    steps: int
    precision: str
    reason: str
    channels_last: bool
    env: dict[str, Any]
    tech: Techniques  # EMA, flips per epoch, compiled model: what is trained and what is evaluated


def _prepare(spec: Spec, splits: Splits, model: ArchtuneNet | None, device: str | None,
             threads: int | None) -> _Fit:
    """Device, precision, threads, seeded model, data on the device, optimiser and schedule."""
    cfg = spec.train
    dev = pick_device(device)
    n_threads = set_threads(threads)
    precision, reason = resolve_precision(cfg.precision, dev)
    torch.manual_seed(cfg.seed)
    if model is None:
        mean, std = channel_stats(splits.train.x) if spec.data.standardize else (None, None)
        model = build_model(spec, mean, std)
    model, channels_last = memory_format(model.to(dev), spec)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    x_train = splits.train.x.to(dev)
    tech = Techniques(model, cfg, x_train, gen)  # inits now; EMA, flips, compile while training
    opt = make_optimizer(model, cfg)
    steps = max(len(splits.train.y) // cfg.batch_size, 1)
    env = environment(dev, precision, reason, n_threads) | {"seed": cfg.seed}
    return _Fit(spec, model, splits.classes, x_train, splits.train.y.to(dev),
                splits.dev.x.to(dev), splits.dev.y.to(dev), opt, make_scheduler(opt, cfg, steps),
                gen, steps, precision, reason, channels_last, env, tech)


def _run_facts(spec: Spec, splits: Splits) -> dict[str, Any]:
    t = totals(infer_shapes(spec))
    return {"spec": spec.name, "classes": splits.classes, "params": t.params, "flops": t.flops,
            "seed": spec.train.seed,
            "data": {"dataset": spec.data.dataset, "n_train": len(splits.train.y),
                     "n_dev": len(splits.dev.y), **splits.facts}}


def _run_epochs(fit: _Fit, writer: RunWriter, hooks: Any, progress: bool,
                epoch_callback: EpochCallback | None, final_dev: bool,
                replan: Replanner | None = None
                ) -> dict[str, torch.Tensor] | None:
    """Train epoch by epoch (early stopping, best checkpoint; a time budget's ``replan``
    may change the epochs on the way) and finalise the run folder whatever happens; returns the
    best weights."""
    cfg, metrics = fit.spec.train, writer.metrics
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    since_best, planned = 0, False  # planned: stopped by StopTraining, not by a fault
    started = time.perf_counter()
    try:
        hooks.on_train_start(writer.path, fit.spec, metrics | {"env": writer.env})
        epoch = 0
        while epoch < fit.spec.train.epochs:
            epoch += 1
            row, grad_norms = _epoch(fit, writer, epoch, progress)
            value = row["dev_loss"] if cfg.monitor == "dev_loss" else row["dev_accuracy"]
            if _is_better(value, best_value, cfg.monitor, cfg.min_delta):
                best_value, since_best = value, 0
                best_state = copy.deepcopy(fit.tech.evaluated.state_dict())
                writer.best(fit.tech.evaluated, fit.classes, row)
            else:
                since_best += 1
            writer.epoch(row, grad_norms, time.perf_counter() - started)
            hooks.on_epoch_end(epoch, row, grad_norms)
            if epoch_callback is not None:
                epoch_callback(epoch, row)
            if replan is not None:
                if (epochs := replan.after_epoch(epoch)) is not None:
                    _replan(fit, writer, epochs)
                metrics["time_budget"] = replan.to_dict()  # as the loggers' end sees it
            if cfg.patience is not None and since_best >= cfg.patience:
                metrics["stopped_early"] = True
                log.info("early stopping: no dev improvement for %d epochs; best epoch %d",
                         cfg.patience, metrics["best_epoch"])
                break
        if final_dev and best_state is not None:
            fit.model.load_state_dict(best_state)
            metrics["dev"] = _final_dev(fit, metrics["best_epoch"], writer.history)
        metrics["status"] = "complete"
    except KeyboardInterrupt:
        metrics["status"] = "interrupted"
        raise
    except BaseException as err:
        metrics["status"], planned = "stopped", isinstance(err, StopTraining)
        raise
    finally:
        writer.finish(time.perf_counter() - started)
        hooks.on_train_end(writer.path, metrics)
        if metrics["status"] != "complete":
            kept = (f"best checkpoint (epoch {metrics['best_epoch']}) kept" if metrics["best_epoch"]
                    else "no checkpoint: no epoch finished")
            log.log(logging.INFO if planned else logging.WARNING, "run %s: %s after %d epochs; %s",
                    writer.path, metrics["status"], metrics["epochs_run"], kept)
    return best_state


def _replan(fit: _Fit, writer: RunWriter, epochs: int) -> None:
    """Train ``epochs`` in all instead: the rest of the schedule is stretched to them and
    spec.yaml (and the checkpoints from now on) say so."""
    stretch_schedule(fit.sched, fit.sched.last_epoch, epochs * fit.steps)  # last_epoch: steps run
    fit.spec = fit.spec.with_epochs(epochs)
    writer.respec(fit.spec)


def _epoch(fit: _Fit, writer: RunWriter, epoch: int, progress: bool
           ) -> tuple[dict[str, float], dict[str, float]]:
    """One epoch of training and its dev evaluation: the history row and gradient norms."""
    cfg = fit.spec.train
    t0 = time.perf_counter()
    lr = fit.opt.param_groups[0]["lr"]
    bar = _Progress(progress, fit.steps, epoch, cfg.epochs)
    try:
        stats = train_epoch(fit.tech.train_model, fit.x_train, fit.y_train, cfg, fit.opt,
                            fit.sched, fit.gen, precision=fit.precision,
                            channels_last=fit.channels_last, on_step=bar.step,
                            flips=fit.tech.flips(epoch), after_step=fit.tech.after_step)
    finally:
        bar.close()
    logits = predict_logits(fit.tech.evaluated, fit.x_dev, batch_size=cfg.eval_batch_size,
                            precision=fit.precision, channels_last=fit.channels_last)
    dev_loss, dev_acc = loss_and_accuracy(logits, fit.y_dev)
    if epoch == 1 and fit.precision == "bf16" and fit.reason.startswith("auto"):
        dev_loss, dev_acc = _guard_bf16(fit, writer, dev_acc)
    row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_accuracy": stats.accuracy,
           "dev_loss": dev_loss, "dev_accuracy": dev_acc, "seconds": time.perf_counter() - t0}
    log.info("epoch %d/%d  train loss %.4f acc %.4f  dev loss %.4f acc %.4f  lr %.2e  %.1fs",
             epoch, cfg.epochs, stats.loss, stats.accuracy, dev_loss, dev_acc, lr, row["seconds"])
    return row, stats.grad_norms


def _final_dev(fit: _Fit, best_epoch: int, history: list[dict[str, float]]) -> dict[str, Any]:
    """The kept weights (the moving average with ``ema``) on the dev split as ``evaluate``
    measures them: fp32, with the spec's flip and shift TTA (the history's numbers are taken as
    they are when training measured it so)."""
    cfg = fit.spec.train
    if fit.precision == "fp32" and not cfg.tta and not cfg.tta_translate:
        row = history[best_epoch - 1]
        loss, acc = row["dev_loss"], row["dev_accuracy"]
    else:
        logits = predict_log_probs(fit.model, fit.x_dev, batch_size=cfg.eval_batch_size,
                                   channels_last=fit.channels_last, tta=cfg.tta,
                                   tta_translate=cfg.tta_translate)
        loss, acc = loss_and_accuracy(logits, fit.y_dev)
    return {"accuracy": acc, "loss": loss, "epoch": best_epoch, "tta": bool(cfg.tta),
            "tta_translate": cfg.tta_translate, "ema": cfg.ema > 0, "precision": "fp32",
            "n": int(len(fit.y_dev))}


BF16_TOLERANCE = 0.005  # bf16 and fp32 dev accuracy after epoch 1 may differ by this much
BF16_TOLERANCE_IMAGES = 3  # or by this many images, on a small dev split: a half-trained model's
# near-ties flip either way (of 240 digits, 2 images are 0.83 points: search trials fell to fp32)


def bf16_tolerance(n_dev: int) -> float:
    """How far apart bf16 and fp32 dev accuracy may be after epoch 1 before training goes on in
    fp32: 0.5 points, or 3 images of a dev split under 600."""
    return max(BF16_TOLERANCE, BF16_TOLERANCE_IMAGES / max(n_dev, 1))


def _guard_bf16(fit: _Fit, writer: RunWriter, bf16_acc: float) -> tuple[float, float]:
    """After epoch 1, compare bf16 with fp32 dev accuracy; fall back to fp32 if they disagree
    (the check and any fallback are recorded in env.json). Returns the fp32 dev loss and
    accuracy."""
    logits = predict_logits(fit.tech.evaluated, fit.x_dev, batch_size=fit.spec.train.eval_batch_size,
                            precision="fp32", channels_last=fit.channels_last)
    loss32, acc32 = loss_and_accuracy(logits, fit.y_dev)
    tolerance = bf16_tolerance(len(fit.y_dev))
    changes: dict[str, Any] = {"bf16_check": {"dev_accuracy_bf16": bf16_acc,
                                              "dev_accuracy_fp32": acc32, "tolerance": tolerance}}
    if abs(acc32 - bf16_acc) > tolerance:
        log.warning("bf16 dev accuracy %.4f differs from fp32 %.4f by more than %.2g points: "
                    "continuing in fp32", bf16_acc, acc32, 100 * tolerance)
        fit.precision = "fp32"
        changes.update(precision="fp32", precision_reason="auto: bf16 failed the accuracy check")
    writer.update_env(**changes)
    return loss32, acc32
