"""``jobs: auto``: how many trials to run at once on this machine.

On a CPU, N trials with one thread each use the cores better than one trial with N threads
while a model is small (a step has too little work to split across threads); for large models
the two are alike and one trial at a time finishes its trials sooner. ``bench/jobs.py``
measures both on this machine (bench/RESULTS.md, "Search workers"): AUTO_MAX_FLOPS is the
largest FLOPs per image at which parallel trials were clearly faster there.
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
AUTO_MAX_FLOPS = 30e6  # per image; see the module docstring
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
