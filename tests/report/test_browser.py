"""The three reports opened in a real headless Chromium (skipped when ARCHTUNE_CHROMIUM is unset,
failed under CI=true; ``eval "$(bash scripts/services.sh)"`` sets it): no console errors, every image decodes,
a screenshot is written, and the page shows the run's numbers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from archtune import Run
from tests.report.chromium import Chromium, PageResult

CHROMIUM = os.environ.get("ARCHTUNE_CHROMIUM")
pytestmark = pytest.mark.usefixtures("chromium")  # skips without it; fails under CI

RUN_SECTIONS = ["Overview", "Architecture", "Configuration and environment", "Learning curves",
                "Capacity verdict", "Dev metrics", "Test metrics", "Most confident mistakes",
                "Data", "First-layer filters", "Activation maps", "Dead filters", "Gradient norms"]
# click a table header (sorting) and read one column back, top to bottom
SORT = """(function () {{
  var t = document.getElementById("{table}");
  t.tHead.rows[0].cells[{col}].click();
  {again}
  return Array.from(t.tBodies[0].rows).map(r => r.cells[{col}].getAttribute("data-v")
                                              || r.cells[{col}].textContent);
}})()"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    b = Chromium(str(CHROMIUM))
    try:
        yield b
    finally:
        b.close()


def check_page(result: PageResult, shot: Path) -> None:
    assert result.errors == [], result.errors
    assert result.images, "no images"
    bad = [i for i in result.images if not i["complete"] or i["width"] <= 0]
    assert bad == [], bad
    assert all(i["src"].startswith("data:image/png;base64,") for i in result.images)
    assert result.external == []
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


def test_run_report_in_chromium(browser: Chromium, pages: dict[str, Path], evaluated_run: Run,
                                tmp_path: Path) -> None:
    shot = tmp_path / "run.png"
    r = browser.open(pages["run"], shot, expressions={
        "best": "document.getElementById('overview-dev-accuracy').textContent",
        "test": "document.getElementById('test-metrics-accuracy').textContent",
        "params": "document.getElementById('totals-total-params').textContent"})
    check_page(r, shot)
    assert r.sections == RUN_SECTIONS
    assert len(r.images) == pages["run"].read_text().count("<figure ") >= 12
    metrics = json.loads((evaluated_run.path / "metrics.json").read_text())
    test = json.loads((evaluated_run.path / "eval_test.json").read_text())
    assert r.values["best"] == f"{metrics['dev']['accuracy'] * 100:.2f}%"
    assert r.values["test"] == f"{test['accuracy'] * 100:.2f}%"
    assert r.values["params"] == f"{metrics['params']:,}"
    assert f"Run report: {evaluated_run.name}" in r.text


def test_compare_report_in_chromium(browser: Chromium, pages: dict[str, Path], evaluated_run: Run,
                                    mlp_run: Run, tmp_path: Path) -> None:
    shot = tmp_path / "compare.png"
    r = browser.open(pages["compare"], shot, expressions={
        "up": SORT.format(table="compare-table", col=2, again=""),
        "down": SORT.format(table="compare-table", col=2, again=""),  # a second click reverses
    })
    check_page(r, shot)
    assert r.sections == ["Runs side by side", "Learning curves", "Confusion matrices",
                          "Gradient norms"]
    params = sorted([evaluated_run.metrics["params"], mlp_run.metrics["params"]])
    assert [int(v.replace(",", "")) for v in r.values["up"]] == params
    assert [int(v.replace(",", "")) for v in r.values["down"]] == params[::-1]
    assert evaluated_run.name in r.text and mlp_run.name in r.text


def test_study_report_in_chromium(browser: Chromium, pages: dict[str, Path], study_dir: Path,
                                  tmp_path: Path) -> None:
    from archtune.report import study as sy

    shot = tmp_path / "study.png"
    r = browser.open(pages["study"], shot, expressions={
        "by_value": SORT.format(table="trials-table", col=2,
                                again='t.tHead.rows[0].cells[2].click();'),
        "rows": "document.getElementById('trials-table').tBodies[0].rows.length",
        "link": "document.querySelector('#best-run-link a').href"})
    check_page(r, shot)
    assert r.sections[:3] == ["Overview", "Best trial", "Optimisation history"]
    sd = sy.load_study_data(study_dir)
    from archtune.search import best_record

    best = best_record(sd.trials)
    assert best is not None and r.values["rows"] == len(sd.trials)
    top = r.values["by_value"][0]  # sorted twice: descending, best first
    assert float(top) == pytest.approx(best.value)
    assert r.values["link"].startswith("file://") and r.values["link"].endswith("report.html")
    counts = {s: n for s, n, _ in sy.status_summary(sd.trials)}
    assert f"pruned\t{counts['pruned']}" in r.text and f"complete\t{counts['complete']}" in r.text
