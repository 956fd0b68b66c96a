"""The finalists as one model: every finalist run (each of the top trials, each seed) averaged.

On small data the dev split cannot tell good candidates apart (400 dev images give one
accuracy a standard error near 2 points), so picking one finalist is a coin toss among equals;
averaging their probabilities uses several instead, and the members' errors partly cancel.
``archtune retrain STUDY --ensemble`` trains the finalists as usual (with ``--minutes``: the
whole budget goes to their runs, less :data:`EVAL_SHARE` kept for choosing and evaluating the
ensemble), chooses members greedily by dev log-loss (:func:`select_members`: a run that makes
the average worse is left out) and writes one run folder whose ``best.pt`` holds the members
(:func:`archtune.training.runs.save_ensemble_checkpoint`), so evaluate, predict, export and
serve use it as any run. The folder's spec, history and curves are the lead member's (the
first chosen); ``metrics.json`` ``ensemble`` lists every finalist run (chosen or not) with
its dev accuracy and log-loss, ``params`` and ``flops`` are the chosen members' sums, and
``dev`` is the ensemble's (read high: the members were chosen on that split).

A study's budgets (``max_params``, ``max_flops``, ``max_latency_ms``) apply to the ensemble as
a whole: it runs every member, so its cost is their sum. That is checked from the specs of
all the finalist runs before any training (selection can only leave members out).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError

if TYPE_CHECKING:
    import optuna
    import torch

    from ..training import Run
    from ._finalists import Finals
    from ._info import StudyInfo

log = logging.getLogger(__name__)
EVAL_SHARE = 0.03  # retrain --ensemble --minutes: the share kept for the ensemble's dev evaluation


def check_ensemble_limits(info: StudyInfo, trials: list[optuna.trial.FrozenTrial], seeds: int) -> None:
    """Raise when ``seeds`` runs of each of ``trials``, run together, exceed the study's budgets."""
    from ..specs import spec_from_dict
    from ._limits import Limits, latency_ms

    limits = Limits.of(info)
    if limits is None:
        return
    n = len(trials) * seeds
    params = seeds * sum(int(t.user_attrs.get("params_count") or 0) for t in trials)
    flops = seeds * sum(float(t.user_attrs.get("flops") or 0) for t in trials)
    over = []
    if limits.max_params is not None and params > limits.max_params:
        over.append(f"{params:,} parameters > max_params {limits.max_params:,}")
    if limits.max_flops is not None and flops > limits.max_flops:
        over.append(f"{flops:,.0f} FLOPs per image > max_flops {limits.max_flops:,.0f}")
    if limits.max_latency_ms is not None and not over:
        ms = seeds * sum(latency_ms(spec_from_dict(t.user_attrs["spec"], source=f"trial {t.number}"))
                         for t in trials)
        if ms > limits.max_latency_ms:
            over.append(f"batch-1 latency {ms:.3g} ms > max_latency_ms {limits.max_latency_ms:g}")
    if over:
        raise ArchtuneError(
            f"--ensemble: {n} members ({len(trials)} trial{'s' if len(trials) != 1 else ''} x "
            f"{seeds} seed{'s' if seeds != 1 else ''}) run together exceed the study's budget: "
            + "; ".join(over) + ". Nothing was trained; lower --finalists or --seeds, or drop "
            "--ensemble")


