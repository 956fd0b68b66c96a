"""Every documented command runs.

The shell blocks (```bash, sh, shell, console) of README.md, CONTRIBUTING.md and docs/*.md are
split into commands. For each ``archtune ...`` command:

- the verb path must exist (``archtune <verb...> --help`` exits 0) and every ``--option`` must be
  one of that command's options (a choice value, such as ``--format onnx``, one of its choices);
- a cheap one (``--help``, ``specs``, ``layers``, ``spaces``, ``summary``, ``config``, ``data``,
  ``--dry-run``, ``plan --show``, ...) is also run in-process, against a tiny synthetic data set,
  and must exit 0.

Long-running commands (training, search) are only option-checked. A failure names the doc file
and line.
"""

from __future__ import annotations

import logging
import os
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import archtune.cli
from archtune.data.idx import write_idx
from tests.conftest import synthetic_arrays

ROOT = Path(__file__).resolve().parents[1]
SHELL_LANGS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
SEPARATORS = {"&&", "||", ";", "|", "&"}
REDIRECT = re.compile(r"^(\d?>>?|<|&>)")  # >, >>, 2>, <, &> (with or without the target joined)
ENV_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z_]*$")  # RUN, STUDY, SPACE, FILE, M, N ...
# verbs that are quick on the tiny data set and run; `plan`, `search` only with a flag below
CHEAP_VERBS = {"specs", "layers", "spaces", "summary", "config", "data", "studies", "runs",
               "evaluate", "inspect", "report", "export", "predict", "compare"}  # on a tiny run
CHEAP_FLAGS = {"--help", "-h", "--dry-run", "--show", "--version"}
PATH_SUFFIXES = {".yaml", ".yml", ".json", ".npz", ".png", ".jpg", ".pt", ".db", ".html"}


@dataclass(frozen=True)
class Command:
    file: str  # relative to the repository
    line: int  # of the command's first line in the file
    args: tuple[str, ...]  # the words after `archtune`
    text: str  # the shell line as written

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def doc_files() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]


def shell_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, logical shell line) of every shell block: continuations joined, comment
    lines, blank lines and (in console blocks) output lines left out."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        i += 1
        if not opening:
            continue
        fence, lang = opening.group(1), opening.group(2).lower()
        body: list[tuple[int, str]] = []
        while i < len(lines) and not lines[i].strip().startswith(fence[:3]):
            body.append((i + 1, lines[i]))
            i += 1
        i += 1  # the closing fence
        if lang not in SHELL_LANGS:
            continue
        pending: tuple[int, str] | None = None
        for number, raw in body:
            line = raw.strip()
            if pending is None:
                if lang == "console":
                    if not line.startswith("$ "):
                        continue  # output
                    line = line[2:].strip()
                if not line or line.startswith("#"):
                    continue
                pending = (number, "")
            start, sofar = pending
            if line.endswith("\\"):
                pending = (start, sofar + line[:-1] + " ")
                continue
            pending = None
            yield start, sofar + line


def split_commands(line: str) -> list[list[str]]:
    """Shell words of each simple command on a line (split at &&, ||, ;, |), without
    redirections. A `|` inside a [bracketed option] of a usage line is not a pipe."""
    words = shlex.split(line, comments=True)
    commands: list[list[str]] = [[]]
    depth = 0
    skip_next = False
    for word in words:
        if skip_next:
            skip_next = False
            continue
        if depth == 0 and word in SEPARATORS:
            commands.append([])
            continue
        if depth == 0 and REDIRECT.match(word) and not re.fullmatch(r"<[\w-]+>", word):
            skip_next = REDIRECT.fullmatch(word) is not None  # the target is the next word
            continue
        depth += word.count("[") - word.count("]")
        commands[-1].append(word)
    return [c for c in commands if c]


def archtune_args(words: list[str]) -> tuple[str, ...] | None:
    """The arguments of an `archtune` command (env assignments, .venv/bin/, python -m allowed)."""
    while words and ENV_ASSIGNMENT.match(words[0]):
        words = words[1:]
    if words and Path(words[0]).name == "archtune":
        return tuple(words[1:])
    if len(words) >= 3 and Path(words[0]).name.startswith("python") and words[1:3] == ["-m", "archtune"]:
        return tuple(words[3:])
    return None


