"""Study folders read back: a folder's own database is found from the folder (never the working
folder), damaged files are one line (exit code 2), and no storage password is printed or stored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from archtune import ArchtuneError
from archtune.search import public_url, search, stored_url
from tests._cli import run_cli

from .conftest import GRID_SPACE, space


@pytest.fixture
def grid_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """studies/grid made from tmp_path/a (study.json holds the relative default storage URL),
    its two grid trials queued."""
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    search(space(GRID_SPACE), fraction=0.5, create_only=True, studies_dir="studies")
    folder = tmp_path / "a" / "studies" / "grid"
    assert json.loads((folder / "study.json").read_text())["storage"] == \
        "sqlite:///studies/grid/study.db"
    return folder


def _one_line_error(capsys, args: list[str], *needles: str) -> str:
    code, _, err = run_cli(args, capsys)
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    for needle in needles:
        assert needle in err, err
    return err


def test_a_folder_without_its_database_never_shows_another_one(grid_study: Path, tmp_path: Path,
                                                                capsys) -> None:
    """The copy's study.json says sqlite:///studies/grid/study.db, which from the working
    folder a/ is the original's database: it must not be read for the copy."""
    copy = Path(shutil.copytree(grid_study, tmp_path / "b" / "grid"))
    (copy / "study.db").unlink()
    missing = f"database {copy.resolve() / 'study.db'} is missing"
    _one_line_error(capsys, ["trials", str(copy)], missing)
    _one_line_error(capsys, ["best", str(copy)], missing)
    _one_line_error(capsys, ["report", str(copy)], missing)
    code, out, _ = run_cli(["studies", "--studies-dir", str(tmp_path / "b")], capsys)
    assert code == 0 and "grid" in out and missing in out
    _one_line_error(capsys, ["search", "--studies-dir", str(tmp_path / "b"),
                             str(_space_file(tmp_path))], missing, "--new")
    assert not (copy / "study.db").exists()  # never created behind the user's back
    code, _, _ = run_cli(["search", "--studies-dir", str(tmp_path / "b"), str(_space_file(tmp_path)),
                          "--new", "--fraction", "0.5", "--create-only"], capsys)
    assert code == 0 and (copy / "study.db").is_file()


def _space_file(tmp_path: Path) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(space(GRID_SPACE)))
    return path


def test_a_moved_or_renamed_folder_still_opens_its_own_database(grid_study: Path, tmp_path: Path,
                                                                 capsys, monkeypatch) -> None:
    moved = Path(shutil.copytree(grid_study, tmp_path / "elsewhere" / "renamed"))
    shutil.rmtree(grid_study)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["trials", str(moved), "--format", "json", "--all"], capsys)
    assert code == 0, err
    assert [t["state"] for t in json.loads(out)] == ["waiting", "waiting"]


def test_a_truncated_database_fails_for_every_reader(grid_study: Path, capsys) -> None:
    db = grid_study / "study.db"
    for extra in grid_study.glob("study.db-*"):
        extra.unlink()
    data = db.read_bytes()
    db.write_bytes(data[: len(data) // 2])
    for args in (["trials", str(grid_study)], ["report", str(grid_study)]):
        _one_line_error(capsys, args, "database disk image is malformed")
    assert not (grid_study / "report.html").exists()


@pytest.mark.parametrize(("text", "message"), [
    ('"a string"', "study.json: expected a mapping of names to values, got the text 'a string'"),
    ("[1]", "study.json: expected a mapping of names to values, got a list"),
    ('{"storage": "sqlite:///study.db"}', "study.json: missing 'study'"),
    ('{"study": 5}', "study.json: study: expected a string, got 5"),
    ('{"study": "grid", "storage": ["x"]}', "study.json: storage: expected a string"),
    ("{", "study.json: not valid JSON"),
])
def test_a_damaged_study_json_is_one_line(grid_study: Path, capsys, text: str, message: str) -> None:
    (grid_study / "study.json").write_text(text)
    _one_line_error(capsys, ["trials", str(grid_study)], message)
    _one_line_error(capsys, ["report", str(grid_study)], message)
    code, out, _ = run_cli(["studies", "--studies-dir", str(grid_study.parent)], capsys)
    assert code == 0 and f"error: {grid_study / 'study.json'}: " in out and message in out


def test_parquet_without_pyarrow_names_the_extra(grid_study: Path, capsys, monkeypatch) -> None:
    import pandas as pd

    def no_engine(*args, **kwargs):  # what pandas raises when neither pyarrow nor fastparquet is there
        raise ImportError("Unable to find a usable engine; tried using: 'pyarrow', 'fastparquet'.")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", no_engine)
    out = grid_study.parent / "t.parquet"
    _one_line_error(capsys, ["trials", str(grid_study), "--format", "parquet", "-o", str(out), "--all"],
                    "pip install 'archtune[parquet]'")
    assert not out.exists()


@pytest.mark.parametrize("url", [
    "postgresql://user:s3cret@db.example:notaport/archtune",  # does not parse
    "postgresql://user:s3cret@db.example/archtune?password=s3cret",
    "user:s3cret@db.example/archtune",
    "postgresql://user:s3cr@t/x@db.example/archtune",  # an unescaped @ and / in the password
])
def test_no_password_is_printed(url: str, capsys, tmp_path: Path) -> None:
    assert "s3cr" not in public_url(url) and "user" in public_url(url)
    for args in (["studies", "--storage", url], ["trials", "x", "--storage", url],
                 ["search", str(_space_file(tmp_path)), "--storage", url, "--create-only",
                  "--studies-dir", str(tmp_path)]):
        code, out, err = run_cli(args, capsys)
        assert "s3cr" not in out + err, out + err
    err = _one_line_error(capsys, ["studies", "--storage", url])
    assert "user" in err


def test_no_password_is_stored(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert stored_url("postgresql://u:pw@h/db?sslmode=require&password=pw") == \
        "postgresql://u@h/db?sslmode=require"
    assert stored_url("sqlite:///rel/x.db") == f"sqlite:///{(tmp_path / 'rel/x.db').as_posix()}"
    with pytest.raises(ArchtuneError) as caught:
        search(space(GRID_SPACE), storage="postgresql://u:pw9@127.0.0.1:1/none", studies_dir="s",
               create_only=True)
    assert "pw9" not in str(caught.value) and "u@127.0.0.1:1/none" in str(caught.value)
    assert not list(Path("s").glob("*/study.json"))


def test_a_relative_sqlite_storage_is_stored_absolute(tmp_path: Path, monkeypatch, capsys) -> None:
    """A --storage path is relative to where the command runs; study.json keeps it absolute,
    so the folder reads the same database from anywhere."""
    monkeypatch.chdir(tmp_path)
    search(space(GRID_SPACE), storage="sqlite:///dbs/shared.db", studies_dir="studies",
           fraction=0.5, create_only=True)
    info = json.loads(Path("studies/grid/study.json").read_text())
    assert info["storage"] == f"sqlite:///{(tmp_path / 'dbs/shared.db').as_posix()}"
    monkeypatch.chdir(tmp_path / "studies")
    code, out, err = run_cli(["trials", "grid", "--studies-dir", ".", "--format", "csv", "--all"],
                             capsys)
    assert code == 0 and len(out.strip().splitlines()) == 3, err
