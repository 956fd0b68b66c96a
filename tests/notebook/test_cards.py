"""Notebook reprs: short ``__repr__`` and an HTML card with the key numbers and a curve for a
run, an evaluation, a spec (and its summary), a search space and a study; the per-epoch view
and the per-trial lines."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import optuna
import pandas as pd
import pytest

import archtune as at
from archtune.notebook import EpochsView, EpochTable, in_notebook
from archtune.search import Execution, Study, load_space, open_study, search, trial_line
from tests.conftest import make_splits
from tests.search.conftest import TINY_SPACE, space
from tests.training.test_train import tiny

VOID = {"br", "hr", "img", "input", "meta", "link", "circle", "rect", "polyline", "path", "line"}


class _Balance(HTMLParser):
    """Checks that every element opened is closed, in order (well-formed enough to render)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()


def well_formed(html: str) -> str:
    p = _Balance()
    p.feed(html)
    p.close()
    assert p.stack == [], f"unclosed: {p.stack}"
    return html


def points(html: str) -> list[int]:
    """Number of points of each polyline in the card's curves."""
    return [len(m.split()) for m in re.findall(r'<polyline points="([^"]+)"', html)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> at.Run:
    return at.train(tiny(epochs=3), splits=make_splits(), run_dir=tmp_path_factory.mktemp("r") / "r",
                    progress=False)


def test_run_history_is_a_dataframe_and_the_card_shows_its_numbers(run: at.Run) -> None:
    h = run.history
    assert isinstance(h, pd.DataFrame) and len(h) == 3 and h["epoch"].tolist() == [1, 2, 3]
    assert {"lr", "train_loss", "train_accuracy", "dev_loss", "dev_accuracy", "seconds"} <= set(h)
    assert h["dev_accuracy"].tolist() == [r["dev_accuracy"] for r in run.history_rows]
    text = repr(run)
    best = run.metrics["best"]["dev_accuracy"]
    assert len(text) < 160 and run.name in text and "complete" in text and f"{best * 100:.2f}%" in text
    html = well_formed(run._repr_html_())
    assert run.name in html and "complete" in html and f"{best * 100:.2f}%" in html
    assert f"{run.metrics['params']:,} params" in html and "3 of 3" in html
    assert points(html) == [3, 3, 3, 3]  # accuracy and loss, train and dev, one point per epoch


def test_evaluation_is_a_dict_that_renders_a_card(run: at.Run) -> None:
    result = at.evaluate(run, "dev", data=make_splits().dev, save=False)
    assert isinstance(result, dict) and json.loads(json.dumps(result))["accuracy"] == result["accuracy"]
    text = repr(result)
    assert text.startswith("<Evaluation dev: accuracy") and f"{result['accuracy'] * 100:.2f}%" in text
    html = well_formed(result._repr_html_())
    assert f"{result['accuracy'] * 100:.2f}%" in html and result["capacity"]["verdict"] in html
    assert all(f">{c}<" in html for c in run.classes)  # the per-class table
    cells = [int(v) for v in re.findall(r"rgba\(31,119,180,[0-9.]+\)[^>]*>(\d+)<", html)]
    assert len(cells) == len(run.classes) ** 2 and sum(cells) == result["n"]  # confusion matrix


def test_spec_and_summary_render_the_layer_table() -> None:
    spec = at.load_spec("cnn-classic")
    assert repr(spec) == "<Spec 'cnn-classic': 5 layers, input 28x28x1>"
    html = well_formed(spec._repr_html_())
    assert "542,230" in html and "Conv2D" in html and "(None, 26, 26, 32)" in html
    s = at.summary(spec)
    assert repr(s) == str(s) and str(s).startswith('Model: "cnn-classic"')  # not a quoted string
    assert s._repr_html_() == html


def test_search_space_card_lists_its_dimensions() -> None:
    sp = load_space(space(TINY_SPACE))
    assert repr(sp) == ("<SearchSpace 'tiny': 5 dimensions (conv.n, conv.1.filters, conv.2.filters, "
                       "train.lr, train.optimizer)>")
    html = well_formed(sp._repr_html_())
    assert "not a grid" in html and all(f">{n}<" in html for n in sp.names)
    assert "float in [0.005, 0.05], log scale" in html


def test_study_is_an_optuna_study_with_a_card_and_one_line_per_trial(tmp_path: Path, capsys) -> None:
    seen: list[tuple[int, str]] = []

    def on_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        seen.append((trial.number, trial.state.name))
        raise RuntimeError("a broken callback must not stop the search")

    study = search(space(TINY_SPACE, epochs=2), trials=3, pruner="none", studies_dir=tmp_path,
                   splits=make_splits(), execution=Execution(on_trial=on_trial, progress=True))
    assert isinstance(study, Study) and isinstance(study, optuna.Study)
    assert seen == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["trial 0 complete", "trial 1 complete",
                                                      "trial 2 complete"]
    best = study.best_trial
    assert f"best {best.value * 100:.2f}% (trial {best.number})" in lines[-1]
    assert "conv.n=" in lines[0] and "train.lr=" in lines[0]
    reopened = open_study("tiny", tmp_path)[0]
    assert isinstance(reopened, Study) and len(reopened.trials_df()) == 3
    assert repr(reopened) == (f"<Study 'tiny': 3 trials done (3 complete); best dev accuracy "
                              f"{best.value * 100:.2f}% (trial {best.number})>")
    html = well_formed(reopened._repr_html_())
    assert "3 of 3 done" in html and f"{best.value * 100:.2f}%" in html and "tpe" in html
    assert points(html) == [3]  # best so far, one point per trial
    assert html.count('<circle') == 3  # every trial's value
    assert trial_line(reopened, best).startswith(f"trial {best.number} complete: dev accuracy")


def test_the_epoch_view_updates_in_place_with_html_and_plain_text() -> None:
    class Handle:
        def __init__(self) -> None:
            self.shown: list[str] = []

        def update(self, obj: EpochsView) -> None:
            self.shown.append(repr(obj))

    table = EpochTable()
    table.view, table.handle = EpochsView("r", 2), Handle()
    row = {"epoch": 1, "lr": 0.01, "train_loss": 1.5, "train_accuracy": 0.5, "dev_loss": 1.2,
           "dev_accuracy": 0.625, "seconds": 2.0}
    table.on_epoch_end(1, row, {})
    table.on_epoch_end(2, row | {"epoch": 2, "dev_accuracy": 0.75}, {})
    table.on_train_end(Path("r"), {"status": "complete", "best_epoch": 2})
    assert len(table.handle.shown) == 3
    text = table.handle.shown[-1].splitlines()
    assert text[0] == "training r: complete, epoch 2 of 2" and text[-1].endswith("*")
    assert "75.00%" in text[-1] and "62.50%" in text[-2]
    html = well_formed(table.view._repr_html_())
    assert "75.00%" in html and "(epoch 2)" in html and points(html) == [2, 2]


def test_not_a_notebook_under_pytest() -> None:
    assert in_notebook() is False
