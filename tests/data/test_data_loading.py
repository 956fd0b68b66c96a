"""load_data: the one way a spec's data is loaded and split; check_fits: the one fit check."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from archtune import ArchtuneError, evaluate, load_spec, train
from archtune.config import DataConfig
from archtune.data import (
    check_fits,
    check_split,
    load_data,
    load_dataset,
    split_dataset,
    test_split,
)
from archtune.report.run_data import run_splits
from archtune.search import load_search_splits, load_space
from archtune.training import load_splits
from tests.conftest import make_splits

MLP = [{"Dense": {"units": 10}}]


def test_load_data_is_load_dataset_then_split_dataset(tiny_npz: Path) -> None:
    cfg = DataConfig(dataset=str(tiny_npz), dev_fraction=0.25, split_seed=3, train_subset=60)
    data = load_data(cfg)
    ds = load_dataset(str(tiny_npz))
    want = split_dataset(ds, dev_fraction=0.25, seed=3, train_subset=60)
    assert torch.equal(data.splits.train.indices, want.train.indices)
    assert torch.equal(data.split("dev").indices, want.dev.indices)
    assert torch.equal(data.split("test").x, test_split(ds).x)
    assert len(data.split("train")) == 60 and len(data.split("dev")) == 75
    assert len(load_data(cfg, train_subset=20).splits.train) == 20  # a search's coarse pass
    sized = load_data(DataConfig(dataset=str(tiny_npz), image_size=[14, 12]))
    assert sized.splits.input_shape == (1, 14, 12)


def test_every_caller_gets_the_split_training_used(tiny_npz: Path, tmp_path: Path) -> None:
    data = {"dataset": str(tiny_npz), "dev_fraction": 0.3, "split_seed": 7, "train_subset": 80}
    raw = {"name": "m", "layers": ["Flatten", *MLP], "data": data, "train": {"epochs": 1}}
    run = train(raw, run_dir=tmp_path / "run", progress=False)
    trained = load_splits(load_spec(raw))
    assert run.metrics["data"] == {"dataset": str(tiny_npz), "n_train": 80, "n_dev": 90}
    _, reported = run_splits(run)
    searched = load_search_splits(load_space({"name": "s", "layers": raw["layers"], "data": data}))
    for other in (reported, searched):
        assert torch.equal(other.train.indices, trained.train.indices)
        assert torch.equal(other.dev.indices, trained.dev.indices)
    assert evaluate(run, "train", save=False)["n"] == 80  # the subset, not all 210 left
    assert evaluate(run, "dev", save=False)["n"] == 90


def test_check_fits_names_the_spec_or_space_and_the_fix() -> None:
    splits = make_splits(20, 10)  # 28x28x1, 10 classes
    check_fits(splits, kind="spec", name="a", input_shape=[28, 28, 1], units=10)
    check_fits(splits, kind="space", name="b", input_shape=[28, 28], units=None)
    with pytest.raises(ArchtuneError, match=r"^space 'b' expects input_shape \[32, 32, 3\] but the data "
                                            r"set's images are \[28, 28, 1\]; set input_shape: "
                                            r"\[28, 28, 1\] in the space$"):
        check_fits(splits, kind="space", name="b", input_shape=[32, 32, 3], units=10)
    with pytest.raises(ArchtuneError, match=r"^spec 'a' ends with 7 outputs but the data set has 10 "
                                            r"classes; make the last Dense layer units: 10$"):
        check_fits(splits, kind="spec", name="a", input_shape=[28, 28, 1], units=7)


def test_unknown_split_is_refused_before_any_loading() -> None:
    assert check_split("test") == "test"
    with pytest.raises(ArchtuneError, match="unknown split 'val'; expected one of: train, dev, test"):
        evaluate("no/such/run", "val")
