"""``archtune plan --dry-run``: every step with what it would do, read-only.

Each line says whether the step would be reused (its folder holds a finished result with the
same fingerprint), resumed, redone or run, and what it is (spec, recipe, search budget).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..report.describe import optimiser_text, regularisation_text
from ..search import settings
from ..specs import infer_shapes, spec_from_dict, totals
from .execute import _done_trials, search_settings
from .schema import Plan, SearchEntry
from .steps import (
    Step,
    read_state,
    resolve,
    retrain_choice,
    run_folder,
    run_status,
    same_run,
    study_folder,
)

if TYPE_CHECKING:
    from ..specs import Spec


@dataclass
class Preview:
    step: Step
    action: str  # reuse | train | redo | replace | search | resume | retrain | test
    text: str


def _run_action(path: Path, spec: Spec) -> str:
    if not path.exists():
        return "train"
    if same_run(path, spec):
        return "reuse" if run_status(path) == "complete" else "redo"
    return "replace"


def _run_text(step: Step) -> str:
    spec = step.spec
    assert spec is not None
    t = totals(infer_shapes(spec))
    tc = spec.train
    d = spec.data
    data = d.dataset + (f", {d.train_subset:,} training images" if d.train_subset else "")
    return (f"{spec.name}: {t.params:,} params, {t.flops / 1e6:.2f} MFLOPs/image; "
            f"{optimiser_text(spec)}, batch {tc.batch_size}, up to {tc.epochs} epoch"
            f"{'' if tc.epochs == 1 else 's'}; {regularisation_text(spec)}; data {data}; "
            f"seed {tc.seed}")


def _search_text(step: Step, trials: int | None) -> str:
    space, entry = step.space, step.entry
    assert space is not None and isinstance(entry, SearchEntry)
    s = settings(vars(space.settings), search_settings(step, trials), where=f"search '{step.name}'")
    if s.sampler == "grid":
        candidates, size = space.select(s.fraction, s.seed)
        n = min(s.trials or len(candidates), len(candidates))
        what = f"grid, {len(candidates):,} of {size:,} candidates (seed {s.seed})"
        if n < len(candidates):
            what += f", the first {n:,} of them"
    else:
        what = f"{s.sampler}, {s.trials or 20} trials (seed {s.seed})"
    fid = (f"{s.train_subset:,} training images" if s.train_subset else "all training images")
    fid += f" x at most {s.epochs or space.max_value('train', 'epochs')} epochs per trial"
    dev = f", scored on {entry.dev_subset:,} dev images" if entry.dev_subset else ""
    limit = f", stops after {s.timeout:g} s" if s.timeout else ""
    return f"{space.name}: {what}; {fid}{dev}; pruner {s.pruner_name}{limit}"


def _search_action(step: Step, path: Path, trials: int | None) -> tuple[str, str]:
    if not (path / "study.json").is_file():
        return "search", ""

    got = _done_trials(path)
    assert got is not None
    want = search_settings(step, trials)["trials"]
    return ("reuse", f" ({got[0]} trials done)") if got[0] >= want else \
        ("resume", f" ({got[0]} of {want} trials done)")


def _retrain(step: Step, folder: Path, searching: bool) -> tuple[str, str]:
    entry = step.entry
    assert isinstance(entry, SearchEntry) and entry.retrain is not None
    pick = ("the best complete trial" if entry.retrain.pick == "best" else
            "the cheapest complete trial (fewest FLOPs) within one standard error of the best "
            "dev accuracy")
    epochs = f"{entry.retrain.epochs} epochs" if entry.retrain.epochs else "its spec's full epochs"
    text = f"after the search: {pick}, on all training images for {epochs}"
    path = run_folder(folder, step.name)
    n_dev = read_state(folder)["steps"].get(f"search:{step.name}", {}).get("dev_images")
    if searching or not path.exists() or not n_dev:
        return "retrain", text
    _, trial, raw = retrain_choice(folder, entry, int(n_dev))
    action = _run_action(path, spec_from_dict(raw, source=f"trial {trial.number}"))
    return ("reuse" if action == "reuse" else "retrain"), f"{text}: now trial {trial.number}"


def _test(path: Path) -> tuple[str, str]:
    saved = path / "eval_test.json"
    if saved.is_file():
        return "reuse", f"test accuracy {json.loads(saved.read_text())['accuracy'] * 100:.2f}%"
    return "test", "the test split, evaluated once, after every run and search"


def preview(plan: Plan, folder: Path, *, trials: int | None = None) -> list[Preview]:
    """What ``run_plan`` would do with each step, given what ``folder`` holds."""
    out: list[Preview] = []
    remade: set[str] = set()  # models trained again: their test runs again too
    for step in resolve(plan):
        if step.kind == "run":
            assert step.spec is not None
            out.append(Preview(step, _run_action(run_folder(folder, step.name), step.spec),
                               _run_text(step)))
        elif step.kind == "search":
            action, note = _search_action(step, study_folder(folder, step.name), trials)
            out.append(Preview(step, action, _search_text(step, trials) + note))
        elif step.kind == "retrain":
            action, text = _retrain(step, folder, out[-1].action != "reuse")
            out.append(Preview(step, action, text))
        else:
            action, text = _test(run_folder(folder, step.name))
            if step.name in remade:
                action, text = "test", "the test split, evaluated once, after every run and search"
            out.append(Preview(step, action, text))
        if step.kind in ("run", "retrain") and out[-1].action != "reuse":
            remade.add(step.name)
    return out


ACTIONS = {"reuse": "reuse", "train": "train", "redo": "redo (last attempt unfinished)",
           "replace": "train (spec changed; old folder moved aside)", "search": "search",
           "resume": "resume", "retrain": "retrain", "test": "test"}


def _n(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "es" if word.endswith("h") else "s")


def format_preview(plan: Plan, folder: Path, items: list[Preview]) -> str:
    width = len(str(len(items)))
    kinds = {k: sum(p.step.kind == k for p in items) for k in ("run", "search", "test")}
    source = "built-in" if plan.folder is None else plan.source
    head = (f"plan '{plan.name}' ({source}): {len(items)} steps ({_n(kinds['run'], 'run')}, "
            f"{_n(kinds['search'], 'search')}, {_n(kinds['test'], 'test')}) in {folder}"
            + ("" if folder.exists() else " (not created yet)"))
    lines = [head]
    for i, p in enumerate(items, 1):
        lines.append(f"[{i:>{width}}/{len(items)}] {p.step.kind} {p.step.name}: "
                     f"{ACTIONS[p.action]} - {p.text}")
    todo = sum(p.action != "reuse" for p in items)
    lines.append(f"dry run: nothing trained or written; {todo} of {len(items)} steps to do")
    return "\n".join(lines)
