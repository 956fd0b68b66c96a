"""Coarse to fine: is the search's low fidelity a good guide, and a space narrowed around the
top trials of a finished study.

A coarse pass (``train_subset``, ``epochs`` in the space's ``search:`` section) is only worth its
speed if it ranks candidates as full training would. :func:`fidelity_check` trains ``n`` seeded
random candidates at the space's low fidelity and at full fidelity (the whole train split, the
spec's epochs), each with the same seed, and reports the Spearman rank correlation of their
best dev accuracies, where the low-fidelity winner ranks at full fidelity, and the time each
fidelity took (``archtune search SPACE --fidelity check``). A sample of a few random candidates
can miss a whole architecture family, so the candidates take the options of the space's first
top-level branch choice in turn (auto-space's ``arch``: default, stack, default, ...).

:func:`refine_space` narrows a space around a study's top trials: numeric ranges shrink to the
hull of the values they used, padded by a quarter of that hull plus a tenth of the original
range (in log space for log ranges), inside the original range; choices keep only the values
they used. Dimensions repeated in a block share one refined range (the hull over all repeats).
"""

from __future__ import annotations

import copy
import logging
import math
import shutil
import tempfile
import time
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from ..errors import ArchtuneError
from ..specs import spec_from_dict
from ._objective import Execution, load_search_splits
from ._records import value_of
from ._space import SearchSpace, load_space
from ._tree import Dim

log = logging.getLogger(__name__)
AUTO = "auto"  # stratify over the space's first top-level branch choice, if it has one


@dataclass
class FidelityCheck:
    space: str
    low: dict[str, Any]  # the low fidelity: train_subset, epochs
    params: list[dict[str, Any]]  # the candidates
    low_dev: list[float]  # best dev accuracy at low fidelity, per candidate
    full_dev: list[float]  # best dev accuracy at full fidelity
    low_seconds: float
    full_seconds: float
    spearman: float
    winner_full_rank: int  # 1 = the low-fidelity winner is also the best at full fidelity
    strata: str | None = None  # the choice whose options the candidates took in turn

    def summary(self) -> str:
        spread = f" (taking the options of '{self.strata}' in turn)" if self.strata else ""
        return (f"{len(self.params)} candidates of '{self.space}'{spread}: Spearman rank correlation "
                f"{self.spearman:+.2f} between low fidelity ({_describe(self.low)}; "
                f"{self.low_seconds / 60:.1f} min) and full training ({self.full_seconds / 60:.1f} "
                f"min); the low-fidelity winner ranks {self.winner_full_rank} of {len(self.params)} "
                f"at full fidelity")


def _describe(low: dict[str, Any]) -> str:
    parts = [f"{low['train_subset']:,} images" if low.get("train_subset") else "all images",
             f"at most {low['epochs']} epochs" if low.get("epochs") else "the spec's epochs"]
    return ", ".join(parts)


def strata_dim(space: SearchSpace, stratify: str | None = AUTO) -> Dim | None:
    """The choice whose options the candidates take in turn: ``stratify`` by name, or (``auto``)
    the space's first top-level branch choice, the one whose options are layer lists (such as
    auto-space's ``arch``); None with ``stratify=None`` or when there is no such choice."""
    if stratify is None:
        return None
    if stratify != AUTO:
        dim = space.dim(stratify)  # a close match for a typo
        if dim.kind != "choice":
            raise ArchtuneError(f"stratify: '{stratify}' is a {dim.kind} range; candidates can be "
                                f"spread only over a choice's options")
        return dim
    needed = {name for info in space.infos for name, _ in info.requires}
    return next((i.dim for i in space.infos
                 if not i.requires and i.dim.kind == "choice" and i.dim.name in needed), None)


