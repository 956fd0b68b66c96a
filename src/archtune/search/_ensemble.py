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
