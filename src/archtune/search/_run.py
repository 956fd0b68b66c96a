"""``search()`` and ``worker()``: run a study's trials in this process, or in N processes that
divide the cores between them.

``jobs: auto`` chooses N. On a CPU, N trials with one thread each use the cores better than
one trial with N threads while a model is small (a step has too little work to split across
threads); as models grow the two become alike, and then one trial at a time is better: each
trial finishes sooner, so the sampler and pruner learn sooner. ``bench/jobs.py`` measured both
on the project's 2-core CPU (bench/RESULTS.md, "Search workers"): 2 trials x 1 thread trained
1.53x as many images per second as 1 trial x 2 threads for mlp-small (0.2 MFLOPs per image),
1.30-1.37x for the small CNNs, 1.15x for default (11 MFLOPs) and 1.07x for accurate (76
MFLOPs). AUTO_MAX_FLOPS keeps parallel trials up to about the largest model measured; beyond
it nothing was measured.
"""

from __future__ import annotations

import logging
import os
import signal
import statistics
import sys
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

import optuna

from .. import log as archtune_log
from ..errors import ArchtuneError
from ..specs import infer_shapes, spec_from_dict, totals
from ._fidelity import refine_space
from ._objective import Execution, TrialContext, check_data, coarse_epochs, load_search_splits
from ._settings import Limits, as_dict, settings
from ._space import SearchSpace, load_space
from ._storage import SCRATCH, Handle
from ._study import attach, prepare_study, pruner_for, top_epochs
from ._worker import Budget, run_worker, study_hooks, trial_callbacks

if TYPE_CHECKING:
    from ..data import Splits
    from ..tracking import Tracking

log = logging.getLogger(__name__)
Jobs = int | Literal["auto"]
AUTO_MAX_FLOPS = 80e6  # per image; see the module docstring
SAMPLED = 16  # candidates whose FLOPs are looked at


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class Overrides(TypedDict, total=False):
    """The ``search:`` settings an argument of :func:`search` may override (see SearchSettings)."""

    sampler: str
    pruner: str
    trials: int
    timeout: float
    target: float
    fraction: float
    train_subset: int
    epochs: int
    seed: int
    jobs: int | Literal["auto"]
    max_params: int
    max_flops: float
    max_latency_ms: float
    objectives: list[str] | str


def _context(handle: Handle, ex: Execution, *, splits: Splits | None,
             tracking: Tracking | None) -> TrialContext:
    from ..training.device import pick_device  # torch: kept out of creating a study

    info = handle.info
    space = SearchSpace(info.space or {}, source=f"study '{handle.name}'")
    if ex.device is not None:
        pick_device(ex.device)  # a device this machine lacks fails here, not in every trial
    if splits is None:
        splits = load_search_splits(space, train_subset=info.train_subset, data_dir=ex.data_dir)
    check_data(space, splits)
    # the fidelity each trial records: no subset when the data set is smaller than the setting
    subset = info.train_subset if info.train_subset and len(splits.train) >= info.train_subset else None
    epochs = coarse_epochs(info.epochs, info.train_subset, len(splits.train),
                           full=top_epochs(space))
    if epochs != info.epochs:
        log.info("coarse pass: %d training images, fewer than train_subset=%d: each trial trains "
                 "for at most %d epochs instead of %d, to see as many images", len(splits.train),
                 info.train_subset, epochs, info.epochs)
        handle.study.pruner = pruner_for(info, epochs)  # Hyperband's rungs span the new epochs
    return TrialContext(space, splits, info.seed, epochs=epochs,  # type: ignore[arg-type]
                        train_subset=subset, data_dir=ex.data_dir,
                        runs_dir=handle.folder / "trials" if ex.keep_runs else None,
                        scratch_dir=handle.folder / SCRATCH,
                        threads=ex.threads, device=ex.device, tracking=tracking,
                        limits=Limits.of(info), objectives=info.objectives,
                        cost_pruning=bool(info.objectives) and info.pruner == "median")


