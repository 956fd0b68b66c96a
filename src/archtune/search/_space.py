"""Search spaces: a spec whose ``layers`` and ``train`` values may be dimensions, plus an
optional ``search:`` section of default settings. Loading validates the whole space;
:func:`resolve` walks its tree of dimensions (``_tree``) into a plain spec dict."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from collections.abc import Callable
from functools import cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from .._builtin import builtin_texts, matching
from .._files import check_nesting
from .._html import card, table
from .._validate import check_keys, kind_of
from ..config import data_config, train_config
from ..errors import ArchtuneError, did_you_mean, short
from ..specs.layers import bind_classes, normalize_layer
from ..specs.schema import SPEC_KEYS, UNBOUND_CLASSES, apply_overrides, read_spec_file
from ._settings import SearchSettings, settings
from ._tree import (
    GRID_LIMIT,
    Const,
    Ctx,
    Dim,
    DimInfo,
    DimNode,
    MapNode,
    Node,
    Parser,
    RepeatNode,
    contains_dim,
)

if TYPE_CHECKING:
    import optuna

SEARCHABLE = ("layers", "train")


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class SearchSpace:
    """A validated search space. ``raw`` is the space without its ``search:`` section;
    ``settings`` holds that section's defaults; ``dims`` lists every dimension (conditional
    ones included) in the order they are met."""

    def __init__(self, raw: dict[str, Any], *, source: str = "space"):
        if not isinstance(raw, dict):
            raise ArchtuneError(f"{source}: a search space must be a mapping, got {kind_of(raw)}")
        check_nesting(raw, source)
        raw = dict(raw)
        self.source = source
        try:
            check_keys(raw, SPEC_KEYS, source)
            self.settings: SearchSettings = settings(raw.pop("search", None), where=f"{source}: search")
            self.name = str(raw.get("name") or "space")
            raw["name"] = self.name
            for key, value in raw.items():
                if key not in SEARCHABLE and contains_dim(value):
                    raise ArchtuneError(f"{key}: search dimensions are allowed only in layers and train")
            parser = Parser()
            self._root: Node = parser.parse(raw, Ctx((), ()))
            self.infos: list[DimInfo] = parser.infos
        except ArchtuneError as err:
            msg = str(err)
            raise ArchtuneError(msg if msg.startswith(source) else f"{source}: {msg}") from None
        self.raw = raw
        # dimensions with the same name and range share one value (e.g. one dropout rate)
        unique: dict[str, Dim] = {}
        for info in self.infos:
            unique.setdefault(info.dim.name, info.dim)
        self.dims: list[Dim] = list(unique.values())
        self._check_names()
        self._check_values()
        self._check_start()

    @property
    def hash(self) -> str:
        """sha256 of the canonical JSON of ``raw`` (keys sorted, no spaces)."""
        return hashlib.sha256(canonical_json(self.raw).encode()).hexdigest()

    def dim(self, name: str) -> Dim:
        for d in self.dims:
            if d.name == name:
                return d
        raise ArchtuneError(f"{self.source}: no dimension '{name}'{did_you_mean(name, self.names)}")

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dims]

    def sample(self, trial: optuna.Trial) -> dict[str, Any]:
        """The spec dict of a candidate whose values the trial suggests (or replays)."""
        return resolve(self._root, lambda d: d.suggest(trial))

    def resolve(self, params: dict[str, Any]) -> dict[str, Any]:
        """The spec dict of the candidate with these parameter values."""
        def pick(d: Dim) -> Any:
            if d.name not in params:
                raise ArchtuneError(f"{self.source}: the candidate has no value for '{d.name}'")
            return params[d.name]

        return resolve(self._root, pick)

    def grid(self) -> list[dict[str, Any]]:
        """Every candidate's parameters, in order; a dimension inside an unchosen branch or
        repeat is not part of a candidate, so no two candidates build the same model."""
        out: list[dict[str, Any]] = []

        def visit(assigned: dict[str, Any]) -> None:
            def pick(d: Dim) -> Any:
                if d.name in assigned:
                    return assigned[d.name]
                raise Missing(d)

            try:
                resolve(self._root, pick)
            except Missing as need:
                for value in need.dim.grid_values():
                    visit({**assigned, need.dim.name: value})
                return
            out.append(assigned)
            if len(out) > GRID_LIMIT:
                raise ArchtuneError(f"{self.source}: the grid has more than {GRID_LIMIT:,} candidates; "
                                    f"use sampler random or tpe")

        try:
            visit({})
        except ArchtuneError as err:
            raise ArchtuneError(f"{self.source}: {err}" if not str(err).startswith(self.source)
                                else str(err)) from None
        return out

    def select(self, fraction: float | None, seed: int) -> tuple[list[dict[str, Any]], int]:
        """(candidates, grid size): a seeded random order of the grid, cut to ``fraction`` of
        it rounded down (at least one), so every point appears at most once."""
        import numpy as np

        grid = self.grid()
        k = len(grid) if fraction is None else max(1, math.floor(fraction * len(grid) + 1e-9))
        order = np.random.default_rng(seed).permutation(len(grid))[:k]
        return [grid[i] for i in order], len(grid)

    def max_value(self, section: str, key: str) -> Any:
        """The largest value ``section.key`` can take (a constant or a dimension's top); None
        when the key is not set at that place."""
        block = self.raw.get(section)
        value = block.get(key) if isinstance(block, dict) else None
        if not isinstance(value, dict):
            return value
        for info in self.infos:
            if info.raw_path == (section, key):
                d = info.dim
                numbers = [c for c in d.choices if isinstance(c, int | float)] or [None]
                return d.high if d.kind != "choice" else max(numbers, key=lambda v: v or 0)
        return None

    def describe(self) -> str:
        lines = [f"space '{self.name}' ({self.source}): {len(self.dims)} dimensions"]
        lines += [f"  {d.name:<32} {d.describe()}" for d in self.dims]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<SearchSpace '{self.name}': {len(self.dims)} dimensions ({', '.join(self.names[:6])}" \
            + (", ...)>" if len(self.dims) > 6 else ")>")

    def _repr_html_(self) -> str:
        return space_html(self)

    def _check_names(self) -> None:
        seen: dict[str, Dim] = {}
        for d in self.dims:
            other = seen.get(d.name)
            if other is not None and other.distribution_key() != d.distribution_key():
                raise ArchtuneError(
                    f"{self.source}: two different dimensions are named '{d.name}' ({other.where} and "
                    f"{d.where}); give one of them another 'name:'")
            seen[d.name] = d

    def _check_start(self) -> None:
        """Each ``search.start`` entry must be a whole candidate: a value in range for every
        dimension it uses, and no other names."""
        for i, params in enumerate(self.settings.start or []):
            self._check_candidate(params, f"{self.source}: search.start[{i}]")

    def _check_candidate(self, params: Any, where: str) -> None:
        if not isinstance(params, dict):
            raise ArchtuneError(f"{where}: expected a mapping of parameter names to values")
        for name in params:
            self.dim(name)  # unknown names get a did-you-mean
        used: list[str] = []

        def pick(d: Dim) -> Any:
            if d.name not in params:
                raise ArchtuneError(f"{where}: no value for '{d.name}'")
            if not d.contains(params[d.name]):
                raise ArchtuneError(f"{where}: {d.name} = {short(params[d.name])} is outside "
                                    f"{d.describe()}")
            used.append(d.name)
            return params[d.name]

        resolve(self._root, pick)
        if set(params) - set(used):
            raise ArchtuneError(f"{where}: {', '.join(sorted(set(params) - set(used)))} not used "
                                f"by this candidate")

    def _check_values(self) -> None:
        """Every value of every dimension (each choice, both ends of each range) must make a
        valid spec apart from shapes: keys, types and allowed values. A value fails only if no
        candidate with it passes, so conditions between dimensions are left to each trial."""
        rng = random.Random(0)
        for info in self.infos:
            d = info.dim
            values = list(d.choices) if d.kind == "choice" else [d.low, d.high]
            for value in values:
                forced = dict(info.requires) | {d.name: value}
                err = self._first_error(forced, rng)
                if err is not None:
                    raise ArchtuneError(f"{self.source}: with {d.name} = {_quoted(value)}: {err}")
        if not self.infos:
            err = self._first_error({}, rng)
            if err is not None:
                raise ArchtuneError(f"{self.source}: {err}")

    def _first_error(self, forced: dict[str, Any], rng: random.Random, tries: int = 40) -> str | None:
        first = None
        for attempt in range(tries):
            def pick(d: Dim, attempt: int = attempt) -> Any:
                if d.name in forced:
                    return forced[d.name]
                if attempt == 0:
                    return d.choices[0] if d.kind == "choice" else _typed(d, d.low)
                values = list(d.choices) if d.kind == "choice" else [d.low, d.high, _mid(d)]
                return _typed(d, rng.choice(values))

            try:
                check_spec_values(resolve(self._root, pick))
                return None
            except ArchtuneError as err:
                first = first or str(err)
                if not self.dims:
                    break
        return first


def _typed(d: Dim, value: Any) -> Any:
    return int(value) if d.kind == "int" else value


def _mid(d: Dim) -> Any:
    mid = math.sqrt(d.low * d.high) if d.log else (d.low + d.high) / 2
    if d.step is not None or d.kind == "int":
        step = d.step or 1
        mid = d.low + round((mid - d.low) / step) * step
    return int(mid) if d.kind == "int" else mid


class Missing(Exception):
    """Raised by a pick function when a dimension has no value yet (grid enumeration)."""

    def __init__(self, dim: Dim):
        super().__init__(dim.name)
        self.dim = dim


Pick = Callable[[Dim], Any]


def resolve(node: Node, pick: Pick) -> Any:
    """The plain value of ``node`` with every active dimension's value taken from ``pick``."""
    if isinstance(node, Const):
        return copy.deepcopy(node.value)
    if isinstance(node, DimNode):
        value = pick(node.dim)
        if node.branches is None:
            return value
        return resolve(node.branches[_index(node.dim, value)], pick)
    if isinstance(node, MapNode):
        out: dict[Any, Any] = {}
        for key, child in node.items:
            if isinstance(child, DimNode) and child.merge:
                label = pick(child.dim)
                out[key] = label
                out.update(resolve(child.branches[_index(child.dim, label)], pick) or {})
            else:
                out[key] = resolve(child, pick)
        return out
    if isinstance(node, RepeatNode):
        n = pick(node.count) if isinstance(node.count, Dim) else node.count
        return [x for block in node.blocks[:n] for x in resolve(block, pick)]
    items: list[Any] = []
    for child in node.items:
        value = resolve(child, pick)
        if isinstance(child, RepeatNode) or (isinstance(child, DimNode) and child.branches is not None
                                             and isinstance(value, list | type(None))):
            items.extend(value or [])
        else:
            items.append(value)
    return items


def _index(dim: Dim, value: Any) -> int:
    for i, c in enumerate(dim.choices):
        if type(c) is type(value) and c == value:
            return i
    raise ArchtuneError(f"'{dim.name}' = {short(value)} is not one of its choices {list(dim.choices)}")



def check_spec_values(raw: dict[str, Any]) -> None:
    """Validate a resolved spec dict like ``spec_from_dict`` does, except for shapes."""
    check_keys(raw, SPEC_KEYS, "spec")
    layers = raw.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ArchtuneError("'layers' must be a non-empty list of layers")
    for i, entry in enumerate(layers):
        normalize_layer(bind_classes(entry, UNBOUND_CLASSES)[0], i)
    train_config(raw.get("train"))
    data_config(raw.get("data"))


@cache
def _builtin() -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in map(yaml.safe_load, builtin_texts("archtune.search").values())}


