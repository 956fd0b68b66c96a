from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
)

from archtune import evaluate, train
from archtune.evaluate import capacity_verdict, metrics_from_logits


def test_metrics_agree_with_sklearn() -> None:
    gen = torch.Generator().manual_seed(0)
    y = torch.randint(0, 5, (500,), generator=gen)
    logits = torch.randn(500, 5, generator=gen) + 2.0 * torch.nn.functional.one_hot(y, 5)
    classes = list("abcde")
    m = metrics_from_logits(logits, y, classes, top_wrong=5)
    pred = logits.argmax(1).numpy()
    assert m["accuracy"] == pytest.approx(accuracy_score(y.numpy(), pred))
    assert m["confusion_matrix"] == confusion_matrix(y.numpy(), pred).tolist()
    assert [m["per_class"][c]["precision"] for c in classes] == pytest.approx(
        precision_score(y.numpy(), pred, average=None))
    assert [m["per_class"][c]["recall"] for c in classes] == pytest.approx(
        recall_score(y.numpy(), pred, average=None))
    assert m["macro_f1"] == pytest.approx(f1_score(y.numpy(), pred, average="macro"))
    assert m["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item())
    worst = m["most_confident_wrong"]
    probs = [w["probability"] for w in worst]
    assert probs == sorted(probs, reverse=True) and len(worst) == 5
    assert all(pred[w["index"]] != y[w["index"]] for w in worst)
    top = logits.softmax(1).max(1).values.numpy()
    wrong = pred != y.numpy()
    assert probs[0] == pytest.approx(float(np.max(top[wrong])))


def _hist(train_acc, dev_acc, train_loss, dev_loss):
    return [{"train_accuracy": a, "dev_accuracy": b, "train_loss": c, "dev_loss": d}
            for a, b, c, d in zip(train_acc, dev_acc, train_loss, dev_loss, strict=True)]


def test_capacity_verdicts() -> None:
    over = _hist([0.8, 0.9, 0.97, 0.99], [0.8, 0.85, 0.86, 0.86], [0.6, 0.3, 0.1, 0.03], [0.5, 0.4, 0.45, 0.6])
    assert capacity_verdict(over)["verdict"] == "over-fitting"
    under = _hist([0.6, 0.7, 0.74, 0.78], [0.62, 0.71, 0.76, 0.8], [1.2, 0.9, 0.8, 0.7], [1.1, 0.85, 0.75, 0.65])
    v = capacity_verdict(under)
    assert v["verdict"] == "under-fitting" and v["numbers"]["train_loss_drop_last_third"] > 0.05
    fine = _hist([0.85, 0.9, 0.91, 0.915], [0.86, 0.9, 0.905, 0.91], [0.4, 0.3, 0.29, 0.288],
                 [0.38, 0.3, 0.29, 0.29])
    assert capacity_verdict(fine)["verdict"] == "fine"


def test_a_near_zero_dev_loss_minimum_is_no_huge_rise() -> None:
    full = [1.0, 1.0, 1.0, 1.0]
    noise = _hist(full, full, [0.3, 0.01, 1e-6, 1e-6], [0.2, 1e-9, 2e-9, 0.002])  # +0.002 on ~0
    v = capacity_verdict(noise)
    assert v["verdict"] == "fine" and v["numbers"]["dev_loss_rise_from_min"] == pytest.approx(0.04)
    rose = capacity_verdict(_hist(full, full, [0.3, 0.01, 1e-6, 1e-6], [0.2, 1e-9, 0.01, 0.3]))
    assert rose["verdict"] == "over-fitting"
    assert rose["reason"] == "dev loss rose from 0.0000 (epoch 2) to 0.3000 at the end"


def test_evaluate_run_on_given_split(tiny_splits, tmp_path) -> None:
    from tests.training.test_train import tiny

    run = train(tiny(epochs=2), splits=tiny_splits, run_dir=tmp_path / "r", progress=False)
    result = evaluate(run, "dev", data=tiny_splits.dev)
    assert (run.path / "eval_dev.json").is_file() and (run.path / "confusion_dev.csv").is_file()
    model = run.load_model()
    with torch.no_grad():
        acc = (model(tiny_splits.dev.x).argmax(1) == tiny_splits.dev.y).float().mean().item()
    assert result["accuracy"] == pytest.approx(acc)
    assert sum(map(sum, result["confusion_matrix"])) == len(tiny_splits.dev.y)
    assert result["capacity"]["verdict"] in ("fine", "over-fitting", "under-fitting")


def test_capacity_verdict_flags_a_net_at_chance() -> None:
    stuck = _hist([0.1, 0.1, 0.1], [0.1, 0.1, 0.1], [2.303, 2.303, 2.303], [2.303, 2.303, 2.303])
    v = capacity_verdict(stuck, chance=0.1)
    assert v["verdict"] == "under-fitting" and "not learning" in v["reason"]
    assert capacity_verdict(stuck)["verdict"] == "fine"  # without the chance level it cannot tell


def test_the_public_evaluate_is_callable_whatever_was_imported_first() -> None:
    import importlib

    import archtune

    importlib.import_module("archtune.evaluate")  # binds archtune.evaluate to the module
    from archtune import evaluate

    assert callable(evaluate) and callable(archtune.evaluate)
    with pytest.raises(archtune.ArchtuneError, match="no such run folder"):
        evaluate("no/such/run", "dev")
