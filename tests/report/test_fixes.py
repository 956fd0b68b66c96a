"""Fixes found in the reports: one dev accuracy everywhere, what a run changed from its built-in
spec, honest gradient axes, one verdict at chance level, waiting trials, 1-epoch curves,
importances with their trial count, readable ticks and values, evaluate and compare options."""

from __future__ import annotations

import json
import logging
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from archtune import Run, evaluate, load_run, load_spec, train
from archtune.report import data as plot_data
from archtune.report import figures as fg
from archtune.report import study as sy
from archtune.report.run import collect
from tests._cli import run_cli
from tests.report.conftest import CNN, spec_on
from tests.report.studies import make_study
from tests.search.conftest import GRID_SPACE, space


@pytest.fixture(scope="module")
def tta_run(report_npz: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """A CNN whose spec asks for flip TTA (so its dev number differs from the history's)."""
    raw = spec_on(CNN, report_npz, epochs=2, tta=True)
    return train(raw, run_dir=tmp_path_factory.mktemp("tta") / "cnn", progress=False)


def test_one_dev_accuracy_everywhere_with_its_weights(tta_run: Run, mlp_run: Run, tmp_path: Path,
                                                       capsys) -> None:
    dev = tta_run.metrics["dev"]
    assert dev["tta"] is True and dev["epoch"] == tta_run.metrics["best_epoch"]
    assert dev["accuracy"] == evaluate(tta_run, "dev", save=False)["accuracy"]
    shown = f"{dev['accuracy'] * 100:.2f}"
    root = tmp_path / "runs"
    root.mkdir()
    shutil.copytree(tta_run.path, root / "cnn")
    code, out, _ = run_cli(["runs", "--root", str(root)], capsys)
    assert code == 0 and f" {shown} " in out
    code, out, _ = run_cli(["compare", str(root / "cnn"), str(mlp_run.path), "-o",
                            str(tmp_path / "c.html")], capsys)
    assert code == 0 and f">{shown}%<" in (tmp_path / "c.html").read_text()
    from archtune.report import sections

    overview = sections.overview(collect(load_run(root / "cnn"), with_data=False)).body
    assert f">{shown}%<" in overview and f"epoch {dev['epoch']} weights, flip TTA" in overview


def test_overview_says_what_the_run_changed_from_its_built_in_spec(report_npz: Path,
                                                                   tmp_path: Path) -> None:
    from archtune.report import sections

    spec = load_spec("cnn-classic", [f"data.dataset={report_npz}", "train.epochs=1"])
    run = train(spec, run_dir=tmp_path / "classic", progress=False)
    rd = collect(run, with_data=False)
    body = sections.overview(rd).body
    assert "15 epochs" in body and "This run changes it: train.epochs 15 -&gt; 1" in body
    table = sections.architecture(rd).body
    assert "<th>activation</th><th>initialiser</th>" in table
    assert "<td>ReLU</td><td>He-uniform</td>" in table  # the conv layer
    assert "<td>softmax</td><td>Glorot-uniform</td>" in table  # the output layer


def test_gradient_bars_are_honest_and_layer_ticks_whole() -> None:
    assert fg.bar_axis([0.9, 1.1]) == ("linear", 0.0, pytest.approx(1.1 * 1.15))
    assert fg.bar_axis([0.002, 1.5]) == ("log", 0.001, 10.0)
    g = plot_data.GradNorms(["dense_1", "dense_2"], [1, 2], np.array([[0.8, 1.0], [0.9, 1.1]]))
    fig = fg.draw_grad_norms(g)
    depth = fig.axes[1]
    assert depth.get_yscale() == "linear" and depth.get_ylim()[0] == 0.0
    heights = sorted(p.get_height() for p in depth.patches)
    assert heights == pytest.approx([0.9, 1.1])  # bars from 0: 0.9 and 1.1 look alike
    profiles = fg.draw_grad_profiles({"a": g, "b": g})
    ticks = profiles.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)


def test_a_run_at_chance_is_not_called_fine() -> None:
    from archtune.report.compare import _verdict

    flat = [{"epoch": e, "train_loss": 2.303, "dev_loss": 2.303, "train_accuracy": 0.1,
             "dev_accuracy": 0.1} for e in range(1, 4)]
    rd = SimpleNamespace(run=SimpleNamespace(history_rows=flat, classes=[str(i) for i in range(10)]))
    text = _verdict(rd)  # type: ignore[arg-type]
    assert text == "under-fitting: not learning (chance is 10%)" and "fine" not in text