def list_spaces(pattern: str = "*") -> list[str]:
    """Names of the built-in search spaces matching a glob pattern."""
    return matching(_builtin(), pattern)


def load_space(name_or_path: str | Path | dict[str, Any] | SearchSpace,
               overrides: list[str] | None = None) -> SearchSpace:
    """Load and validate a search space: a built-in name, a YAML/JSON file or a dict.

    ``overrides`` are ``section.key=value`` strings (``data.dataset=my.npz``,
    ``train.epochs=5``), applied before validation.
    """
    if isinstance(name_or_path, SearchSpace):
        if overrides:
            raise ArchtuneError("overrides apply when a space is loaded, not to a SearchSpace")
        return name_or_path
    raw, source = raw_space(name_or_path)
    if overrides:
        search_section = raw.pop("search", None)
        raw = apply_overrides(raw, overrides)
        if search_section is not None:
            raw["search"] = search_section
    return SearchSpace(raw, source=source)


def raw_space(name_or_path: str | Path | dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(unvalidated dict, source) of a built-in space name, a YAML/JSON file or a dict."""
    if isinstance(name_or_path, dict):
        check_nesting(name_or_path, "space")
        return copy.deepcopy(name_or_path), "space"
    text = str(name_or_path)
    if text in _builtin():
        return json.loads(json.dumps(_builtin()[text])), text
    path = Path(text)
    if path.suffix in (".yaml", ".yml", ".json") or path.exists():
        return read_spec_file(path), str(path)
    raise ArchtuneError(
        f"unknown search space '{text}'{did_you_mean(text, _builtin())}: not a built-in space "
        f"({', '.join(list_spaces())}) nor a .yaml/.json file")


def space_html(space: SearchSpace) -> str:
    try:
        grid = f"{len(space.grid()):,} candidates"
    except ArchtuneError:
        grid = "not a grid (continuous dimensions)"
    s = space.settings
    facts = [("dimensions", str(len(space.dims))), ("grid", grid),
             ("strategy", f"sampler {escape(str(s.sampler or 'tpe'))}, pruner "
                          f"{escape(str(s.pruner_name))}, {s.trials or 'default'} trials")]
    rows = [[d.name, d.kind, d.describe()] for d in space.dims]
    return card(f"Search space {escape(space.name)}", facts,
                below=[table(["dimension", "kind", "values"], rows, max_rows=60)])


def _quoted(value: Any, limit: int = 60) -> str:
    """A dimension's value as JSON, cut to ``limit`` characters (an error message stays short)."""
    try:
        text = json.dumps(value)
    except ValueError:  # an integer too long to print
        return short(value, limit)
    return text if len(text) <= limit else text[: limit - 3] + "..."
