"""Property-based fuzzing of the command line: the `archtune` group (click's CliRunner) with any
arguments, options and values for the commands that can run here without training, serving or
downloading (search and plan with --dry-run forced). Each call ends cleanly (exit 0), with
click's usage error (exit 2), or with one one-line ArchtuneError (exit 2 from `archtune`); never
another exception. Fixed and random parts, dropped cases counted: see tests/_fuzz.py."""

from __future__ import annotations

import errno
import logging
import traceback
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import strategies as st

import archtune
from archtune.cli import cli
from archtune.errors import ArchtuneError
from tests._fuzz import PARTS, KnownBug, run_fuzz
from tests.conftest import make_splits
from tests.plan.test_fuzz_plan import LONG_BUG, MULTILINE_BUG, _known_bug

MLP = {"name": "fuzz-mlp", "input_shape": [28, 28, 1],
       "layers": [{"Flatten": {}}, {"Dense": {"units": 10, "activation": "softmax"}}],
       "train": {"epochs": 1, "batch_size": 32, "seed": 0}}
# commands that run here without training, serving, downloading or reaching another machine,
# with what each always gets (search and plan: --dry-run); a RUN argument of predict may be a
# real run (the others would load its data set: the real Fashion-MNIST)
FORCED: dict[str, list[str]] = {
    "summary": [], "config": [], "specs": [], "spaces": [], "layers": [], "runs": [],
    "studies": [], "trials": [], "best": [], "search": ["--dry-run"], "plan": ["--dry-run"],
    "predict": [], "evaluate": [], "report": [], "compare": [], "export": [], "ensemble": [],
    "inspect": [], "retrain": [], "worker": [],
}
# options never generated: they start work, servers or connections (or are forced above)
NEVER = {"--storage", "--mlflow-uri", "--log", "--fidelity", "--dashboard", "--dashboard-port",
         "--dashboard-host", "--create-only", "--data", "--data-dir", "--dry-run", "--pdf",
         "--device"}
STUDIES_OPTION = {"best", "trials", "studies", "search", "retrain", "worker"}  # --studies-dir: ours


def _options(name: str) -> list[click.Option]:
    cmd = cli.get_command(click.Context(cli), name)
    assert cmd is not None, name
    return [p for p in cmd.params if isinstance(p, click.Option) and not set(p.opts) & NEVER
            and p.name != "studies_dir"]


def _arguments(name: str) -> list[click.Argument]:
    cmd = cli.get_command(click.Context(cli), name)
    assert cmd is not None, name
    return [p for p in cmd.params if isinstance(p, click.Argument)]


NUMBERS = st.sampled_from(["0", "1", "-1", "2", "3", "1000000", "99999999999999999999", "1e3",
                           "0.5", "-0.0", "nan", "inf", "-inf", "1e999", "", "x", "0x10",
                           "9" * 5000])
TEXT = st.one_of(st.sampled_from(["", "-", "--", "=", "a=b", "train.epochs=1", "train.epochs=x",
                                  "data.dataset=nope", "mlp-small", "cnn-classic",
                                  "default-space", "homework", "tiny", "*", "[", "{", "%s",
                                  "../..", "\x00", "é", "cuda", "cpu", "json", "csv", "onnx",
                                  "dev", "test", "all", "auto", "tpe", "grid", "none"]),
                 st.text(max_size=12))


