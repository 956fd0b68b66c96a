"""Property-based fuzzing of experiment plans: the built-in plan mutated (as a dict, as YAML), its
file's bytes damaged, and --set overrides of any shape. Loading (and resolving the specs and
spaces it names) succeeds or raises one one-line ArchtuneError, never another exception.
Fixed and random parts, dropped cases counted: see tests/_fuzz.py."""

from __future__ import annotations

import copy
import traceback
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import strategies as st

from archtune.errors import ArchtuneError
from archtune.plan import builtin_text, load_plan, parse_plan, resolve
from tests._fuzz import PARTS, Drop, KnownBug, run_fuzz
from tests.test_fuzz_inputs import (  # noqa: F401 - memory_cap: a fixture used here too
    CHUNKS,
    ECHO_NEWLINE_BUG,
    EXTREME,
    ODD,
    WHOLE,
    _get,
    _nest,
    _paths,
    _set,
    memory_cap,
)

HOMEWORK = yaml.safe_load(builtin_text("homework"))
TEXT = builtin_text("homework")
NAMES = ["mlp-small", "cnn-grid", "deep-relu", "nope", "", "runs", "a.b"]
KEYS = st.one_of(
    st.sampled_from(["train.epochs", "data.dataset", "data.dev_fraction", "test", "description",
                     "name", "runs", "searches", "train", "data", "x.y.z", ".", "..", "=",
                     "runs.mlp-small", "searches.cnn-grid"]),
    st.builds(lambda kind, name, key: f"{kind}.{name}.{key}",
              st.sampled_from(["runs", "searches"]), st.sampled_from(NAMES),
              st.sampled_from(["spec", "space", "trials", "fraction", "retrain", "retrain.pick",
                               "seed", "epochs", "sampler", "pruner", "dev_subset", "x"])),
    st.text(max_size=12),
)
VALUES = st.one_of(
    st.sampled_from(["1", "0", "-1", "1e999", "nan", "[]", "{}", "[a, b]", "all", "none",
                     "{pick: one-se}", "{pick: best}", "mlp-small", "cnn-grid", "null", "~",
                     "'", "[", "{", "&a [*a]", "!!python/object:os.system x", "9" * 5000]),
    CHUNKS,
    st.text(max_size=20),
)
OVERRIDE = st.one_of(st.builds(lambda k, v: f"{k}={v}", KEYS, VALUES), st.text(max_size=16))


@st.composite
def mutated_plan(draw: st.DrawFn) -> dict[str, Any]:
    """The homework plan with one to three structural mutations."""
    doc = copy.deepcopy(HOMEWORK)
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(doc)
        if not paths:
            break
        op = draw(st.sampled_from(["delete", "odd", "extreme", "nest", "rename"]))
        path = draw(st.sampled_from(paths))
        if op == "delete":
            _set(doc, path, None, delete=True)
        elif op == "odd":
            _set(doc, path, draw(ODD))
        elif op == "extreme":
            _set(doc, path, draw(EXTREME))
        elif op == "rename" and isinstance(parent := _get(doc, path[:-1]), dict):
            parent[draw(st.sampled_from(NAMES + ["spec", "space", "retrain", "test", 1, None]))] = \
                parent.pop(path[-1])
        else:
            depth = draw(st.sampled_from([2, 10, 64, 900]))
            _set(doc, path, _nest(draw(st.sampled_from([[], 1, "mlp-small"])), depth,
                                  draw(st.booleans())))
    return doc


@st.composite
def plan_bytes(draw: st.DrawFn) -> bytes:
    """The homework plan's text truncated, with noise, a raw chunk, another encoding, or a
    hostile whole document."""
    op = draw(st.sampled_from(["truncate", "noise", "chunk", "encoding", "whole"]))
    data = TEXT.encode()
    if op == "whole":
        return draw(WHOLE).encode()
    if op == "chunk":
        doc = copy.deepcopy(HOMEWORK)
        _set(doc, draw(st.sampled_from(_paths(doc))), "@@FUZZ@@")
        return yaml.safe_dump(doc).replace("'@@FUZZ@@'", "@@FUZZ@@").replace(
            "@@FUZZ@@", draw(CHUNKS)).encode()
    if op == "encoding":
        encoding = draw(st.sampled_from(["utf-16", "utf-32", "latin-1", "utf-8-sig"]))
        return TEXT.replace("name: homework", "name: homewörk\u00ff").encode(encoding, errors="replace")
    at = draw(st.integers(0, len(data)))
    if op == "truncate":
        return data[:at]
    return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]


# the product bugs these cases find, each named by an xfail(strict=True) test below
READ_BUG = "a plan file that is not UTF-8 or too deep/long for YAML raises a traceback"
SET_BUG = "a --set value that is not valid YAML raises a traceback"
MULTILINE_BUG = "a plan file's YAML error is several lines"
LONG_BUG = "plan errors quote the --set item or value whole"
DEEP_BUG = "a plan holding a value nested ~900 deep raises RecursionError"
CIRCULAR_BUG = "a plan whose data: or set: holds a recursive YAML alias raises ValueError"


