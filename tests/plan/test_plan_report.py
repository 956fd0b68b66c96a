"""The report of a plan: its numbers, a PDF of at most 5 A4 pages (read with pypdf), figures as
files, and the one-line error when no Chromium can be found."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from archtune import load_run
from archtune.report.plan_data import load_plan_data
from tests._cli import run_cli
from tests.conftest import unavailable

from .conftest import Ran, cli
from .test_plan import MODELS

CHROMIUM = os.environ.get("ARCHTUNE_CHROMIUM")


@pytest.fixture(scope="module")
def plan_page(homework: tuple[Path, Ran], tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, Path, Ran]:
    folder, _ = homework
    figures = tmp_path_factory.mktemp("figures")
    args = ["report", str(folder), "--figures", str(figures)] + (["--pdf"] if CHROMIUM else [])
    ran = cli(args)
    assert ran.code == 0, ran.err
    return folder / "report.html", figures, ran


def _rows(page: str) -> list[str]:
    table = page[page.index('id="plan-table"'):]
    return table[:table.index("</table>")].split("<tr>")[2:]


def test_plan_report_shows_every_model_with_its_one_dev_and_its_test_accuracy(
        plan_page: tuple[Path, Path, Ran], homework: tuple[Path, Ran]) -> None:
    page = plan_page[0].read_text()
    folder, _ = homework
    for title in ("Summary", "Learning curves", "Best model: ", "Gradient flow",
                  "Search: cnn-grid", "Architectures and training setups",
                  "Method and reproduction"):
        assert f"<h2>{title}" in page, title
    rows = _rows(page)
    assert len(rows) == len(MODELS)
    for name, row in zip(MODELS, rows, strict=True):
        run = load_run(folder / "runs" / name)
        test = json.loads((folder / "runs" / name / "eval_test.json").read_text())
        assert f">{name}" in row and f">{run.metrics['params']:,}<" in row
        assert f"{run.metrics['dev']['accuracy'] * 100:.2f}%" in row  # the run's one dev number
        assert f">{test['accuracy'] * 100:.2f}%<" in row
    for fig in ("plan-curves", "plan-gradients", "plan-best", "plan-mistakes", "search-cnn-grid"):
        assert f'<figure id="fig-{fig}"><img' in page, fig
    assert "from 12 complete trials" in page  # importances say what they rest on
    models = page[page.index('id="models-table"'):]
    assert "He-uniform hidden, Glorot-uniform (Keras default) output" in models  # cnn-classic
    assert "sigmoid hidden, softmax output" in models and "Nesterov momentum 0.9" in models
    assert "early stopping on dev loss (patience 3, best weights kept)" in models
    best = load_plan_data(folder).best
    assert best is not None and f"Best model: {best.name}" in page


def test_the_pdf_has_at_most_5_a4_pages(plan_page: tuple[Path, Path, Ran]) -> None:
    if not CHROMIUM:
        unavailable('ARCHTUNE_CHROMIUM is not set; run eval "$(bash scripts/services.sh)"')
    from pypdf import PdfReader

    html, _, ran = plan_page
    pdf = html.with_suffix(".pdf")
    reader = PdfReader(pdf)
    assert 3 <= len(reader.pages) <= 5, len(reader.pages)
    assert f"({len(reader.pages)} pages)" in ran.out
    box = reader.pages[0].mediabox
    assert abs(float(box.width) - 595.3) < 2 and abs(float(box.height) - 841.9) < 2  # A4
    text = "".join(p.extract_text() for p in reader.pages)
    assert "Summary" in text and "Architectures and training setups" in text
    assert "cnn-grid" in text and "Hardest classes" in text


def test_every_figure_is_written_as_png_and_svg(plan_page: tuple[Path, Path, Ran]) -> None:
    html, figures, ran = plan_page
    ids = re.findall(r'<figure id="fig-([^"]+)">', html.read_text())
    assert len(ids) >= 5
    names = sorted(p.name for p in figures.iterdir())
    assert names == sorted([f"{i}.png" for i in ids] + [f"{i}.svg" for i in ids])
    for i in ids:
        assert (figures / f"{i}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (figures / f"{i}.svg").read_bytes()[:1000]
    assert f"{len(ids)} figures written to {figures}" in ran.out


def test_pdf_without_chromium_is_one_line_and_writes_nothing(homework: tuple[Path, Ran],
                                                             tmp_path: Path, capsys,
                                                             monkeypatch) -> None:
    folder, _ = homework
    out = tmp_path / "r.html"
    monkeypatch.setenv("ARCHTUNE_CHROMIUM", str(tmp_path / "no-such-chromium"))
    code, _, err = run_cli(["report", str(folder), "-o", str(out), "--pdf"], capsys)
    assert code == 2 and err.count("\n") == 1 and "ARCHTUNE_CHROMIUM=" in err
    monkeypatch.delenv("ARCHTUNE_CHROMIUM")
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run_cli(["report", str(folder), "-o", str(out), "--pdf"], capsys)
    assert code == 2 and err.count("\n") == 1 and "none was found" in err
    assert not out.exists()


def test_compare_and_run_reports_print_too(homework: tuple[Path, Ran], tmp_path: Path,
                                           capsys) -> None:
    if not CHROMIUM:
        unavailable('ARCHTUNE_CHROMIUM is not set; run eval "$(bash scripts/services.sh)"')
    from pypdf import PdfReader

    folder, _ = homework
    runs = [str(folder / "runs" / n) for n in ("deep-sigmoid", "deep-relu")]
    code, out, err = run_cli(["compare", *runs, "-o", str(tmp_path / "c.html"), "--pdf"], capsys)
    assert code == 0, err
    assert len(PdfReader(tmp_path / "c.pdf").pages) >= 1 and "comparison written" in out
