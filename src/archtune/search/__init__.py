"""Hyperparameter and architecture search on Optuna: resumable, parallel, distributed.

::

    from archtune import search as at_search
    space = at_search.load_space("seed-cnn-grid")          # or a YAML/JSON path or a dict
    study = at_search.search(space, fraction=0.1, seed=7)   # studies/seed-cnn-grid/
    df = at_search.trials_dataframe(study)                  # one row per trial
    run = at_search.retrain(study)                          # best trial -> a normal run folder

``search`` and ``open_study`` return a :class:`Study`: an ``optuna.Study`` that renders as a
card in a notebook.

Names are imported on first use, so ``archtune --help`` does not load Optuna.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "SearchSpace": "._space", "load_space": "._space", "list_spaces": "._space",
    "Dim": "._dims",
    "SearchSettings": "._settings", "SAMPLERS": "._settings", "PRUNERS": "._settings",
    "search": "._run", "worker": "._run", "Execution": "._run", "load_search_splits": "._run",
    "open_study": "._study", "Study": "._view", "study_html": "._view",
    "refine_space": "._refine",
    "fidelity_check": "._fidelity", "fidelity_checks": "._fidelity", "FidelityCheck": "._fidelity",
    "pareto_front": "._pareto",
    "trial_seed": "._objective",
    "StudyInfo": "._info", "TrialRecord": "._info", "best_record": "._info", "trial_record": "._info",
    "trials_dataframe": "._records", "best_trial": "._records", "trial_state": "._records",
    "best_summary": "._results", "list_studies": "._results", "retrain": "._retrain",
}

__all__ = [
    "PRUNERS", "SAMPLERS", "Dim", "Execution", "FidelityCheck", "fidelity_check", "fidelity_checks", "SearchSettings", "SearchSpace", "Study", "StudyInfo",
    "TrialRecord", "best_record", "best_summary", "best_trial", "trial_record", "list_spaces", "list_studies", "load_search_splits", "load_space", "open_study", "pareto_front", "refine_space",
    "retrain", "search", "study_html", "trial_seed", "trial_state", "trials_dataframe", "worker",
]

if TYPE_CHECKING:
    from ._dims import Dim
    from ._fidelity import FidelityCheck, fidelity_check, fidelity_checks
    from ._info import StudyInfo, TrialRecord, best_record, trial_record
    from ._objective import trial_seed
    from ._pareto import pareto_front
    from ._records import best_trial, trial_state, trials_dataframe
    from ._refine import refine_space
    from ._results import best_summary, list_studies
    from ._retrain import retrain
    from ._run import Execution, load_search_splits, search, worker
    from ._settings import PRUNERS, SAMPLERS, SearchSettings
    from ._space import SearchSpace, list_spaces, load_space
    from ._study import open_study
    from ._view import Study


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'archtune.search' has no attribute '{name}'")
    value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
