"""Run a plan: each step in order, skipping what its folder already holds, one line per step.

Runs train into ``<plan>/runs/<name>``; searches live in ``<plan>/studies/<name>`` and resume
as ``archtune search`` does; a search's chosen trial is retrained into ``<plan>/runs/<name>``;
the test split is evaluated last, once per tested model. A changed entry (another spec, data
or seed) moves the old folder aside (``<name>.<fingerprint>``) rather than deleting it.
Ctrl-C or a crash leaves every finished step in place: run the same command to go on.
"""

from __future__ import annotations

import copy
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from ..errors import ArchtuneError
from ..evaluate import dev_result, evaluate
from ..search import (
    DEFAULT_TRIALS,
    Execution,
    best_trial,
    counts,
    list_spaces,
    load_search_splits,
    open_study,
    retrain,
    search,
    settings,
    value_of,
)
from ..specs import list_specs, spec_from_dict
from ..training import load_run, load_splits, train
from .schema import Plan, SearchEntry
from .steps import (
    Step,
    archive,
    fingerprint,
    folder_fingerprint,
    read_state,
    resolve,
    retrain_choice,
    run_folder,
    run_status,
    same_run,
    study_folder,
    write_state,
)

if TYPE_CHECKING:
    from ..data import Splits
    from ..specs import Spec

log = logging.getLogger(__name__)
Echo = Callable[[str], None]


@dataclass
class Options:
    data_dir: str | None = None
    device: str | None = None
    threads: int | None = None
    trials: int | None = None  # every search holds this many trials (quick tries)
    progress: bool = False  # training progress bars


@dataclass
class _Ctx:
    plan: Plan
    folder: Path
    state: dict[str, Any]
    opts: Options
    echo: Echo
    splits: dict[tuple[Any, ...], Splits] = field(default_factory=dict)
    prefix: str = ""  # '[ 3/21] run cnn-small' of the step in progress

    def announce(self, what: str) -> None:
        """A line when a step starts real work (training, searching, testing)."""
        self.echo(f"{self.prefix}: {what}")


def plan_folder(plan: Plan, plans_dir: str | Path = "plans", folder: str | Path | None = None) -> Path:
    return Path(folder) if folder is not None else Path(plans_dir) / plan.name


def saved_plan(plan: Plan) -> dict[str, Any]:
    """The plan as it runs: the caller's overrides in ``overrides:`` (applied after every
    entry's own ``set:``), spec and space paths made absolute, so ``archtune plan <folder>``
    runs the same plan again from anywhere."""

    raw = copy.deepcopy(plan.raw)
    raw["name"] = plan.name
    if plan.extra:
        raw["overrides"] = list(plan.extra)
    for section, key, builtin in (("runs", "spec", list_specs()), ("searches", "space", list_spaces())):
        for entry in (raw.get(section) or {}).values():
            if isinstance(entry, dict) and plan.folder is not None:
                value = str(entry.get(key, ""))
                if value not in builtin and (plan.folder / value).exists():
                    entry[key] = str((plan.folder / value).resolve())
    return raw


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One ``archtune plan`` at a time per plan folder (the lock dies with its process)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ArchtuneError(f"{folder}: another 'archtune plan' is running in this folder") from None
        fh.write(str(os.getpid()))
        fh.flush()
        yield


def _check_folder(plan: Plan, folder: Path) -> None:
    saved = folder / "plan.yaml"
    if saved.is_file():
        try:
            other = (yaml.safe_load(saved.read_text()) or {}).get("name")
        except (yaml.YAMLError, AttributeError):
            other = None
        if other not in (None, plan.name):
            raise ArchtuneError(f"{folder} holds plan '{other}', not '{plan.name}'; choose another "
                                f"--dir")


def run_plan(plan: Plan, *, plans_dir: str | Path = "plans", folder: str | Path | None = None,
             options: Options | None = None, echo: Echo | None = None) -> Path:
    """Run every step of ``plan`` not yet done in its folder; returns the folder.

    ``echo`` gets one line when a step starts work and one when it ends (default: the log).
    """
    steps = resolve(plan)
    out = plan_folder(plan, plans_dir, folder)
    _check_folder(plan, out)
    say = echo or log.info
    with _locked(out):
        (out / "plan.yaml").write_text(yaml.safe_dump(saved_plan(plan), sort_keys=False))
        ctx = _Ctx(plan, out, read_state(out), options or Options(), say)
        ctx.state.update(plan=plan.name, source=plan.source, overrides=plan.extra)
        started = time.perf_counter()
        for i, step in enumerate(steps, 1):
            ctx.prefix = f"[{i:>{len(str(len(steps)))}}/{len(steps)}] {step.kind} {step.name}"
            t0 = time.perf_counter()
            record = ctx.state["steps"].setdefault(step.key, {})
            record.update(status="running", started=time.strftime("%Y-%m-%dT%H:%M:%S"))
            write_state(out, ctx.state)
            try:
                line, reused = _DO[step.kind](step, ctx, record)
            except BaseException as err:
                record["status"] = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
                record["error"] = str(err) or type(err).__name__
                write_state(out, ctx.state)
                raise
            record.update(status="done", error=None)
            if not reused:  # the time of the work, not of finding it done
                record.update(seconds=round(time.perf_counter() - t0, 1),
                              finished=time.strftime("%Y-%m-%dT%H:%M:%S"))
            write_state(out, ctx.state)
            ctx.echo(f"{ctx.prefix}: {line}")
        ctx.state["last_command_seconds"] = round(time.perf_counter() - started, 1)
        write_state(out, ctx.state)
    return out


