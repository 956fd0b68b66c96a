"""Experiment plans: a YAML file listing the runs, searches and final tests of a whole study.

::
    name: homework
    data: {dataset: fashion-mnist}            # any data: section of a spec, for every entry
    set: [train.seed=0]                       # overrides for every run and search (optional)
    runs:                                     # name -> spec and overrides
      mlp: {spec: mlp-medium}
      cnn: {spec: cnn-small, set: [train.epochs=20]}
    searches:                                 # name -> space and search options
      tuned: {space: seed-cnn-grid, sampler: grid, fraction: 0.1, retrain: true}
    test: [mlp, cnn, tuned]                   # final test evaluation, once, at the end

Loading checks every key (with a did-you-mean), every spec and space (with the plan's
overrides applied) and every name in ``test``, before anything runs.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._builtin import builtin_texts, matching
from .._files import check_nesting, parse_yaml, read_data
from .._validate import check_keys
from ..errors import ArchtuneError, did_you_mean, short
from ..search import settings

PLAN_KEYS = ("name", "description", "data", "set", "runs", "searches", "test", "overrides")
RUN_KEYS = ("spec", "set", "note")
SEARCH_OPTIONS = ("sampler", "pruner", "trials", "timeout", "target", "fraction", "train_subset",
                  "epochs", "seed", "max_params", "max_flops", "max_latency_ms", "objectives")
SEARCH_KEYS = ("space", "set", "note", "dev_subset", "retrain", *SEARCH_OPTIONS)
RETRAIN_KEYS = ("pick", "epochs")
PICKS = ("best", "one-se")  # one-se: the cheapest trial within one standard error of the best
NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
PLAN_OVERRIDES = ("runs", "searches", "test", "description")  # --set keys that edit the plan


@dataclass
class RunEntry:
    name: str
    spec: str  # a built-in spec name or a YAML/JSON path
    set: list[str] = field(default_factory=list)
    note: str = ""


@dataclass
class Retrain:
    pick: str = "best"  # best | one-se
    epochs: int | None = None  # None: the trial spec's full epochs


@dataclass
class SearchEntry:
    name: str
    space: str  # a built-in space name or a YAML/JSON path
    set: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)  # search() options (sampler, ...)
    dev_subset: int | None = None  # score trials on a stratified subset of the dev split
    retrain: Retrain | None = None
    note: str = ""


@dataclass
class Plan:
    name: str
    description: str
    runs: list[RunEntry]
    searches: list[SearchEntry]
    test: list[str]
    overrides: list[str]  # the plan's data: and set: sections, as overrides
    extra: list[str]  # the caller's overrides (command line), applied last
    source: str
    folder: Path | None  # where relative spec and space paths are read from
    raw: dict[str, Any] = field(default_factory=dict)  # the plan dict, caller's edits applied
    edits: list[str] = field(default_factory=list)  # the caller's edits of the plan itself

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.runs] + [s.name for s in self.searches]


def _builtin() -> dict[str, str]:
    return builtin_texts("archtune.plan")


def list_plans(pattern: str = "*") -> list[str]:
    """Names of the built-in plans matching a glob pattern."""
    return matching(_builtin(), pattern)


def builtin_text(name: str) -> str:
    """The YAML text of a built-in plan, comments included."""
    if name not in _builtin():
        raise ArchtuneError(f"unknown built-in plan '{name}'{did_you_mean(name, _builtin())}")
    return _builtin()[name]


def _read(name_or_path: str | Path) -> tuple[dict[str, Any], str, Path | None]:
    text = str(name_or_path)
    if text in _builtin():
        return parse_yaml(_builtin()[text], text), text, None
    path = Path(text)
    if path.is_dir() and (path / "plan.yaml").is_file():
        path = path / "plan.yaml"  # a plan folder: the plan it ran
    if not path.is_file():
        raise ArchtuneError(f"unknown plan '{text}'{did_you_mean(text, _builtin())}: not a built-in "
                            f"plan ({', '.join(list_plans())}) nor a YAML file")
    return read_data(path, "plan"), str(path), path.parent


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or value[0] in "_-" or len(value) > 80 \
            or any(c not in NAME_CHARS for c in value):
        raise ArchtuneError(f"{where}: name {short(value)}: use letters, digits, '_' and '-' "
                            f"(at most 80, not starting with '_' or '-')")
    return value


def _sets(value: Any, where: str) -> list[str]:
    """``set:`` as a list of KEY=VALUE strings, or a mapping {KEY: VALUE}."""
    if value is None:
        return []
    if isinstance(value, dict):
        return [f"{k}={json.dumps(v)}" for k, v in value.items()]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and "=" in v for v in value):
        raise ArchtuneError(f"{where}.set: expected a list of KEY=VALUE overrides "
                            f"(e.g. [train.epochs=20]) or a mapping, got {short(value)}")
    return list(value)


def _entries(raw: Any, where: str) -> dict[str, dict[str, Any]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ArchtuneError(f"{where}: expected a mapping of names to entries, got {short(raw)}")
    out = {}
    for name, entry in raw.items():
        _name(name, f"{where}.{name}")
        if isinstance(entry, str):
            entry = {"spec" if where.endswith("runs") else "space": entry}
        if not isinstance(entry, dict):
            raise ArchtuneError(f"{where}.{name}: expected a mapping, got {short(entry)}")
        out[str(name)] = entry
    return out


def _run(name: str, entry: dict[str, Any], where: str) -> RunEntry:
    check_keys(entry, RUN_KEYS, where)
    if not isinstance(entry.get("spec"), str):
        raise ArchtuneError(f"{where}: 'spec' (a built-in spec or a YAML file) is required")
    return RunEntry(name, entry["spec"], _sets(entry.get("set"), where), str(entry.get("note", "")))


def _retrain(value: Any, where: str) -> Retrain | None:
    if value is None or value is False:
        return None
    if value is True:
        return Retrain()
    if not isinstance(value, dict):
        raise ArchtuneError(f"{where}.retrain: expected true, false or a mapping with "
                            f"{' and '.join(RETRAIN_KEYS)}, got {short(value)}")
    check_keys(value, RETRAIN_KEYS, f"{where}.retrain")
    pick = value.get("pick", "best")
    if pick not in PICKS:
        raise ArchtuneError(f"{where}.retrain.pick: unknown value {short(pick)}"
                            f"{did_you_mean(str(pick), PICKS)}; expected one of: {', '.join(PICKS)}")
    epochs = value.get("epochs")
    if epochs is not None and (not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1):
        raise ArchtuneError(f"{where}.retrain.epochs: expected a positive integer, got {short(epochs)}")
    return Retrain(pick, epochs)


def _search(name: str, entry: dict[str, Any], where: str) -> SearchEntry:
    check_keys(entry, SEARCH_KEYS, where)
    if not isinstance(entry.get("space"), str):
        raise ArchtuneError(f"{where}: 'space' (a built-in search space or a YAML file) is required")
    options = {k: entry[k] for k in SEARCH_OPTIONS if k in entry}
    settings(options, where=where)  # types and ranges checked now
    dev = entry.get("dev_subset")
    if dev is not None and (not isinstance(dev, int) or isinstance(dev, bool) or dev < 10):
        raise ArchtuneError(f"{where}.dev_subset: expected an integer >= 10, got {short(dev)}")
    return SearchEntry(name, entry["space"], _sets(entry.get("set"), where), options, dev,
                       _retrain(entry.get("retrain"), where), str(entry.get("note", "")))


def _tests(value: Any, plan: Plan, where: str) -> list[str]:
    if value is None:
        return []
    if value == "all":
        return [r.name for r in plan.runs] + [s.name for s in plan.searches if s.retrain]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ArchtuneError(f"{where}.test: expected a list of run and search names (or 'all'), "
                            f"got {short(value)}")
    for name in value:
        if name not in plan.names:
            raise ArchtuneError(f"{where}.test: no run or search named '{name}'"
                                f"{did_you_mean(name, plan.names)}")
        search = next((s for s in plan.searches if s.name == name), None)
        if search is not None and search.retrain is None:
            raise ArchtuneError(f"{where}.test: '{name}' is a search without 'retrain'; only a "
                                f"retrained model can be tested (add retrain: true)")
    if len(set(value)) != len(value):
        raise ArchtuneError(f"{where}.test: a name is listed twice")
    return list(value)


def parse_plan(raw: Any, *, source: str = "plan", folder: Path | None = None,
               overrides: list[str] | None = None) -> Plan:
    """Validate a plan dict (keys, names, options); specs and spaces are checked by
    :func:`archtune.plan.steps.resolve`."""
    if not isinstance(raw, dict):
        raise ArchtuneError(f"{source}: a plan must be a mapping with 'runs' and/or 'searches'")
    check_nesting(raw, source)  # before copying or printing any of it
    check_keys(raw, PLAN_KEYS, source)
    name = _name(raw.get("name") or (Path(source).stem if folder else None), f"{source}: name")
    where = f"plan '{name}'"
    data = raw.get("data") or {}
    if not isinstance(data, dict):
        raise ArchtuneError(f"{where}.data: expected a mapping (a spec's data: section), got {short(data)}")
    sets = [f"data.{k}={json.dumps(v)}" for k, v in data.items()] + _sets(raw.get("set"), where)
    runs = [_run(n, e, f"{where}.runs.{n}") for n, e in _entries(raw.get("runs"), f"{where}.runs").items()]
    searches = [_search(n, e, f"{where}.searches.{n}")
                for n, e in _entries(raw.get("searches"), f"{where}.searches").items()]
    last = _sets(raw.get("overrides"), f"{where}.overrides")  # what --set added, saved with a run
    plan = Plan(name, str(raw.get("description") or ""), runs, searches, [], sets,
                last + list(overrides or []), source, folder, copy.deepcopy(raw))
    if not runs and not searches:
        raise ArchtuneError(f"{where}: no runs and no searches; nothing to do")
    both = {r.name for r in runs} & {s.name for s in searches}
    if both:
        raise ArchtuneError(f"{where}: '{sorted(both)[0]}' names both a run and a search; "
                            f"names must be unique")
    plan.test = _tests(raw.get("test"), plan, where)
    return plan


def edit_plan(raw: dict[str, Any], item: str) -> None:
    """Apply one ``runs.NAME.KEY=VALUE`` / ``searches.NAME.KEY=VALUE`` / ``test=[...]``
    override to a plan dict (the value is read as YAML)."""
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node: Any = raw
    for depth, part in enumerate(parts[:-1]):
        if not isinstance(node, dict):
            raise ArchtuneError(f"--set {short(item)}: '{'.'.join(parts[:depth])}' is not a mapping")
        if depth == 1 and part not in node:
            what = {"runs": "run", "searches": "search"}.get(parts[0], parts[0])
            raise ArchtuneError(f"--set {short(item)}: the plan has no {what} '{part}'"
                                f"{did_you_mean(part, node)}")
        if depth == 1 and isinstance(node[part], str):
            node[part] = {"spec" if parts[0] == "runs" else "space": node[part]}
        node = node.setdefault(part, {})
    if not isinstance(node, dict):
        raise ArchtuneError(f"--set {short(item)}: '{'.'.join(parts[:-1])}' is not a mapping")
    node[parts[-1]] = parse_yaml(value, f"--set {short(key)}")


def load_plan(name_or_path: str | Path, overrides: list[str] | None = None) -> Plan:
    """Load and validate a plan: a built-in name (``homework``), a YAML file, or a plan folder
    (its ``plan.yaml``).

    ``overrides`` are ``KEY=VALUE`` strings: ``train.*`` and ``data.*`` ones apply to every run
    and search, after the plan's own; ``runs.NAME.KEY``, ``searches.NAME.KEY``, ``test`` and
    ``description`` ones edit the plan itself (``searches.tuned.train_subset=2000``).
    """
    raw, source, folder = _read(name_or_path)
    specs = []
    for item in overrides or []:
        if "=" not in item:
            raise ArchtuneError(f"--set {short(item)}: expected KEY=VALUE, e.g. train.epochs=1")
        if item.split("=", 1)[0].split(".")[0] in PLAN_OVERRIDES and isinstance(raw, dict):
            edit_plan(raw, item)
        else:
            specs.append(item)
    plan = parse_plan(raw, source=source, folder=folder, overrides=specs)
    plan.edits = [o for o in overrides or [] if o not in specs]
    return plan
