"""A sampler seeded afresh for every trial, so a search proposes the same points however often
its processes are killed and resumed, and however many workers share it.

Optuna's samplers draw from one random stream per sampler object: every new process (a
resumed search, each ``--jobs`` worker) would start that stream again and propose the points
of the first trials once more. :class:`PerTrialSeed` instead gives each trial a sampler seeded
from the study seed and the trial's place in the sequence of proposals, so what trial n samples
depends only on the study seed, n and (for TPE) the trials already finished.
"""

from __future__ import annotations

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


def proposal_seed(study_seed: int, index: int) -> int:
    """The sampler seed of proposal ``index`` (a stream apart from the trials' training seeds)."""
    import numpy as np

    return int(np.random.SeedSequence([study_seed, 104729, index]).generate_state(1)[0] % 2**31)


class PerTrialSeed(optuna.samplers.BaseSampler):
    """Delegates to ``make(seed)`` (an Optuna sampler), built for each trial with the seed of
    its proposal index."""

    def __init__(self, make: Callable[[int], optuna.samplers.BaseSampler], seed: int):
        self._make, self._seed = make, seed
        self._current: tuple[int, optuna.samplers.BaseSampler] | None = None

    def _for(self, study: Study, trial: FrozenTrial) -> optuna.samplers.BaseSampler:
        if self._current is None or self._current[0] != trial._trial_id:
            index = proposal_index(study.get_trials(deepcopy=False), trial)
            self._current = (trial._trial_id, self._make(proposal_seed(self._seed, index)))
        return self._current[1]

    def infer_relative_search_space(self, study: Study, trial: FrozenTrial
                                    ) -> dict[str, BaseDistribution]:
        return self._for(study, trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self._for(study, trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._for(study, trial).sample_independent(study, trial, param_name,
                                                          param_distribution)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        self._for(study, trial).before_trial(study, trial)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState,
                    values: Sequence[float] | None) -> None:
        self._for(study, trial).after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial's seed is fixed by the study seed and its index."""