def fidelity_candidates(space: SearchSpace, n: int, seed: int, strata: Dim | None = None
                ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``n`` valid (params, spec dict) pairs, sampled at random with ``seed``; with a ``strata``
    choice (see :func:`strata_dim`), candidate i takes its option i modulo the options, so
    each option is as well represented as ``n`` allows."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for _ in range(20 * n):
        if strata is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # enqueue_trial is marked experimental
                study.enqueue_trial({strata.name: strata.choices[len(out) % len(strata.choices)]})
        trial = study.ask()
        raw = space.sample(trial)
        try:
            spec_from_dict(raw, source="candidate")
        except ArchtuneError:
            continue
        out.append((dict(trial.params), raw))
        if len(out) == n:
            return out
    raise ArchtuneError(f"space '{space.name}': found only {len(out)} valid candidates in {20 * n} draws")


def _best_dev(raw: dict[str, Any], splits: Any, ex: Execution) -> tuple[float, float]:
    """(best dev accuracy, seconds) of training ``raw`` on ``splits``."""
    from ..training import train  # torch: kept out of loading a space

    folder = Path(tempfile.mkdtemp(prefix="archtune-fidelity-"))
    try:
        t0 = time.perf_counter()
        run = train(spec_from_dict(raw, source="candidate"), splits=splits, run_dir=folder / "run",
                    progress=False, threads=ex.threads, device=ex.device, final_dev=False)
        return float(run.metrics["best"]["dev_accuracy"]), time.perf_counter() - t0
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fidelity_check(space: SearchSpace | str | Path | dict[str, Any], *, n: int = 8, seed: int = 0,
                   train_subset: int | None = None, epochs: int | None = None,
                   execution: Execution | None = None, stratify: str | None = AUTO
                   ) -> FidelityCheck:
    """Train ``n`` candidates at the space's low fidelity (or ``train_subset`` / ``epochs``) and
    at full fidelity; compare their rankings. ``stratify``: a choice whose options the candidates
    take in turn (``auto``: the space's first top-level branch choice, such as auto-space's
    ``arch``, so each architecture family is in the sample; None: plain random candidates)."""
    space = load_space(space)
    low = {"train_subset": train_subset or space.settings.train_subset,
           "epochs": epochs or space.settings.epochs}
    return fidelity_checks(space, [low], n=n, seed=seed, execution=execution, stratify=stratify)[0]


def fidelity_checks(space: SearchSpace | str | Path | dict[str, Any], lows: list[dict[str, Any]],
                    *, n: int = 8, seed: int = 0, execution: Execution | None = None,
                    stratify: str | None = AUTO, timeout: float | None = None
                    ) -> list[FidelityCheck]:
    """Several low fidelities (``{"train_subset": N, "epochs": E}``, either may be None) against
    one full training of the same ``n`` candidates: one check per low fidelity (``stratify``: as
    for :func:`fidelity_check`). ``timeout``: seconds after which no further candidate is
    started once 3 are done (the checks then hold the candidates trained)."""
    space = load_space(space)
    ex = execution or Execution()
    for low in lows:
        if not low.get("train_subset") and not low.get("epochs"):
            raise ArchtuneError(f"space '{space.name}' has no low fidelity to check: set "
                                f"search.train_subset or search.epochs (or --train-subset / --epochs)")
    if n < 3:
        raise ArchtuneError(f"--trials: a rank correlation needs at least 3 candidates, got {n}")
    full_splits = load_search_splits(space, data_dir=ex.data_dir)
    low_splits = [load_search_splits(space, train_subset=low.get("train_subset"), data_dir=ex.data_dir)
                  for low in lows]
    params, full_dev, full_s = [], [], 0.0
    low_dev: list[list[float]] = [[] for _ in lows]
    low_s = [0.0 for _ in lows]
    strata = strata_dim(space, stratify)
    started = time.perf_counter()
    for i, (point, raw) in enumerate(fidelity_candidates(space, n, seed, strata)):
        if timeout is not None and i >= 3 and time.perf_counter() - started > timeout:
            log.warning("fidelity check: %d of %d candidates trained when its %.0f s ran out",
                        i, n, timeout)
            break
        raw.setdefault("train", {})["seed"] = seed + i
        acc_full, s_full = _best_dev(raw, full_splits, ex)
        for j, low in enumerate(lows):
            coarse = copy.deepcopy(raw)
            if low.get("epochs"):
                coarse["train"]["epochs"] = min(coarse["train"].get("epochs", low["epochs"]), low["epochs"])
            acc_low, s_low = _best_dev(coarse, low_splits[j], ex)
            low_dev[j].append(acc_low)
            low_s[j] += s_low
            log.info("candidate %d/%d: %s %.2f%% (%.0f s)", i + 1, n, _describe(low), acc_low * 100, s_low)
        log.info("candidate %d/%d: full %.2f%% (%.0f s)", i + 1, n, acc_full * 100, s_full)
        params.append(point)
        full_dev.append(acc_full)
        full_s += s_full
    return [FidelityCheck(space.name, dict(low), params, low_dev[j], full_dev, low_s[j], full_s,
                          *_agreement(low_dev[j], full_dev), strata.name if strata else None)
            for j, low in enumerate(lows)]


def _agreement(low: list[float], full: list[float]) -> tuple[float, int]:
    """(Spearman rank correlation, where the low-fidelity winner ranks at full fidelity)."""
    import numpy as np
    import pandas as pd

    # Spearman: Pearson's correlation of the ranks (ties share their mean rank); scipy is not a
    # dependency of archtune
    rho = float(np.corrcoef(pd.Series(low).rank(), pd.Series(full).rank())[0, 1])
    winner = max(range(len(low)), key=lambda i: low[i])
    rank = 1 + sum(v > full[winner] for v in full)
    return (rho if rho == rho else 0.0), rank


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