def _known_bug(err: BaseException) -> str | None:
    """Which known bug ``err`` (not an ArchtuneError) is, by the plan-reading function it left."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if not f.name.startswith("<")
              and Path(f.filename).parent.name == "plan" and Path(f.filename).name == "schema.py"]
    last = frames[-1].name if frames else ""
    yaml_or_value = isinstance(err, yaml.YAMLError | ValueError | RecursionError)  # UnicodeDecodeError is a ValueError
    if last == "_read" and yaml_or_value:
        return READ_BUG
    if last == "edit_plan" and yaml_or_value:
        return SET_BUG
    if last == "parse_plan" and isinstance(err, RecursionError):
        return DEEP_BUG
    if last in ("parse_plan", "_sets") and isinstance(err, ValueError) and "Circular" in str(err):
        return CIRCULAR_BUG
    return None


def _expect_clean(load: Any) -> str:
    """'ok' or 'error': loading and resolving the plan, or one short ArchtuneError line."""
    try:
        resolve(load())
    except ArchtuneError as err:
        message = str(err)
        if "\n" in message and ": not valid YAML: " in message.split("\n")[0]:
            raise KnownBug(MULTILINE_BUG) from None
        if len(message) >= 2000 and "\n" not in message:
            raise KnownBug(LONG_BUG) from None
        if "\n" in message and message.split("\n", 1)[0].count("'") % 2 == 1:
            raise KnownBug(ECHO_NEWLINE_BUG) from None  # e.g. unknown spec 'a<line break>b'
        assert message and "\n" not in message and len(message) < 2000, message[:3000]
        return "error"
    except Exception as err:
        bug = _known_bug(err)
        if bug is None:
            raise
        raise KnownBug(bug) from None
    return "ok"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-plan")


@pytest.mark.parametrize("part", PARTS)
def test_mutated_plans_load_or_fail_in_one_line(part: str, workdir: Path,
                                                record_property: Any) -> None:
    def check(args: tuple[dict[str, Any], str, list[str]]) -> None:
        doc, fmt, overrides = args
        if fmt == "dict":
            _expect_clean(lambda: parse_plan(doc))  # (a fresh document each case)
            return
        try:
            text = yaml.safe_dump(doc)
        except (RecursionError, ValueError):
            raise Drop("too deep for the test's YAML writer") from None
        path = workdir / "plan.yaml"
        path.write_text(text)
        _expect_clean(lambda: load_plan(path, overrides))

    cases = st.tuples(mutated_plan(), st.sampled_from(["dict", "yaml"]),
                      st.lists(OVERRIDE, max_size=3))
    run_fuzz("plan-yaml", part, cases, check, examples=300, record=record_property,
             max_dropped=0.1)  # some mutations are too deep for yaml.safe_dump itself


@pytest.mark.parametrize("part", PARTS)
def test_damaged_plan_files_and_overrides_load_or_fail_in_one_line(
        part: str, workdir: Path, record_property: Any) -> None:
    def check(args: tuple[bytes | None, list[str]]) -> None:
        data, overrides = args
        if data is None:
            _expect_clean(lambda: load_plan("homework", overrides))
            return
        path = workdir / "damaged.yaml"
        path.write_bytes(data)
        _expect_clean(lambda: load_plan(path, overrides))

    cases = st.tuples(st.one_of(st.none(), plan_bytes()), st.lists(OVERRIDE, max_size=4))
    run_fuzz("plan-yaml", part, cases, check, examples=300, record=record_property)


def test_a_plan_file_that_is_not_utf8_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.yaml"
    path.write_bytes(TEXT.replace("name: homework", "name: homew\xf6rk").encode("latin-1"))
    with pytest.raises(ArchtuneError):
        load_plan(path)


def test_a_set_value_that_is_not_yaml_is_one_error() -> None:
    with pytest.raises(ArchtuneError):
        load_plan("homework", ["searches.cnn-grid.trials=["])


def test_a_plan_file_with_a_yaml_error_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text("--- 1\n--- 2\n")
    with pytest.raises(ArchtuneError) as err:
        load_plan(path)
    assert "\n" not in str(err.value)


def test_a_long_set_item_is_quoted_short() -> None:
    with pytest.raises(ArchtuneError) as err:
        load_plan("homework", ["runs.nope.epochs=" + "9" * 5000])
    assert len(str(err.value)) < 2000


def test_a_deeply_nested_plan_is_one_error() -> None:
    deep: Any = 1
    for _ in range(900):
        deep = [deep]
    try:
        parse_plan({"name": "x", "runs": {"a": {"spec": "mlp-small"}}, "description": deep})
    except ArchtuneError:
        pass


def test_a_recursive_alias_in_a_plan_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("name: x\nruns: {a: {spec: mlp-small}}\ndata: {dataset: &a [*a]}\n")
    with pytest.raises(ArchtuneError):
        load_plan(path)


def test_a_set_on_a_plan_with_a_number_as_a_run_name_is_one_error(tmp_path: Path) -> None:
    """Found by a fresh fuzz seed: the did-you-mean of --set runs.NAME compared text with a
    YAML key written as a number."""
    path = tmp_path / "numbers.yaml"
    path.write_text("name: x\nruns: {1: {spec: mlp-small}, a: {spec: mlp-small}}\n")
    with pytest.raises(ArchtuneError, match="the plan has no run 'b'"):
        load_plan(path, ["runs.b.epochs=1"])