def test_waiting_trials_are_counted_and_hidden(tmp_path: Path, tiny_npz: Path, capsys,
                                               monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARCHTUNE_THREADS", "1")
    Path("grid.yaml").write_text(yaml.safe_dump(space(GRID_SPACE, tiny_npz)))
    code, out, err = run_cli(["search", "grid.yaml", "--trials", "1"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["trials", "grid"], capsys)
    assert code == 0 and len(out.strip().splitlines()) == 2  # header + the trial that ran
    assert "3 waiting trials (queued, not run yet) not listed; --all lists them" in err
    code, out, _ = run_cli(["trials", "grid", "--all"], capsys)
    assert len(out.strip().splitlines()) == 5
    code, out, _ = run_cli(["report", "studies/grid", "--no-best-report"], capsys)
    page = Path("studies/grid/report.html").read_text()
    assert "1 trial run (3 more waiting in the queue)" in page
    rows = page[page.index('id="trials-table"'):]
    assert rows[:rows.index("</table>")].count("<tr>") == 2
    assert "3 waiting trials (queued, not run yet) are not listed" in page


def test_one_epoch_trials_are_drawn_as_points() -> None:
    from archtune.report.figures_study import draw_intermediate

    curves = [(n, "complete" if n % 2 else "pruned", [1], [0.5 + n / 100]) for n in range(6)]
    ax = draw_intermediate(curves, "dev_accuracy").axes[0]
    points = sum(len(c.get_offsets()) for c in ax.collections)
    assert points == 6
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["complete (3)", "pruned (3)"]


def test_importances_need_ten_trials_and_say_how_many(tmp_path: Path) -> None:
    from archtune.report.study_report import _importances

    few = sy.load_study_data(make_study(tmp_path / "few", 6))
    assert "need at least 10 complete trials" in _importances(few).body
    assert f"this study has {len(few.complete)}" in _importances(few).body
    many = sy.load_study_data(make_study(tmp_path / "many", 24))
    assert f"from {len(many.complete)} complete trials" in _importances(many).body


def test_slice_ticks_do_not_crowd_and_values_are_rounded(study_dir: Path,
                                                         pages: dict[str, Path]) -> None:
    from archtune.report.figures_study import draw_slices

    sd = sy.load_study_data(study_dir)
    fig = draw_slices(sy.slices(sd.trials, sd.params), "dev_accuracy")
    by_name = {ax.get_title(): ax for ax in fig.axes if ax.get_title()}
    assert len(by_name["dropout"].get_xticks()) <= 6
    page = pages["study"].read_text()
    best = page[page.index('id="best-params"'):]
    best = best[:best.index("</table>")]
    floats = re.findall(r'data-v="([0-9]*\.[0-9e-]+)">([^<]+)<', best)
    assert floats
    for raw, shown in floats:  # 4 significant digits shown, every digit kept for sorting
        assert shown == f"{float(raw):.4g}" and len(raw) > len(shown)
    assert sy.param_text(0.18987697514344648) == "0.1899"


def test_evaluate_takes_several_runs_and_checks_them_first(cnn_run: Run, mlp_run: Run,
                                                           tmp_path: Path, capsys) -> None:
    a = Path(shutil.copytree(cnn_run.path, tmp_path / "a"))
    b = Path(shutil.copytree(mlp_run.path, tmp_path / "b"))
    code, _, err = run_cli(["evaluate", str(a), str(tmp_path / "nope")], capsys)
    assert code == 2 and "no such run folder" in err and not (a / "eval_dev.json").exists()
    code, out, _ = run_cli(["evaluate", str(a), str(b), "--split", "test"], capsys)
    assert code == 0 and out.count("test split (100 images") == 2
    summary = out.splitlines()[-3:]
    assert summary[0].startswith("run") and "test acc" in summary[0]
    for path, line in zip((a, b), summary[1:], strict=True):
        acc = json.loads((path / "eval_test.json").read_text())["accuracy"]
        assert f"{acc * 100:.2f}%" in line
    code, out, _ = run_cli(["evaluate", str(a), str(b), "--json"], capsys)
    assert [r["split"] for r in json.loads(out)] == ["dev", "dev"]


def test_compare_test_evaluates_what_was_not(cnn_run: Run, mlp_run: Run, tmp_path: Path,
                                             capsys) -> None:
    a = Path(shutil.copytree(cnn_run.path, tmp_path / "a"))
    b = Path(shutil.copytree(mlp_run.path, tmp_path / "b"))
    assert not (a / "eval_test.json").exists()
    code, _, err = run_cli(["compare", str(a), str(b), "--test", "-o", str(tmp_path / "c.html")],
                           capsys)
    assert code == 0, err
    page = (tmp_path / "c.html").read_text()
    for path in (a, b):
        test = json.loads((path / "eval_test.json").read_text())
        assert f">{test['accuracy'] * 100:.2f}%<" in page and f">{test['macro_f1']:.4f}<" in page


def test_no_checkpoint_is_not_called_kept(report_npz: Path, tmp_path: Path, monkeypatch,
                                          caplog) -> None:
    import archtune.training.trainer as trainer

    def stop(*_a: object, **_k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer, "train_epoch", stop)
    with caplog.at_level(logging.WARNING, "archtune"), pytest.raises(KeyboardInterrupt):
        train(spec_on(CNN, report_npz), run_dir=tmp_path / "r", progress=False)
    assert "no checkpoint: no epoch finished" in caplog.text and "kept" not in caplog.text
    assert not (tmp_path / "r" / "best.pt").exists()


def test_readme_examples_fit_the_readme(capsys) -> None:
    """The README's inspect example names a Conv2D layer of the README's own spec, and its
    --dry-run example previews the search (same seed) it follows."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```yaml\n(name: my-cnn\n.*?)```", readme, re.S)
    assert block
    spec = load_spec(yaml.safe_load(block.group(1)))
    layer = int(re.search(r"archtune inspect runs/try1 --image \d+ --layer (\d+)", readme).group(1))
    assert spec.layers[layer].type == "Conv2D"
    talos = re.search(r"archtune search seed-cnn-grid --sampler grid --fraction 0.1 (--seed \d+)"
                      r"\s+# the Talos way", readme)
    dry = re.search(r"archtune search seed-cnn-grid .*--dry-run", readme)
    assert talos and dry and talos.group(1) in dry.group(0)
