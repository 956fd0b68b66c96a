"""Hyperparameter and architecture search on Optuna: resumable, parallel, distributed.

::

    from archtune import search as at_search
    space = at_search.load_space("seed-cnn-grid")          # or a YAML/JSON path or a dict
    study = at_search.search(space, fraction=0.1, seed=7)   # studies/seed-cnn-grid/
    df = at_search.trials_dataframe(study)                  # one row per trial
    run = at_search.retrain(study)                          # best trial -> a normal run folder

``search`` and ``open_study`` return a :class:`Study`: an ``optuna.Study`` that renders as a
card in a notebook.

Every name is imported from its module on first use, so ``archtune --help`` does not load
Optuna. ``_EXPORTS`` is the one list of what this package offers: the search API first, then
the parts that archtune's reports, plans, dashboard and commands (and its tests) use; nothing
outside this package imports its private modules.
"""

from __future__ import annotations

from .._lazy import lazy_getattr

_EXPORTS = {
    # spaces, their settings and dimensions
    "SearchSpace": "._space", "load_space": "._space", "list_spaces": "._space",
    "Dim": "._tree",
    "SearchSettings": "._settings", "SAMPLERS": "._settings", "PRUNERS": "._settings",
    # searching, and how this process runs trials
    "search": "._run", "worker": "._run", "Execution": "._objective",
    "load_search_splits": "._objective", "trial_seed": "._objective",
    # studies and their records: the best trial is best_record's rule
    "open_study": "._study", "Study": "._study", "study_html": "._study", "list_studies": "._study",
    "StudyInfo": "._records", "TrialRecord": "._records", "trial_record": "._records",
    "best_record": "._records", "best_trial": "._records", "best_summary": "._records",
    "trials_dataframe": "._records", "trial_state": "._records",
    # accuracy against cost, coarse to fine, retraining
    "pareto_front": "._settings",
    "refine_space": "._fidelity", "fidelity_check": "._fidelity", "fidelity_checks": "._fidelity",
    "FidelityCheck": "._fidelity",
    "retrain": "._retrain",
    # -- for archtune's reports, plans, dashboard and commands, and for tests ----------------
    # spaces and settings
    "raw_space": "._space", "canonical_json": "._space",
    "settings": "._settings", "DEFAULT_TRIALS": "._settings",
    "Limits": "._settings", "latency_ms": "._settings",
    "COSTS": "._settings", "costs_of": "._settings", "directions": "._settings",
    "pareto_point": "._settings", "parse_objectives": "._settings", "peer_median": "._settings",
    "PEER_MIN": "._settings", "dominates": "._settings",
    # records of trials
    "value_of": "._records", "counts": "._records", "trial_line": "._records",
    "START_POINT": "._records", "PARAM": "._records",
    # storage and study folders
    "connect": "._storage", "load_study": "._storage", "public_url": "._storage",
    "stored_url": "._storage", "read_info": "._storage", "write_info": "._storage",
    "storage_for_folder": "._storage", "find_folder": "._storage", "list_folders": "._storage",
    "GRACE_S": "._storage",
    "attach": "._study", "make_sampler": "._study", "prepare_study": "._study", "Handle": "._storage",
    # running trials
    "check_data": "._objective", "TrialContext": "._objective", "TrialResult": "._objective", "run_trial": "._objective",
    "coarse_epochs": "._objective", "proposal_index": "._objective",
    "Budget": "._worker", "run_worker": "._worker", "WORKER": "._worker",
    "this_worker": "._worker", "stop_reason": "._worker", "next_trial": "._worker",
    "recover": "._worker",
    "resolve_jobs": "._run", "median_flops": "._run", "AUTO_MAX_FLOPS": "._run",
    # retraining: finalists and ensembles
    "FINALISTS": "._retrain", "SEEDS": "._retrain", "FINALISTS_SHARE": "._retrain",
    "decisions": "._retrain", "family_choice": "._retrain",
    "Finalist": "._finalists", "Finals": "._finalists", "FINALISTS_FILE": "._finalists",
    "read_finals": "._finalists", "top_trials": "._finalists",
    "epoch_seconds": "._finalists", "undertrained": "._finalists", "fitting": "._finalists",
    "strata_dim": "._fidelity", "fidelity_candidates": "._fidelity",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
