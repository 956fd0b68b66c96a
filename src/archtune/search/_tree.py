"""A space's ``layers`` and ``train`` sections parsed into a tree of constants and dimensions.

Conditional structure:

- ``{repeat: N or a dimension, block: [layers...], name: R}`` in a list repeats the block; each
  repeat ``k`` (1-based) has its own dimensions, named ``R.k.<name>``; the count is ``R.n``.
- A choice whose values are not plain values (layers, lists, mappings) has branches; the
  dimensions inside a branch exist only when it is chosen (``<name>@<label>``).
- A labelled choice (``{choice: {sgd: {...}, adam: {...}}}``) under a key sets the key to the
  label and adds the branch's keys next to it; in a list it inserts the branch.
- In a list, a branch that is a list is spliced in (``[]`` inserts nothing).

:func:`resolve` turns the tree into a plain dict given a ``pick(dim) -> value`` function; the
same walk samples from an Optuna trial, replays a trial's parameters and enumerates a grid.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArchtuneError, short
from ..specs.layers import is_layer_name
from ._dims import KINDS, Dim, is_dim, own_name, parse_dim

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
