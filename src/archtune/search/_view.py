"""archtune's view of an Optuna study: an ``optuna.Study`` (everything Optuna offers works on
it) that shows itself as a card in a notebook and answers archtune's questions directly."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna

from ._info import value_of

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
        from ._records import counts

        return counts(self)

    def trials_df(self) -> pd.DataFrame:
        """One row per trial (see :func:`archtune.search.trials_dataframe`)."""
        from ._records import trials_dataframe

        return trials_dataframe(self)

    def __repr__(self) -> str:
        from ..errors import ArchtuneError
        from ._records import best_trial

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
        from ..notebook.study_card import study_html

        return study_html(self)
