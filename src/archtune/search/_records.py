"""Trial records of a study: each trial's state, one row per trial, counts and the best trial
(pure functions of an ``optuna.Study``; no storage or study-folder access)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..errors import ArchtuneError
from ._info import best_record, trial_name, trial_record, value_of
from ._worker import counted, retried_numbers

if TYPE_CHECKING:
    import optuna
    import pandas as pd


COLUMNS = ("number", "state", "dev_accuracy", "dev_loss", "epochs", "duration_s", "params_count",
           "flops", "seed", "run_dir", "retry_of", "retried_as", "worker", "started", "error")
PARAM = "param."  # prefix of the parameter columns
STATES = ("complete", "pruned", "failed", "invalid", "running", "waiting")


def trial_state(t: optuna.trial.FrozenTrial) -> str:
    """complete | pruned | failed | invalid | running | waiting."""
    name = t.state.name.lower()
    if t.user_attrs.get("status") == "invalid" and name in ("fail", "pruned"):
        return "invalid"  # a candidate over budget is PRUNED for Optuna, invalid for archtune
    if name == "fail":
        return "failed"
    return {"complete": "complete", "pruned": "pruned", "running": "running"}.get(name, "waiting")


def _error(t: optuna.trial.FrozenTrial, retried: dict[int, int]) -> str | None:
    if t.state.name != "FAIL" or t.user_attrs.get("status") in ("failed", "invalid"):  # their reason
        return t.user_attrs.get("error")
    again = f"; retried as trial {retried[t.number]}" if t.number in retried else ""
    return f"stopped before it finished (worker interrupted or gone){again}"


def trials_dataframe(study: optuna.Study) -> pd.DataFrame:
    """One row per trial: state, dev accuracy and loss (best epoch), epochs run, duration,
    parameter count, FLOPs, seed, run folder, retries, worker, then ``param.<name>``."""
    import pandas as pd

    trials = study.get_trials(deepcopy=False)
    retried = retried_numbers(trials)
    names: dict[str, None] = {}
    for t in trials:
        names.update(dict.fromkeys(t.params))
    rows = []
    for t in trials:
        a = t.user_attrs
        row = {"number": t.number, "state": trial_state(t),
               "dev_accuracy": a.get("dev_accuracy", value_of(t)), "dev_loss": a.get("dev_loss"),
               "epochs": a.get("epochs", len(t.intermediate_values)), "duration_s": a.get("duration_s"),
               "params_count": a.get("params_count"), "flops": a.get("flops"), "seed": a.get("seed"),
               "run_dir": a.get("run_dir"), "retry_of": t.system_attrs.get("failed_trial"),
               "retried_as": retried.get(t.number), "worker": a.get("worker"),
               "started": t.datetime_start, "error": _error(t, retried)}
        row.update({f"{PARAM}{n}": t.params.get(n) for n in names})
        rows.append(row)
    df = pd.DataFrame(rows, columns=[*COLUMNS, *(f"{PARAM}{n}" for n in names)])
    for col in ("epochs", "params_count", "flops", "seed", "retry_of", "retried_as"):
        df[col] = df[col].astype("Int64")  # integers, with <NA> where a trial has none
    for n in names:  # keep integers integers where a conditional parameter is missing
        df[f"{PARAM}{n}"] = pd.Series([t.params.get(n) for t in trials], dtype=object)
    return df


def counts(study: optuna.Study) -> dict[str, int]:
    """Trials per state (``failed`` without the ``retried`` ones, which a retry replaced),
    ``done``: the finished trials that count towards the budget, and ``stopped``: the pruned
    trials that the time budget stopped."""
    trials = study.get_trials(deepcopy=False)
    replaced = retried_numbers(trials)
    out = dict.fromkeys((*STATES, "retried"), 0)
    for t in trials:
        out["retried" if t.number in replaced else trial_state(t)] += 1
    out["done"] = len(counted(trials))
    out["stopped"] = sum(1 for t in trials if t.user_attrs.get("stopped"))
    return out


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial:
    """The complete trial with the highest dev accuracy (the rule of :func:`best_record`)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = best_record([trial_record(t) for t in done])
    if best is None:
        raise ArchtuneError(f"study '{study.study_name}' has no complete trial yet")
    return next(t for t in done if t.number == best.number)


def get_trial(study: optuna.Study, number: int) -> optuna.trial.FrozenTrial:
    trials = study.get_trials(deepcopy=False)
    for t in trials:
        if t.number == number:
            return t
    raise ArchtuneError(f"study '{study.study_name}' has no trial {number} (trials 0 to "
                        f"{len(trials) - 1})")


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> str:
    """'trial 3 complete: dev accuracy 91.20% after 2 epochs, 12s | best 91.20% (trial 3) | lr=...'."""
    a = trial.user_attrs
    state = trial_state(trial)
    name = trial_name(trial.number, a)
    if state in ("failed", "invalid"):
        head = f"{name} {state}: {a.get('error') or 'stopped before it finished'}"
    else:
        acc = a.get("dev_accuracy")
        head = (f"{name} {state}: dev accuracy "
                f"{'-' if acc is None or math.isnan(acc) else f'{acc * 100:.2f}%'} after "
                f"{a.get('epochs', len(trial.intermediate_values))} epochs, "
                f"{a.get('duration_s') or 0:.0f}s")
    try:
        best = best_trial(study)
        head += f" | best {value_of(best) * 100:.2f}% (trial {best.number})"  # type: ignore[operator]
    except ArchtuneError:
        pass
    params = "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in trial.params.items())
    return f"{head} | {params}" if params else head
