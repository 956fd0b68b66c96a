"""The finalists as one model: every finalist run (each of the top trials, each seed) averaged.

On small data the dev split cannot tell good candidates apart (400 dev images give one
accuracy a standard error near 2 points), so picking one finalist is a coin toss among equals;
averaging their probabilities uses several instead, and the members' errors partly cancel.
``archtune retrain STUDY --ensemble`` trains the finalists as usual (with ``--minutes``: the
whole budget goes to their runs, less :data:`EVAL_SHARE` kept for evaluating the ensemble),
keeps the runs the dev split cannot tell from the best one (:func:`select_members`: a run
clearly worse on dev is left out) and writes one run folder whose ``best.pt`` holds them
(:func:`archtune.training.runs.save_ensemble_checkpoint`), so evaluate, predict, export and
serve use it as any run. The folder's spec, history and curves are the lead member's (the
best on dev); ``metrics.json`` ``ensemble`` lists every finalist run (chosen or not) with
its dev accuracy and loss, ``params`` and ``flops`` are the chosen members' sums, and
``dev`` is the ensemble's (read high: the members were chosen on that split).

A study's budgets (``max_params``, ``max_flops``, ``max_latency_ms``) apply to the ensemble as
a whole: it runs every member, so its cost is their sum. That is checked from the specs of
all the finalist runs before any training (selection can only leave members out).
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError

if TYPE_CHECKING:
    import optuna

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


def select_members(dev: list[float], n_dev: int, loss: list[float]) -> list[int]:
    """The runs the dev split cannot tell from the best one: dev accuracy within one binomial
    standard error of the best's, sqrt(p (1 - p) / n_dev) (the noise of one dev accuracy, as the
    finalists' verdict counts it). Best dev accuracy first (the lead), ties by lower dev loss. A
    run clearly worse on dev is left out; on a small dev split almost none is."""
    order = sorted(range(len(dev)), key=lambda i: (-dev[i], loss[i], i))
    best = dev[order[0]]
    se = math.sqrt(max(best * (1 - best), 0.0) / max(n_dev, 1))
    return [i for i in order if dev[i] >= best - se - 1e-12]


def ensemble_run(finals: Finals, path: Path, record: Callable[[int], dict[str, Any]]) -> Run:
    """Write the run folder ``path`` of the ensemble chosen from every run in ``finals`` (see
    :func:`select_members`; the lead is the first chosen) and evaluate it on the dev split;
    ``record(trial)`` gives search.json for the lead's trial."""
    from ..evaluate import evaluate
    from ..training import load_run
    from ..training.runs import save_ensemble_checkpoint, write_json

    sources = [(f.trial, seed, Path(r)) for f in finals.finalists
               for seed, r in zip(f.seeds, f.runs, strict=True)]
    runs = [load_run(p) for _, _, p in sources]
    classes = runs[0].classes
    for (_, _, p), run in zip(sources, runs, strict=True):
        if run.classes != classes:
            raise ArchtuneError(f"{p}: its classes differ from {runs[0].path}'s; an ensemble needs "
                                "the same classes in the same order")
    devs = [run.metrics.get("dev") or {} for run in runs]
    for (_, _, p), dev in zip(sources, devs, strict=True):
        if not isinstance(dev.get("accuracy"), float) or not isinstance(dev.get("loss"), float):
            raise ArchtuneError(f"{p}: metrics.json has no dev evaluation to choose members by")
    n_dev = min(int(d.get("n") or 0) for d in devs)
    chosen = select_members([d["accuracy"] for d in devs], n_dev, [d["loss"] for d in devs])
    members = [{"trial": trial, "seed": seed, "run": str(p), "chosen": i in chosen,
                "dev_accuracy": devs[i]["accuracy"], "dev_loss": devs[i]["loss"],
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
                  "lead": str(lead.path),
                  "selection": "dev accuracy within one binomial standard error of the best run's",
                  "history": "the lead member's (spec.yaml, history.csv and curves too)"})
    write_json(path / "metrics.json", metrics)
    run = load_run(path)
    ev = evaluate(run, "dev")
    metrics["dev"] = {"accuracy": ev["accuracy"], "loss": ev["loss"], "tta": ev["tta"],
                      "tta_translate": ev["tta_translate"], "n": ev["n"], "members": len(chosen)}
    write_json(path / "metrics.json", metrics)
    write_json(path / "search.json", record(sources[chosen[0]][0]))
    best = max((m["dev_accuracy"] or 0.0) for m in members)
    log.info("ensemble of %d of %d finalist runs (those within the dev noise of the best): dev "
             "accuracy %.2f%% (best single run %.2f%%; chosen on this dev split, so both read high)",
             len(chosen), len(members), 100 * ev["accuracy"], 100 * best)
    return load_run(path)
