"""``tune()``: one wall-clock budget from the data to a delivered, trained model.

The space's start points (for auto-space the ``default`` and ``accurate`` recipes) train first;
the other candidates are mostly mutations of the best so far, the rest proposed by the space's
sampler. Rungs of successive halving (:mod:`._plan`) train candidates for equal time and compare
them at equal epochs (:func:`._plan.rank`), at their moving-average weights while the learning
rate is still at its stable value; promoted
candidates continue from their own weights; the last one trains to the end of the budget and
cools down. Every candidate is a trial of an Optuna study (pruned ones with the rungs they
reached) and a run folder; the winner's folder is moved to ``runs/`` as the delivered run.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import random
import shutil
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna

from ..data import Splits
from ..errors import ArchtuneError
from ..search import (
    START_POINT,
    Handle,
    SearchSpace,
    check_data,
    load_search_splits,
    load_space,
    prepare_study,
    settings,
    trial_seed,
)
from ..specs import Spec, infer_shapes, spec_from_dict, totals
from ..training import Session, load_run, measure
from ..training.budget import check_minutes
from ..training.runs import new_run_dir
from ._plan import (
    CANDIDATES,
    COOLDOWN,
    EXPLORE,
    MARGIN,
    MUTATE,
    TunePlan,
    plan_tune,
    rank,
    survivors,
)
from ._state import Candidate, TuneState, read_state, write_state
from ._summary import TuneResult, fidelity

log = logging.getLogger(__name__)

LONG = 10_000  # epochs a candidate's schedule is planned for until its end is known
WARMUP_STEPS = 200  # warm-up of at least this many optimiser steps (and at least one epoch)
WARMUP_EPOCHS = 5  # and at most this many epochs (a small data set's epochs are a few steps)
EMA = 0.999  # the moving average a candidate without one trains with: rungs compare averages
PARENT = "tune_parent"  # user attribute of a mutated trial: the trial it mutates
REPORT_S = 1.0  # report a trial's dev accuracy to the study at most this often
FINAL_SAVES = 10  # the winner's final stretch is saved this many times (a kill loses less)


def tune(space: str | Path | dict[str, Any] | SearchSpace = "auto-space", *,
         data: str | None = None, minutes: float = 10.0, study: str | None = None,
         storage: str | None = None, studies_dir: str | Path = "studies",
         runs_dir: str | Path = "runs", seed: int = 0, explore: float = EXPLORE,
         candidates: int = CANDIDATES, new: bool = False, data_dir: str | None = None,
         device: str | None = None, threads: int | None = None) -> TuneResult:
    """Spend ``minutes`` (wall clock, everything included) on the best model the space holds
    for ``data`` (default: the space's data set) and return the delivered run with its study.

    Running the same call again after an interruption resumes from the last finished rung
    (the same ``minutes``, ``explore`` and ``seed`` are required); ``new`` starts again.
    """
    t0 = time.monotonic()
    loaded, splits = _space_and_data(space, data, data_dir, minutes)
    name = study or f"{loaded.name}-tune"
    handle = _open(loaded, name, storage, studies_dir, seed, candidates, new)
    state = read_state(handle.folder)
    if state is not None:
        _check_resume(state, loaded, minutes, explore, seed, handle.folder)
        if state.phase == "done":
            log.info("tune '%s' already finished: %s", name, state.delivered)
            return TuneResult(load_run(str(state.delivered)), handle.study, state, handle.folder)
        log.info("resuming tune '%s' at rung %d (%.0fs of the budget spent before; the time "
                 "since its last save is lost)", name, state.rung, state.elapsed_s)
    tuner = _Tuner(handle, loaded, splits, Path(runs_dir), device, threads)
    if state is None:
        plan = tuner.plan(minutes * 60, time.monotonic() - t0, explore, candidates)
        state = TuneState(study=name, space_hash=loaded.hash, minutes=minutes, explore=explore,
                          seed=seed, plan=plan.to_dict(), elapsed_s=time.monotonic() - t0)
        log.info("%s", plan.describe())
    return tuner.run(state, time.monotonic() - state.elapsed_s)


def tune_plan(space: str | Path | dict[str, Any] | SearchSpace = "auto-space", *,
              data: str | None = None, minutes: float = 10.0, explore: float = EXPLORE,
              candidates: int = CANDIDATES, data_dir: str | None = None,
              device: str | None = None, threads: int | None = None) -> TunePlan:
    """How :func:`tune` would spend ``minutes``: the data is loaded and the start points are
    timed (a few seconds each); nothing is trained or written."""
    t0 = time.monotonic()
    loaded, splits = _space_and_data(space, data, data_dir, minutes)
    tuner = _Tuner(None, loaded, splits, Path("runs"), device, threads)
    return tuner.plan(minutes * 60, time.monotonic() - t0, explore, candidates)


def _space_and_data(space: str | Path | dict[str, Any] | SearchSpace, data: str | None,
                    data_dir: str | None, minutes: float) -> tuple[SearchSpace, Splits]:
    """The space (its data set replaced by ``data``) and its train/dev splits, checked."""
    check_minutes(minutes)
    loaded = _load(space, data)
    splits = load_search_splits(loaded, data_dir=data_dir)
    check_data(loaded, splits)
    return loaded, splits


def _load(space: str | Path | dict[str, Any] | SearchSpace, data: str | None) -> SearchSpace:
    if data is None:
        return load_space(space)
    if isinstance(space, SearchSpace):
        raw = dict(space.raw) | {"search": dataclasses.asdict(space.settings)}
        raw["data"] = dict(raw.get("data") or {}) | {"dataset": data}
        return load_space(raw)
    import json

    return load_space(space, [f"data.dataset={json.dumps(data)}"])


def _open(space: SearchSpace, name: str, storage: str | None, studies_dir: str | Path,
          seed: int, candidates: int, new: bool) -> Handle:
    base = dataclasses.asdict(space.settings) | {  # no coarse pass: trials use all the data
        "seed": seed, "pruner": "none", "trials": candidates, "jobs": 1, "train_subset": None,
        "epochs": None, "timeout": None, "target": None}
    s = settings(base, where="tune settings")
    handle = prepare_study(space, s, name=name, storage=storage, studies_dir=studies_dir, new=new,
                           extra={"tune": True})
    if new:
        (handle.folder / "tune.json").unlink(missing_ok=True)
    return handle


def _check_resume(state: TuneState, space: SearchSpace, minutes: float, explore: float,
                  seed: int, folder: Path) -> None:
    """A resumed tune runs with the settings it started with, or says why it cannot."""
    given = {"minutes": minutes, "explore": explore, "seed": seed, "space": space.hash}
    saved = {"minutes": state.minutes, "explore": state.explore, "seed": state.seed,
             "space": state.space_hash}
    changed = [k for k in given if given[k] != saved[k]]
    if changed:
        what = ", ".join(f"{k} {saved[k]} (now {given[k]})" if k != "space" else "another space"
                         for k in changed)
        raise ArchtuneError(f"{folder}: this tune was started with {what}; resume it with the "
                            "same settings, or pass --new (new=True) to start again, or --study "
                            "to tune in another study")


class _Tuner:
    """One tune's loop over its state (see the module's text)."""

    def __init__(self, handle: Handle | None, space: SearchSpace, splits: Splits,
                 runs_dir: Path, device: str | None, threads: int | None):
        self.handle, self.space, self.splits = handle, space, splits
        self.runs_dir, self.device, self.threads = runs_dir, device, threads
        self.sessions: dict[int, Session] = {}
        self.trials: dict[int, optuna.Trial] = {}
        self.reported: dict[int, tuple[int, float]] = {}  # trial -> (last step reported, when)
        self.state: TuneState
        self.started = 0.0  # the monotonic clock at elapsed 0

    # -- planning ---------------------------------------------------------------------------
    def plan(self, budget_s: float, spent_s: float, explore: float, candidates: int) -> TunePlan:
        t0 = time.monotonic()
        timings = []
        for i, params in enumerate(self.space.settings.start or []):
            try:
                spec = self.spec_of(self.space.resolve(params), seed=0)
                timings.append(measure(spec, self.splits, device=self.device, threads=self.threads))
            except ArchtuneError as err:
                log.warning("start point %d does not fit the data: %s", i, err)
        if not timings:  # no start point: time one sampled candidate
            sampled = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
            spec = self.spec_of(self.space.sample(sampled), seed=0)
            timings.append(measure(spec, self.splits, device=self.device, threads=self.threads))
        spent = spent_s + time.monotonic() - t0
        return plan_tune(budget_s, spent, [e for e, _ in timings], max(f for _, f in timings),
                         explore=explore, candidates=candidates)

    def spec_of(self, raw: dict[str, Any], seed: int) -> Spec:
        """A candidate's spec as a tune trains it: schedule ``wsd`` planned long (its end is
        set once it is known), a warm-up of at least one epoch and WARMUP_STEPS steps, and a
        moving average of the weights (EMA where the candidate has none)."""
        raw = dict(raw)
        raw["train"] = dict(raw.get("train") or {}) | {"seed": seed}
        spec = spec_from_dict(raw, source="candidate")
        t = spec.train
        steps = max(len(self.splits.train.y) // t.batch_size, 1)
        warm = min(max(steps, WARMUP_STEPS), WARMUP_EPOCHS * steps)
        total = LONG * steps
        train = dataclasses.replace(t, schedule="wsd", epochs=LONG, warmup_frac=warm / total,
                                    cooldown_frac=COOLDOWN, ema=t.ema or EMA, patience=None)
        return dataclasses.replace(spec, train=train)

    # -- the clock --------------------------------------------------------------------------
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def left(self) -> float:
        return self.state.minutes * 60 - self.elapsed()

    def save(self) -> None:
        self.state.elapsed_s = self.elapsed()
        write_state(self.folder, self.state)

    @property
    def folder(self) -> Path:
        assert self.handle is not None
        return self.handle.folder

    @property
    def study(self) -> optuna.Study:
        assert self.handle is not None
        return self.handle.study

    # -- the loop ---------------------------------------------------------------------------
    def run(self, state: TuneState, started: float) -> TuneResult:
        self.state, self.started = state, started
        plan = TunePlan.from_dict(state.plan)
        self._reopen()
        while state.phase == "rungs":
            if state.rung >= len(plan.rungs):
                state.phase = "final"
                break
            n, target = plan.rungs[state.rung]
            if state.rung == 0:
                self._fill(n, target, plan)
            for c in state.alive():
                if len(c.scores) <= state.rung:
                    self._train_to(c, target, state.rung)
            self._decide(state.rung, plan)
            state.rung += 1
            self.save()
        if state.phase == "final":
            if not state.alive():
                self._fill(1, 0.0, plan)
            self._final(state.alive()[0])
        return self._result()

    def _reopen(self) -> None:
        """After a restart: the trials and sessions of the candidates still in the race."""
        for c in self.state.alive():
            frozen = self.study.get_trials(deepcopy=False)[c.number]
            self.trials[c.number] = optuna.trial.Trial(self.study, frozen._trial_id)
            if c.scores:
                self.reported[c.number] = (c.epochs[-1], -REPORT_S)
                self.sessions[c.number] = Session.resume(c.run_dir, self.splits, device=self.device,
                                                         threads=self.threads)
            else:  # killed during its first rung: it starts again
                shutil.rmtree(str(c.run_dir), ignore_errors=True)
                self._start(c)

    def _fill(self, n: int, target: float, plan: TunePlan) -> None:
        """Rung 0: start points first, then mutations of the best so far and sampled candidates,
        until ``n`` candidates are trained to ``target`` seconds (fewer when time runs short)."""
        attempts = 0
        while len([c for c in self.state.candidates if c.status != "failed"]) < n:
            if attempts > 3 * n + 10:
                raise ArchtuneError(f"{self.space.source}: {attempts} candidates in a row do not "
                                    "fit the data; check the space with 'archtune search --dry-run'")
            trained = [c for c in self.state.candidates if c.scores]
            if trained and self.left() < plan.final_s + target + 0.5 * plan.delivered_s:
                log.info("rung 0 ends at %d candidates: the rest of the budget is for the later "
                         "rungs and the delivered model", len(trained))
                break
            attempts += 1
            c = self._new_candidate()
            if c.status == "failed" or target <= 0:
                continue
            self._train_to(c, target, 0)

    def _new_candidate(self) -> Candidate:
        """Ask the study for the next candidate: a queued start point, a mutation, or a sample."""
        alive = [c for c in self.state.candidates if c.scores and c.status != "failed"]
        waiting = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        rng = random.Random(self.state.seed * 100_003 + len(self.state.candidates))
        if not waiting and alive and rng.random() < MUTATE:
            parent = self.state.find(self._ranked(alive)[0][0])  # a start point, unless beaten
            self.study.enqueue_trial(mutate(parent.params, self.space, rng),
                                     user_attrs={PARENT: parent.number})
        with warnings.catch_warnings():  # heartbeats are for optimize()'s workers, not asked trials
            warnings.simplefilter("ignore", UserWarning)
            trial = self.study.ask()
        raw = self.space.sample(trial)
        c = Candidate(number=trial.number, params=dict(trial.params), spec=None, run_dir=None,
                      start_point=trial.user_attrs.get(START_POINT),
                      parent=trial.user_attrs.get(PARENT))
        self.trials[c.number] = trial
        self.state.candidates.append(c)
        try:
            spec = self.spec_of(raw, trial_seed(self.state.seed, trial.number))
            c.spec = spec.to_dict()
            c.run_dir = str(self.folder / "trials" / str(trial.number))
            shutil.rmtree(c.run_dir, ignore_errors=True)  # left by a tune killed before its save
            self._start(c)
        except ArchtuneError as err:
            c.spec = None
            self._fail(c, str(err))
        return c

    def _start(self, c: Candidate) -> None:
        assert c.spec is not None and c.run_dir is not None
        spec = spec_from_dict(c.spec, source=f"{c.label}: spec")
        session = Session.start(spec, self.splits, c.run_dir, device=self.device, threads=self.threads)
        self.sessions[c.number] = session
        t = totals(infer_shapes(session.spec))
        trial = self.trials[c.number]
        for key, value in {"spec": session.spec.to_dict(), "seed": session.spec.train.seed,
                           "params_count": t.params, "flops": t.flops, "run_dir": c.run_dir,
                           "status": "running"}.items():
            trial.set_user_attr(key, value)

    def _report(self, c: Candidate, force: bool = False) -> Callable[[int, dict[str, float]], None]:
        """Report dev accuracy to the trial after an epoch, at most every REPORT_S seconds
        (a storage write each; a small data set's epochs take milliseconds) unless ``force``."""
        trial = self.trials[c.number]

        def report(epoch: int, row: dict[str, float]) -> None:
            last_step, last_time = self.reported.get(c.number, (0, -REPORT_S))
            if epoch > last_step and (force or time.monotonic() - last_time >= REPORT_S):
                trial.report(float(row["dev_accuracy"]), step=epoch)
                self.reported[c.number] = (epoch, time.monotonic())

        return report

    def _train_to(self, c: Candidate, target: float, rung: int) -> None:
        """Train a candidate until its training seconds reach ``target`` (whole epochs, the
        nearest), pause it and record its score at ``rung``; a candidate whose training fails
        is recorded as failed and the tune goes on."""
        session = self.sessions[c.number]
        c.status = "training"
        try:
            while session.epoch == 0 or session.seconds + 0.5 * session.epoch_s < target:
                session.advance(1, on_epoch=self._report(c))
            session.pause()
            self._report(c, force=True)(session.epoch, session.history[-1])
        except (ArchtuneError, RuntimeError, ValueError) as err:  # a diverging or broken model
            log.debug("%s crashed", c.label, exc_info=True)
            self._fail(c, f"{type(err).__name__}: {err}")
            return
        c.status = "paused"
        c.scores.append(float(session.score or 0.0))
        c.epochs.append(session.epoch)
        c.seconds.append(session.seconds)
        self._line(f"rung {rung}", c)
        self.save()

    def _fail(self, c: Candidate, error: str) -> None:
        c.status, c.error = "failed", error
        session = self.sessions.pop(c.number, None)
        if session is not None:
            session.stop(error)
        trial = self.trials.pop(c.number)
        trial.set_user_attr("error", error)
        trial.set_user_attr("status", "failed" if c.spec is not None else "invalid")
        self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        log.info("%s failed: %s", c.label, error)
        self.save()

    def _line(self, where: str, c: Candidate) -> None:
        m, s = divmod(int(self.elapsed()), 60)
        total = int(self.state.minutes * 60)
        log.info("%-8s %-30s dev %6.2f%%  %4d epochs  %6.0fs   [%d:%02d of %d:%02d]", where,
                 c.label, 100 * c.scores[-1], c.epochs[-1], c.seconds[-1], m, s, *divmod(total, 60))

    def _ranked(self, candidates: list[Candidate]) -> tuple[list[int], int, float]:
        """``rank`` over the candidates' dev accuracy after each epoch they trained, the start
        points as the prior."""
        return rank({c.number: [row["dev_accuracy"] for row in self.sessions[c.number].history]
                     for c in candidates},
                    prior={c.number for c in candidates if c.start_point is not None},
                    dev_size=len(self.splits.dev.y))

    def _decide(self, rung: int, plan: TunePlan) -> None:
        """Keep the best of the rung (a third, at least one), compared at equal epochs; stop
        the others."""
        order, at, margin = self._ranked(self.state.alive())
        alive = [self.state.find(n) for n in order]
        for c in alive:  # a too-slow candidate (fewer than ``at`` epochs): its last score
            history = self.sessions[c.number].history
            c.ranked.append(float(history[min(at, len(history)) - 1]["dev_accuracy"]))
        self.state.compared_at.append(at)
        self.state.margins.append(margin)
        keep = survivors(len(alive), plan.eta)[1] if len(alive) > 1 else 1
        for c in alive[keep:]:
            self.sessions.pop(c.number).stop(f"not among the best {keep} at rung {rung}")
            c.status = "stopped"
            trial = self.trials.pop(c.number)
            for key, value in {"status": "pruned", "dev_accuracy": c.scores[-1],
                               "epochs": c.epochs[-1], "train_seconds": c.seconds[-1]}.items():
                trial.set_user_attr(key, value)
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        log.info("rung %d, compared at epoch %d (a start point is replaced by a margin over "
                 "%.2f points): %s continue", rung, at, 100 * margin,
                 ", ".join(c.label for c in alive[:keep]))
        if keep == 1:
            self.state.phase = "final"

    def _final(self, c: Candidate) -> None:
        """The winner trains to the end of the budget, cooling down over its last epochs, and
        becomes the delivered run."""
        self.state.phase = "final"
        session = self.sessions[c.number]
        c.status = "training"
        report = self._report(c)
        saves = 0
        final_s = session.final_eval_s()  # this model's, not the slowest start point's
        planned: tuple[int, int] | None = None  # (epochs, epochs of decay) last set
        while True:
            epoch_s = _recent_epoch_s(session)
            if session.epoch <= session.decay_epoch:  # the end can still move: re-plan it
                left = MARGIN * (self.left() - final_s)
                total = max(session.epoch + max(1, math.floor(left / max(epoch_s, 1e-9))),
                            session.warmup_epochs + 1)
                cool = max(1, min(total - session.epoch, round(COOLDOWN * total)))
                if (total, cool) != planned:
                    session.set_end(total, cool)
                    planned = (total, cool)
            if session.epoch >= session.spec.train.epochs:
                break
            session.advance(1, on_epoch=report)
            if session.epoch * FINAL_SAVES // session.spec.train.epochs > saves:
                saves += 1
                session.pause()
                self.save()
        run = session.finish()
        dest = new_run_dir(f"{self.space.name}-tune", self.runs_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(session.path), str(dest))
        run = load_run(dest)
        dev = float(run.metrics["dev"]["accuracy"])
        c.status, c.run_dir = "delivered", str(dest)
        c.scores.append(float(session.score or 0.0))
        c.epochs.append(session.epoch)
        c.seconds.append(session.seconds)
        self._line("final", c)
        trial = self.trials[c.number]
        for key, value in {"status": "complete", "dev_accuracy": dev, "run_dir": str(dest),
                           "epochs": session.epoch, "train_seconds": session.seconds}.items():
            trial.set_user_attr(key, value)
        self.study.tell(trial, dev)
        self.state.phase, self.state.delivered, self.state.dev_accuracy = "done", str(dest), dev
        self.save()
        self.study.set_user_attr("tune", {"delivered": str(dest), "dev_accuracy": dev,
                                          "fidelity": fidelity(self.state)})

    def _result(self) -> TuneResult:
        assert self.state.delivered is not None
        return TuneResult(load_run(self.state.delivered), self.study, self.state, self.folder)


def _recent_epoch_s(session: Session, last: int = 5) -> float:
    rows = session.history[-last:]
    return sum(r["seconds"] for r in rows) / len(rows) if rows else session.epoch_s


def mutate(params: dict[str, Any], space: SearchSpace, rng: random.Random) -> dict[str, Any]:
    """``params`` with one or two of its values changed: another choice, or a number moved by
    about a fifth of its range (on a log scale where the dimension is); values a new branch
    needs are left to the sampler."""
    names = [n for n in params if n in space.names]
    out = dict(params)
    if not names:
        return out
    for name in rng.sample(names, 1 if len(names) < 2 or rng.random() < 0.5 else 2):
        out[name] = _nudge(space.dim(name), params[name], rng)
    return out


def _nudge(d: Any, value: Any, rng: random.Random) -> Any:
    if d.kind == "choice":
        others = [c for c in d.choices if c != value]
        return rng.choice(others or list(d.choices))
    lo, hi = float(d.low), float(d.high)
    if d.log:
        x = math.exp(math.log(value) + rng.gauss(0, 0.2 * math.log(hi / lo)))
    else:
        x = value + rng.gauss(0, 0.2 * (hi - lo))
    x = min(max(x, lo), hi)
    if d.step:
        x = lo + round((x - lo) / d.step) * d.step
    return int(round(x)) if d.kind == "int" else float(f"{x:.6g}")
