"""Study folders: loading by the contract, plot data as numbers, the study report's content."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from archtune.errors import ArchtuneError
from archtune.report import study as sy
from archtune.report.study_report import study_report
from archtune.search import best_record
from tests.report.conftest import STUDY_TRIALS as N


def test_load_reads_every_trial_by_the_contract(study_dir: Path) -> None:
    sd = sy.load_study_data(study_dir)
    assert sd.name == "s1" and sd.direction == "maximize" and len(sd.trials) == N
    statuses = {t.number: t.status for t in sd.trials}
    assert statuses[5] == statuses[22] == "failed" and statuses[1] == statuses[4] == "pruned"
    assert statuses[0] == "complete"
    assert sd.params["lr"].log and sd.params["batch_size"].kind == "categorical"
    assert sd.params["blocks"].kind == "int" and "filters_2" in sd.params
    pruned = next(t for t in sd.trials if t.number == 1)
    assert pruned.value is None and sorted(pruned.intermediate) == [0, 1]


def test_history_and_status_summary(study_dir: Path) -> None:
    sd = sy.load_study_data(study_dir)
    h = sy.history(sd.trials, "maximize")
    done = [t for t in sd.trials if t.status == "complete"]
    assert h.numbers == [t.number for t in done]
    assert h.best_so_far == list(np.maximum.accumulate(h.values))
    assert h.best_so_far[-1] == max(t.value for t in done)
    assert len(h.pruned_numbers) == sum(t.status == "pruned" for t in sd.trials)
    lo = sy.history(sd.trials, "minimize")
    assert lo.best_so_far == list(np.minimum.accumulate(lo.values))
    summary = {s: (n, cpu) for s, n, cpu in sy.status_summary(sd.trials)}
    assert summary["failed"] == (2, 3.0)  # 1.5 s each
    n_pruned = summary["pruned"][0]
    assert summary["pruned"][1] == pytest.approx(8.0 * n_pruned)  # 2 epochs x 4 s
    assert summary["complete"] == (N - 2 - n_pruned, pytest.approx(16.0 * (N - 2 - n_pruned)))
    best = best_record(sd.trials)
    assert best is not None and best.value == h.best_so_far[-1]


def test_cost_curve_counts_every_finished_trial(study_dir: Path) -> None:
    sd = sy.load_study_data(study_dir)
    c = sy.cost_curve(sd.trials, "maximize")
    finished = [t for t in sd.trials if t.status not in ("running", "waiting")]
    assert len(c.minutes) == len(finished) and c.minutes == sorted(c.minutes)
    assert c.minutes[-1] == pytest.approx(sum(s[2] for s in sy.status_summary(sd.trials)) / 60)
    known = [b for b in c.best if b is not None]
    assert known == list(np.maximum.accumulate(known)) and known[-1] == best_record(sd.trials).value
    html = study_report(study_dir, study_dir / "r.html", best_report=False).read_text()
    assert 'id="fig-cost"' in html and f"{c.minutes[-1]:,.1f} CPU-minutes in all" in html


def test_parallel_slices_and_curves(study_dir: Path) -> None:
    sd = sy.load_study_data(study_dir)
    p = sy.parallel(sd.trials, sd.params, "dev_accuracy")
    done = [t for t in sd.trials if t.value is not None]
    assert p.axes[-1] == "dev_accuracy" and p.positions.shape == (len(done), len(sd.params) + 1)
    finite = p.positions[np.isfinite(p.positions)]
    assert finite.min() >= 0 and finite.max() <= 1
    j = p.axes.index("filters_2")  # conditional: only trials with 3 blocks have it
    has = np.array(["filters_2" in t.params for t in done])
    assert np.isnan(p.positions[~has, j]).all() and np.isfinite(p.positions[has, j]).all()
    lr = p.axes.index("lr")  # log scale: positions are linear in log10(lr)
    logs = np.log10([t.params["lr"] for t in done])
    np.testing.assert_allclose(p.positions[:, lr], (logs - logs.min()) / np.ptp(logs))
    slices = {s.name: s for s in sy.slices(sd.trials, sd.params)}
    assert len(slices["filters_2"].y) == has.sum() and len(slices["lr"].y) == len(done)
    assert set(slices["optimizer"].x) <= {0.0, 1.0}
    curves = sy.intermediate(sd.trials)
    assert {c[1] for c in curves} == {"complete", "pruned"}
    assert all(len(c[2]) == (2 if c[1] == "pruned" else 4) for c in curves)
    imp = sy.importances(sd)
    assert set(imp) == set(sd.params) and sum(imp.values()) == pytest.approx(1.0)


def test_the_folders_own_database_is_found_from_the_folder_never_the_cwd(
        study_dir: Path, tmp_path: Path, monkeypatch) -> None:
    from archtune.search import StudyInfo, storage_for_folder

    own = f"sqlite:///{(study_dir / 'study.db').resolve().as_posix()}"
    for cwd in (study_dir.parent, tmp_path):  # old study.json: relative to where search ran
        monkeypatch.chdir(cwd)
        assert storage_for_folder(study_dir, StudyInfo("s1", storage="sqlite:///s1/study.db")) == own
        assert storage_for_folder(study_dir, StudyInfo("s1",
                                                        storage="sqlite:///studies/s1/study.db")) == own
    assert storage_for_folder(study_dir, StudyInfo("s1")) == own
    with pytest.raises(ArchtuneError, match=f"database {tmp_path / 'nowhere/x.db'} is missing"):
        storage_for_folder(tmp_path, StudyInfo("x", storage="sqlite:///nowhere/x.db"))
    assert not (tmp_path / "nowhere").exists()


def test_study_report_content(study_dir: Path, pages: dict[str, Path]) -> None:
    page = pages["study"].read_text()
    for title in ("Overview", "Best trial", "Optimisation history", "Parameter importances",
                  "Parallel coordinates", "Slice plots", "Learning curves of all trials",
                  "Trials", "Search space"):
        assert f"<h2>{title}</h2>" in page
    for fig in ("history", "importances", "parallel", "slices", "intermediate"):
        assert f'<figure id="fig-{fig}"><img' in page
    sd = sy.load_study_data(study_dir)
    table = page[page.index('id="trials-table"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == N + 1  # header + one row per trial
    best = best_record(sd.trials)
    assert best is not None
    assert re.search(rf'id="best-value"[^>]*>{best.value:.4f}<', page)
    assert re.search(r'<td>pruned</td><td class="num" data-v="\d+">\d+</td>', page)
    assert "&quot;lr&quot;: {" in page  # the search space, escaped in a <pre>
    assert not list(study_dir.glob(".*.tmp"))


def test_study_without_database_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "study.json").write_text(json.dumps({"study": "broken",
                                                   "storage": "sqlite:///nothere/study.db"}))
    with pytest.raises(ArchtuneError, match="database"):
        study_report(folder)
    assert not (folder / "report.html").exists()


def test_study_without_trials_is_an_error(tmp_path: Path) -> None:
    import optuna

    folder = tmp_path / "empty"
    folder.mkdir()
    storage = f"sqlite:///{folder / 'study.db'}"
    (folder / "study.json").write_text(json.dumps({"study": "empty", "storage": storage}))
    optuna.create_study(study_name="empty", storage=storage)
    with pytest.raises(ArchtuneError, match="no trials yet"):
        study_report(folder)
    assert not (folder / "report.html").exists()
