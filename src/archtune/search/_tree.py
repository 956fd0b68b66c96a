"""Search dimensions, and the tree they form in a space's ``layers`` and ``train`` sections.

A dimension is ``{choice: [...]}``, ``{int: [lo, hi], step, log}`` or ``{float: [lo, hi], log}``.
A :class:`Dim` validates itself when parsed (the error names the place in the space file and
the bad value), turns into an Optuna distribution, suggests a value from a trial, and lists
its values for grid search. Parsing never imports Optuna.

Conditional structure:

- ``{repeat: N or a dimension, block: [layers...], name: R}`` in a list repeats the block; each
  repeat ``k`` (1-based) has its own dimensions, named ``R.k.<name>``; the count is ``R.n``.
- A choice whose values are not plain values (layers, lists, mappings) has branches; the
  dimensions inside a branch exist only when it is chosen (``<name>@<label>``).
- A labelled choice (``{choice: {sgd: {...}, adam: {...}}}``) under a key sets the key to the
  label and adds the branch's keys next to it; in a list it inserts the branch.
- In a list, a branch that is a list is spliced in (``[]`` inserts nothing).

:class:`Parser` turns the sections into a tree of nodes; ``archtune.search._space.resolve``
walks it to sample from a trial, replay a trial's parameters or enumerate a grid.
"""

from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ArchtuneError, short, unknown
from ..specs.layers import is_layer_name

if TYPE_CHECKING:
    import optuna

KINDS = ("choice", "int", "float")
OPTIONS = {"choice": ("name",), "int": ("name", "step", "log"), "float": ("name", "step", "log")}
GRID_LIMIT = 100_000  # the most candidates a grid may have


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def is_dim(value: Any) -> bool:
    """A mapping is a dimension when it has one of the keys choice, int or float."""
    return isinstance(value, dict) and any(k in value for k in KINDS)


