"""A plan as steps (run, search, retrain, test), each with a fingerprint and a folder, and
what is already done in a plan folder.

A plan folder ``plans/<name>/`` holds ``plan.yaml`` (the plan as run), ``state.json`` (each
step's folder, fingerprint, status and time), ``runs/<name>/`` (one run folder per run, and the
retrained model of each search) and ``studies/<name>/`` (one study per search). A step is done
when its folder holds a finished result with the same fingerprint: the resolved spec (layers,
train and data sections, seed included; not its description or data_dir).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .._stats import accuracy_se
from ..errors import ArchtuneError
from ..search import list_spaces, load_space, open_study, value_of
from ..specs import list_specs, load_spec, output_units, spec_from_dict
from ..training.runs import write_json
from ..training.trainer import as_trained
from .schema import Plan, RunEntry, SearchEntry

if TYPE_CHECKING:
    from ..search import SearchSpace
    from ..specs import Spec

log = logging.getLogger(__name__)
STATE = "state.json"
KINDS = ("run", "search", "retrain", "test")


def fingerprint(spec_dict: dict[str, Any]) -> str:
    """What makes a run the same run: the resolved spec without its description and the
    folder its data were read from."""
    d = json.loads(json.dumps(spec_dict, default=str))
    d.pop("description", None)
    d.get("data", {}).pop("data_dir", None)
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass
class Step:
    kind: str  # run | search | retrain | test
    name: str  # the plan's name of the run or search
    spec: Spec | None = None  # run
    space: SearchSpace | None = None  # search
    entry: RunEntry | SearchEntry | None = None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.name}"

    @property
    def fingerprint(self) -> str | None:
        if self.spec is not None:
            return fingerprint(self.spec.to_dict())
        if self.space is not None and isinstance(self.entry, SearchEntry):
            ident = {"space": self.space.hash, "dev_subset": self.entry.dev_subset,
                     **{k: v for k, v in self.entry.options.items()
                        if k not in ("trials", "timeout", "target")}}  # budgets may change
            return hashlib.sha256(json.dumps(ident, sort_keys=True, default=str).encode()
                                  ).hexdigest()[:12]
        return None


def _resolve_path(value: str, plan: Plan, builtin: list[str]) -> str:
    """A spec or space given as a path relative to the plan file is read from there."""
    if value in builtin or plan.folder is None or Path(value).is_absolute():
        return value
    beside = plan.folder / value
    return str(beside) if beside.exists() else value


def resolve(plan: Plan) -> list[Step]:
    """Every step of the plan in order, with its spec or space loaded and checked (the
    plan's overrides applied); nothing is trained or written."""

    def loaded(kind: str, name: str, load: Any, value: str, builtin: list[str],
               own: list[str]) -> Any:
        try:
            return load(_resolve_path(value, plan, builtin), _ordered(plan, own))
        except ArchtuneError as err:
            raise ArchtuneError(f"plan '{plan.name}', {kind} '{name}': {err}") from None

    steps: list[Step] = []
    for r in plan.runs:
        spec = loaded("run", r.name, load_spec, r.spec, list_specs(), r.set)
        steps.append(Step("run", r.name, spec=spec, entry=r))
    for s in plan.searches:
        space = loaded("search", s.name, load_space, s.space, list_spaces(), s.set)
        steps.append(Step("search", s.name, space=space, entry=s))
        if s.retrain is not None:
            steps.append(Step("retrain", s.name, entry=s))
    steps += [Step("test", name) for name in plan.test]
    return steps


def _ordered(plan: Plan, own: list[str]) -> list[str]:
    """The plan's data: and set: first, then the entry's own set:, then the caller's
    overrides (the last one of a key wins)."""
    return plan.overrides + own + plan.extra


def run_folder(plan_dir: Path, name: str) -> Path:
    return plan_dir / "runs" / name


def study_folder(plan_dir: Path, name: str) -> Path:
    return plan_dir / "studies" / name


def folder_fingerprint(path: Path) -> str | None:
    """The fingerprint of the spec a run folder was trained with (None: no readable spec)."""
    try:
        return fingerprint(yaml.safe_load((path / "spec.yaml").read_text()))
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def same_run(path: Path, spec: Spec) -> bool:
    """Whether the run folder ``path`` was trained with ``spec``: its spec.yaml is ``spec`` as
    training saves it (``auto`` flips decided, ``units: classes`` bound to the run's classes)."""

    try:
        saved = yaml.safe_load((path / "spec.yaml").read_text())
        was = spec_from_dict(saved)
        classes = output_units(was)
    except (ArchtuneError, OSError, yaml.YAMLError):
        return False
    wanted = as_trained(spec, classes, quiet=True, input_shape=was.input_shape)
    return fingerprint(was.to_dict()) == fingerprint(wanted.to_dict())  # keys added since: defaults


def run_status(path: Path) -> str | None:
    try:
        return str(json.loads((path / "metrics.json").read_text()).get("status"))
    except (OSError, json.JSONDecodeError):
        return None


def archive(path: Path, label: str) -> Path:
    """Move a folder aside (``<name>.<label>``, numbered if taken): results are never deleted."""
    target = path.with_name(f"{path.name}.{label}")
    i = 2
    while target.exists():
        target, i = path.with_name(f"{path.name}.{label}-{i}"), i + 1
    path.rename(target)
    log.info("moved %s to %s (its spec differs from the plan's)", path, target)
    return target


def read_state(plan_dir: Path) -> dict[str, Any]:
    try:
        state = json.loads((plan_dir / STATE).read_text())
    except FileNotFoundError:
        return {"steps": {}}
    except (OSError, json.JSONDecodeError) as err:
        raise ArchtuneError(f"{plan_dir / STATE}: not readable ({err}); delete it to start the "
                            f"plan's bookkeeping afresh (its run and study folders are kept)") from None
    state.setdefault("steps", {})
    return state


def write_state(plan_dir: Path, state: dict[str, Any]) -> None:
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(plan_dir / STATE, state)


def pick_trial(trials: list[tuple[int, float, int]], rule: str, n_dev: int) -> int:
    """The trial to retrain among (number, dev accuracy, FLOPs) of complete trials: the best,
    or (``one-se``) the cheapest whose dev accuracy is within one standard error of the best
    (:func:`archtune._stats.accuracy_se`), as in Breiman's one-standard-error rule."""
    if not trials:
        raise ArchtuneError("the search has no complete trial to retrain")
    best = max(trials, key=lambda t: (t[1], -t[0]))
    if rule == "best":
        return best[0]
    p = best[1]
    se = accuracy_se(p, n_dev)
    close = [t for t in trials if t[1] >= p - se]
    return min(close, key=lambda t: (t[2], -t[1], t[0]))[0]


def retrain_choice(plan_dir: Path, entry: SearchEntry, n_dev: int) -> tuple[Any, Any, dict[str, Any]]:
    """(study, trial, spec dict) of the trial a search's retrain step trains, by the entry's
    ``retrain.pick`` rule; the spec carries ``retrain.epochs`` when set."""
    import copy


    assert entry.retrain is not None
    study, _ = open_study(study_folder(plan_dir, entry.name))
    done = [t for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE" and value_of(t) is not None]
    try:
        number = pick_trial([(t.number, float(value_of(t)), int(t.user_attrs.get("flops") or 0))
                             for t in done], entry.retrain.pick, n_dev)
    except ArchtuneError:
        raise ArchtuneError(f"search '{entry.name}' has no complete trial to retrain") from None
    trial = next(t for t in done if t.number == number)
    raw = copy.deepcopy(trial.user_attrs["spec"])
    if entry.retrain.epochs is not None:
        raw["train"]["epochs"] = entry.retrain.epochs
    return study, trial, raw