def commands_in(text: str, file: str) -> list[Command]:
    found = []
    for number, line in shell_lines(text):
        for words in split_commands(line):
            args = archtune_args(words)
            if args is not None:
                found.append(Command(file, number, args, line))
    return found


def documented_commands() -> list[Command]:
    out = []
    for path in doc_files():
        if path.exists():
            out += commands_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    return out


# --- checking against the CLI -------------------------------------------------------------------


def cli_group() -> click.Group:
    group = getattr(archtune.cli, "cli", None)
    if isinstance(group, click.Group):
        return group
    return next(v for v in vars(archtune.cli).values() if isinstance(v, click.Group))


def unbracket(word: str) -> str:
    return word.strip("[]")


def is_option(word: str) -> bool:
    return word.startswith("-") and len(word) > 1 and not re.fullmatch(r"-[\d.e-]+", word)


def option_table(command: click.Command) -> dict[str, click.Parameter]:
    ctx = click.Context(command, info_name=command.name)
    table: dict[str, click.Parameter] = {}
    for param in command.get_params(ctx):  # the help option included
        if isinstance(param, click.Option):
            for name in [*param.opts, *param.secondary_opts]:
                table[name] = param
    return table


@cache
def help_exit(path: tuple[str, ...]) -> tuple[int, str]:
    """`archtune <path...> --help`, in-process: (exit code, output)."""
    result = CliRunner().invoke(cli_group(), [*path, "--help"])
    return result.exit_code, result.output


def resolve(cmd: Command) -> tuple[click.Command, tuple[str, ...], list[str]]:
    """The click command the words name, its verb path, and the words (brackets of usage
    lines stripped). Raises LookupError naming a verb that does not exist."""
    command: click.Command = cli_group()
    path: list[str] = []
    words = [unbracket(w) for w in cmd.args]
    words = [w for w in words if w]
    i = 0
    while isinstance(command, click.Group):
        while i < len(words) and is_option(words[i]):
            i += 1  # group options (-q, -v): checked with the rest below
        if i >= len(words):
            break
        name = words[i]
        sub = command.get_command(click.Context(command), name)
        if sub is None:
            if PLACEHOLDER.match(name):
                break
            choices = ", ".join(sorted(command.list_commands(click.Context(command))))
            raise LookupError(f"`archtune {' '.join([*path, name])}`: no command {name!r} "
                              f"(commands: {choices})")
        path.append(name)
        command = sub
        i += 1
    return command, tuple(path), words


def problems(cmd: Command) -> list[str]:
    """What is wrong with a documented command, each naming its place; [] when nothing is."""
    try:
        command, path, words = resolve(cmd)
    except LookupError as err:
        return [f"{cmd.where}: {err}\n    {cmd.text}"]
    out = []
    code, output = help_exit(path)
    if code != 0:
        out.append(f"{cmd.where}: `archtune {' '.join(path)} --help` exited {code}: {output[-300:]}")
    group_opts = option_table(cli_group())
    table = option_table(command)
    for k, word in enumerate(words):
        if not is_option(word):
            continue
        name, _, joined = word.partition("=")
        param = table.get(name) or (group_opts.get(name) if not path or
                                    words.index(path[0]) > k else None)
        if param is None:
            known = ", ".join(sorted(o for o in table if o.startswith("--")))
            out.append(f"{cmd.where}: `archtune {' '.join(path)}` has no option {name!r} "
                       f"(its options: {known})\n    {cmd.text}")
            continue
        value = joined or (words[k + 1] if k + 1 < len(words) else "")
        if isinstance(param.type, click.Choice) and value and not is_option(value) \
                and not PLACEHOLDER.match(value) and "|" not in value:
            optional = getattr(param, "_flag_needs_value", False)  # --ensemble [on|auto]
            if value not in param.type.choices and not optional:
                out.append(f"{cmd.where}: `archtune {' '.join(path)} {name}` does not take "
                           f"{value!r} (choices: {', '.join(param.type.choices)})\n    {cmd.text}")
    return out


