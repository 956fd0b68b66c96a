"""Spec and space files that used to crash with a traceback: each is now one line, exit code 2
(or, for UTF-16 with a byte-order mark, simply read)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from archtune import ArchtuneError
from archtune.search import load_space
from archtune.specs import load_spec, raw_spec
from tests._cli import run_cli

SPEC = yaml.safe_dump(raw_spec("mlp-small"))
SPACE = """name: s
layers: [Flatten, {Dense: {units: {choice: [16, 32]}}}, {Dense: {units: 10}}]
"""


def _laughs(levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


CASES = [
    ("latin1.yaml", SPEC.replace("mlp-small", "mlp-é", 1).encode("latin-1"),
     "not UTF-8 text (byte 0xe9"),
    ("utf16-no-bom.yaml", SPEC.encode("utf-16-le"), "binary data (NUL bytes)"),
    ("binary.yaml", bytes(range(256)) * 4, "binary data (NUL bytes)"),
    # libyaml's parser stops it first where PyYAML has it (its message), else archtune's check
    ("deep.yaml", ("layers: " + "[" * 5000 + "]" * 5000 + "\n").encode(),
     ("nesting depth", "nested deeper than 64")),
    ("deep-block.yaml", ("- " * 5000 + "x\n").encode(), "nested deeper than 64"),
    ("deep.json", ('{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}").encode(),
     "nested deeper than 64"),
    ("bigint.yaml", SPEC.replace("units: 128", "units: " + "9" * 5000, 1).encode(),
     "an integer with more than 4,300 digits"),
    ("bigint.json", ('{"layers": [{"Dense": {"units": ' + "9" * 5000 + "}}]}").encode(),
     "an integer with more than 4,300 digits"),
    ("laughs.yaml", (_laughs() + "layers: *l8\n").encode(), "more than 1,000,000 values"),
    ("self.yaml", b"&a [*a]\n", "nested deeper than 64"),
    ("surrogate.json", b'{"name": "\\ud800", "layers": ["Flatten"]}', "unpaired surrogate"),
]


@pytest.mark.parametrize(("name", "data", "message"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("verb", ["summary", "search"])
def test_hostile_files_are_one_line_and_exit_code_2(tmp_path: Path, capsys, name: str, data: bytes,
                                                    message: str | tuple[str, ...], verb: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    args = [verb, str(path)] + (["--dry-run", "--studies-dir", str(tmp_path)] if verb == "search" else [])
    code, _, err = run_cli(args, capsys)
    messages = (message,) if isinstance(message, str) else message
    assert code == 2 and err.count("\n") == 1 and any(m in err for m in messages), err[:500]
    assert err.startswith(f"error: {path}: ")


def test_utf16_and_utf8_bom_files_are_read(tmp_path: Path) -> None:
    for encoding in ("utf-16", "utf-8-sig", "utf-32"):
        path = tmp_path / f"{encoding}.yaml"
        path.write_bytes(SPEC.encode(encoding))
        assert load_spec(path).name == "mlp-small"


@pytest.mark.parametrize("value", ["1e308", "abc", "[1, 2]", "true"])
def test_a_search_section_that_is_not_a_mapping(tmp_path: Path, value: str) -> None:
    path = tmp_path / "space.yaml"
    path.write_text(SPACE + f"search: {value}\n")
    with pytest.raises(ArchtuneError, match=r"search: expected a mapping of settings"):
        load_space(path)


def test_deep_nesting_given_as_data_is_refused_before_it_is_walked() -> None:
    """900 nested layers as a Python dict (no file, no parser) used to overflow the stack."""
    inner: object = {"Dense": {"units": 10}}
    for _ in range(900):
        inner = [inner]
    raw = {"name": "deep", "layers": ["Flatten", {"choice": [inner, []]}]}
    with pytest.raises(ArchtuneError, match="nested deeper than 64 levels"):
        load_space(raw)
    with pytest.raises(ArchtuneError, match="nested deeper than 64 levels"):
        load_spec({"name": "deep", "layers": inner})


def test_yaml_aliases_that_stay_small_still_work(tmp_path: Path) -> None:
    path = tmp_path / "alias.yaml"
    path.write_text("name: alias\nlayers: [Flatten, &h {Dense: {units: 32, activation: relu}}, *h,"
                    " {Dense: {units: 10}}]\n")
    spec = load_spec(path)
    assert [layer.type for layer in spec.layers] == ["Flatten", "Dense", "Dense", "Dense"]


@pytest.mark.parametrize("dim", [{"int": [1, 10**12]}, {"float": [0.5, 1000.5], "step": 0.0078125}])
def test_a_grid_of_a_huge_range_is_refused_not_listed(dim: dict) -> None:
    space = load_space({"name": "huge", "layers": ["Flatten", {"Dense": {"units": 10}}],
                        "train": {"epochs" if "int" in dim else "lr": dim}})
    with pytest.raises(ArchtuneError, match="more than 100,000 values"):
        space.grid()
    with pytest.raises(ArchtuneError, match="number of repeats must be an integer from 0 to 16"):
        load_space({"name": "r", "layers": [{"repeat": {"int": [0, 10**12]}, "block": ["Flatten"]},
                                            {"Dense": {"units": 10}}]})