def _value(param: click.Parameter, paths: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return st.one_of(st.sampled_from([str(c) for c in kind.choices]), TEXT)
    if isinstance(kind, click.types.IntParamType | click.types.FloatParamType):
        return st.one_of(NUMBERS, TEXT)
    if isinstance(kind, click.Path):
        return paths
    return st.one_of(paths, TEXT, NUMBERS)


@st.composite
def command_line(draw: st.DrawFn, paths: dict[str, st.SearchStrategy[str]], studies: str
                 ) -> list[str]:
    name = draw(st.sampled_from(sorted(FORCED)))
    here = paths["run" if name == "predict" else "other"]
    args: list[str] = []
    for arg in _arguments(name):
        n = draw(st.integers(0, 3)) if arg.nargs == -1 else draw(st.sampled_from([1, 1, 1, 0]))
        args += [draw(_value(arg, here)) for _ in range(n)]
    options = _options(name)
    for _ in range(draw(st.integers(0, 4)) if options else 0):
        opt = draw(st.sampled_from(options))
        flag = draw(st.sampled_from(opt.opts + opt.secondary_opts))
        if opt.is_flag or opt.count:
            args.append(flag)
        else:
            value = draw(_value(opt, here))
            args += [f"{flag}={value}"] if flag.startswith("--") and draw(st.booleans()) else [flag, value]
    if draw(st.integers(0, 9)) == 0:  # something no command takes
        args.insert(draw(st.integers(0, len(args))), draw(st.sampled_from(
            ["--nope", "-Z", "--", "--help", "-h", "--trials", "--set"])))
    args = draw(st.permutations(args)) if draw(st.booleans()) else args
    extra = FORCED[name] + (["--studies-dir", studies] if name in STUDIES_OPTION else [])
    return draw(st.sampled_from([[], ["-q"], ["-v"]])) + [name, *args, *extra]


# the product bugs these cases find, each named by an xfail(strict=True) test below
RUN_DIR_FILE_BUG = ("an output path in a missing folder or inside a file raises "
                    "FileNotFoundError/NotADirectoryError")
LONG_NAME_BUG = "a path or name argument longer than the system allows raises OSError"
LONG_NUMBER_BUG = "a number argument of more than 4,300 digits raises ValueError"
ECHO_NEWLINE_BUG = "an error message quotes an argument's line break as it is (several lines)"
LONG_ECHO_BUG = "an error message quotes a long argument whole"
SHOW_BUG = "plan --show of a file that is not UTF-8 raises UnicodeDecodeError"
NUL_BUG = "a path argument holding a NUL character raises ValueError"


def _cli_bug(err: BaseException) -> str | None:
    """Which known bug ``err`` (not an ArchtuneError) is."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if "archtune" in f.filename]
    if isinstance(err, FileNotFoundError | NotADirectoryError) and \
            {"config", "ensemble"} & {f.name for f in frames}:
        return RUN_DIR_FILE_BUG
    if isinstance(err, UnicodeDecodeError) and any(
            f.name == "plan" and Path(f.filename).name == "plan.py" for f in frames):
        return SHOW_BUG
    if isinstance(err, OSError) and err.errno == errno.ENAMETOOLONG:
        return LONG_NAME_BUG
    if isinstance(err, ValueError) and "integer string conversion" in str(err):
        return LONG_NUMBER_BUG
    if isinstance(err, ValueError) and "null byte" in str(err):
        return NUL_BUG
    return None


def _message_bug(message: str, args: list[str]) -> str | None:
    if "\n" in message and ": not valid YAML: " in message.split("\n")[0]:
        return MULTILINE_BUG
    if "\n" in message and any("\n" in a for a in args):
        return ECHO_NEWLINE_BUG
    if len(message) >= 2000 and "\n" not in message:
        return LONG_BUG if "--set" in message else LONG_ECHO_BUG
    return None


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Files and folders the generated paths point at (all under one temporary folder)."""
    root = tmp_path_factory.mktemp("fuzz-cli")
    run = archtune.train(MLP, splits=make_splits(64, 20), run_dir=root / "run", progress=False)
    (root / "empty").mkdir()
    (root / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    (root / "notes.txt").write_text("hello")
    (root / "spec.yaml").write_text(yaml.safe_dump(MLP))
    (root / "bad.yaml").write_text("layers: [\n")
    fake = root / "fake-run"
    fake.mkdir()
    (fake / "metrics.json").write_text("{not json")
    from tests.conftest import synthetic_arrays
    from tests.serve.conftest import write_png

    x, _ = synthetic_arrays(3, seed=5)
    write_png(root / "one.png", x[0])
    pool = [str(p) for p in (root / "empty", root / "junk.png", root / "notes.txt",
                             root / "spec.yaml", root / "bad.yaml", fake, root / "one.png",
                             root / "missing", root / "missing" / "deeper.html",
                             root / "out.html", root / "out-dir")] + [""]
    return {"root": root, "run": str(run.path), "pool": pool}


@pytest.fixture
def keep_logging() -> Any:
    """The CLI reconfigures archtune's logger on each call; put it back afterwards."""
    logger = logging.getLogger("archtune")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@pytest.mark.parametrize("part", PARTS)
def test_any_command_line_ends_cleanly(part: str, places: dict[str, Any], keep_logging: Any,
                                       record_property: Any, monkeypatch: pytest.MonkeyPatch
                                       ) -> None:
    root: Path = places["root"]
    monkeypatch.chdir(root)  # whatever a command writes by default lands here
    monkeypatch.setenv("ARCHTUNE_DATA", str(root / "empty"))  # never the real data
    monkeypatch.setenv("ARCHTUNE_THREADS", "1")
    other = st.sampled_from(places["pool"])
    paths = {"other": other, "run": st.one_of(st.just(places["run"]), other)}
    runner = CliRunner()

    def check(args: list[str]) -> None:
        result = runner.invoke(cli, args, prog_name="archtune")
        err = result.exception
        if err is None or (isinstance(err, SystemExit) and result.exit_code in (0, 2)):
            return
        if isinstance(err, ArchtuneError):  # archtune's main prints it: "error: ..." and exit 2
            bug = _message_bug(str(err), args)
            if bug is not None:
                raise KnownBug(bug)
            assert str(err) and "\n" not in str(err) and len(str(err)) < 2000, (args, str(err)[:3000])
            return
        bug = _known_bug(err) or _cli_bug(err)
        if bug is not None:
            raise KnownBug(bug)
        raise AssertionError(f"archtune {args!r}: {type(err).__name__}: {err}") from err

    run_fuzz("cli-args", part, command_line(paths, str(root / "studies")), check, examples=900,
             record=record_property, max_dropped=0)


def _invoke(args: list[str]) -> BaseException | None:
    return CliRunner().invoke(cli, args, prog_name="archtune").exception


def test_ensemble_into_a_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    err = _invoke(["ensemble", str(tmp_path / "a"), str(tmp_path / "b"), "--run-dir",
                   str(tmp_path / "file")])
    assert isinstance(err, ArchtuneError), repr(err)


def test_a_name_too_long_for_a_path_is_one_error() -> None:
    err = _invoke(["summary", "x" * 5000])
    assert isinstance(err, ArchtuneError), repr(err)


def test_an_image_size_of_5000_digits_is_one_error() -> None:
    err = _invoke(["summary", "mlp-small", "--image-size", "9" * 5000])
    assert isinstance(err, ArchtuneError) or isinstance(err, SystemExit), repr(err)


def test_a_name_with_a_line_break_is_quoted_on_one_line() -> None:
    err = _invoke(["summary", "no\nsuch"])
    assert isinstance(err, ArchtuneError) and "\n" not in str(err), repr(err)


def test_a_long_argument_is_quoted_short() -> None:
    err = _invoke(["layers", "9" * 5000])
    assert isinstance(err, ArchtuneError) and len(str(err)) < 2000, repr(err)[:200]


def test_plan_show_of_a_binary_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "p.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    err = _invoke(["plan", str(tmp_path / "p.png"), "--show"])
    assert isinstance(err, ArchtuneError), repr(err)


@pytest.mark.xfail(strict=True, reason="product bug: " + NUL_BUG + " (os.stat and open refuse it; "
                   "the commands do not check their paths first)")
def test_a_path_with_a_nul_character_is_one_error(tmp_path: Path) -> None:
    err = _invoke(["runs", "--root", str(tmp_path) + "/a\x00b"])
    assert err is None or isinstance(err, ArchtuneError) or isinstance(err, SystemExit), repr(err)


def test_config_output_inside_a_file_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    err = _invoke(["config", "mlp-small", "-o", str(tmp_path / "file" / "x.yaml")])
    assert isinstance(err, ArchtuneError), repr(err)


def test_config_output_in_a_missing_folder_is_one_error(tmp_path: Path) -> None:
    err = _invoke(["config", "mlp-small", "-o", str(tmp_path / "missing" / "x.yaml")])
    assert err is None or isinstance(err, ArchtuneError), repr(err)
