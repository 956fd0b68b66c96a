"""``jobs: auto``: how many trials to run at once on this machine.

On a CPU, N trials with one thread each use the cores better than one trial with N threads
while a model is small (a step has too little work to split across threads); as models grow
the two become alike, and then one trial at a time is better: each trial finishes sooner, so
the sampler and pruner learn sooner. ``bench/jobs.py`` measured both on the project's 2-core
CPU (bench/RESULTS.md, "Search workers"): 2 trials x 1 thread trained 1.53x as many images per
second as 1 trial x 2 threads for mlp-small (0.2 MFLOPs per image), 1.30-1.37x for the small
CNNs, 1.15x for default (11 MFLOPs) and 1.07x for accurate (76 MFLOPs). AUTO_MAX_FLOPS keeps
parallel trials up to about the largest model measured; beyond it nothing was measured.
"""

from __future__ import annotations

import logging
import statistics
import warnings
from typing import TYPE_CHECKING, Literal

from ..errors import ArchtuneError

if TYPE_CHECKING:
    from ._space import SearchSpace

log = logging.getLogger(__name__)
Jobs = int | Literal["auto"]
AUTO_MAX_FLOPS = 80e6  # per image; see the module docstring
SAMPLED = 16  # candidates whose FLOPs are looked at


def median_flops(space: SearchSpace, n: int = SAMPLED) -> float | None:
    """The median FLOPs per image of ``n`` seeded random candidates (None: none is valid)."""
    import optuna

    from ..specs import infer_shapes, spec_from_dict, totals

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    flops = []
    for _ in range(n):
        try:
            spec = spec_from_dict(space.sample(study.ask()), source="candidate")
        except ArchtuneError:
            continue
        flops.append(float(totals(infer_shapes(spec)).flops))
    return statistics.median(flops) if flops else None


def resolve_jobs(jobs: Jobs, space: SearchSpace, cores: int) -> int:
    """``jobs`` as a number: ``auto`` runs one trial per core for spaces of small models (median
    candidate under AUTO_MAX_FLOPS), else one trial at a time with every core."""
    if jobs != "auto":
        return int(jobs)
    flops = median_flops(space)
    n = cores if cores > 1 and flops is not None and flops <= AUTO_MAX_FLOPS else 1
    log.info("jobs auto: %d trial%s at once (%d cores; median candidate %s FLOPs per image, "
             "threshold %.0fM)", n, "s" if n > 1 else "", cores,
             "unknown" if flops is None else f"{flops / 1e6:.1f}M", AUTO_MAX_FLOPS / 1e6)
    return n