def _splits(ctx: _Ctx, spec: Spec) -> Splits:
    d = spec.data
    key = (d.dataset, d.data_dir, tuple(d.image_size or ()), d.channels, d.dev_fraction,
           d.split_seed, d.train_subset)
    if key not in ctx.splits:
        ctx.splits[key] = load_splits(spec)
    return ctx.splits[key]


def _prepare_run_folder(path: Path, spec: Spec) -> bool:
    """True when ``path`` already holds a complete run of ``spec``; otherwise make room: an
    unfinished attempt of the same run is removed, another run is moved aside."""
    if not path.exists():
        return False
    same, status = same_run(path, spec), run_status(path)
    if same and status == "complete":
        return True
    if same:
        log.warning("%s: its last attempt ended '%s'; training it again", path, status)
        shutil.rmtree(path)
    else:
        archive(path, folder_fingerprint(path) or "old")
    return False


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _dev_line(path: Path) -> str:
    run = load_run(path)
    dev = dev_result(run)
    m = run.metrics
    return (f"dev {dev['accuracy'] * 100:.2f}% ({dev['weights']}), {_epochs(m.get('epochs_run', 0))}, "
            f"{m.get('train_seconds', 0):.0f} s -> {path}")


def _train_into(ctx: _Ctx, spec: Spec, path: Path) -> None:
    train(spec, splits=_splits(ctx, spec), run_dir=path, device=ctx.opts.device,
          threads=ctx.opts.threads, progress=ctx.opts.progress)


def _do_run(step: Step, ctx: _Ctx, record: dict[str, Any]) -> tuple[str, bool]:
    assert step.spec is not None
    path = run_folder(ctx.folder, step.name)
    fp = step.fingerprint
    record.update(path=str(path), fingerprint=fp)
    if _prepare_run_folder(path, step.spec):
        return "reused (same spec, data and seed): " + _dev_line(path), True
    ctx.announce(f"training {step.spec.name}, up to {_epochs(step.spec.train.epochs)} ...")
    _train_into(ctx, step.spec, path)
    return "trained: " + _dev_line(path), False


def search_settings(step: Step, trials: int | None) -> dict[str, Any]:
    """The search() options of a plan search: its own, and always a trial count (the caller's,
    else the entry's, else the whole selected grid or the space's default), so a study run
    once with fewer trials is topped up by the next plain run."""

    assert isinstance(step.entry, SearchEntry) and step.space is not None
    opts = dict(step.entry.options)
    if trials is not None:
        opts["trials"] = trials
    if opts.get("trials") is None:
        s = settings(vars(step.space.settings), opts, where=f"search '{step.name}'")
        opts["trials"] = (s.trials or len(step.space.select(s.fraction, s.seed)[0])
                          if s.sampler == "grid" else s.trials or DEFAULT_TRIALS)
    return opts


def _done_trials(path: Path) -> tuple[int, int] | None:
    """(finished trials, budget) of the study in ``path`` (None when there is none)."""

    if not (path / "study.json").is_file():
        return None
    study, info = open_study(path)
    return counts(study)["done"], int(info.get("trials") or 0)


def _search_splits(ctx: _Ctx, step: Step, opts: dict[str, Any]) -> Splits | None:
    assert isinstance(step.entry, SearchEntry) and step.space is not None
    if step.entry.dev_subset is None:
        return None
    s = settings(vars(step.space.settings), opts, where=f"search '{step.name}'")
    splits = load_search_splits(step.space, train_subset=s.train_subset)
    return dev_subset(splits, step.entry.dev_subset, seed=step.space.raw.get("data", {}).get(
        "split_seed", 0))


