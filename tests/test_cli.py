"""The CLI end to end (small real subset) and its error contract (one line, exit code 2)."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests._cli import run_cli


def test_specs_lists_reference_counts(capsys) -> None:
    code, out, _ = run_cli(["specs"], capsys)
    assert code == 0
    for name, n in (("cnn-large", "398,090"), ("cnn-classic", "542,230"), ("mlp-small", "101,770")):
        assert any(line.startswith(name) and n in line for line in out.splitlines())


def test_summary_prints_keras_table(capsys) -> None:
    code, out, _ = run_cli(["summary", "cnn-large"], capsys)
    assert code == 0
    assert "Total params: 398,090" in out and "(None, 4, 4, 128)" in out and "FLOPs per image" in out


def test_config_round_trips(tmp_path: Path, capsys) -> None:
    target = tmp_path / "mine.yaml"
    code, _, _ = run_cli(["config", "cnn-classic", "--set", "train.lr=0.02", "-o", str(target)], capsys)
    assert code == 0
    code, out, _ = run_cli(["config", str(target)], capsys)
    assert code == 0 and "lr: 0.02" in out


@pytest.mark.parametrize("spec_text, message", [
    ("layers:\n  - Conv2DD: {filters: 3, kernel_size: 3}\n", "did you mean 'Conv2D'"),
    ("layers:\n  - Flatten: {}\n  - Dropout: {rate: -0.2}\n  - Dense: {units: 10}\n", "dropout rate in [0, 1)"),
    ("layers:\n  - Conv2D: {filters: 3, kernel_size: 3}\n  - Dense: {units: 10}\n", "add a Flatten"),
    ("layers:\n  - Conv2D: {filters: 3, kernel_size: 30}\n  - Flatten: {}\n  - Dense: {units: 10}\n",
     "does not fit"),
    ("layers:\n  - Flatten: {}\n  - Dense: {units: 10}\ntrain: {epoch: 3}\n", "did you mean 'epochs'"),
])
def test_bad_spec_files_exit_2_with_one_line(tmp_path: Path, capsys, spec_text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(spec_text)
    code, out, err = run_cli(["summary", str(path)], capsys)
    assert code == 2
    assert message in err and str(path) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_missing_run_folder_and_bad_split(tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["evaluate", str(tmp_path / "nope")], capsys)
    assert code == 2 and "no such run folder" in err
    (tmp_path / "notrun").mkdir()
    code, _, err = run_cli(["evaluate", str(tmp_path / "notrun")], capsys)
    assert code == 2 and "not an archtune run folder" in err


def test_missing_and_truncated_data_files(tmp_path: Path, capsys, real_data: Path, monkeypatch) -> None:
    folder = tmp_path / "fm"
    folder.mkdir()
    code, _, err = run_cli(["data", "fashion-mnist", "--data-dir", str(folder)], capsys)
    assert code == 2 and "train-images-idx3-ubyte" in err
    for f in (real_data / "fashion-mnist").iterdir():
        shutil.copy(f, folder / f.name)
    raw = gzip.decompress((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw[:5000]))
    code, _, err = run_cli(["data", "fashion-mnist", "--data-dir", str(folder)], capsys)
    assert code == 2 and "t10k-labels-idx1-ubyte" in err and "Traceback" not in err


def test_image_folder_with_one_class(tmp_path: Path, capsys) -> None:
    from PIL import Image

    (tmp_path / "imgs" / "only").mkdir(parents=True)
    for i in range(3):
        Image.new("L", (8, 8), i * 50).save(tmp_path / "imgs" / "only" / f"{i}.png")
    code, _, err = run_cli(["data", str(tmp_path / "imgs")], capsys)
    assert code == 2 and "class" in err


def test_train_evaluate_runs_on_npz(tmp_path: Path, tiny_npz: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(["-q", "train", "cnn-small", "--data", str(tiny_npz), "--epochs", "2",
                              "--set", "train.batch_size=32", "--run-dir", "runs/t1"], capsys)
    assert code == 0, err
    assert "dev accuracy" in out and "runs/t1" in out
    code, out, err = run_cli(["evaluate", "runs/t1", "--split", "test", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert {"accuracy", "loss", "per_class", "confusion_matrix", "capacity"} <= set(result)
    assert sum(map(sum, result["confusion_matrix"])) == 100
    code, out, _ = run_cli(["runs"], capsys)
    assert "t1" in out and f"{result['accuracy'] * 100:.2f}" in out


@pytest.mark.slow
def test_cli_end_to_end_on_real_subset(tmp_path: Path, real_data: Path) -> None:
    """A real subprocess, as a user runs it: train on 600 real images, evaluate on test."""
    exe = [sys.executable, "-m", "archtune.cli"]
    env_run = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 600}
    r = subprocess.run([*exe, "-q", "train", "cnn-classic", "--train-subset", "600", "--epochs", "2",
                        "--run-dir", "runs/real"], **env_run)
    assert r.returncode == 0, r.stderr
    assert "dev accuracy" in r.stdout
    metrics = json.loads((tmp_path / "runs/real/metrics.json").read_text())
    assert metrics["status"] == "complete" and metrics["data"]["n_train"] == 600
    assert metrics["data"]["n_dev"] == 12000 and metrics["params"] == 542_230
    r = subprocess.run([*exe, "evaluate", "runs/real", "--split", "test", "--json"], **env_run)
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["n"] == 10000 and result["accuracy"] > 0.6
    r = subprocess.run([*exe, "data", "fashion-mnist"], **env_run)
    assert "train 48,000 / dev 12,000 / test 10,000" in r.stdout


def test_builtin_recipe_and_space_fit_a_data_set_of_four_classes(tmp_path: Path, capsys) -> None:
    """`units: classes` in the built-ins: `default` and default-space train on 4-class data as
    they are, the run and the study save 4 outputs, and evaluate reads them back."""
    import numpy as np

    from archtune import load_run
    from archtune.search import best_trial, open_study
    from tests.conftest import synthetic_arrays

    x, y = synthetic_arrays(400, 0)
    keep = y < 4
    path = tmp_path / "four.npz"
    np.savez(path, x_train=x[keep][:120], y_train=y[keep][:120], x_test=x[keep][120:],
             y_test=y[keep][120:])
    code, _, err = run_cli(["-q", "train", "default", "--data", str(path), "--epochs", "1",
                            "--threads", "1", "--run-dir", str(tmp_path / "run")], capsys)
    assert code == 0, err
    run = load_run(tmp_path / "run")
    assert run.spec.to_dict()["layers"][-1]["Dense"]["units"] == 4 and run.spec.class_layers == ()
    code, out, err = run_cli(["evaluate", str(tmp_path / "run"), "--split", "test", "--json"], capsys)
    assert code == 0 and json.loads(out)["n"] == 40, err
    code, _, err = run_cli(["-q", "search", "default-space", "--data", str(path), "--trials", "1",
                            "--epochs", "1", "--jobs", "1", "--threads", "1", "--studies-dir", str(tmp_path / "st"),
                            "--study", "four"], capsys)
    assert code == 0, err
    study, _ = open_study("four", tmp_path / "st")
    assert best_trial(study).user_attrs["spec"]["layers"][-1]["Dense"]["units"] == 4
