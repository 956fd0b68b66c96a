"""Noise-aware choice of the trial to retrain, and the finalists as one averaged model.

A search ranks its trials on one number each, often at a coarse fidelity, and the differences
at the top are often smaller than what another seed changes. So the ``k`` best complete trials
(distinct parameters) are each trained at full fidelity (the whole train split, the spec's
epochs or ``epochs``) with their own seed and ``seeds - 1`` more, and the best mean dev
accuracy wins. Whether it is distinguishable from the runner-up is said plainly: not when the
gap between their means is within the larger of their seed spreads (half the range) or one
binomial standard error of the dev accuracy (:func:`archtune._stats.accuracy_se`). The runs
live in ``STUDY/finalists/trial<N>-seed<S>/`` (normal run folders, reused when complete with
the same spec, so an interrupted choice resumes) and the outcome in ``STUDY/finalists.json``.

On small data the dev split cannot tell good candidates apart (400 dev images give one
accuracy a standard error near 2 points), so ``retrain --ensemble`` averages the finalist runs
instead: it keeps the runs the dev split cannot tell from the best one
(:func:`archtune._ensemble.select_members`) and writes them as one run folder
(:func:`archtune._ensemble.ensemble`), with ``search.json`` naming the lead member's trial
(with ``--minutes``: the whole budget goes to their runs, less :data:`EVAL_SHARE`). A study's
budgets apply to the ensemble as a whole (its cost is the sum of its members'), checked from the
specs before any training. ``--ensemble auto`` averages only when it can pay: K x N runs share
the time budget, and an average of under-trained nets loses to one trained run (fmnist-2k: a
share holds 54-237 epochs, against auto-space's 24; 48,000 images: 2-3). So :func:`undertrained`
predicts each member's epochs from its trial's epochs in the search (their median seconds,
scaled from the coarse pass's images to the whole train split) and ``auto`` averages only when
every member fits its spec's full epochs; without a time budget it always averages.
"""

from __future__ import annotations

import copy
import logging
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import read_object
from .._stats import accuracy_se
from .._validate import check_fields
from ..errors import ArchtuneError
from ..specs import output_units, spec_from_dict
from ._objective import Execution, trial_seed
from ._records import trial_state, value_of
from ._settings import Limits, latency_ms
from ._space import canonical_json

if TYPE_CHECKING:
    import optuna

    from ..training import Run
    from ._records import StudyInfo

log = logging.getLogger(__name__)
FINALISTS_FILE = "finalists.json"
SEED_STEP = 1_000_003  # the j-th extra seed of trial n is trial_seed(study seed + j * SEED_STEP, n)
EVAL_SHARE = 0.03  # retrain --ensemble --minutes: the share kept for the ensemble's dev evaluation


@dataclass
class Finalist:
    trial: int
    params: dict[str, Any]
    search_value: float | None  # its dev accuracy in the search (at the search's fidelity)
    seeds: list[int]
    dev: list[float]  # dev accuracy at full fidelity (the spec's test-time augmentation), per seed
    runs: list[str]  # the run folders, per seed (the first: the trial's own seed)
    n_dev: int  # dev images that scored them

    @property
    def mean(self) -> float:
        return statistics.fmean(self.dev)

    @property
    def spread(self) -> float:
        """Half the range of the seeds' dev accuracies (0 with one seed)."""
        return (max(self.dev) - min(self.dev)) / 2


@dataclass
class Finals:
    finalists: list[Finalist]  # best mean first
    epochs: int | None = None  # epochs override of the full-fidelity runs (None: the spec's)
    minutes: float | None = None  # or the time budget of all the runs (each: an equal share)
    left_out: list[str] = field(default_factory=list)  # top trials not trained, and why (too
    # slow for one epoch in their share of ``minutes``)

    @property
    def winner(self) -> Finalist:
        return self.finalists[0]

    def noise(self) -> float:
        """What a difference between the top two must exceed to count."""
        w = self.winner
        se = accuracy_se(w.mean, w.n_dev)
        runner = self.finalists[1] if len(self.finalists) > 1 else w
        return max(w.spread, runner.spread, se)

    def distinguishable(self) -> bool | None:
        """Whether the winner beats the runner-up by more than the noise (None: no runner-up)."""
        if len(self.finalists) < 2:
            return None
        return self.winner.mean - self.finalists[1].mean > self.noise()

    def verdict(self) -> str:
        w = self.winner
        head = (f"trial {w.trial} wins with mean dev {w.mean:.2%} over {len(w.dev)} seed"
                f"{'s' if len(w.dev) != 1 else ''} (spread ±{w.spread:.2%})")
        if len(self.finalists) < 2:
            return head + "; it was the only finalist"
        r = self.finalists[1]
        gap = w.mean - r.mean
        if self.distinguishable():
            return head + f"; {gap:.2%} ahead of trial {r.trial}, more than the noise ({self.noise():.2%})"
        return (head + f"; NOT distinguishable from the runner-up, trial {r.trial} (mean "
                f"{r.mean:.2%}): the gap {gap:.2%} is within the noise ({self.noise():.2%}), "
                f"so either is as good a choice")

    def to_dict(self) -> dict[str, Any]:
        return {"finalists": [asdict(f) for f in self.finalists], "epochs": self.epochs,
                "minutes": self.minutes, "left_out": self.left_out,
                "winner": self.winner.trial, "distinguishable": self.distinguishable(),
                "verdict": self.verdict()}


