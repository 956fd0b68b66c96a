"""Run, comparison and study reports written through the CLI, and the error contract (exit 2)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from archtune import Run
from archtune.report.run import collect, run_report, section_plan
from tests._cli import run_cli

RUN_FIGURES = ("curves", "dev-scores", "dev-confusion", "test-scores", "test-confusion",
               "mistakes", "samples", "distribution", "filters", "act-0-0", "act-0-2", "dead",
               "gradients")


def cell(page: str, ident: str) -> str:
    m = re.search(rf'id="{ident}"[^>]*>([^<]*)<', page)
    assert m, ident
    return m.group(1)


def test_run_report_shows_every_figure_and_the_runs_numbers(pages: dict[str, Path],
                                                            evaluated_run: Run) -> None:
    page = pages["run"].read_text()
    for fig in RUN_FIGURES:
        if fig == "mistakes" and "No mistakes on the test split" in page:
            continue  # the tiny task can be learnt perfectly; the real-data test shows mistakes
        assert re.search(rf'<figure id="fig-{fig}"><img alt="[^"]*" src="data:image/png;base64,',
                         page), fig
    metrics = json.loads((evaluated_run.path / "metrics.json").read_text())
    test = json.loads((evaluated_run.path / "eval_test.json").read_text())
    dev = f"{metrics['dev']['accuracy'] * 100:.2f}%"  # the kept weights, fp32, the spec's TTA
    assert cell(page, "overview-dev-accuracy") == dev == cell(page, "dev-metrics-accuracy")
    assert cell(page, "overview-epochs-run") == str(metrics["epochs_run"])
    assert cell(page, "totals-total-params") == f"{metrics['params']:,}"
    assert cell(page, "test-metrics-accuracy") == f"{test['accuracy'] * 100:.2f}%"
    assert cell(page, "verdict") in ("fine", "over-fitting", "under-fitting")
    assert "conv2d_2" in page and 'id="dead-table"' in page and 'id="grad-ratio"' in page
    assert "http://" not in page and "https://" not in page


def test_test_metrics_only_when_evaluated(cnn_run: Run, evaluated_run: Run) -> None:
    assert not (cnn_run.path / "eval_test.json").exists()
    plain = [name for name, _ in section_plan(collect(cnn_run, with_data=False))]
    assert "test-metrics" not in plain and plain[0] == "overview" and plain[-1] == "gradients"
    evaluated = [name for name, _ in section_plan(collect(evaluated_run, with_data=False))]
    assert evaluated == plain[:6] + ["test-metrics"] + plain[6:]


def test_mlp_report_explains_missing_conv_views(mlp_run: Run) -> None:
    from archtune.report import sections

    rd = collect(mlp_run)
    assert "This model has no conv layers" in sections.activations(rd, (0,)).body
    filters = sections.filters(rd).body  # the first Dense layer drawn at the input's shape
    assert 'id="fig-filters"' in filters and "12 units" in filters


def test_compare_report_table_and_figures(pages: dict[str, Path], evaluated_run: Run,
                                          mlp_run: Run) -> None:
    page = pages["compare"].read_text()
    table = page[page.index('id="compare-table"'):page.index("</table>")]
    assert table.count("<tr>") == 3
    for run in (evaluated_run, mlp_run):
        m = json.loads((run.path / "metrics.json").read_text())
        assert f"<td>{run.spec.name}</td>" in table and f">{m['params']:,}<" in table
        assert f">{m['flops']:,}<" in table
    test_acc = json.loads((evaluated_run.path / "eval_test.json").read_text())["accuracy"]
    assert f">{test_acc * 100:.2f}%<" in table
    for fig in ("curves", "confusions", "grad-profiles"):
        assert f'id="fig-{fig}"' in page
    assert 'id="ratio-0"' in page and 'id="ratio-1"' in page


def test_study_report_links_the_best_trials_run_report(pages: dict[str, Path]) -> None:
    page = pages["study"].read_text()
    link = re.search(r'<p id="best-run-link">[^<]*<a href="([^"]+)">', page)
    assert link, "no link to the best trial's run report"
    target = (pages["study"].parent / link.group(1)).resolve()
    assert target == pages["run"].resolve() and target.is_file()
    assert 'id="fig-best-curves"' in page


def test_report_refuses_bad_folders(evaluated_run: Run, tmp_path: Path, capsys) -> None:
    code, _, err = run_cli(["report", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "no such folder" in err
    plain = tmp_path / "plain"
    plain.mkdir()
    code, _, err = run_cli(["report", str(plain)], capsys)
    assert code == 2 and "not a run folder" in err and "study folder" in err and "plan folder" in err
    assert list(plain.iterdir()) == []
    code, _, err = run_cli(["compare", str(evaluated_run.path)], capsys)
    assert code == 2 and "at least two runs" in err


def test_run_without_history_is_refused_and_nothing_written(cnn_run: Run, tmp_path: Path,
                                                            capsys) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ("spec.yaml", "env.json"):
        shutil.copy(cnn_run.path / name, fresh / name)
    metrics = json.loads((cnn_run.path / "metrics.json").read_text())
    metrics.update(status="running", epochs_run=0, best_epoch=None)
    metrics.pop("best", None)
    (fresh / "metrics.json").write_text(json.dumps(metrics))
    before = sorted(p.name for p in fresh.iterdir())
    code, _, err = run_cli(["report", str(fresh)], capsys)
    assert code == 2 and "no training history yet" in err
    code, _, err = run_cli(["compare", str(fresh), str(cnn_run.path), "-o",
                            str(tmp_path / "c.html")], capsys)
    assert code == 2 and "no training history yet" in err
    assert sorted(p.name for p in fresh.iterdir()) == before and not (tmp_path / "c.html").exists()


def test_inspect_cli(cnn_run: Run, tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "maps"
    code, out, _ = run_cli(["inspect", str(cnn_run.path), "--image", "17", "--layer", "2",
                            "-o", str(out_dir)], capsys)
    assert code == 0, out
    assert [p.name for p in out_dir.iterdir()] == ["activations-test17-layer2.png"]
    assert "layer 2 (conv2d_2): 6 channels of 14x14" in out
    code, _, err = run_cli(["inspect", str(cnn_run.path), "--image", "100", "--layer", "0",
                            "-o", str(out_dir)], capsys)
    assert code == 2 and "image 100 is out of range: the test split has 100 images" in err
    code, _, err = run_cli(["inspect", str(cnn_run.path), "--image", "1", "--layer", "1",
                            "-o", str(out_dir)], capsys)
    assert code == 2 and "layer 1 (MaxPooling2D) is not a Conv2D layer" in err
    assert len(list(out_dir.iterdir())) == 1  # the failures wrote nothing


def test_inspect_refuses_an_mlp(mlp_run: Run, capsys) -> None:
    code, _, err = run_cli(["inspect", str(mlp_run.path), "--image", "0"], capsys)
    assert code == 2 and "has no Conv2D layers" in err


def test_data_plots_cli(report_npz: Path, tmp_path: Path, capsys) -> None:
    code, _, _ = run_cli(["data", str(report_npz), "--plots", str(tmp_path / "plots")], capsys)
    assert code == 0
    written = sorted(p.name for p in (tmp_path / "plots").iterdir())
    assert written == ["class_distribution.png", "samples.png"]  # no temp files left
    for name in written:
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_without_its_data_says_what_is_left_out(mlp_run: Run, tmp_path: Path) -> None:
    run = Path(shutil.copytree(mlp_run.path, tmp_path / "run"))
    spec = (run / "spec.yaml").read_text()
    (run / "spec.yaml").write_text(re.sub(r"dataset: .*", "dataset: gone.npz", spec))
    page = run_report(run).read_text()
    assert "its data could not be loaded" in page and "gone.npz" in page
    assert 'id="fig-curves"' in page and 'id="fig-gradients"' in page  # from the run folder


def test_report_failure_keeps_the_old_page(mlp_run: Run, tmp_path: Path, monkeypatch) -> None:
    """A report that fails half-way leaves an existing page as it was, and no temp file."""
    from archtune.report import sections

    run = Path(shutil.copytree(mlp_run.path, tmp_path / "run"))
    (run / "report.html").write_text("old")

    def boom(*_a: object) -> None:
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(sections, "overview", boom)
    with pytest.raises(RuntimeError, match="drawing failed"):
        run_report(run)
    assert (run / "report.html").read_text() == "old"
    assert not [p for p in os.listdir(run) if p.endswith(".tmp")]
