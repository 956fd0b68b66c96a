"""Plot data of run figures: checked as numbers, before anything is drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix

from archtune.errors import ArchtuneError
from archtune.report import data as plot_data

CLASSES = ["a", "b", "c", "d"]


def test_confusion_equals_sklearn_and_rows_normalise() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 4, 500))
    y_pred[y_true == 3] = 0  # class 3 always predicted as 0
    conf = plot_data.confusion(y_true, y_pred, CLASSES)
    np.testing.assert_array_equal(conf.counts, confusion_matrix(y_true, y_pred, labels=range(4)))
    np.testing.assert_allclose(conf.rates.sum(axis=1), 1.0)
    assert conf.rates[3, 0] == 1.0 and conf.rates[3, 3] == 0.0
    # a class that never occurs keeps a zero row instead of NaN
    empty = plot_data.confusion_from_counts([[3, 1], [0, 0]], ["x", "y"])
    np.testing.assert_array_equal(empty.rates, [[0.75, 0.25], [0.0, 0.0]])


def history(losses: list[float]) -> list[dict[str, float]]:
    return [{"epoch": i + 1, "train_loss": v + 0.1, "dev_loss": v, "train_accuracy": 1 - v,
             "dev_accuracy": 1 - v - 0.05} for i, v in enumerate(losses)]


def test_learning_curves_mark_best_and_early_stop() -> None:
    h = history([0.9, 0.5, 0.6, 0.7])
    c = plot_data.learning_curves(h, {"best_epoch": 2, "stopped_early": True})
    assert c.epochs == [1, 2, 3, 4] and c.dev_loss == [0.9, 0.5, 0.6, 0.7]
    assert c.best_epoch == 2 and c.stopped_epoch == 4
    assert c.train_accuracy == [pytest.approx(1 - v) for v in (0.9, 0.5, 0.6, 0.7)]
    # no recorded best: the lowest dev loss; no early stop: none marked
    c = plot_data.learning_curves(h, {"stopped_early": False})
    assert c.best_epoch == 2 and c.stopped_epoch is None
    with pytest.raises(ArchtuneError, match="no epochs"):
        plot_data.learning_curves([], {})


def test_class_scores_and_distribution() -> None:
    per_class = {c: {"precision": i / 10, "recall": i / 5, "f1": i / 7, "support": 10 + i}
                 for i, c in enumerate(CLASSES)}
    s = plot_data.class_scores(per_class)
    assert s.classes == CLASSES and s.recall == [0, 0.2, 0.4, 0.6] and s.support == [10, 11, 12, 13]
    d = plot_data.class_distribution(CLASSES, {"train": np.array([5, 5, 4, 6]), "dev": [1, 2, 3, 4]})
    assert d.counts == {"train": [5, 5, 4, 6], "dev": [1, 2, 3, 4]}


def test_sample_grid_titles_match_the_images_classes() -> None:
    y = np.repeat(np.arange(4), 5)
    x = (y[:, None, None, None] / 10 + np.zeros((20, 1, 6, 6))).astype(np.float32)  # pixel = y/10
    grid = plot_data.sample_grid(x, y, CLASSES, per_class=3, seed=1)
    assert len(grid.images) == 12 and grid.images.shape[1:] == (6, 6) and grid.ncols == 4
    for img, title in zip(grid.images, grid.titles, strict=True):
        assert CLASSES[round(float(img[0, 0]) * 10)] == title
    assert grid.titles[:4] == CLASSES  # one image of every class per row
    # colour images keep their channels last
    rgb = plot_data.sample_grid(np.zeros((8, 3, 5, 5)), np.arange(8) % 4, CLASSES, per_class=1)
    assert rgb.images.shape == (4, 5, 5, 3)


def test_mistakes_grid_titles() -> None:
    wrong = [{"true": "a", "predicted": "b", "probability": 0.97},
             {"true": "c", "predicted": "a", "probability": 0.5}]
    grid = plot_data.mistakes_grid(np.zeros((2, 1, 4, 4)), wrong)
    assert grid.titles == ["true: a\npred: b (97%)", "true: c\npred: a (50%)"]
    assert grid.highlight == [True, True]


def test_filter_grid_conv_and_dense() -> None:
    rng = np.random.default_rng(0)
    conv = plot_data.filter_grid(rng.normal(size=(40, 1, 3, 3)), (1, 28, 28))
    assert conv.images.shape == (32, 3, 3)  # limited to 32
    flat = conv.images.reshape(32, -1)
    np.testing.assert_allclose(flat.min(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(flat.max(axis=1), 1.0, atol=1e-6)
    dense = plot_data.filter_grid(rng.normal(size=(8, 784)), (1, 28, 28), kind="unit")
    assert dense.images.shape == (8, 28, 28) and dense.titles[0] == "unit 0"
    rgb = plot_data.filter_grid(rng.normal(size=(4, 3, 5, 5)), (3, 32, 32))
    assert rgb.images.shape == (4, 5, 5, 3)


def test_grad_norms_ratio() -> None:
    rows = [{"epoch": 1, "dense_1": 1e-4, "dense_2": 1e-2, "dense_3": 0.2},
            {"epoch": 2, "dense_1": 2e-4, "dense_2": 1e-2, "dense_3": 0.4}]
    g = plot_data.grad_norms(rows)
    assert g is not None and g.layers == ["dense_1", "dense_2", "dense_3"] and g.epochs == [1, 2]
    assert g.norms.shape == (2, 3) and g.first_over_last == pytest.approx(5e-4)
    assert plot_data.ratio_text(g) == "0.0005 (last layer 2,000x the first)"
    g2 = plot_data.grad_norms([{"epoch": 1, "a": 3.0, "b": 1.5}])
    assert g2 is not None and plot_data.ratio_text(g2) == "2 (first layer 2.0x the last)"
    assert plot_data.grad_norms([]) is None and plot_data.ratio_text(None) == "-"
    zero = plot_data.grad_norms([{"epoch": 1, "a": 1.0, "b": 0.0}])
    assert zero is not None and math.isnan(zero.first_over_last)
