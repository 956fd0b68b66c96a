"""archtune's imports point down one list of layers, and no import circle exists.

Every import counts: at module level, inside functions, under ``if TYPE_CHECKING:``, through a
package's lazy face (``from ..search import retrain`` is an arrow to the module that defines
``retrain``) and through ``importlib.import_module("archtune....")`` with a literal name.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import archtune

ROOT = Path(archtune.__file__).parent

# Bottom to top. A unit is a top-level module or a subpackage of archtune; it may import units
# of its own layer or of the layers below it, never above. The CLI layer holds the verbs:
# archtune.cli, archtune.commands (the verbs), __main__ and the package face.
LAYERS: list[set[str]] = [
    {"errors", "_version", "log", "_files", "_validate", "config", "_stats", "_process",
     "_builtin", "_lazy", "_html", "_svg"},
    {"specs", "data"},
    {"models", "callbacks"},
    {"tracking"},
    {"training"},
    {"evaluate", "_ensemble", "_factory"},
    {"search"},
    {"tuning"},
    {"notebook", "dashboard", "report", "serve"},
    {"plan"},
    {"cli"},
]
CLI_UNITS = {"cli", "commands", "__main__"}


@dataclass(frozen=True)
class Arrow:
    source: str  # importing module
    target: str  # imported module
    line: int
    type_checking: bool  # under ``if TYPE_CHECKING:``: checked for direction, never runs

    def __str__(self) -> str:
        return f"{self.source}:{self.line} -> {self.target}"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = ["archtune", *path.relative_to(ROOT).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


def unit(module: str) -> str:
    """The layer unit of an archtune module."""
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in CLI_UNITS:
        return "cli"
    return parts[1]


def layer_of(name: str) -> int:
    for i, units in enumerate(LAYERS):
        if name in units:
            return i
    raise AssertionError(f"unit '{name}' is in no layer: add it to LAYERS in {__file__}")


def _lazy_exports(tree: ast.Module, package: str) -> dict[str, str]:
    """A lazy face's ``_EXPORTS = {name: module}`` (absolute or relative module names)."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_EXPORTS" for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            out = {}
            for k, v in zip(node.value.keys, node.value.values, strict=True):
                if isinstance(k, ast.Constant) and isinstance(v, ast.Constant):
                    target = v.value
                    if target.startswith("."):
                        target = package + target
                    elif not target.startswith("archtune"):
                        target = f"{package}.{target}"
                    out[k.value] = target
            return out
    return {}


def _walk(tree: ast.AST) -> list[tuple[ast.AST, bool]]:
    """Every node, with whether it sits under ``if TYPE_CHECKING:``."""
    found, todo = [], [(tree, False)]
    while todo:
        node, tc = todo.pop()
        found.append((node, tc))
        for child in ast.iter_child_nodes(node):
            under = (isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                     and child in node.body)
            todo.append((child, tc or under))
    return found


def arrows() -> list[Arrow]:
    modules = _modules()
    trees = {m: ast.parse(path.read_text()) for m, (path, _) in modules.items()}
    exports = {m: _lazy_exports(trees[m], m) for m, (_, pkg) in modules.items() if pkg}
    out: list[Arrow] = []
    for module, (_, is_package) in modules.items():
        for node, tc in _walk(trees[module]):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    here = module.split(".") if is_package else module.split(".")[:-1]
                    here = here[:len(here) - node.level + 1]
                    base = ".".join(here + ([node.module] if node.module else []))
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    if sub in modules:  # a submodule: its parent package is not the arrow
                        targets.append(sub)
                    else:
                        targets.append(base)
                        if alias.name in exports.get(base, {}):
                            targets.append(exports[base][alias.name])
            elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
                  and node.args and isinstance(node.args[0], ast.Constant)):
                targets = [str(node.args[0].value)]
            for target in dict.fromkeys(targets):
                if target in modules and target != module:
                    out.append(Arrow(module, target, getattr(node, "lineno", 0), tc))
    # a lazy face imports what it exports, on first use
    for face, names in exports.items():
        for target in set(names.values()):
            if target in modules:
                out.append(Arrow(face, target, 0, False))
    return out


def upward(found: list[Arrow]) -> list[str]:
    bad = []
    for a in found:
        src, dst = unit(a.source), unit(a.target)
        if layer_of(dst) > layer_of(src):
            bad.append(f"{a}  ({src}, layer {layer_of(src)} -> {dst}, layer {layer_of(dst)})")
    return bad


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def graph_of(found: list[Arrow], key=lambda m: m, *, type_checking: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for a in found:
        if a.type_checking and not type_checking:
            continue
        src, dst = key(a.source), key(a.target)
        if src != dst:
            graph.setdefault(src, set()).add(dst)
    return graph


def test_the_checkers_find_what_they_look_for() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    up = Arrow("archtune.specs.schema", "archtune.search._space", 3, True)
    assert upward([up]) and not upward([Arrow("archtune.search._space", "archtune.specs.schema", 3, False)])
    assert unit("archtune.commands.search") == "cli" and unit("archtune") == "cli"


def test_the_arrows_include_functions_faces_and_type_checking() -> None:
    found = {(a.source, a.target, a.type_checking) for a in arrows()}
    # inside a function
    assert ("archtune.cli", "archtune.specs", False) in found  # load_spec inside a verb
    # through a lazy face: archtune.search's _EXPORTS
    assert any(s == "archtune.search" and t == "archtune.search._space" for s, t, _ in found)
    # under TYPE_CHECKING
    assert any(tc for _, _, tc in found)


def test_every_unit_is_in_a_layer() -> None:
    for module in _modules():
        layer_of(unit(module))


def test_imports_point_down_the_layers() -> None:
    bad = upward(arrows())
    assert not bad, "imports that point up the layers:\n" + "\n".join(bad)


def test_no_import_circle_between_units() -> None:
    cycle = find_cycle(graph_of(arrows(), unit, type_checking=True))
    assert cycle is None, "circle between units: " + " -> ".join(cycle or [])


def test_no_import_circle_between_modules() -> None:
    """Counting imports inside functions; TYPE_CHECKING imports never run, so they are left out."""
    cycle = find_cycle(graph_of(arrows(), type_checking=False))
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])