def runnable(cmd: Command, workdir: Path) -> bool:
    """Cheap, concrete, and every file it names is there."""
    words = list(cmd.args)
    if any(ch in w for w in words for ch in "[]<>") or any("..." in w for w in words):
        return False
    if any(PLACEHOLDER.match(w) for w in words):
        return False
    verbs = [w for w in words if not w.startswith("-")]
    if not (CHEAP_FLAGS & set(words) or (verbs and verbs[0] in CHEAP_VERBS)):
        return False
    try:
        command, path, rest = resolve(cmd)
    except LookupError:
        return False
    positional, k = [], 0
    table = option_table(command)
    while k < len(rest):
        word = rest[k]
        if is_option(word):
            param = table.get(word.split("=")[0])
            takes = param is not None and not getattr(param, "is_flag", False) and \
                not getattr(param, "count", False) and "=" not in word
            k += 2 if takes else 1
            continue
        positional.append(word)
        k += 1
    for word in positional:
        looks_like_path = "/" in word or Path(word).suffix in PATH_SUFFIXES
        if looks_like_path and not (workdir / word).exists():
            return False
    return True


# --- the tiny world the commands run in ---------------------------------------------------------


def write_fake_idx(folder: Path, n_train: int = 300, n_test: int = 100) -> None:
    """The four IDX files of a registered data set, holding tiny synthetic 28x28 images."""
    folder.mkdir(parents=True, exist_ok=True)
    xt, yt = synthetic_arrays(n_train, 0)
    xs, ys = synthetic_arrays(n_test, 2)
    for name, arr in [("train-images-idx3-ubyte", xt), ("train-labels-idx1-ubyte", yt),
                      ("t10k-images-idx3-ubyte", xs), ("t10k-labels-idx1-ubyte", ys)]:
        write_idx(folder / f"{name}.gz", arr.astype("uint8"))


@contextmanager
def inside(world: Path) -> Iterator[Path]:
    """Run commands in ``world``, reading the tiny data sets and never downloading."""
    logger = logging.getLogger("archtune")  # the CLI configures it: put it back afterwards
    saved = logger.handlers[:], logger.level, logger.propagate
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARCHTUNE_DATA", str(world.parent / "data"))
        mp.setenv("XDG_CACHE_HOME", str(world.parent / "cache"))
        mp.chdir(world)
        try:
            yield world
        finally:
            logger.handlers[:] = saved[0]
            logger.setLevel(saved[1])
            logger.propagate = saved[2]