def _dev_probs(run: Run, tta: bool, translate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A member's dev probabilities (fp32, with the ensemble's test-time augmentation) and the
    labels."""
    from ..data import load_data
    from ..training.device import memory_format
    from ..training.loop import predict_log_probs

    data = load_data(run.spec.data).split("dev")
    model, channels_last = memory_format(run.load_model("cpu"), run.spec)
    log_probs = predict_log_probs(model, data.x, batch_size=run.spec.train.eval_batch_size,
                                  channels_last=channels_last, tta=tta, tta_translate=translate)
    return log_probs.exp(), data.y


def _nll(probs: torch.Tensor, y: torch.Tensor) -> float:
    return float(-probs.gather(1, y[:, None]).clamp_min(1e-12).log().mean())


def select_members(probs: list[torch.Tensor], y: torch.Tensor) -> tuple[list[int], list[float]]:
    """Greedy ensemble selection (Caruana et al., 2004), without replacement: start from the
    member of lowest dev log-loss, then add, one at a time, the member that lowers the
    ensemble's dev log-loss most, until none lowers it. Returns the chosen indices in the order
    chosen and the ensemble's log-loss after each. Log-loss rather than accuracy: on a small
    dev split accuracy moves in steps of one image, log-loss in every probability."""
    first = min(range(len(probs)), key=lambda i: _nll(probs[i], y))
    chosen, total, losses = [first], probs[first].clone(), [_nll(probs[first], y)]
    while len(chosen) < len(probs):
        trials = {i: _nll((total + probs[i]) / (len(chosen) + 1), y)
                  for i in range(len(probs)) if i not in chosen}
        best = min(trials, key=lambda i: (trials[i], i))
        if trials[best] >= losses[-1]:
            break
        chosen.append(best)
        total += probs[best]
        losses.append(trials[best])
    return chosen, losses


def ensemble_run(finals: Finals, path: Path, record: Callable[[int], dict[str, Any]]) -> Run:
    """Write the run folder ``path`` of the ensemble chosen from every run in ``finals`` (see
    :func:`select_members`; the lead is the first chosen) and evaluate it on the dev split;
    ``record(trial)`` gives search.json for the lead's trial."""
    from ..evaluate import evaluate
    from ..training import load_run
    from ..training.runs import save_ensemble_checkpoint, write_json
    from ..training.techniques import resolve_flips

    sources = [(f.trial, seed, Path(r)) for f in finals.finalists
               for seed, r in zip(f.seeds, f.runs, strict=True)]
    runs = [load_run(p) for _, _, p in sources]
    classes = runs[0].classes
    for (_, _, p), run in zip(sources, runs, strict=True):
        if run.classes != classes:
            raise ArchtuneError(f"{p}: its classes differ from {runs[0].path}'s; an ensemble needs "
                                "the same classes in the same order")
    cfg = resolve_flips(runs[0].spec).train  # the ensemble's test-time augmentation, as evaluate's
    scored = [_dev_probs(run, bool(cfg.tta), cfg.tta_translate) for run in runs]
    chosen, losses = select_members([p for p, _ in scored], scored[0][1])
    members = [{"trial": trial, "seed": seed, "run": str(p), "chosen": i in chosen,
                "dev_accuracy": (run.metrics.get("dev") or {}).get("accuracy"),
                "dev_log_loss": _nll(*scored[i]),
                "params": run.metrics.get("params"), "flops": run.metrics.get("flops"),
                "epochs_run": run.metrics.get("epochs_run"),
                "train_seconds": run.metrics.get("train_seconds")}
               for i, ((trial, seed, p), run) in enumerate(zip(sources, runs, strict=True))]
    picked = [runs[i] for i in chosen]
    lead = picked[0]
    shutil.copytree(lead.path, path, dirs_exist_ok=True)
    for stale in [*path.glob("eval_*.json"), *path.glob("confusion_*.csv")]:
        stale.unlink()  # the lead member's evaluations, not the ensemble's
    save_ensemble_checkpoint(
        path / "best.pt",
        [(run.load_model("cpu"), run.spec, int(run.metrics.get("best_epoch") or 0), str(run.path))
         for run in picked], classes)
    used = [members[i] for i in chosen]
    metrics = dict(lead.metrics)
    metrics.pop("dev", None)
    metrics.update(
        params=sum(int(m["params"] or 0) for m in used),
        flops=sum(int(m["flops"] or 0) for m in used),
        train_seconds=sum(float(m["train_seconds"] or 0.0) for m in members),  # all were trained
        ensemble={"members": [members[i] for i in chosen] + [m for m in members if not m["chosen"]],
                  "lead": str(lead.path), "dev_log_loss": losses,
                  "selection": "greedy on dev log-loss (Caruana et al., 2004), without replacement",
                  "history": "the lead member's (spec.yaml, history.csv and curves too)"})
    write_json(path / "metrics.json", metrics)
    run = load_run(path)
    ev = evaluate(run, "dev")
    metrics["dev"] = {"accuracy": ev["accuracy"], "loss": ev["loss"], "tta": ev["tta"],
                      "tta_translate": ev["tta_translate"], "n": ev["n"], "members": len(chosen)}
    write_json(path / "metrics.json", metrics)
    write_json(path / "search.json", record(sources[chosen[0]][0]))
    best = max((m["dev_accuracy"] or 0.0) for m in members)
    log.info("ensemble of %d of %d finalist runs (greedy on dev log-loss): dev accuracy %.2f%% "
             "(best single run %.2f%%; chosen on this dev split, so both read high)",
             len(chosen), len(members), 100 * ev["accuracy"], 100 * best)
    return load_run(path)
