"""A sampler seeded afresh for every trial, so a search proposes the same points however often
its processes are killed and resumed, and however many workers share it.

Optuna's samplers draw from one random stream per sampler object: every new process (a
resumed search, each ``--jobs`` worker) would start that stream again and propose the points
of the first trials once more. :class:`PerTrialSeed` instead gives each trial a sampler seeded
from the study seed and the trial's place in the sequence of proposals, and each parameter
sampled on its own a seed of its own (so a retry whose first parameters are fixed draws the
others as its original did): what trial n samples depends only on the study seed, n and (for
TPE) the trials already finished.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import optuna

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial, TrialState

RETRY_OF = "failed_trial"  # system attribute of Optuna's retry: the number of the trial it reruns


def proposal_index(trials: Sequence[FrozenTrial], trial: FrozenTrial) -> int:
    """The trial's place among the study's proposals: its number, less the retries numbered
    before it (a retry reruns a dead trial's point and takes that trial's place)."""
    number = trial.system_attrs.get(RETRY_OF, trial.number)
    return number - sum(1 for t in trials if t.number < number and RETRY_OF in t.system_attrs)


def proposal_seed(study_seed: int, index: int, param: str | None = None) -> int:
    """The sampler seed of proposal ``index`` (of its parameter ``param`` when given), a stream
    apart from the trials' training seeds."""
    import numpy as np

    key = [study_seed, 104729, index]
    if param is not None:
        key.append(int.from_bytes(hashlib.sha256(param.encode()).digest()[:8], "little"))
    return int(np.random.SeedSequence(key).generate_state(1)[0] % 2**31)


class PerTrialSeed(optuna.samplers.BaseSampler):
    """Delegates to ``make(seed)`` (an Optuna sampler), built for each trial with the seed of
    its proposal index, and for each parameter it samples independently."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int):
        self._make, self._seed = make, seed
        self._current: tuple[int, int, optuna.samplers.BaseSampler] | None = None

    def _index(self, study: Study, trial: FrozenTrial) -> int:
        if self._current is None or self._current[0] != trial._trial_id:
            # all trials: a pruner may hand the sampler a filtered view of the study
            trials = study._storage.get_all_trials(study._study_id, deepcopy=False)
            index = proposal_index(trials, trial)
            self._current = (trial._trial_id, index, self._make(proposal_seed(self._seed, index)))
        return self._current[1]

    def _for(self, study: Study, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        self._index(study, trial)
        assert self._current is not None
        return self._current[2]

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        seed = proposal_seed(self._seed, self._index(study, trial), param_name)
        return self._make(seed).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._for(study, trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial's seed is fixed by the study seed and its index."""
