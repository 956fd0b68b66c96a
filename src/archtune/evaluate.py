"""Evaluation: loss, accuracy, per-class metrics, confusion matrix, worst mistakes, capacity verdict."""

from __future__ import annotations

import logging
import math
import sys
import types
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ._html import card, num, pct, table
from .data import Split, check_split, load_data
from .errors import ArchtuneError
from .specs import output_units
from .training.device import memory_format, pick_device
from .training.loop import predict_log_probs
from .training.runs import Run, load_run, write_csv, write_json
from .training.techniques import resolve_flips

log = logging.getLogger(__name__)
SPLITS = ("train", "dev", "test")
VERDICT_KEYS = ("train_loss", "train_accuracy", "dev_loss", "dev_accuracy")


class Evaluation(dict):
    """The result of :func:`evaluate`: a plain dict (JSON-ready) that shows itself briefly,
    and as a card (per-class table, confusion matrix) in a notebook."""

    def __repr__(self) -> str:
        return (f"<Evaluation {self.get('split')}: accuracy {self.get('accuracy', 0) * 100:.2f}%, "
                f"loss {self.get('loss', float('nan')):.4f}, macro F1 "
                f"{self.get('macro_f1', float('nan')):.4f} on {self.get('n', 0):,} images>")

    def _repr_html_(self) -> str:
        return evaluation_html(self)


def metrics_from_logits(logits: torch.Tensor, y: torch.Tensor, classes: list[str], *,
                        top_wrong: int = 16) -> dict[str, Any]:
    """All metrics of one split from its logits or log-probabilities (pure: no files, no model)."""
    logits, y = logits.float().cpu(), y.cpu()
    probs = logits.softmax(1)
    pred = probs.argmax(1)
    labels = list(range(len(classes)))
    yt, yp = y.numpy(), pred.numpy()
    p, r, f1, support = precision_recall_fscore_support(yt, yp, labels=labels, zero_division=0)
    per_class = {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f1[i]),
                     "support": int(support[i])} for i, c in enumerate(classes)}
    wrong = (pred != y).nonzero().flatten()
    conf = probs[wrong, pred[wrong]]
    order = conf.argsort(descending=True)[:top_wrong]
    worst = [{"index": int(wrong[i]), "true": classes[int(y[wrong[i]])],
              "predicted": classes[int(pred[wrong[i]])], "probability": float(conf[i])} for i in order]
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).float().mean()),
        "loss": float(F.cross_entropy(logits, y)),
        "macro_f1": float(np.mean(f1)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(yt, yp, labels=labels).tolist(),
        "most_confident_wrong": worst,
    }


LOSS_FLOOR = 0.05  # the least minimum a dev-loss rise is measured against


