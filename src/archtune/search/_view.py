"""archtune's view of an Optuna study: an ``optuna.Study`` (everything Optuna offers works on
it) that shows itself as a card in a notebook and answers archtune's questions directly."""

from __future__ import annotations

import math
from html import escape
from typing import TYPE_CHECKING, Any

import optuna

from .._html import card, pct, short, table
from .._svg import COLORS, Series, curve
from ..errors import ArchtuneError
from ._info import value_of
from ._records import best_trial, counts, trial_state, trials_dataframe

if TYPE_CHECKING:
    import pandas as pd


class Study(optuna.Study):
    """An Optuna study made by ``archtune search``; ``Study.of(study)`` wraps any other."""

    @classmethod
    def of(cls, study: optuna.Study) -> Study:
        """The same study (same storage, sampler and pruner), as archtune's view."""
        if isinstance(study, cls):
            return study
        view = cls.__new__(cls)
        view.__dict__.update(study.__dict__)
        return view

    @property
    def info(self) -> dict[str, Any]:
        """What the study searches and how (the contents of study.json)."""
        from ._storage import study_info

        return study_info(self)

    @property
    def counts(self) -> dict[str, int]:
        """Trials per state, and ``done``: the finished trials that count towards the budget."""
        return counts(self)

    def trials_df(self) -> pd.DataFrame:
        """One row per trial (see :func:`archtune.search.trials_dataframe`)."""
        return trials_dataframe(self)

    def __repr__(self) -> str:
        c = self.counts
        parts = ", ".join(f"{c[k]} {k}" for k in ("complete", "pruned", "failed", "invalid",
                                                     "running", "waiting") if c[k])
        try:
            b = best_trial(self)
            best = f"best dev accuracy {value_of(b) * 100:.2f}% (trial {b.number})"
        except ArchtuneError:
            best = "no complete trial yet"
        return f"<Study '{self.study_name}': {c['done']} trials done ({parts or 'none'}); {best}>"

    def _repr_html_(self) -> str:
        return study_html(self)


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
