"""The search verbs: output, formats, and the error contract (one line, exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from archtune.search import open_study
from tests._cli import run_cli as run

from .conftest import GRID_SPACE, TINY_SPACE, space


def test_dry_run_lists_a_seeded_tenth_of_the_reference_grid(capsys) -> None:
    args = ["search", "seed-cnn-grid", "--sampler", "grid", "--fraction", "0.1", "--seed", "7",
            "--dry-run"]
    code, out, _ = run(args, capsys)
    assert code == 0 and "172 of 1,728 candidates" in out
    rows = [line for line in out.splitlines() if "conv.1.filters=" in line]
    assert len(rows) == 172
    params = [line.split("FLOPs", 1)[1].strip() for line in rows]
    assert len(set(params)) == 172
    assert run(args, capsys)[1] == out  # the same sample on a second run


def test_search_then_every_reading_verb(tmp_path: Path, tiny_npz: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("grid.yaml").write_text(yaml.safe_dump(space(GRID_SPACE, tiny_npz)))
    code, out, _ = run(["search", "grid.yaml", "--fraction", "0.5", "--seed", "1"], capsys)
    assert code == 0 and "study 'grid': 2 trials done (2 complete)" in out
    assert "best dev accuracy" in out
    code, out, _ = run(["studies"], capsys)
    assert code == 0 and "grid" in out and "2/2" in out
    code, out, _ = run(["trials", "grid", "--sort", "dev_accuracy"], capsys)
    assert code == 0 and "filters" in out and len(out.strip().splitlines()) == 3
    assert run(["trials", "grid", "--format", "csv", "-o", "t.csv"], capsys)[0] == 0
    assert len(pd.read_csv("t.csv")) == 2
    assert run(["trials", "grid", "--format", "parquet", "-o", "t.parquet"], capsys)[0] == 0
    assert pd.read_parquet("t.parquet")["state"].tolist() == ["complete"] * 2
    code, out, _ = run(["trials", "grid", "--format", "json"], capsys)
    assert {r["number"] for r in json.loads(out)} == {0, 1}
    code, out, _ = run(["best", "grid", "--json"], capsys)
    best = json.loads(out)
    assert code == 0 and best["trial"] in (0, 1) and "filters" in best["params"]
    code, out, _ = run(["retrain", "grid", "--finalists", "1", "--seeds", "1", "--epochs", "1",
                        "--run-dir", "runs/best"], capsys)
    assert code == 0 and "run saved in runs/best" in out
    assert json.loads(Path("runs/best/search.json").read_text())["trial"] == best["trial"]
    code, out, _ = run(["evaluate", "runs/best", "--split", "test", "--json"], capsys)
    assert code == 0 and 0 <= json.loads(out)["accuracy"] <= 1


def test_create_only_queues_the_same_sample(tmp_path: Path, capsys) -> None:
    code, out, _ = run(["search", "seed-cnn-grid", "--fraction", "0.1", "--seed", "7",
                        "--create-only", "--studies-dir", str(tmp_path)], capsys)
    assert code == 0 and "172 queued trials" in out
    study, info = open_study("seed-cnn-grid", tmp_path)
    queued = [t.system_attrs["fixed_params"] for t in study.trials]
    from archtune.search import load_space

    assert queued == load_space("seed-cnn-grid").select(0.1, 7)[0]
    assert info["grid_size"] == 1728 and info["candidates"] == 172 and info["fraction"] == 0.1


@pytest.mark.parametrize("args, message", [
    (["search", "nope.yaml"], "no such spec file"),
    (["search", "seed-cnn-gird"], "did you mean 'seed-cnn-grid'"),
    (["search", "seed-cnn-grid", "--sampler", "bayes"], "unknown sampler 'bayes'"),
    (["search", "seed-cnn-grid", "--pruner", "halving"], "unknown pruner 'halving'"),
    (["search", "seed-cnn-grid", "--storage", "postgresql://nobody@127.0.0.1:1/x"],
     "cannot open storage 'postgresql://nobody@127.0.0.1:1/x'"),
    (["search", "seed-cnn-grid", "--storage", "nonsense"], "not a database URL"),
    (["trials", "nosuch"], "no study 'nosuch'"),
    (["best", "nosuch"], "no study 'nosuch'"),
    (["retrain", "nosuch"], "no study 'nosuch'"),
    (["worker", "nosuch"], "no study 'nosuch'"),
    (["trials", "x", "--format", "xls"], "unknown format 'xls'"),
])
def test_bad_input_is_one_line_and_exit_code_2(tmp_path: Path, capsys, monkeypatch, args,
                                               message) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert not Path("studies").exists() or not any(Path("studies").iterdir())


def test_invalid_space_file_and_changed_space(tmp_path: Path, tiny_npz: Path, capsys,
                                              monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    bad = space(TINY_SPACE)
    bad["train"]["lr"] = {"float": [0.1, 0.01]}
    Path("bad.yaml").write_text(yaml.safe_dump(bad))
    code, _, err = run(["search", "bad.yaml"], capsys)
    assert code == 2 and "train.lr: empty range [0.1, 0.01]" in err
    Path("s.yaml").write_text(yaml.safe_dump(space(GRID_SPACE, tiny_npz)))
    assert run(["search", "s.yaml", "--trials", "1"], capsys)[0] == 0
    changed = space(GRID_SPACE, tiny_npz, lr={"choice": [0.01, 0.03], "name": "lr"})
    Path("s.yaml").write_text(yaml.safe_dump(changed))
    code, _, err = run(["search", "s.yaml"], capsys)
    assert code == 2 and "different search space (dimensions lr changed)" in err and "--new" in err
    assert len(open_study("grid")[0].trials) == 4  # the queue and finished trial are intact
