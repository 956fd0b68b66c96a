"""The finalists as one model: every finalist run (each of the top trials, each seed) averaged.

On small data the dev split cannot tell good candidates apart (400 dev images give one
accuracy a standard error near 2 points), so picking one finalist is a coin toss among equals;
averaging their probabilities uses several instead, and the members' errors partly cancel.
``archtune retrain STUDY --ensemble`` trains the finalists as usual (with ``--minutes``: the
whole budget goes to their runs, less :data:`EVAL_SHARE` kept for evaluating the ensemble),
keeps the runs the dev split cannot tell from the best one (:func:`archtune._ensemble.
select_members`: a run clearly worse on dev is left out) and writes them as one run folder
(:func:`archtune._ensemble.ensemble`, which says what it holds), with ``search.json`` naming
the lead member's trial.

A study's budgets (``max_params``, ``max_flops``, ``max_latency_ms``) apply to the ensemble as
a whole: it runs every member, so its cost is their sum. That is checked from the specs of
all the finalist runs before any training (selection can only leave members out).

``--ensemble auto`` averages only when it can pay: with a time budget, K x N runs share it, so
each gets a K x N-th of it where one retrained run would get half. On small data a share still
holds far more than the spec's epochs (fmnist-2k: 54-237 epochs each, against auto-space's 24)
and averaging wins; on large data a share holds a few epochs (48,000 images: 2-3) and an
average of under-trained nets loses to one trained run. So :func:`undertrained` predicts each
member's epochs from its trial's own epochs in the search (their median seconds, scaled from
the coarse pass's images to the whole train split) and ``auto`` averages only when every
member fits its spec's full epochs; otherwise it retrains one winner as without ``--ensemble``,
and says why (search.json ``ensemble_auto``). Without a time budget every member trains its
full epochs anyway, so ``auto`` averages.
"""

from __future__ import annotations

import logging
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


def epoch_seconds(trial: optuna.trial.FrozenTrial, n_train: int) -> float | None:
    """Seconds one epoch of ``trial``'s spec takes on ``n_train`` images, predicted from its
    epochs in the search: the median of their seconds (the first left out when there are more:
    it warms up), scaled from the coarse pass's images to ``n_train``. Their seconds include a
    dev pass, which does not grow with the training images, so this errs long (toward one
    run: Fashion-MNIST, 18.7 s predicted, 15.5 s run). None: no epoch recorded."""
    import statistics

    rows = [r for r in trial.user_attrs.get("history") or [] if isinstance(r, dict)
            and isinstance(r.get("seconds"), int | float) and r["seconds"] > 0]
    if not rows:
        return None
    seconds = statistics.median(r["seconds"] for r in (rows[1:] if len(rows) > 1 else rows))
    subset = (trial.user_attrs.get("fidelity") or {}).get("train_subset")
    coarse = min(int(subset), n_train) if isinstance(subset, int) and subset > 0 else n_train
    return seconds * n_train / max(coarse, 1)


def undertrained(trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float,
                 n_train: int) -> str | None:
    """Why ``seeds`` runs of each of ``trials`` sharing ``minutes`` would be under-trained: the
    runs whose predicted epochs in their share fall short of their spec's full epochs (see the
    module docstring). None: every run fits."""
    from ..training.budget import MARGIN

    n = len(trials) * seeds
    share = minutes * 60 / n
    short = []
    for t in trials:
        full = int(t.user_attrs["spec"]["train"]["epochs"])
        epoch_s = epoch_seconds(t, n_train)
        if epoch_s is None:
            short.append(f"trial {t.number} has no timed epoch in the search")
            continue
        fit = share * MARGIN / epoch_s
        if fit < full:
            short.append(f"trial {t.number} about {fit:.1f} of its {full} epochs "
                         f"({epoch_s:.1f} s an epoch on {n_train:,} images)")
    if not short:
        return None
    return (f"{n} runs sharing {minutes:.1f} minutes would get "
            f"{f'{share:.0f}' if share >= 10 else f'{share:.1f}'} s each: "
            + "; ".join(short))


def fitting(trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float, n_train: int
            ) -> tuple[list[optuna.trial.FrozenTrial], list[str]]:
    """The trials whose ``seeds`` runs each can train at least one epoch when all their runs
    share ``minutes`` (predicted as :func:`undertrained` does), and why each other one was left
    out. The slowest is left out first, which raises the others' shares. A run that cannot
    finish one epoch would overrun the time budget (training runs at least one); a trial with
    no timed epoch is kept."""
    from ..training.budget import MARGIN

    kept, why = list(trials), []
    while kept:
        share = minutes * 60 / (len(kept) * seeds)
        timed = [(s, t) for t in kept if (s := epoch_seconds(t, n_train)) is not None]
        over = [(s, t) for s, t in timed if s > share * MARGIN]
        if not over:
            break
        slowest, trial = max(over, key=lambda x: x[0])
        kept.remove(trial)
        why.append(f"trial {trial.number}: one epoch takes about {slowest:.0f} s on "
                   f"{n_train:,} images, over its runs' share of {share:.0f} s")
    return kept, why


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
    constraints, measured = limits.check_costs(params, flops, lambda: seeds * sum(
        latency_ms(spec_from_dict(t.user_attrs["spec"], source=f"trial {t.number}")) for t in trials))
    over = limits.reason(constraints, params, flops, measured)  # the candidates' own wording
    if over:
        raise ArchtuneError(
            f"--ensemble: {n} members ({len(trials)} trial{'s' if len(trials) != 1 else ''} x "
            f"{seeds} seed{'s' if seeds != 1 else ''}) run together exceed the study's budget: "
            f"{over}. Lower --finalists or --seeds, or drop --ensemble")


def ensemble_run(finals: Finals, path: Path, record: Callable[[int], dict[str, Any]]) -> Run:
    """Write the run folder ``path`` of the ensemble of the runs in ``finals`` (see
    :func:`archtune._ensemble.ensemble`); ``record(trial)`` gives search.json for the lead's trial."""
    from .._ensemble import ensemble
    from ..training.runs import write_json

    sources = [(f.trial, seed, r) for f in finals.finalists for seed, r in zip(f.seeds, f.runs, strict=True)]
    run = ensemble([r for _, _, r in sources], path,
                   labels=[{"trial": trial, "seed": seed} for trial, seed, _ in sources])
    write_json(path / "search.json", record(run.metrics["ensemble"]["members"][0]["trial"]))
    return run