def invoke(args: list[str]) -> Result:
    return CliRunner().invoke(cli_group(), args)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder with tiny fashion-mnist/ and mnist/ data, the docs' my_model.yaml and a
    one-epoch run of it in runs/try1 (what the docs' evaluate, report, inspect, export use)."""
    base = tmp_path_factory.mktemp("docs-commands")
    for name in ("fashion-mnist", "mnist"):
        write_fake_idx(base / "data" / name)
    (base / "cache").mkdir()
    work = base / "work"
    work.mkdir()
    with inside(work):
        for args in (["config", "cnn-classic", "-o", "my_model.yaml"],
                     ["-q", "train", "my_model.yaml", "--epochs", "1", "--run-dir", "runs/try1"]):
            result = invoke(args)
            assert result.exit_code == 0, (args, result.output, result.exception)
    return work


@pytest.fixture
def in_world(world: Path) -> Iterator[Path]:
    with inside(world):
        yield world


COMMANDS = documented_commands()
ALREADY_RAN: set[tuple[str, ...]] = set()


def _id(cmd: Command) -> str:
    return f"{cmd.where}:{'-'.join(w for w in cmd.args[:2] if not w.startswith('-'))}"


def test_the_docs_have_commands() -> None:
    files = {c.file for c in COMMANDS}
    assert "README.md" in files and len(COMMANDS) > 40, sorted(files)


@pytest.mark.parametrize("cmd", COMMANDS, ids=[_id(c) for c in COMMANDS])
def test_documented_command(cmd: Command, in_world: Path) -> None:
    found = problems(cmd)
    assert not found, "\n".join(found)
    if not runnable(cmd, in_world):
        return  # long-running, or names a run/study the docs assume: options checked only
    if cmd.args in ALREADY_RAN:
        return  # the same command on another page ran (and passed) already
    assert os.environ["ARCHTUNE_DATA"].startswith(str(in_world.parent))
    result = invoke(list(cmd.args))
    assert result.exit_code == 0, (
        f"{cmd.where}: `archtune {' '.join(cmd.args)}` exited {result.exit_code}\n"
        f"{result.output[-2000:]}\n{result.exception!r}")
    ALREADY_RAN.add(cmd.args)


# --- the checker itself -------------------------------------------------------------------------

FAKE = """# Fake page

```bash
archtune specs
archtune train --no-such-option 3
archtune trian default
archtune export runs/x --format onnyx
archtune search SPACE [--trials N | --timeout S] --nope
```

```console
$ archtune layers \\
    --bogus
output line: archtune train --also-not-checked
```
"""


def test_checker_fails_on_made_up_options_and_verbs() -> None:
    cmds = commands_in(FAKE, "fake.md")
    assert [(c.line, c.args[0]) for c in cmds] == [
        (4, "specs"), (5, "train"), (6, "trian"), (7, "export"), (8, "search"), (12, "layers")]
    found = {c.line: problems(c) for c in cmds}
    assert found[4] == []
    assert "fake.md:5" in found[5][0] and "'--no-such-option'" in found[5][0]
    assert "fake.md:6" in found[6][0] and "no command 'trian'" in found[6][0]
    assert "fake.md:7" in found[7][0] and "'onnyx'" in found[7][0]
    assert len(found[8]) == 1 and "'--nope'" in found[8][0]  # --trials and --timeout exist
    assert "fake.md:12" in found[12][0] and "'--bogus'" in found[12][0]


def test_splitting_shell_lines() -> None:
    assert split_commands("A=1 archtune train && archtune runs # comment") == [
        ["A=1", "archtune", "train"], ["archtune", "runs"]]
    assert split_commands("archtune plan homework --show > my_plan.yaml") == [
        ["archtune", "plan", "homework", "--show"]]
    assert split_commands("archtune runs 2>&1 >log") == [["archtune", "runs"]]
    assert split_commands("archtune report <study> --pdf") == [["archtune", "report", "<study>", "--pdf"]]
    assert split_commands("archtune trials s [--format table|csv] | head") == [
        ["archtune", "trials", "s", "[--format", "table|csv]"], ["head"]]
    assert archtune_args([".venv/bin/archtune", "specs"]) == ("specs",)
    assert archtune_args(["python", "-m", "archtune", "layers"]) == ("layers",)
    assert archtune_args(["tensorboard", "--logdir", "runs"]) is None


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_results_sections_the_docs_name_exist() -> None:
    """README and docs cite results as bench/RESULTS.md#section: each section must exist (a bench
    script that renames its section, or a section deleted, fails here)."""
    results = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    anchors = {github_anchor(line[3:]) for line in results.splitlines() if line.startswith("## ")}
    missing = []
    for path in doc_files():
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for anchor in re.findall(r"RESULTS\.md#([\w-]+)", line):
                if anchor not in anchors and anchor != "anchor":  # the benchmarks page's example
                    missing.append(f"{path.relative_to(ROOT).as_posix()}:{number}: #{anchor}")
    assert not missing, "no such section in bench/RESULTS.md:\n" + "\n".join(missing)


def test_readme_results_table_quotes_the_headline_section_digit_for_digit() -> None:
    """Every number in README's results table is in bench/RESULTS.md's headline section (as
    `python bench/headline.py` wrote it), and the table names nothing measured elsewhere."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    results = (ROOT / "bench" / "RESULTS.md").read_text(encoding="utf-8")
    table = re.search(r"^## Results\n(.*?)(?=^## )", readme, re.S | re.M)
    headline = re.search(r"^## Headline figures, regenerated\n(.*?)(?=^## |\Z)", results,
                         re.S | re.M)
    assert table and headline, "README's '## Results' or RESULTS.md's headline section is gone"
    rows = [line for line in table.group(1).splitlines()
            if line.startswith("| ") and not line.startswith(("| what", "| ---"))]
    assert len(rows) >= 6, rows
    figures = set(re.findall(r"\d[\d,]*(?:\.\d+)?", headline.group(1)))
    stray = [(row.split(" | ")[0], number) for row in rows
             for number in re.findall(r"\d[\d,]*(?:\.\d+)?", row) if number not in figures]
    assert not stray, f"README figures not in the headline section: {stray}"