def search(space: SearchSpace | str | Path | dict[str, Any], *, study: str | None = None,
           storage: str | None = None, studies_dir: str | Path = "studies", new: bool = False,
           refine: str | Path | None = None, top: int | None = None, create_only: bool = False,
           splits: Splits | None = None, execution: Execution | None = None,
           **overrides: Unpack[Overrides]) -> optuna.Study:
    """Search ``space`` (a built-in name, a file, a dict or a SearchSpace) and return the study.

    ``overrides`` (``trials=40, sampler="random"``, ...) take precedence over the space's
    ``search:`` section, then the defaults (TPE, 20 trials; a grid runs all its candidates).
    Running the same call again resumes the study. ``refine`` names a finished study: its
    ``top`` trials narrow the space, which is then searched at full fidelity (no train subset,
    full epochs), with that study's pruner unless one is given, in a study named
    ``<refine>-refine``. ``create_only`` creates the study (and its grid queue) for
    ``worker()`` processes to run. ``splits`` (train and dev) replace loading the space's data
    (one process only). ``execution`` says how this process runs the trials: threads, device,
    kept run folders, experiment loggers, per-trial callbacks (see :class:`Execution`).
    """
    ex = execution or Execution()
    tracking = ex.tracking()
    space = load_space(space)
    base = as_dict(space.settings)
    extra: dict[str, Any] = {"keep_runs": bool(ex.keep_runs)}
    if refine is not None:
        parent = attach(refine, studies_dir=studies_dir)
        space, numbers = refine_space(space, parent.study, top=top)
        # full fidelity, and the coarse pass's pruner unless one is given
        base.update(train_subset=None, epochs=None, fraction=None, pruner=parent.info.pruner)
        extra.update(refined_from=Path(refine).name, refine_top=numbers)
    s = settings(base, dict(overrides), where="search settings")
    jobs = 1 if splits is not None and s.jobs == "auto" else resolve_jobs(s.jobs, space, cores())
    if splits is not None and jobs > 1:
        raise ArchtuneError("splits= are used in this process only; run with jobs=1")
    name = study or (f"{Path(refine).name}-refine" if refine is not None else space.name)
    handle = prepare_study(space, s, name=name, storage=storage, studies_dir=studies_dir, new=new,
                     extra=extra)
    if not create_only:
        budget = Budget(trials=handle.info.trials, timeout=s.timeout, target=s.target)
        ex = replace(ex, keep_runs=bool(ex.keep_runs))
        with study_hooks(handle, tracking, trial_callbacks(ex.on_trial, ex.progress)) as tracked:
            _execute(handle, budget, ex, jobs=jobs, splits=splits, tracking=tracked)
    return handle.study


def worker(study: str | Path, *, storage: str | None = None, studies_dir: str | Path = "studies",
           trials: int | None = None, timeout: float | None = None, target: float | None = None,
           jobs: Jobs = 1, execution: Execution | None = None) -> int:
    """Join an existing study (from this or another machine) and run its trials until its
    budget is spent; returns how many trials this call ran (0 with several jobs).
    ``execution`` as for :func:`search` (``keep_runs`` None: as the study was created)."""
    ex = execution or Execution()
    tracking = ex.tracking()
    handle = attach(study, storage=storage, studies_dir=studies_dir)
    budget = Budget(trials=trials or handle.info.trials, timeout=timeout, target=target)
    if ex.keep_runs is None:
        ex = replace(ex, keep_runs=bool(handle.info.keep_runs))
    jobs = resolve_jobs(jobs, SearchSpace(handle.info.space or {}, source="stored"), cores())
    with study_hooks(handle, tracking, trial_callbacks(ex.on_trial, ex.progress)) as tracked:
        return _execute(handle, budget, ex, jobs=jobs, splits=None, tracking=tracked)