_FIELDS = {"finalists": list[dict[str, Any]], "epochs": int | None, "minutes": float | None,
           "left_out": list[str]}
_FINALIST = {"trial": int, "params": dict[str, Any], "search_value": float | None,
             "seeds": list[int], "dev": list[float], "runs": list[str], "n_dev": int}


def read_finals(folder: str | Path) -> Finals | None:
    """A study folder's finalists.json, validated (None when it has none)."""
    path = Path(folder) / FINALISTS_FILE
    if not path.is_file():
        return None
    data = read_object(path, _FIELDS, required=("finalists",), what="finalists file")
    finalists = []
    for i, f in enumerate(data["finalists"]):
        check_fields(f, _FINALIST, f"{path}: finalists[{i}]", required=tuple(_FINALIST))
        if not f["dev"] or len(f["dev"]) != len(f["seeds"]):
            raise ArchtuneError(f"{path}: finalists[{i}]: one dev accuracy per seed expected")
        finalists.append(Finalist(**{k: f[k] for k in _FINALIST}))
    if not finalists:
        raise ArchtuneError(f"{path}: no finalists")
    return Finals(finalists, data.get("epochs"), data.get("minutes"), data.get("left_out") or [])


def top_trials(study: optuna.Study, k: int, family: str | None = None
               ) -> list[optuna.trial.FrozenTrial]:
    """The k best complete trials with distinct parameters (a retried trial counts once). With
    ``family``, a choice parameter naming the architecture family (auto-space's ``arch``), the
    best trial of each family comes first, then the rest by rank: the coarse pass ranks families
    unfairly (stacks start slower; bench/RESULTS.md "Search fidelity ... (auto-space)"), so each
    family's best gets its full-fidelity runs."""
    done = sorted((t for t in study.get_trials(deepcopy=False)
                   if trial_state(t) == "complete" and value_of(t) is not None
                   and isinstance(t.user_attrs.get("spec"), dict)),
                  key=lambda t: (-(value_of(t) or 0.0), t.number))
    out, seen = [], set()
    for t in done:
        key = canonical_json(t.params)
        if key not in seen:
            seen.add(key)
            out.append(t)
    if not out:
        raise ArchtuneError(f"study '{study.study_name}' has no complete trial to retrain yet")
    if family is not None:
        firsts: dict[Any, optuna.trial.FrozenTrial] = {}
        for t in out:
            firsts.setdefault(t.params.get(family), t)
        heads = list(firsts.values())[:k]  # out is by rank, so these are too
        taken = {t.number for t in heads}
        rest = [t for t in out if t.number not in taken][:k - len(heads)]
        return sorted(heads + rest, key=lambda t: (-(value_of(t) or 0.0), t.number))
    return out[:k]


def seeds_of(study_seed: int, trial: optuna.trial.FrozenTrial, n: int) -> list[int]:
    """The trial's own seed, then ``n - 1`` more derived from the study seed and its number."""
    number = trial.system_attrs.get("failed_trial", trial.number)
    own = int(trial.user_attrs.get("seed", trial_seed(study_seed, number)))
    return [own] + [trial_seed(study_seed + j * SEED_STEP, number) for j in range(1, n)]


