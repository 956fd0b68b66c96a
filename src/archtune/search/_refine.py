"""Coarse to fine: narrow a space around the top trials of a finished study.

Numeric ranges shrink to the hull of the values the top trials used, padded by a quarter of
that hull plus a tenth of the original range (in log space for log ranges), inside the
original range; choices keep only the values the top trials used. Dimensions repeated in a
block share one refined range (the hull over all repeats).
"""

from __future__ import annotations

import copy
import logging
import math
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError
from ._dims import Dim
from ._info import value_of
from ._space import SearchSpace

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)


def _at(raw: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        raw = raw[key]
    return raw


def _put(raw: Any, path: tuple[Any, ...], value: Any) -> None:
    _at(raw, path[:-1])[path[-1]] = value


def _narrow_choice(template: dict[str, Any], dim: Dim, used: list[Any]) -> dict[str, Any]:
    out = dict(template)
    values = template["choice"]
    keep = [c for c in dim.choices if any(type(c) is type(u) and c == u for u in used)]
    if isinstance(values, dict):
        out["choice"] = {label: values[label] for label in keep}
    elif all(isinstance(v, int | float | str | bool) or v is None for v in values):
        out["choice"] = keep
    else:
        out["choice"] = [values[i] for i in keep]  # branch choices are labelled by index
    return out


def _narrow_range(template: dict[str, Any], dim: Dim, used: list[float]) -> Any:
    fwd = math.log if dim.log else float
    back = math.exp if dim.log else float
    a, b = fwd(min(used)), fwd(max(used))
    pad = 0.1 * (fwd(dim.high) - fwd(dim.low)) + 0.25 * (b - a)
    lo, hi = max(dim.low, back(a - pad)), min(dim.high, back(b + pad))
    if dim.kind == "int" or dim.step is not None:
        step = dim.step or 1
        lo = dim.low + round((lo - dim.low) / step) * step  # nearest grid points: the used
        hi = dim.low + round((hi - dim.low) / step) * step  # values stay inside
    else:
        lo, hi = max(dim.low, float(f"{lo:.6g}")), min(dim.high, float(f"{hi:.6g}"))
    if dim.kind == "int":
        lo, hi = int(lo), int(hi)
    if lo >= hi:
        return min(used)  # the top trials agree: a constant
    out = dict(template)
    out[dim.kind] = [lo, hi]
    return out


def _top(study: optuna.Study, top: int | None) -> list[optuna.trial.FrozenTrial]:
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if value_of(t) is not None]
    if not done:
        raise ArchtuneError(f"study '{study.study_name}' has no complete trial to refine around")
    k = top if top is not None else max(3, math.ceil(0.2 * len(done)))
    if k < 1:
        raise ArchtuneError(f"--top {top}: must be >= 1")
    return sorted(done, key=lambda t: value_of(t) or 0.0, reverse=True)[:k]


def refine_space(space: SearchSpace, study: optuna.Study, *, top: int | None = None
                 ) -> tuple[SearchSpace, list[int]]:
    """The space narrowed around ``study``'s best complete trials (the top 20%, at least 3,
    unless ``top`` says how many); returns it with the numbers of the trials used."""
    best = _top(study, top)
    raw = copy.deepcopy(space.raw)
    groups: dict[tuple[Any, ...], list[Dim]] = defaultdict(list)
    for info in space.infos:
        groups[info.raw_path].append(info.dim)
    for path in sorted(groups, key=len, reverse=True):  # inner dimensions before their branches
        dims = groups[path]
        used = [t.params[d.name] for t in best for d in dims if d.name in t.params]
        if not used:
            continue
        template = _at(raw, path)
        dim = dims[0]
        _put(raw, path, _narrow_choice(template, dim, used) if dim.kind == "choice"
             else _narrow_range(template, dim, used))
    refined = SearchSpace(raw, source=f"{space.source} refined")
    log.info("refined %s around trials %s of study '%s'", space.name, [t.number for t in best],
             study.study_name)
    return refined, [t.number for t in best]
