"""``tune``: one time budget, from the data to a delivered model.

::

    import archtune as at
    result = at.tune("auto-space", data="fashion-mnist", minutes=25)
    print(result.summary())          # the model, its dev accuracy, where the minutes went
    at.evaluate(result.run, "test")  # once, at the end

Candidates train in rungs of successive halving; the promoted ones continue from their own
weights; the last one trains to the end of the budget (see :mod:`archtune.tuning._plan`).
"""

from ._plan import CANDIDATES, COOLDOWN, ETA, EXPLORE, TunePlan, plan_tune, survivors
from ._run import mutate, tune, tune_plan
from ._state import TUNE_FILE, Candidate, TuneState, read_state
from ._summary import TuneResult, fidelity, spearman, spending, summary

__all__ = [
    "CANDIDATES", "COOLDOWN", "ETA", "EXPLORE", "TUNE_FILE", "Candidate", "TunePlan", "TuneResult",
    "TuneState", "fidelity", "mutate", "plan_tune", "read_state", "spearman", "spending",
    "summary", "survivors", "tune", "tune_plan",
]
