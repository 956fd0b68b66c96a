"""The study card: archtune's view of an Optuna study in a notebook (kept apart from
:mod:`.cards` because it reads trial records from :mod:`archtune.search`)."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING

from ..errors import ArchtuneError
from ..search._info import value_of
from ..search._records import best_trial, counts, trial_state
from ._svg import COLORS, Series, curve
from .cards import card, pct, short, table

if TYPE_CHECKING:
    import optuna


def study_html(study: optuna.Study) -> str:
    info = study.user_attrs.get("archtune") or {}
    c = counts(study)
    states = ", ".join(f"{c[k]} {k}" for k in ("complete", "pruned", "failed", "invalid",
                                                "running", "waiting") if c[k])
    facts = [("strategy", f"sampler {escape(str(info.get('sampler', '?')))}, pruner "
                          f"{escape(str(info.get('pruner', '?')))}, seed {info.get('seed', '?')}"),
             ("trials", f"{c['done']} of {info.get('trials') or '?'} done" + (f" ({states})" if states else ""))]
    trials = study.get_trials(deepcopy=False)
    figures = []
    try:
        best = best_trial(study)
        facts.append(("best dev", f"<b>{pct(value_of(best))}</b> (trial {best.number})"))
        facts.append(("best params", escape(", ".join(f"{k}={short(v)}" for k, v in best.params.items()))))
    except ArchtuneError:
        best = None
    values = [v if (v := value_of(t)) is not None else math.nan for t in trials]
    so_far, top = [], -math.inf
    for v in values:
        top = max(top, v) if not math.isnan(v) else top
        so_far.append(top if top > -math.inf else math.nan)
    figures.append(curve([Series("trial", values, COLORS["value"], dots=True),
                          Series("best so far", so_far, COLORS["best"])],
                         title="dev accuracy / trial", percent=True, width=280))
    ranked = sorted((t for t in trials if value_of(t) is not None), key=lambda t: -(value_of(t) or 0.0))[:5]
    names = list(dict.fromkeys(k for t in ranked for k in t.params))
    rows = [[t.number, trial_state(t), pct(value_of(t)), t.user_attrs.get("epochs", "-"),
             *[short(t.params.get(n, "-")) for n in names]] for t in ranked]
    below = [table(["trial", "state", "dev acc", "epochs", *names], rows)] if rows else []
    return card(f"Study {escape(study.study_name)}", facts, figures=figures, below=below)
