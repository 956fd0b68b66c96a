"""split_dataset / test_split / channel_stats: stratified, seeded, disjoint splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from archtune.data import Dataset, channel_stats, load_dataset, split_dataset, test_split
from archtune.errors import ArchtuneError


def _dataset(per_class: int = 50, k: int = 10, n_test: int = 30) -> Dataset:
    g = torch.Generator().manual_seed(0)
    n = per_class * k
    return Dataset(
        name="toy",
        classes=[f"c{i}" for i in range(k)],
        x_train=torch.randint(0, 256, (n, 1, 4, 3), dtype=torch.uint8, generator=g),
        y_train=torch.arange(n) % k,
        x_test=torch.randint(0, 256, (n_test, 1, 4, 3), dtype=torch.uint8, generator=g),
        y_test=torch.arange(n_test) % k,
        source="memory",
    )


def test_stratified_exact_counts() -> None:
    sp = split_dataset(_dataset(), dev_fraction=0.2)
    assert len(sp.train.y) == 400 and len(sp.dev.y) == 100
    assert sp.class_counts() == {"train": [40] * 10, "dev": [10] * 10}
    assert sp.classes == [f"c{i}" for i in range(10)] and sp.input_shape == (1, 4, 3)
    assert sp.num_classes == 10


def test_values_scaled_and_indexed() -> None:
    ds = _dataset()
    sp = split_dataset(ds)
    for s in (sp.train, sp.dev):
        assert s.x.dtype == torch.float32 and s.y.dtype == torch.int64
        assert s.indices.dtype == torch.int64
        assert torch.equal(s.x, ds.x_train[s.indices].float() / 255)
        assert torch.equal(s.y, ds.y_train[s.indices])
    assert 0.0 <= float(sp.train.x.min()) and float(sp.train.x.max()) <= 1.0


def test_disjoint_and_complete() -> None:
    sp = split_dataset(_dataset(), dev_fraction=0.3, seed=5)
    tr, dv = set(sp.train.indices.tolist()), set(sp.dev.indices.tolist())
    assert not tr & dv
    assert tr | dv == set(range(500))


def test_seeded() -> None:
    ds = _dataset()
    a = split_dataset(ds, seed=1)
    b = split_dataset(ds, seed=1)
    c = split_dataset(ds, seed=2)
    assert torch.equal(a.dev.indices, b.dev.indices)
    assert torch.equal(a.train.indices, b.train.indices)
    assert not torch.equal(a.dev.indices, c.dev.indices)


def test_train_subset() -> None:
    ds = _dataset()
    full = split_dataset(ds, seed=3)
    sub = split_dataset(ds, seed=3, train_subset=100)
    assert len(sub.train.y) == 100
    assert sub.class_counts()["train"] == [10] * 10
    assert torch.equal(sub.dev.indices, full.dev.indices)  # dev unchanged
    assert set(sub.train.indices.tolist()) <= set(full.train.indices.tolist())
    assert len(split_dataset(ds, train_subset=10).train.y) == 10  # one per class
    assert torch.equal(
        split_dataset(ds, seed=3, train_subset=400).train.indices, full.train.indices
    )
    near = split_dataset(ds, seed=3, train_subset=395)  # too few left over to stratify
    assert len(near.train.y) == 395
    assert set(near.train.indices.tolist()) <= set(full.train.indices.tolist())


@pytest.mark.parametrize("bad", [9, 401, 0, -5, 2.5, True])
def test_bad_train_subset(bad: object) -> None:
    with pytest.raises(
        ArchtuneError, match=r"train_subset: .*expected an integer from 10 .* to 400"
    ):
        split_dataset(_dataset(), train_subset=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, 0.0, 1, 1.0, -0.1, 1.5, True, "0.2"])
def test_bad_dev_fraction(bad: object) -> None:
    with pytest.raises(ArchtuneError, match=r"dev_fraction: .*between 0 and 1"):
        split_dataset(_dataset(), dev_fraction=bad)  # type: ignore[arg-type]


def test_too_small_to_stratify() -> None:
    ds = _dataset(per_class=1, k=3)
    with pytest.raises(ArchtuneError, match="cannot make a stratified dev split"):
        split_dataset(ds)


def test_test_split_is_the_test_part() -> None:
    ds = _dataset()
    ts = test_split(ds)
    assert torch.equal(ts.indices, torch.arange(30))
    assert torch.equal(ts.x, ds.x_test.float() / 255) and torch.equal(ts.y, ds.y_test)


def test_channel_stats() -> None:
    x = torch.stack([torch.full((2, 2), 0.25), torch.tensor([[0.0, 1.0], [0.0, 1.0]])])
    x = x.unsqueeze(0).repeat(3, 1, 1, 1)  # (3, 2, 2, 2)
    mean, std = channel_stats(x)
    assert mean == pytest.approx([0.25, 0.5]) and std == pytest.approx([0.0, 0.5])
    u8 = (x * 255).round().to(torch.uint8)
    assert channel_stats(u8)[0] == pytest.approx([64 / 255, 0.5], abs=1e-6)
    rnd = torch.rand(50, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    m, s = channel_stats(rnd)
    assert m == pytest.approx(rnd.mean(dim=(0, 2, 3)).tolist(), abs=1e-6)
    assert s == pytest.approx(
        rnd.transpose(0, 1).reshape(3, -1).std(1, correction=0).tolist(), abs=1e-6
    )
    with pytest.raises(ArchtuneError, match="expected a non-empty"):
        channel_stats(torch.zeros(0, 1, 2, 2))


@pytest.mark.slow
def test_real_fashion_mnist_split(shared_datasets: Path, isolated_env: Path) -> None:
    ds = load_dataset("fashion-mnist", data_dir=shared_datasets / "fashion-mnist", download=False)
    sp = split_dataset(ds, dev_fraction=0.2, seed=0)
    assert len(sp.train.y) == 48_000 and len(sp.dev.y) == 12_000
    assert sp.class_counts() == {"train": [4800] * 10, "dev": [1200] * 10}
    assert np.intersect1d(sp.train.indices.numpy(), sp.dev.indices.numpy()).size == 0
    mean, std = channel_stats(sp.train.x)
    assert mean[0] == pytest.approx(0.286, abs=2e-3) and std[0] == pytest.approx(0.353, abs=2e-3)
    sub = split_dataset(ds, train_subset=5000)
    assert sub.class_counts()["train"] == [500] * 10


@pytest.mark.parametrize("per_class,k,f", [(50, 10, 0.2), (23, 3, 0.1), (7, 5, 0.33), (101, 2, 0.25)])
def test_train_split_size_is_the_size_split_dataset_makes(per_class: int, k: int, f: float) -> None:
    from archtune.data import train_split_size

    ds = _dataset(per_class=per_class, k=k)
    assert len(split_dataset(ds, dev_fraction=f).train.y) == train_split_size(per_class * k, f)