@dataclass(frozen=True)
class Dim:
    """One searched value. ``choices`` are the parameter values Optuna sees: the values
    themselves for scalar choices, else branch labels (the mapping's keys, or 0, 1, ...)."""

    name: str
    kind: str
    where: str
    choices: tuple[Any, ...] = ()
    low: float = 0
    high: float = 0
    step: float | None = None
    log: bool = False

    def distribution(self) -> optuna.distributions.BaseDistribution:
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "choice":
            return CategoricalDistribution(list(self.choices))
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return FloatDistribution(self.low, self.high, log=self.log, step=self.step)

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def grid_values(self) -> list[Any]:
        """Every value of the dimension, in order; continuous ranges have none."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "float" and self.step is None:
            raise ArchtuneError(
                f"{self.where}: '{self.name}' is a continuous range, which a grid cannot list; give it "
                f"a step or make it a choice")
        n = round((self.high - self.low) / (self.step or 1))
        if n >= GRID_LIMIT:
            raise ArchtuneError(f"{self.where}: '{self.name}' has more than {GRID_LIMIT:,} values, "
                                f"more than a grid can list; use sampler random or tpe")
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        return [float(f"{self.low + i * self.step:.12g}") for i in range(n + 1)]

    def distribution_key(self) -> tuple[Any, ...]:
        return (self.kind, self.choices, self.low, self.high, self.step, self.log)

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return any(_same(value, c) for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return self.low - 1e-12 <= value <= self.high + 1e-12

    def describe(self) -> str:
        if self.kind == "choice":
            return "choice of " + ", ".join(json.dumps(c) for c in self.choices)
        extra = (f", step {self.step:g}" if self.step else "") + (", log scale" if self.log else "")
        return f"{self.kind} in [{self.low:g}, {self.high:g}]{extra}"


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _number(value: Any, integer: bool) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if integer else isinstance(value, int | float) and math.isfinite(value)


def _choices(values: Any, where: str) -> tuple[tuple[Any, ...], list[Any] | None, bool]:
    """Return (parameter values, branch values or None, labelled)."""
    if isinstance(values, dict):
        if not values:
            raise ArchtuneError(f"{where}: empty choice; give at least one value")
        labels = tuple(values)
        bad = [k for k in labels if not isinstance(k, str)]
        if bad:
            raise ArchtuneError(f"{where}: the labels of a choice must be text, got {short(bad[0])} "
                                f"(quote it)")
        return labels, list(values.values()), True
    if not isinstance(values, list):
        raise ArchtuneError(f"{where}: 'choice' takes a list of values (or a mapping of labelled "
                            f"branches), got {short(values)}")
    if not values:
        raise ArchtuneError(f"{where}: empty choice; give at least one value")
    seen: list[str] = []
    for v in values:
        key = json.dumps([type(v).__name__, v], sort_keys=True, default=str)
        if key in seen:
            raise ArchtuneError(f"{where}: the value {json.dumps(v)} appears twice in the choice")
        seen.append(key)
    if all(is_scalar(v) for v in values):
        return tuple(values), None, False
    return tuple(range(len(values))), list(values), False


def _parses(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _range(kind: str, raw: dict[str, Any], where: str) -> tuple[float, float, float | None, bool]:
    bounds, step, log = raw[kind], raw.get("step"), raw.get("log", False)
    integer = kind == "int"
    what = "integers" if integer else "numbers"
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(_number(b, integer) for b in bounds):
        hint = ""
        if isinstance(bounds, list) and any(isinstance(b, str) and _parses(b) for b in bounds):
            hint = " (YAML reads 1e-4 as text: write 1.0e-4)"
        raise ArchtuneError(f"{where}: '{kind}' takes [low, high] as two {what}, got {short(bounds)}{hint}")
    low, high = bounds
    if not low < high:
        raise ArchtuneError(f"{where}: empty range [{low}, {high}]; low must be below high")
    if not isinstance(log, bool):
        raise ArchtuneError(f"{where}.log: expected true or false, got {short(log)}")
    if log and low <= 0:
        raise ArchtuneError(f"{where}: a log-scale range must be above 0, got [{low}, {high}]")
    if step is not None:
        if not _number(step, integer) or step <= 0:
            raise ArchtuneError(f"{where}.step: expected a positive {'integer' if integer else 'number'}, "
                                f"got {short(step)}")
        if log and not (integer and step == 1):
            raise ArchtuneError(f"{where}: 'log' and 'step' cannot be combined (Optuna samples a log "
                                f"range continuously)")
        n = (high - low) / step
        if abs(n - round(n)) > 1e-9:
            raise ArchtuneError(f"{where}: the range [{low}, {high}] is not a whole number of steps "
                                f"of {step}")
    return low, high, step, log


def own_name(raw: dict[str, Any], where: str) -> str | None:
    """The ``name:`` a dimension (or repeat) gives itself, checked; None when it has none."""
    name = raw.get("name")
    if name is not None and (not isinstance(name, str) or not name or any(c.isspace() for c in name)):
        raise ArchtuneError(f"{where}.name: expected a name without spaces, got {short(name)}")
    return name


def parse_dim(raw: dict[str, Any], where: str, name: str) -> tuple[Dim, list[Any] | None, bool]:
    """Validate a dimension mapping; return (dim, branch values or None, labelled)."""
    kinds = [k for k in KINDS if k in raw]
    if len(kinds) > 1:
        raise ArchtuneError(f"{where}: a dimension has one of {', '.join(KINDS)}, not {' and '.join(kinds)}")
    kind = kinds[0]
    for key in raw:
        if key != kind and key not in OPTIONS[kind]:
            raise unknown(f"option of a '{kind}' dimension", str(key), OPTIONS[kind], where)
    if kind == "choice":
        choices, branches, labelled = _choices(raw["choice"], where)
        return Dim(name, kind, where, choices=choices), branches, labelled
    low, high, step, log = _range(kind, raw, where)
    return Dim(name, kind, where, low=low, high=high, step=step, log=log), None, False


MAX_REPEAT = 16


@dataclass
class Const:
    value: Any


@dataclass
class MapNode:
    items: list[tuple[Any, Node]]


@dataclass
class SeqNode:
    items: list[Node]


@dataclass
class DimNode:
    dim: Dim
    branches: list[Node] | None = None
    merge: bool = False  # labelled choice under a key: the key gets the label, the branch merges


@dataclass
class RepeatNode:
    count: Dim | int
    blocks: list[SeqNode]


Node = Const | MapNode | SeqNode | DimNode | RepeatNode


@dataclass
class DimInfo:
    """Where a dimension came from: its template's path in the raw space (shared by all repeats)
    and the choices that must be made for it to be active."""

    dim: Dim
    raw_path: tuple[Any, ...]
    requires: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Ctx:
    names: tuple[str, ...]  # path used for default names (relative to a repeat block)
    raw_path: tuple[Any, ...]  # exact path of the value in the raw space
    prefix: str = ""  # "R.k." inside repeat k
    suffix: str = ""  # "@label" inside a branch
    requires: tuple[tuple[str, Any], ...] = ()

    @property
    def where(self) -> str:
        return ".".join(str(p) for p in self.raw_path)

    def child(self, key: Any, named: bool = True) -> Ctx:
        names = self.names + (str(key),) if named else self.names
        return Ctx(names, self.raw_path + (key,), self.prefix, self.suffix, self.requires)


@dataclass
class Parser:
    infos: list[DimInfo] = field(default_factory=list)

    def parse(self, value: Any, ctx: Ctx, in_list: bool = False) -> Node:
        if not contains_dim(value):
            return Const(value)
        if is_dim(value):
            return self._dim(value, ctx, in_list, merge_ok=False)
        if isinstance(value, list):
            return SeqNode([self.parse(v, ctx.child(i), in_list=True) for i, v in enumerate(value)])
        if in_list and isinstance(value, dict) and "repeat" in value:
            return self._repeat(value, ctx)
        return self._map(value, ctx)

    def _map(self, value: dict[Any, Any], ctx: Ctx) -> MapNode:
        items: list[tuple[Any, Node]] = []
        for key, v in value.items():
            sub = ctx.child(key, named=not is_layer_name(key))
            if is_dim(v):
                node = self._dim(v, sub, in_list=False, merge_ok=True, parent=ctx)
                if node.merge:
                    _check_merge(node, key, value, sub.where)
                items.append((key, node))
            else:
                items.append((key, self.parse(v, sub)))
        return MapNode(items)

    def _dim(self, raw: dict[str, Any], ctx: Ctx, in_list: bool, merge_ok: bool,
             parent: Ctx | None = None) -> DimNode:
        own = own_name(raw, ctx.where)
        name = ctx.prefix + (own if own else ".".join(ctx.names) + ctx.suffix)
        dim, branch_values, labelled = parse_dim(raw, ctx.where, name)
        self.infos.append(DimInfo(dim, ctx.raw_path, ctx.requires))
        if branch_values is None:
            return DimNode(dim)
        merge = labelled and merge_ok
        branches = []
        for label, value in zip(dim.choices, branch_values, strict=True):
            base = parent if merge and parent is not None else ctx
            sub = Ctx(base.names, ctx.raw_path + ("choice", label), base.prefix,
                      base.suffix + f"@{label}", base.requires + ((dim.name, label),))
            if merge and value is not None and not isinstance(value, dict):
                raise ArchtuneError(
                    f"{sub.where}: a labelled choice under a key adds the branch's keys next to it, so "
                    f"each branch must be a mapping (or {{}}); to choose between values use a list: "
                    f"choice: [a, b]")
            branches.append(self._map(value, sub) if merge and value else
                            Const({}) if merge else self.parse(value, sub, in_list=in_list))
        return DimNode(dim, branches, merge)

    def _repeat(self, raw: dict[str, Any], ctx: Ctx) -> RepeatNode:
        for key in raw:
            if key not in ("repeat", "block", "name"):
                raise ArchtuneError(f"{ctx.where}: unknown key '{key}' in a repeat; it takes repeat, "
                                    f"block and name")
        block = raw.get("block")
        if not isinstance(block, list) or not block:
            raise ArchtuneError(f"{ctx.where}.block: expected a non-empty list of layers to repeat")
        rname = ctx.prefix + (own_name(raw, ctx.where) or ".".join(ctx.names))
        count_raw = raw["repeat"]
        count: Dim | int
        if is_dim(count_raw):
            node = self._dim(count_raw, Ctx((f"{rname}.n",), ctx.raw_path + ("repeat",), "",
                                            "", ctx.requires), in_list=False, merge_ok=False)
            count = node.dim
            values = list(count.choices) if count.kind == "choice" else \
                [count.low, count.high] if count.kind == "int" else [-1]
            if any(not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_REPEAT
                   for v in values):
                raise ArchtuneError(f"{ctx.where}.repeat: the number of repeats must be an integer "
                                    f"from 0 to {MAX_REPEAT}")
            top = max(count.grid_values())  # at most MAX_REPEAT + 1 values
        elif isinstance(count_raw, int) and not isinstance(count_raw, bool) and 0 <= count_raw <= MAX_REPEAT:
            count = top = count_raw
        else:
            raise ArchtuneError(f"{ctx.where}.repeat: expected an integer from 0 to {MAX_REPEAT} or a "
                                f"dimension such as {{int: [1, 3]}}, got {short(count_raw)}")
        blocks = []
        for k in range(1, top + 1):
            need = ((count.name, top),) if isinstance(count, Dim) else ()
            sub = Ctx((), ctx.raw_path + ("block",), f"{rname}.{k}.", ctx.suffix, ctx.requires + need)
            blocks.append(SeqNode([self.parse(v, sub.child(i), in_list=True) for i, v in enumerate(block)]))
        return RepeatNode(count, blocks)


def _check_merge(node: DimNode, key: Any, siblings: dict[Any, Any], where: str) -> None:
    for label, branch in zip(node.dim.choices, node.branches or [], strict=True):
        keys = [k for k, _ in branch.items] if isinstance(branch, MapNode) else list(branch.value or {})
        clash = [k for k in keys if k in siblings or k == key]
        if clash:
            raise ArchtuneError(f"{where}: branch '{label}' sets '{clash[0]}', which is already set "
                                f"next to it")


def contains_dim(value: Any) -> bool:
    if is_dim(value):
        return True
    if isinstance(value, dict):
        if "repeat" in value:
            return True
        _check_typo(value)
        return any(contains_dim(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_dim(v) for v in value)
    return False


def _check_typo(value: dict[Any, Any]) -> None:
    """A one-key mapping whose key is close to a dimension keyword is almost surely a typo."""
    if len(value) != 1:
        return
    (key,) = value
    if isinstance(key, str) and not is_layer_name(key):
        close = difflib.get_close_matches(key, KINDS, n=1, cutoff=0.75)
        if close:
            raise ArchtuneError(f"'{key}: {short(value[key])}': unknown dimension '{key}' "
                                f"(did you mean '{close[0]}'?); dimensions are choice, int and float")