def _train_once(raw: dict[str, Any], path: Path, ex: Execution, progress: bool,
                minutes: float | None = None) -> Run:
    """Train ``raw`` into ``path``, or reuse a complete run of the same spec there (with a time
    budget ``minutes``, its epochs are the budget's: any number is the same spec)."""
    from ..training import load_run, train  # torch: kept out of reading finalists
    from ..training.trainer import as_trained

    spec = spec_from_dict(raw, source=str(path))
    if (path / "metrics.json").is_file():
        try:
            run = load_run(path)
            saved = as_trained(spec, output_units(run.spec), quiet=True,
                               input_shape=tuple(run.spec.input_shape))
            if run.status == "complete" and _same(run.spec.to_dict(), saved.to_dict(), minutes):
                log.info("finalist run %s: reused (complete, same spec)", path)
                return run
        except ArchtuneError as err:
            log.info("finalist run %s is not reusable (%s): training it again", path, err)
        shutil.rmtree(path)
    return train(spec, run_dir=path, threads=ex.threads, device=ex.device, progress=progress,
                 loggers=ex.loggers, mlflow_uri=ex.mlflow_uri, minutes=minutes)


def _same(saved: dict[str, Any], wanted: dict[str, Any], minutes: float | None) -> bool:
    if minutes is None:
        return saved == wanted
    return ({**saved, "train": {**saved["train"], "epochs": None}}
            == {**wanted, "train": {**wanted["train"], "epochs": None}})


def choose_finalists(study: optuna.Study, folder: str | Path,
                     trials: list[optuna.trial.FrozenTrial], *, study_seed: int, seeds: int = 2,
                     epochs: int | None = None, execution: Execution | None = None,
                     progress: bool = False, minutes: float | None = None,
                     left_out: list[str] | None = None) -> Finals:
    """Train ``trials`` (the finalists: :func:`top_trials`) at full fidelity with ``seeds`` seeds
    each and rank them by mean dev accuracy; writes ``folder/finalists.json`` and returns the
    outcome. ``minutes``: a time budget for all the runs, instead of ``epochs``: each run gets an
    equal share of what is left when it starts and trains the epochs that fit (so finalists are
    compared at equal time, not equal epochs). ``left_out``: why trials of the top are not among
    ``trials``, for the record."""
    if not trials or seeds < 1:
        raise ArchtuneError(f"finalists: need a trial and seeds >= 1, got {len(trials)} trials, "
                            f"seeds={seeds}")
    ex = execution or Execution()
    folder = Path(folder)
    finalists = []
    deadline = time.monotonic() + minutes * 60 if minutes is not None else None
    left = len(trials) * seeds  # runs still to train
    for t in trials:
        raw = copy.deepcopy(t.user_attrs["spec"])  # as sampled: before the search's fidelity
        if epochs is not None:
            raw["train"]["epochs"] = epochs
        if ex.data_dir is not None:
            raw.setdefault("data", {})["data_dir"] = ex.data_dir
        f = Finalist(t.number, dict(t.params), value_of(t), seeds_of(study_seed, t, seeds), [], [], 0)
        for seed in f.seeds:
            raw["train"]["seed"] = seed
            log.info("finalist trial %d, seed %d: training at full fidelity", t.number, seed)
            share = None if deadline is None else max(deadline - time.monotonic(), 1.0) / 60 / left
            left -= 1
            run = _train_once(raw, folder / "finalists" / f"trial{t.number}-seed{seed}", ex,
                              progress, share)
            dev = run.metrics.get("dev") or {}
            if dev.get("accuracy") is None:
                raise ArchtuneError(f"finalist run {run.path} has no dev evaluation")
            f.dev.append(float(dev["accuracy"]))
            f.runs.append(str(run.path))
            f.n_dev = int(dev.get("n") or 0)
        finalists.append(f)
    finalists.sort(key=lambda f: (-f.mean, f.trial))
    finals = Finals(finalists, epochs, minutes, list(left_out or []))
    from ..training.runs import write_json  # torch: kept out of reading finalists

    write_json(folder / FINALISTS_FILE, finals.to_dict())
    log.info("finalists: %s", finals.verdict())
    return finals


def epoch_seconds(trial: optuna.trial.FrozenTrial, n_train: int) -> float | None:
    """Seconds one epoch of ``trial``'s spec takes on ``n_train`` images, predicted from its
    epochs in the search: the median of their seconds (the first left out when there are more:
    it warms up), scaled from the coarse pass's images to ``n_train``. Their seconds include a
    dev pass, which does not grow with the training images, so this errs long (toward one
    run: Fashion-MNIST, 18.7 s predicted, 15.5 s run). None: no epoch recorded."""
    rows = [r for r in trial.user_attrs.get("history") or [] if isinstance(r, dict)
            and isinstance(r.get("seconds"), int | float) and r["seconds"] > 0]
    if not rows:
        return None
    seconds = statistics.median(r["seconds"] for r in (rows[1:] if len(rows) > 1 else rows))
    subset = (trial.user_attrs.get("fidelity") or {}).get("train_subset")
    coarse = min(int(subset), n_train) if isinstance(subset, int) and subset > 0 else n_train
    return seconds * n_train / max(coarse, 1)