def capacity_verdict(history: list[dict[str, float]], chance: float | None = None) -> dict[str, Any]:
    """Read under-/over-fitting from the train/dev curves, with the numbers that led to it.

    over-fitting: dev loss rose more than 10% above its minimum by the end (measured against a
    minimum of at least LOSS_FLOOR, so that noise on a near-zero loss is not a large rise), or
    train accuracy exceeds dev accuracy by more than 3 points. under-fitting: train loss still
    fell by more than 5% over the last third of training (more epochs or capacity would help) and dev
    accuracy is at least as high as train accuracy (no gap yet). A best dev accuracy below 1.5x
    ``chance`` (1 / number of classes) is under-fitting too: the net is not learning. Otherwise: fine.
    """
    if not history:
        return {"verdict": "unknown", "reason": "no epochs recorded"}
    for i, h in enumerate(history):
        bad = [k for k in VERDICT_KEYS if not math.isfinite(h.get(k, math.nan))]
        if bad:
            return {"verdict": "unknown",
                    "reason": f"epoch {i + 1} of the history has no finite {bad[0]} (training "
                              f"diverged, or history.csv is damaged); no verdict without it"}
    last = history[-1]
    best_dev = max(h["dev_accuracy"] for h in history)
    if chance is not None and best_dev < 1.5 * chance:
        return {"verdict": "under-fitting",
                "reason": f"not learning: best dev accuracy {best_dev:.1%} is near chance ({chance:.0%}); "
                          f"check the learning rate, initialisation and activations",
                "numbers": {"best_dev_accuracy": best_dev, "chance": chance, "epochs": len(history)}}
    dev_losses = [h["dev_loss"] for h in history]
    best_i = int(np.argmin(dev_losses))
    rise = (dev_losses[-1] - dev_losses[best_i]) / max(dev_losses[best_i], LOSS_FLOOR)
    gap = last["train_accuracy"] - last["dev_accuracy"]
    k = max(len(history) // 3, 1)
    ref = history[-1 - k]["train_loss"] if len(history) > k else history[0]["train_loss"]
    still_falling = (ref - last["train_loss"]) / max(ref, 1e-12) if len(history) > 1 else math.nan
    numbers = {"train_accuracy": last["train_accuracy"], "dev_accuracy": last["dev_accuracy"],
               "accuracy_gap": gap, "best_dev_loss_epoch": best_i + 1, "epochs": len(history),
               "dev_loss_rise_from_min": rise, "train_loss_drop_last_third": still_falling}
    if rise > 0.10 or gap > 0.03:
        why = (f"dev loss rose from {dev_losses[best_i]:.4f} (epoch {best_i + 1}) to "
               f"{dev_losses[-1]:.4f} at the end" if rise > 0.10
               else f"train accuracy exceeds dev accuracy by {gap * 100:.1f} points")
        return {"verdict": "over-fitting", "reason": why, "numbers": numbers}
    if len(history) > 1 and still_falling > 0.05 and gap <= 0.0:
        return {"verdict": "under-fitting",
                "reason": f"train loss still fell {still_falling:.0%} over the last {k} epochs with no "
                          f"train/dev gap ({gap * 100:+.1f} points): train longer or add capacity",
                "numbers": numbers}
    return {"verdict": "fine", "reason": f"train/dev gap {gap * 100:+.1f} points, dev loss "
                                         f"{rise:.0%} above its minimum", "numbers": numbers}


def evaluate(run: Run | str | Path, split: str = "dev", *, data_dir: str | None = None,
             tta: bool | None = None, device: str | None = None, save: bool = True,
             data: Split | None = None, tta_translate: int | None = None) -> Evaluation:
    """Evaluate a run's best weights on a split; saves ``eval_<split>.json`` in the run folder.

    ``tta`` and ``tta_translate`` default to the run's ``train.tta`` and ``train.tta_translate``
    (``tta=False`` turns both off). Only this function reads the test split.
    """
    check_split(split)
    if not isinstance(run, Run):
        run = load_run(run)
    if not (run.path / "best.pt").exists():
        raise ArchtuneError(f"{run.path}: has no checkpoint yet (status: {run.status}); nothing to evaluate")
    note = run.status_note()  # e.g. the run died: its best checkpoint is evaluated
    units = output_units(run.spec)
    if len(run.classes) != units:
        raise ArchtuneError(f"{run.path / 'metrics.json'}: lists {len(run.classes)} classes but the "
                            f"model has {units} outputs")
    dev = pick_device(device)
    model = run.load_model(dev)
    data = data if data is not None else load_data(run.spec.data, data_dir=data_dir).split(split)
    cfg = resolve_flips(run.spec).train  # a run's spec is resolved already; a hand-made one may not be
    use_tta = bool(cfg.tta) if tta is None else tta
    translate = cfg.tta_translate if tta_translate is None else tta_translate
    translate = 0 if tta is False else translate  # --no-tta: no test-time augmentation at all
    model, channels_last = memory_format(model, run.spec)
    log_probs = predict_log_probs(model, data.x.to(dev), batch_size=run.spec.train.eval_batch_size,
                                  channels_last=channels_last, tta=use_tta, tta_translate=translate)
    result = metrics_from_logits(log_probs, data.y, run.classes)
    for w in result["most_confident_wrong"]:
        w["source_index"] = int(data.indices[w["index"]])
    result = Evaluation(run=str(run.path), split=split, tta=use_tta, tta_translate=translate,
                        **result,
                        capacity=capacity_verdict(run.history_rows, 1 / max(len(run.classes), 1)),
                        run_status=run.status, run_note=note)
    if save:
        write_json(run.path / f"eval_{split}.json", result)
        rows = [{"true\\pred": c, **dict(zip(run.classes, row, strict=True))}
                for c, row in zip(run.classes, result["confusion_matrix"], strict=True)]
        write_csv(run.path / f"confusion_{split}.csv", rows)
    return result


def dev_result(run: Run) -> dict[str, Any]:
    """The run's one dev accuracy and which weights it belongs to.

    From ``metrics["dev"]`` (the kept weights evaluated after training as ``evaluate`` does:
    fp32, the spec's TTA), else ``eval_dev.json``, else the history's best epoch as measured
    during training. Keys: ``accuracy``, ``loss``, ``epoch``, ``tta``, ``weights`` (in words).
    """
    m = run.metrics
    got = m.get("dev")
    if not got:
        saved = run.evaluation("dev")
        got = {"accuracy": saved["accuracy"], "loss": saved["loss"], "epoch": m.get("best_epoch"),
               "tta": saved.get("tta", False), "source": "eval_dev.json"} if saved else None
    if not got:
        best = m.get("best") or {}
        got = {"accuracy": best.get("dev_accuracy", math.nan), "loss": best.get("dev_loss", math.nan),
               "epoch": m.get("best_epoch"), "tta": False, "source": "training"}
    weights = f"epoch {got.get('epoch')} weights" if got.get("epoch") else "no weights"
    if got.get("members"):  # an ensemble run (retrain --ensemble): no one epoch
        weights = f"ensemble of {got['members']} runs, probabilities averaged"
    if got.get("ema"):
        weights = weights.replace("weights", "moving-average weights")
    if got.get("tta"):
        weights += ", flip TTA"
    if got.get("tta_translate"):
        weights += f", {got['tta_translate']}-pixel shift TTA"
    if got.get("source") == "training":
        weights += ", as measured during training"
    return {**got, "weights": weights}


def format_evaluation(result: dict[str, Any]) -> str:
    """Terminal text: headline, per-class table, confusion matrix, verdict."""
    classes = list(result["per_class"])
    views = (", flip TTA" if result.get("tta") else "") + (
        f", {result['tta_translate']}-pixel shift TTA" if result.get("tta_translate") else "")
    lines = [f"note: {result['run_note']}", ""] if result.get("run_note") else []
    lines += [f"{result['split']} split ({result['n']:,} images{views}): "
             f"accuracy {result['accuracy'] * 100:.2f}%  loss {result['loss']:.4f}  "
             f"macro F1 {result['macro_f1']:.4f}", "",
             f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for c, m in result["per_class"].items():
        lines.append(f"{c[:13]:<14}{m['precision']:>10.4f}{m['recall']:>10.4f}{m['f1']:>10.4f}{m['support']:>9}")
    short = [c[:5] for c in classes]
    lines += ["", "confusion matrix (rows: true, columns: predicted)",
              " " * 14 + "".join(f"{s:>7}" for s in short)]
    for c, row in zip(classes, result["confusion_matrix"], strict=True):
        lines.append(f"{c[:13]:<14}" + "".join(f"{v:>7}" for v in row))
    worst = result["most_confident_wrong"][:5]
    if worst:
        lines += ["", "most confident mistakes:"]
        lines += [f"  #{w['index']}: {w['true']} predicted as {w['predicted']} ({w['probability']:.1%})"
                  for w in worst]
    cap = result["capacity"]
    lines += ["", f"capacity: {cap['verdict']} ({cap['reason']})"]
    return "\n".join(lines)


class _Module(types.ModuleType):
    """``archtune.evaluate`` is both this module and the public function ``at.evaluate``; once
    the module is imported, Python binds the package attribute to the module, so calling the
    module calls the function (``from archtune import evaluate; evaluate(run, "test")``)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _Module


def evaluation_html(result: dict[str, Any]) -> str:
    classes = list(result.get("per_class", {}))
    cap = result.get("capacity") or {}
    facts = [("images", num(result.get("n"))),
             ("accuracy", f"<b>{pct(result.get('accuracy'))}</b>"),
             ("loss", num(result.get("loss"))), ("macro F1", num(result.get("macro_f1"))),
             ("capacity", f"{escape(str(cap.get('verdict', '-')))}: "
                          f"{escape(str(cap.get('reason', '')))}")]
    per_class = table(["class", "precision", "recall", "F1", "support"],
                      [[c, round(v["precision"], 4), round(v["recall"], 4), round(v["f1"], 4),
                        v["support"]] for c, v in result.get("per_class", {}).items()])
    title = f"Evaluation on the {escape(str(result.get('split', '?')))} split" + (
        " (flip TTA)" if result.get("tta") else "")
    return card(title, facts, below=[f'<div style="display: flex; gap: 16px; flex-wrap: wrap">'
                                     f'{per_class}{confusion_html(classes, result)}</div>'])


def confusion_html(classes: list[str], result: dict[str, Any]) -> str:
    matrix = result.get("confusion_matrix") or []
    if not matrix:
        return ""
    top = max(max(row) for row in matrix) or 1
    short = [escape(c[:5]) for c in classes]
    head = "".join(f'<th style="padding: 1px 3px; font-weight: 400">{s}</th>' for s in short)
    rows = []
    for c, row in zip(short, matrix, strict=False):
        cells = "".join(
            f'<td style="padding: 1px 3px; text-align: right; background: rgba(31,119,180,'
            f'{v / top:.2f}); color: {"#fff" if v / top > 0.5 else "#1f2328"}">{v}</td>'
            for v in row)
        rows.append(f'<tr><th style="padding: 1px 3px; font-weight: 400; text-align: left">'
                    f'{c}</th>{cells}</tr>')
    return (f'<table style="border-collapse: collapse; font-size: 10px; margin: 4px 0" '
            f'title="rows: true class, columns: predicted"><tr><th></th>{head}</tr>'
            f'{"".join(rows)}</table>')
