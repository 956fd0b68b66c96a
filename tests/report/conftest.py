"""Fixtures for the report tests: a tiny .npz data set and small trained runs (built once)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from archtune import Run, evaluate, load_run, train
from archtune.cli import main
from tests.conftest import CLASSES, synthetic_arrays
from tests.report.studies import make_study

CNN = {
    "name": "tiny-cnn",
    "layers": [
        {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 2}},
        {"Conv2D": {"filters": 6, "kernel_size": 3, "padding": "same"}},
        {"BatchNormalization": {}},
        {"Activation": "relu"},
        {"MaxPooling2D": {"pool_size": 2}},
        "Flatten",
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 3},
}
MLP = {
    "name": "tiny-mlp",
    "layers": ["Flatten", {"Dense": {"units": 12, "activation": "relu"}},
               {"Dense": {"units": 10, "activation": "softmax"}}],
    "train": {"optimizer": "adam", "lr": 0.01, "batch_size": 32, "epochs": 2},
}


def spec_on(raw: dict, npz: Path, **train: object) -> dict:
    out = json.loads(json.dumps(raw))
    out["data"] = {"dataset": str(npz)}
    out["train"].update(train)
    return out


@pytest.fixture(scope="session")
def report_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300 + 100 image .npz data set with class names (240 train / 60 dev after the split)."""
    xt, yt = synthetic_arrays(300, 0)
    xs, ys = synthetic_arrays(100, 2)
    path = tmp_path_factory.mktemp("data") / "tiny.npz"
    np.savez(path, x_train=xt, y_train=yt, x_test=xs, y_test=ys, classes=np.array(CLASSES))
    return path


@pytest.fixture(scope="session")
def cnn_run(report_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("runs")
    return train(spec_on(CNN, report_npz), run_dir=root / "cnn", progress=False)


@pytest.fixture(scope="session")
def mlp_run(report_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    root = tmp_path_factory.mktemp("runs")
    return train(spec_on(MLP, report_npz), run_dir=root / "mlp", progress=False)


@pytest.fixture(scope="session")
def evaluated_run(cnn_run: Run, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A copy of ``cnn_run`` evaluated on the test split (eval_test.json written)."""
    path = shutil.copytree(cnn_run.path, tmp_path_factory.mktemp("evaluated") / "cnn")
    evaluate(load_run(path), "test")
    return load_run(path)


STUDY_TRIALS = 24  # every 3rd pruned (n % 3 == 1); n % 17 == 5 failed (5 and 22)


@pytest.fixture(scope="session")
def study_dir(evaluated_run: Run, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-trial study folder; every trial names ``evaluated_run`` as its run folder."""
    root = tmp_path_factory.mktemp("studies")
    return make_study(root / "s1", STUDY_TRIALS, epochs=4,
                      run_dirs={n: str(evaluated_run.path) for n in range(STUDY_TRIALS)})


@pytest.fixture(scope="session")
def pages(study_dir: Path, evaluated_run: Run, mlp_run: Run,
          tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three kinds of report, written once through the CLI: the study (whose best trial
    kept ``evaluated_run``, so ``archtune report STUDY`` also writes that run's report and links
    it) and a comparison of the CNN and the MLP."""
    root = tmp_path_factory.mktemp("pages")
    study = study_dir
    main(["report", str(study)])
    main(["compare", str(evaluated_run.path), str(mlp_run.path), "-o", str(root / "cmp.html")])
    return {"run": evaluated_run.path / "report.html", "study": study / "report.html",
            "compare": root / "cmp.html"}