def _execute(handle: Handle, budget: Budget, ex: Execution, *, jobs: int, splits: Splits | None,
             tracking: Tracking | None) -> int:
    grid = handle.info.sampler == "grid"
    if jobs <= 1:
        return run_worker(handle, _context(handle, ex, splits=splits, tracking=tracking), budget,
                          grid=grid)
    each = ex.threads or max(1, cores() // jobs)
    log.info("running %d worker processes with %d threads each", jobs, each)
    # what a worker process needs: no callbacks (they run here) and the study's tracking
    child = _ChildArgs(handle.storage.url, handle.name, str(handle.folder.parent), budget,
                       replace(ex, threads=each, on_trial=None, progress=False, loggers=None),
                       tracking, _levels())
    _spawn(jobs, child)
    return 0


@dataclass(frozen=True)
class _ChildArgs:
    url: str  # the study's storage
    name: str  # the study
    studies_dir: str
    budget: Budget
    execution: Execution
    tracking: Tracking | None  # the study's (its MLflow parent run), from study_hooks
    levels: dict[str, int]  # the parent's logging levels, copied


def _levels() -> dict[str, int]:
    """This process's logging choices, for worker processes to copy."""
    names = ("archtune", "archtune.training", "archtune.data")
    return {n: logging.getLogger(n).level for n in names} | {"optuna": optuna.logging.get_verbosity()}


def _spawn(jobs: int, child: _ChildArgs) -> None:
    import multiprocessing

    mp = multiprocessing.get_context("spawn")
    procs = [mp.Process(target=_child, args=(child, os.getpid()), name=f"archtune-worker-{i + 1}")
             for i in range(jobs)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        _stop_children(procs)
        raise
    failed = [p.exitcode for p in procs if p.exitcode != 0]
    if failed:
        raise ArchtuneError(f"{len(failed)} of {jobs} worker processes failed (exit codes "
                            f"{', '.join(map(str, failed))}); see the messages above")


def _stop_children(procs: list[Any]) -> None:
    """Children got Ctrl-C too and requeue their trials; make sure they do, then wait."""
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            os.kill(p.pid, signal.SIGINT)
    for p in procs:
        p.join(timeout=60)
        if p.is_alive():
            p.terminate()


def _child(args: _ChildArgs, parent: int) -> None:
    """One of the N worker processes of ``search(jobs=N)``, started by process ``parent``."""
    exit_with_parent(parent)
    levels = args.levels
    if logging.getLogger("archtune").handlers == [] and levels["archtune"] != logging.NOTSET:
        archtune_log.configure({logging.WARNING: -1, logging.DEBUG: 1}.get(levels["archtune"], 0))
    for logger, level in levels.items():
        if logger == "optuna":
            optuna.logging.set_verbosity(level)
        else:
            logging.getLogger(logger).setLevel(level)
    try:
        handle = attach(args.name, storage=args.url, studies_dir=args.studies_dir)
        ctx = _context(handle, args.execution, splits=None, tracking=args.tracking)
        run_worker(handle, ctx, args.budget, grid=handle.info.sampler == "grid")
    except ArchtuneError as err:
        logging.getLogger(__name__).error("worker %d: %s", os.getpid(), err)
        sys.exit(2)
    except KeyboardInterrupt:
        import gc

        gc.freeze()  # its trial is requeued: leave at once (collecting the heap at exit takes seconds)
        sys.exit(130)


PR_SET_PDEATHSIG = 1  # linux/prctl.h


def exit_with_parent(parent: int, grace: float = 10.0) -> None:
    """End this worker process soon after process ``parent`` dies (even by SIGKILL): it gets
    SIGTERM, which stops it as Ctrl-C does (its running trial is failed and queued again); if
    that has not ended it within ``grace`` seconds, it exits at once (its trial is then retried
    as any dead worker's). Linux sends the signal (prctl); elsewhere a thread polls."""
    signal.signal(signal.SIGTERM, _stop_once)
    linux = False
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            linux = ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM) == 0
        except (OSError, AttributeError):
            linux = False
    if os.getppid() != parent:  # it died before prctl took effect
        os._exit(130)
    watch = threading.Thread(target=_watch_parent, args=(parent, grace, not linux), daemon=True,
                             name="archtune-parent-watch")
    watch.start()


def _stop_once(signum: int, frame: Any) -> None:
    """Stop as on Ctrl-C, once: Linux sends the parent-death signal again as each of the dead
    parent's threads ends, and a second one would cut short the requeueing of the trial."""
    signal.signal(signum, signal.SIG_IGN)
    raise KeyboardInterrupt(f"signal {signum}: the search process that started this worker ended")


def _watch_parent(parent: int, grace: float, signal_self: bool) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    if signal_self:  # no prctl here: deliver the parent-death signal ourselves
        os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(grace)
    os._exit(130)


def median_flops(space: SearchSpace, n: int = SAMPLED) -> float | None:
    """The median FLOPs per image of ``n`` seeded random candidates (None: none is valid)."""
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
