"""On real Fashion-MNIST (skipped without the data, failed under CI=true): a CNN's report shows every
figure, and the deep sigmoid MLP's vanishing gradients show in a comparison's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from archtune import evaluate, load_run, load_spec, train
from archtune.report.compare import compare_report
from archtune.report.run import run_report

pytestmark = pytest.mark.slow

FIGURES = ("curves", "dev-scores", "dev-confusion", "test-scores", "test-confusion", "mistakes",
           "samples", "distribution", "filters", "act-0-0", "dead", "gradients")


def test_real_cnn_report_shows_each_figure(real_data: Path, tmp_path: Path) -> None:
    spec = load_spec("cnn-small", ["train.epochs=1", "data.train_subset=2000"])
    run = train(spec, run_dir=tmp_path / "cnn", progress=False)
    result = evaluate(run, "test")
    page = run_report(load_run(run.path)).read_text()
    for fig in FIGURES:
        assert re.search(rf'<figure id="fig-{fig}"><img alt="[^"]*" src="data:image/png;base64,',
                         page), fig
    assert "The 16 test images the model got wrong" in page
    assert "T-shirt/top" in page and "Ankle boot" in page  # class names on the figures' tables
    assert f"{result['accuracy'] * 100:.2f}%" in page
    dead = page[page.index('id="dead-table"'):]
    assert "<td>conv2d_0</td><td>filters</td>" in dead[:dead.index("</table>")]


def _ratio(page: str, row: int) -> float:
    """The 'grad norm first/last' cell (its raw value) of the comparison table's row."""
    table = page[page.index('id="compare-table"'):page.index("</table>")]
    rows = table.split("<tr>")[2:]
    m = re.search(r'data-v="([^"]+)">[^<]*\((?:last|first) layer', rows[row])
    assert m, rows[row]
    return float(m.group(1))


def test_vanishing_gradients_show_in_the_comparison(real_data: Path, tmp_path: Path) -> None:
    """The built-in recipe (SGD lr 0.01, glorot init), shortened: the sigmoid net's first layer
    gets a gradient at least 100 times smaller than its last and its loss does not fall; the
    same depth with ReLU and He initialisation has no such gap and learns."""
    runs = [train(load_spec(name, ["train.epochs=2", "data.train_subset=9600"]),
                  run_dir=tmp_path / name, progress=False)
            for name in ("mlp-deep-sigmoid", "mlp-deep-relu")]
    page = compare_report([r.path for r in runs], tmp_path / "cmp.html").read_text()
    sigmoid, relu = _ratio(page, 0), _ratio(page, 1)
    assert sigmoid <= 0.01, sigmoid
    assert relu >= 0.1, relu
    rows = page[page.index('id="compare-table"'):page.index("</table>")].split("<tr>")[2:]
    assert "not learning (chance is 10%)" in rows[0] and "not learning" not in rows[1]
    m = re.search(r"mlp-deep-sigmoid</td>.*?last layer ([\d,]+)x the first", page)
    assert m and int(m.group(1).replace(",", "")) >= 100
    sig_hist, relu_hist = runs[0].history_rows, runs[1].history_rows
    assert max(h["dev_accuracy"] for h in sig_hist) <= 0.15  # chance level: nothing learnt
    assert sig_hist[-1]["train_loss"] > 2.25  # ln(10) = 2.303: the loss barely moves
    assert relu_hist[-1]["dev_accuracy"] >= 0.25 and relu_hist[-1]["train_loss"] < 2.1
