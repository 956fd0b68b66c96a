"""Budgets checked before training: max_params, max_flops, max_latency_ms (issue 11, part 4)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

import archtune.training
from archtune import ArchtuneError
from archtune.search import Limits, latency_ms, load_space, search, trials_dataframe
from archtune.specs import infer_shapes, spec_from_dict, totals

from .conftest import GRID_SPACE, run_cli, space


def _params(raw: dict[str, Any], point: dict[str, Any]) -> int:
    return totals(infer_shapes(spec_from_dict(load_space(raw).resolve(point)))).params


def _count_training(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = archtune.training.train

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(archtune.training, "train", counting)
    return calls


def test_over_budget_candidates_are_invalid_and_never_trained(tmp_path: Path, tiny_splits,
                                                              monkeypatch) -> None:
    raw = space(GRID_SPACE)
    small, large = (_params(raw, {"filters": f, "lr": 0.01}) for f in (2, 4))
    assert small < large
    raw["search"] = {"sampler": "grid", "max_params": (small + large) // 2}
    calls = _count_training(monkeypatch)
    study = search(raw, studies_dir=tmp_path, splits=tiny_splits)
    df = trials_dataframe(study).set_index("number")
    over = df[df["param.filters"] == 4]
    fits = df[df["param.filters"] == 2]
    assert len(over) == 2 and set(over["state"]) == {"invalid"}
    assert all("max_params" in e and "not trained" in e for e in over["error"])
    assert set(fits["state"]) == {"complete"} and len(calls) == 2  # only those that fit trained
    for t in study.trials:
        attrs = t.user_attrs
        if t.params["filters"] == 4:
            assert attrs["train_seconds"] == 0 and attrs["epochs"] == 0 and not t.intermediate_values
            assert t.constraints["params"] > 0 and t.state.name == "PRUNED"  # what TPE learns from
        else:
            assert t.constraints["params"] <= 0


def test_latency_is_measured_once_per_architecture_and_checked(tmp_path: Path, tiny_splits) -> None:
    raw = space(GRID_SPACE)
    raw["search"] = {"sampler": "grid", "max_latency_ms": 1e-6}
    study = search(raw, studies_dir=tmp_path, splits=tiny_splits)
    assert all(t.user_attrs["status"] == "invalid" for t in study.trials)
    assert all("latency" in t.user_attrs["error"] for t in study.trials)
    by_filters: dict[int, set[float]] = {}
    for t in study.trials:
        by_filters.setdefault(t.params["filters"], set()).add(t.user_attrs["latency_ms"])
    assert all(len(v) == 1 and next(iter(v)) > 0 for v in by_filters.values())  # cached, lr aside
    spec = spec_from_dict(load_space(raw).resolve({"filters": 2, "lr": 0.01}))
    assert latency_ms(spec) == next(iter(by_filters[2]))


def test_tpe_learns_to_avoid_over_budget_candidates(tmp_path: Path, tiny_splits) -> None:
    base = copy.deepcopy(GRID_SPACE)
    base["layers"][0]["Conv2D"]["filters"] = {"choice": [2, 3, 4, 40, 48, 64], "name": "filters"}
    base["train"]["lr"] = 0.01
    limit = _params(base, {"filters": 4})
    over: dict[str, int] = {}
    for sampler in ("random", "tpe"):
        raw = copy.deepcopy(base)
        raw["search"] = {"sampler": sampler, "max_params": limit, "trials": 24, "seed": 3,
                         "pruner": "none"}
        study = search(raw, studies_dir=tmp_path / sampler, splits=tiny_splits)
        later = [t for t in study.trials if t.number >= 8]  # after TPE's random start-up trials
        over[sampler] = sum(t.params["filters"] > 4 for t in later)
    assert over["random"] >= 5  # half the space is over budget
    assert over["tpe"] < over["random"] / 2, over


def test_limits_are_part_of_the_study(tmp_path: Path, tiny_splits) -> None:
    raw = space(GRID_SPACE)
    raw["search"] = {"sampler": "grid", "max_flops": 1e9}
    search(raw, studies_dir=tmp_path, splits=tiny_splits, trials=1)
    with pytest.raises(ArchtuneError, match="was created with max_flops"):
        search(raw, studies_dir=tmp_path, splits=tiny_splits, max_flops=1e6)
    with pytest.raises(ArchtuneError, match="max_params.*must be > 0"):
        search(raw, studies_dir=tmp_path / "b", splits=tiny_splits, max_params=0)


def test_limits_of_a_study_info() -> None:
    class Info:
        max_params, max_flops, max_latency_ms = 10, None, None

    assert Limits.of(Info()) == Limits(max_params=10)
    assert Limits.of(object()) is None


def test_dry_run_marks_over_budget_candidates(tmp_path: Path, tiny_npz: Path) -> None:
    raw = space(GRID_SPACE, tiny_npz)
    small, large = (_params(raw, {"filters": f, "lr": 0.01}) for f in (2, 4))
    raw["search"] = {"sampler": "grid", "max_params": (small + large) // 2}
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    result = run_cli("search", "s.yaml", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("over budget") == 2


def test_jobs_auto_runs_one_trial_per_core_for_small_models() -> None:
    from archtune.search import AUTO_MAX_FLOPS, median_flops, resolve_jobs

    small = load_space(space(GRID_SPACE))
    assert median_flops(small) < AUTO_MAX_FLOPS
    assert resolve_jobs("auto", small, cores=2) == 2 and resolve_jobs("auto", small, cores=1) == 1
    assert resolve_jobs(3, small, cores=2) == 3
    big = space(GRID_SPACE)
    big["input_shape"] = [256, 256, 1]
    big["layers"][0]["Conv2D"]["filters"] = {"choice": [256, 512], "name": "filters"}
    assert median_flops(load_space(big)) > AUTO_MAX_FLOPS
    assert resolve_jobs("auto", load_space(big), cores=2) == 1


def test_jobs_must_be_a_count_or_auto(tmp_path: Path) -> None:
    with pytest.raises(ArchtuneError, match="jobs"):
        search(space(GRID_SPACE), studies_dir=tmp_path, jobs="many")  # type: ignore[arg-type]
    result = run_cli("search", "grid.yaml", "--jobs", "many", cwd=tmp_path)
    assert result.returncode == 2 and "expected a number of processes or 'auto'" in result.stderr
