"""Accuracy against cost: multi-objective studies, their front and their pruning (issue 11, part 5)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
import yaml
from optuna.trial import TrialState, create_trial

from archtune import ArchtuneError
from archtune.search import (
    PEER_MIN,
    TrialRecord,
    best_summary,
    dominates,
    pareto_front,
    parse_objectives,
    peer_median,
    search,
    settings,
    trial_record,
)

from .conftest import TINY_SPACE, run_cli, space


def test_objectives_are_parsed_and_bad_ones_named() -> None:
    assert parse_objectives("pareto") == ["dev_accuracy", "params"]
    assert parse_objectives("dev_accuracy, flops,latency_ms") == ["dev_accuracy", "flops", "latency_ms"]
    assert parse_objectives(["dev_accuracy"]) is None  # one objective: an ordinary study
    with pytest.raises(ArchtuneError, match="did you mean 'params'"):
        parse_objectives("dev_accuracy,parms")
    with pytest.raises(ArchtuneError, match="first objective must be dev_accuracy"):
        parse_objectives(["flops", "dev_accuracy"])
    with pytest.raises(ArchtuneError, match="each objective once"):
        parse_objectives("dev_accuracy,flops,flops")
    with pytest.raises(ArchtuneError, match="expected a list"):
        parse_objectives(3)


def test_optunas_pruners_are_refused_for_multi_objective_studies() -> None:
    with pytest.raises(ArchtuneError, match="refuses multi-objective"):
        settings({"objectives": "pareto"}, {"pruner": "hyperband"})
    assert settings({"objectives": "pareto"}).pruner_name == "median"  # archtune's, by cost peers
    # a space's own hyperband gives way to median when objectives are added; an explicit one errs
    assert settings({"pruner": "hyperband"}, {"objectives": "pareto"}).pruner == "median"
    with pytest.raises(ArchtuneError, match="refuses multi-objective"):
        settings({"pruner": "sha"}, {"objectives": "pareto", "pruner": "hyperband"})


def _record(number: int, acc: float | None, params: int) -> TrialRecord:
    return TrialRecord(number, "complete" if acc is not None else "pruned", acc, {}, {}, 1.0,
                       {"params_count": params})


def test_the_front_is_the_trials_nothing_dominates_cheapest_first() -> None:
    trials = [_record(0, 0.90, 1000), _record(1, 0.85, 500), _record(2, 0.88, 2000),  # 2 < 0
              _record(3, 0.92, 4000), _record(4, 0.85, 800), _record(5, None, 10)]  # 4 < 1; 5 pruned
    front = pareto_front(trials, ["dev_accuracy", "params"])
    assert [t.number for t in front] == [1, 0, 3]
    assert dominates([0.9, 1000], [0.88, 2000]) and not dominates([0.9, 1000], [0.92, 4000])
    assert not dominates([0.9, 1000], [0.9, 1000])  # equal points: neither


def _finished(number: int, params: int, accs: list[float]) -> optuna.trial.FrozenTrial:
    t = create_trial(state=TrialState.PRUNED, user_attrs={
        "params_count": params, "history": [{"dev_accuracy": a} for a in accs]})
    t.number = number
    return t


def test_pruning_compares_a_trial_with_trials_of_similar_cost_only() -> None:
    small = [_finished(i, 1000 + 100 * i, [0.5 + 0.01 * i, 0.6 + 0.01 * i]) for i in range(PEER_MIN)]
    large = [_finished(10 + i, 50_000, [0.95, 0.97]) for i in range(PEER_MIN)]
    median, n = peer_median([*small, *large], 99, "params_count", 1200, 2)
    assert n == PEER_MIN and median == pytest.approx(0.615)  # the large models are not peers
    median, n = peer_median([*small, *large], 99, "params_count", 40_000, 2)
    assert n == PEER_MIN and median == pytest.approx(0.97)
    median, n = peer_median(small[:PEER_MIN - 1], 99, "params_count", 1200, 2)
    assert median is None and n == PEER_MIN - 1  # too few peers: no judgement
    assert peer_median(small, 99, "params_count", 1200, 3)[0] is None  # nobody reached epoch 3


def test_a_pareto_search_tells_accuracy_and_cost_and_reports_the_front(tmp_path: Path, tiny_splits
                                                                        ) -> None:
    raw = space(TINY_SPACE)
    study = search(raw, studies_dir=tmp_path, splits=tiny_splits, trials=6, objectives="pareto",
                   sampler="random", seed=3)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert complete
    for t in complete:
        assert t.values == [t.user_attrs["dev_accuracy"], t.user_attrs["params_count"]]
        assert t.user_attrs["objectives"] == {"params": t.user_attrs["params_count"]}
    b = best_summary(study)
    records = [trial_record(t) for t in complete]
    front = {r["trial"] for r in b["front"]}
    for r in records:  # on the front exactly when no complete trial dominates it
        dominated = any(dominates([o.value, o.attrs["params_count"]], [r.value, r.attrs["params_count"]])
                        for o in records)
        assert (r.number in front) == (not dominated)
    assert b["trial"] == max(records, key=lambda r: (r.value, -r.number)).number
    for t, r in zip(complete, records, strict=True):  # per-epoch values from the history
        assert not t.intermediate_values  # Optuna refuses reports here
        assert r.intermediate == {row["epoch"]: row["dev_accuracy"] for row in t.user_attrs["history"]}
        assert len(r.intermediate) == t.user_attrs["epochs"]

    from archtune.report.study_report import study_report

    html = study_report(tmp_path / "tiny").read_text()
    assert 'id="fig-pareto"' in html and 'id="pareto-table"' in html
    assert 'id="fig-intermediate"' in html  # learning curves drawn from those values
    with pytest.raises(ArchtuneError, match="objectives"):  # resuming with other objectives
        search(raw, studies_dir=tmp_path, splits=tiny_splits, trials=6, objectives="dev_accuracy,flops",
               sampler="random", seed=3)


def test_single_objective_report_has_no_front(tmp_path: Path, tiny_splits) -> None:
    search(space(TINY_SPACE), studies_dir=tmp_path, splits=tiny_splits, trials=2, sampler="random")
    from archtune.report.study_report import study_report

    assert "fig-pareto" not in study_report(tmp_path / "tiny").read_text()


def test_cli_objectives(tmp_path: Path, tiny_npz: Path) -> None:
    raw: dict[str, Any] = space(TINY_SPACE, tiny_npz, epochs=1)
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    bad = run_cli("search", "s.yaml", "--objectives", "dev_accuracy,flps", cwd=tmp_path)
    assert bad.returncode == 2 and "did you mean 'flops'" in bad.stderr and "Traceback" not in bad.stderr
    ok = run_cli("search", "s.yaml", "--objectives", "dev_accuracy,flops", "--trials", "3",
                 "--sampler", "random", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    shown = run_cli("best", "tiny", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Pareto front (dev accuracy against flops)" in shown.stdout