def dev_subset(splits: Splits, n: int, *, seed: int = 0) -> Splits:
    """The same splits with a stratified, seeded ``n``-image subset of the dev split (a coarse
    score for search trials; the dev images stay dev images)."""
    from dataclasses import replace

    import numpy as np
    from sklearn.model_selection import train_test_split

    if n >= len(splits.dev):
        return splits
    y = splits.dev.y.numpy()
    try:
        keep, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
    except ValueError as err:
        raise ArchtuneError(f"dev_subset {n}: cannot take a stratified subset of the "
                            f"{len(y)}-image dev split ({err})") from None
    import torch

    idx = torch.from_numpy(np.sort(keep))
    d = splits.dev
    return replace(splits, dev=replace(d, x=d.x[idx], y=d.y[idx], indices=d.indices[idx]))


def _do_search(step: Step, ctx: _Ctx, record: dict[str, Any]) -> tuple[str, bool]:
    assert step.space is not None
    path = study_folder(ctx.folder, step.name)
    fp = step.fingerprint
    if path.exists() and record.get("fingerprint") not in (None, fp):
        archive(path, str(record["fingerprint"]))
    record.update(path=str(path), fingerprint=fp)
    opts = search_settings(step, ctx.opts.trials)
    got = _done_trials(path)
    want = opts.get("trials")
    if got is not None and got[0] >= (want or got[1]):
        return f"reused: {got[0]} trials done -> {path}", True
    ctx.announce(f"searching {step.space.name}" + (f" ({got[0]} trials already done)" if got else "")
                 + " ...")
    splits = _search_splits(ctx, step, opts)
    if splits is not None:
        record["dev_images"] = len(splits.dev)
    study = search(step.space, study=step.name, studies_dir=path.parent, splits=splits,
                   execution=Execution(device=ctx.opts.device, threads=ctx.opts.threads,
                                       data_dir=ctx.opts.data_dir), **opts)

    c = counts(study)
    best = best_trial(study)
    return (f"{c['done']} trials done ({c['complete']} complete, {c['pruned']} pruned); best dev "
            f"{value_of(best) * 100:.2f}% (trial {best.number}) -> {path}"), False


def _n_dev(ctx: _Ctx, step: Step) -> int:
    """How many dev images scored the search's trials (for the one-standard-error rule)."""

    assert isinstance(step.entry, SearchEntry)
    known = ctx.state["steps"].get(f"search:{step.name}", {}).get("dev_images")
    if known:
        return int(known)
    if step.entry.dev_subset is not None:
        return step.entry.dev_subset
    space = next(s for s in resolve(ctx.plan) if s.key == f"search:{step.name}").space
    assert space is not None
    return len(load_search_splits(space).dev)


def _do_retrain(step: Step, ctx: _Ctx, record: dict[str, Any]) -> tuple[str, bool]:
    assert isinstance(step.entry, SearchEntry) and step.entry.retrain is not None
    n_dev = _n_dev(ctx, step)
    study, trial, raw = retrain_choice(ctx.folder, step.entry, n_dev)
    path = run_folder(ctx.folder, step.name)
    fp = fingerprint(raw)
    record.update(path=str(path), fingerprint=fp, trial=trial.number,
                  pick=step.entry.retrain.pick, dev_images=n_dev)
    what = f"trial {trial.number} (search dev {value_of(trial) * 100:.2f}%)"
    if _prepare_run_folder(path, spec_from_dict(raw, source=f"trial {trial.number}")):
        return f"reused {what}: " + _dev_line(path), True
    ctx.announce(f"retraining {what}, up to {_epochs(raw['train']['epochs'])} ...")
    retrain(study, trial=trial.number, epochs=step.entry.retrain.epochs, run_dir=path,
            studies_dir=ctx.folder / "studies", progress=ctx.opts.progress,
            execution=Execution(data_dir=ctx.opts.data_dir, threads=ctx.opts.threads,
                                device=ctx.opts.device))
    return f"retrained {what}: " + _dev_line(path), False


def _do_test(step: Step, ctx: _Ctx, record: dict[str, Any]) -> tuple[str, bool]:
    path = run_folder(ctx.folder, step.name)
    record.update(path=str(path))
    saved = path / "eval_test.json"
    if saved.is_file():
        acc = json.loads(saved.read_text())["accuracy"]
        return f"reused: test accuracy {acc * 100:.2f}% ({saved})", True
    ctx.announce("evaluating on the test split ...")
    result = evaluate(load_run(path), "test", data_dir=ctx.opts.data_dir, device=ctx.opts.device)
    return f"test accuracy {result['accuracy'] * 100:.2f}% on {result['n']:,} images -> {saved}", False


_DO: dict[str, Callable[[Step, _Ctx, dict[str, Any]], tuple[str, bool]]] = {
    "run": _do_run, "search": _do_search, "retrain": _do_retrain, "test": _do_test}