def undertrained(trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float,
                 n_train: int) -> str | None:
    """Why ``seeds`` runs of each of ``trials`` sharing ``minutes`` would be under-trained: the
    runs whose predicted epochs in their share fall short of their spec's full epochs (see the
    module docstring). None: every run fits."""
    from ..training.budget import MARGIN  # torch: kept out of reading finalists

    n = len(trials) * seeds
    share = minutes * 60 / n
    short = []
    for t in trials:
        full = int(t.user_attrs["spec"]["train"]["epochs"])
        epoch_s = epoch_seconds(t, n_train)
        if epoch_s is None:
            short.append(f"trial {t.number} has no timed epoch in the search")
            continue
        fit = share * MARGIN / epoch_s
        if fit < full:
            short.append(f"trial {t.number} about {fit:.1f} of its {full} epochs "
                         f"({epoch_s:.1f} s an epoch on {n_train:,} images)")
    if not short:
        return None
    return (f"{n} runs sharing {minutes:.1f} minutes would get "
            f"{f'{share:.0f}' if share >= 10 else f'{share:.1f}'} s each: "
            + "; ".join(short))


def fitting(trials: list[optuna.trial.FrozenTrial], seeds: int, minutes: float, n_train: int
            ) -> tuple[list[optuna.trial.FrozenTrial], list[str]]:
    """The trials whose ``seeds`` runs each can train at least one epoch when all their runs
    share ``minutes`` (predicted as :func:`undertrained` does), and why each other one was left
    out. The slowest is left out first, which raises the others' shares. A run that cannot
    finish one epoch would overrun the time budget (training runs at least one); a trial with
    no timed epoch is kept."""
    from ..training.budget import MARGIN  # torch: kept out of reading finalists

    kept, why = list(trials), []
    while kept:
        share = minutes * 60 / (len(kept) * seeds)
        timed = [(s, t) for t in kept if (s := epoch_seconds(t, n_train)) is not None]
        over = [(s, t) for s, t in timed if s > share * MARGIN]
        if not over:
            break
        slowest, trial = max(over, key=lambda x: x[0])
        kept.remove(trial)
        why.append(f"trial {trial.number}: one epoch takes about {slowest:.0f} s on "
                   f"{n_train:,} images, over its runs' share of {share:.0f} s")
    return kept, why


def check_ensemble_limits(info: StudyInfo, trials: list[optuna.trial.FrozenTrial], seeds: int) -> None:
    """Raise when ``seeds`` runs of each of ``trials``, run together, exceed the study's budgets."""
    limits = Limits.of(info)
    if limits is None:
        return
    n = len(trials) * seeds
    params = seeds * sum(int(t.user_attrs.get("params_count") or 0) for t in trials)
    flops = seeds * sum(float(t.user_attrs.get("flops") or 0) for t in trials)
    constraints, measured = limits.check_costs(params, flops, lambda: seeds * sum(
        latency_ms(spec_from_dict(t.user_attrs["spec"], source=f"trial {t.number}")) for t in trials))
    over = limits.reason(constraints, params, flops, measured)  # the candidates' own wording
    if over:
        raise ArchtuneError(
            f"--ensemble: {n} members ({len(trials)} trial{'s' if len(trials) != 1 else ''} x "
            f"{seeds} seed{'s' if seeds != 1 else ''}) run together exceed the study's budget: "
            f"{over}. Lower --finalists or --seeds, or drop --ensemble")


def ensemble_run(finals: Finals, path: Path, record: Callable[[int], dict[str, Any]]) -> Run:
    """Write the run folder ``path`` of the ensemble of the runs in ``finals`` (see
    :func:`archtune._ensemble.ensemble`); ``record(trial)`` gives search.json for the lead's trial."""
    from .._ensemble import ensemble  # torch: kept out of reading finalists
    from ..training.runs import write_json

    sources = [(f.trial, seed, r) for f in finals.finalists for seed, r in zip(f.seeds, f.runs, strict=True)]
    run = ensemble([r for _, _, r in sources], path,
                   labels=[{"trial": trial, "seed": seed} for trial, seed, _ in sources])
    write_json(path / "search.json", record(run.metrics["ensemble"]["members"][0]["trial"]))
    return run
