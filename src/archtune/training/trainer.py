"""``train()``: one call from a spec to a saved, reloadable run folder."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from .._process import this_process
from ..data import Splits, channel_stats, check_fits, load_data
from ..errors import ArchtuneError
from ..models import ArchtuneNet, build_model
from ..specs import Spec, infer_shapes, load_spec, output_units, totals
from .device import environment, pick_device, resolve_precision, set_threads
from .loop import loss_and_accuracy, predict_log_probs, predict_logits, train_epoch
from .observers import run_callbacks
from .optim import make_optimizer, make_scheduler
from .runs import Run, load_run, new_run_dir, save_checkpoint, write_csv, write_json
from .techniques import Techniques, resolve_flips

log = logging.getLogger(__name__)

EpochCallback = Callable[[int, dict[str, float]], None]


def load_splits(spec: Spec) -> Splits:
    """The train/dev splits of the data set named in ``spec.data`` (the test split is not touched)."""
    return load_data(spec.data).splits


def check_compatible(spec: Spec, splits: Splits) -> None:
    """Raise unless the spec's input shape and outputs fit the data."""
    check_fits(splits, kind="spec", name=spec.name, input_shape=spec.input_shape,
               units=output_units(spec))


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
) -> Run:
    """Train a spec and save the run folder; returns the loaded :class:`Run` (model included).

    ``epoch_callback(epoch, row)`` is called after each epoch with the history row; raising
    from it stops training (the run folder is finalised first). Ctrl-C leaves a valid run
    folder marked ``interrupted`` that holds the best checkpoint so far.

    ``callbacks`` (see :mod:`archtune.training.callbacks`) are told when the run starts, after
    each epoch and when it ends. ``loggers`` names experiment loggers: "tensorboard", "mlflow" or
    both (``mlflow_uri``: where MLflow records, default ``sqlite:///mlflow.db``). With
    ``progress`` in a notebook, a table of per-epoch metrics updates in place. With ``final_dev``
    the kept weights are evaluated on the dev split as ``evaluate`` does (fp32, the spec's
    TTA) and recorded as ``metrics["dev"]``: the run's one dev accuracy.
    """
    if not isinstance(spec, Spec):
        spec = load_spec(spec)
    spec = resolve_flips(spec)  # hflip/tta auto, decided by the data set (saved so in spec.yaml)
    hooks = run_callbacks(callbacks, loggers, mlflow_uri, progress)
    cfg = spec.train
    splits = splits if splits is not None else load_splits(spec)
    check_compatible(spec, splits)
    dev = pick_device(device)
    n_threads = set_threads(threads)
    precision, reason = resolve_precision(cfg.precision, dev)
    torch.manual_seed(cfg.seed)
    if model is None:
        mean, std = channel_stats(splits.train.x) if spec.data.standardize else (None, None)
        model = build_model(spec, mean, std)
    model = model.to(dev)
    channels_last = any(layer.type == "Conv2D" for layer in spec.layers)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    x_train, y_train = splits.train.x.to(dev), splits.train.y.to(dev)
    x_dev, y_dev = splits.dev.x.to(dev), splits.dev.y.to(dev)
    gen = torch.Generator(device="cpu").manual_seed(cfg.seed + 1)
    tech = Techniques(model, cfg, x_train, gen)  # inits now; EMA, flips, compile while training
    evaluated = tech.evaluated

    path = Path(run_dir) if run_dir else new_run_dir(spec.name, runs_root)
    if (path / "metrics.json").exists():
        raise ArchtuneError(f"{path}: already holds a run; choose another --run-dir")
    path.mkdir(parents=True, exist_ok=True)
    (path / "spec.yaml").write_text(spec.to_yaml())
    env = environment(dev, precision, reason, n_threads) | {"seed": cfg.seed}
    write_json(path / "env.json", env)
    t = totals(infer_shapes(spec))
    metrics: dict[str, Any] = {
        "status": "running", "spec": spec.name, "classes": splits.classes,
        "params": t.params, "flops": t.flops, "seed": cfg.seed,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "data": {"dataset": spec.data.dataset, "n_train": len(splits.train.y), "n_dev": len(splits.dev.y)},
        "epochs_run": 0, "best_epoch": None, "stopped_early": False,
        "process": this_process(),  # so a run left 'running' by a killed process reads as died
    }
    write_json(path / "metrics.json", metrics)
    log.info("run folder: %s (device %s, precision %s, %d threads)", path, dev, precision, n_threads)

    opt = make_optimizer(model, cfg)
    steps = max(len(y_train) // cfg.batch_size, 1)
    sched = make_scheduler(opt, cfg, steps)
    history: list[dict[str, float]] = []
    grads: list[dict[str, float]] = []
    best_value: float | None = None
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    started = time.perf_counter()
    try:
        hooks.on_train_start(path, spec, metrics | {"env": env})
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            lr = opt.param_groups[0]["lr"]
            bar = _Progress(progress, steps, epoch, cfg.epochs)
            try:
                stats = train_epoch(tech.train_model, x_train, y_train, cfg, opt, sched, gen,
                                    precision=precision, channels_last=channels_last, on_step=bar.step,
                                    flips=tech.flips(epoch), after_step=tech.after_step)
            finally:
                bar.close()
            logits = predict_logits(evaluated, x_dev, batch_size=cfg.eval_batch_size, precision=precision,
                                    channels_last=channels_last)
            dev_loss, dev_acc = loss_and_accuracy(logits, y_dev)
            if epoch == 1 and precision == "bf16" and reason.startswith("auto"):
                precision, dev_loss, dev_acc = _guard_bf16(evaluated, x_dev, y_dev, cfg, channels_last,
                                                           dev_acc, env, path)
            row = {"epoch": epoch, "lr": lr, "train_loss": stats.loss, "train_accuracy": stats.accuracy,
                   "dev_loss": dev_loss, "dev_accuracy": dev_acc,
                   "seconds": time.perf_counter() - t0}
            history.append(row)
            if stats.grad_norms:
                grads.append({"epoch": epoch, **stats.grad_norms})
            log.info("epoch %d/%d  train loss %.4f acc %.4f  dev loss %.4f acc %.4f  lr %.2e  %.1fs",
                     epoch, cfg.epochs, stats.loss, stats.accuracy, dev_loss, dev_acc, lr, row["seconds"])
            value = dev_loss if cfg.monitor == "dev_loss" else dev_acc
            if _is_better(value, best_value, cfg.monitor, cfg.min_delta):
                best_value, since_best = value, 0
                best_state = copy.deepcopy(evaluated.state_dict())
                save_checkpoint(path / "best.pt", evaluated, spec, splits.classes, epoch)
                metrics.update(best_epoch=epoch, best={k: row[k] for k in
                                                       ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")})
            else:
                since_best += 1
            write_csv(path / "history.csv", history)
            if grads:
                write_csv(path / "grad_norms.csv", grads)
            metrics.update(epochs_run=epoch, train_seconds=time.perf_counter() - started)
            write_json(path / "metrics.json", metrics)
            hooks.on_epoch_end(epoch, row, stats.grad_norms)
            if epoch_callback is not None:
                epoch_callback(epoch, row)
            if cfg.patience is not None and since_best >= cfg.patience:
                metrics["stopped_early"] = True
                log.info("early stopping: no dev improvement for %d epochs; best epoch %d",
                         cfg.patience, metrics["best_epoch"])
                break
        if final_dev and best_state is not None:
            model.load_state_dict(best_state)
            metrics["dev"] = _final_dev(model, x_dev, y_dev, cfg, precision, channels_last,
                                        metrics["best_epoch"], history)
        metrics["status"] = "complete"
    except KeyboardInterrupt:
        metrics["status"] = "interrupted"
        raise
    except BaseException:
        metrics["status"] = "stopped"
        raise
    finally:
        metrics.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S"),
                       train_seconds=time.perf_counter() - started)
        write_json(path / "metrics.json", metrics)
        hooks.on_train_end(path, metrics)
        if metrics["status"] != "complete":
            kept = (f"best checkpoint (epoch {metrics['best_epoch']}) kept" if metrics["best_epoch"]
                    else "no checkpoint: no epoch finished")
            log.warning("run %s: %s after %d epochs; %s", path, metrics["status"],
                        metrics["epochs_run"], kept)
    if best_state is not None:
        model.load_state_dict(best_state)  # restore the best weights
    run = load_run(path)
    run._model = model.to(memory_format=torch.contiguous_format).eval()
    return run


def _final_dev(model: ArchtuneNet, x: torch.Tensor, y: torch.Tensor, cfg: Any, precision: str,
               channels_last: bool, best_epoch: int, history: list[dict[str, float]]
               ) -> dict[str, Any]:
    """The kept weights (the moving average with ``ema``) on the dev split as ``evaluate``
    measures them: fp32, with the spec's flip and shift TTA (the history's numbers are taken as
    they are when training measured it so)."""
    if precision == "fp32" and not cfg.tta and not cfg.tta_translate:
        row = history[best_epoch - 1]
        loss, acc = row["dev_loss"], row["dev_accuracy"]
    else:
        logits = predict_log_probs(model, x, batch_size=cfg.eval_batch_size,
                                   channels_last=channels_last, tta=cfg.tta,
                                   tta_translate=cfg.tta_translate)
        loss, acc = loss_and_accuracy(logits, y)
    return {"accuracy": acc, "loss": loss, "epoch": best_epoch, "tta": bool(cfg.tta),
            "tta_translate": cfg.tta_translate, "ema": cfg.ema > 0, "precision": "fp32",
            "n": int(len(y))}


def _guard_bf16(model: ArchtuneNet, x: torch.Tensor, y: torch.Tensor, cfg: Any, channels_last: bool,
                bf16_acc: float, env: dict[str, Any], path: Path) -> tuple[str, float, float]:
    """After epoch 1, compare bf16 with fp32 dev accuracy; fall back to fp32 if they disagree."""
    logits = predict_logits(model, x, batch_size=cfg.eval_batch_size, precision="fp32",
                            channels_last=channels_last)
    loss32, acc32 = loss_and_accuracy(logits, y)
    env["bf16_check"] = {"dev_accuracy_bf16": bf16_acc, "dev_accuracy_fp32": acc32}
    if abs(acc32 - bf16_acc) > 0.005:
        log.warning("bf16 dev accuracy %.4f differs from fp32 %.4f by more than 0.5 points: "
                    "continuing in fp32", bf16_acc, acc32)
        env.update(precision="fp32", precision_reason="auto: bf16 failed the accuracy check")
        write_json(path / "env.json", env)
        return "fp32", loss32, acc32
    write_json(path / "env.json", env)
    return "bf16", loss32, acc32


def spec_yaml(spec: Spec) -> str:
    return yaml.safe_dump(spec.to_dict(), sort_keys=False)
