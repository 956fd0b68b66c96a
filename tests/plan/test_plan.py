"""Experiment plans: validation, reuse by fingerprint, resuming, and the homework plan end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from archtune import load_run, load_spec
from archtune.errors import ArchtuneError
from archtune.plan import fingerprint, load_plan, parse_plan, pick_trial, resolve
from archtune.search import open_study
from tests._cli import run_cli

from .conftest import SEARCH_TRIALS, Ran, cli, homework_args

MODELS = ["mlp-small", "mlp-medium", "mlp-large", "cnn-small", "cnn-medium", "cnn-large",
          "cnn-classic", "deep-sigmoid", "deep-relu", "cnn-grid"]


@pytest.mark.parametrize(("raw", "message"), [
    ({"name": "x", "runz": {}}, "unknown key 'runz' (did you mean 'runs'?)"),
    ({"name": "x"}, "no runs and no searches"),
    ({"name": "x", "runs": {"a": {"set": ["train.epochs=1"]}}}, "'spec' (a built-in spec"),
    ({"name": "x", "runs": {"a": {"spec": "mlp-small", "sett": []}}}, "did you mean 'set'"),
    ({"name": "x", "runs": {"a": "mlp-small"}, "test": ["b"]}, "no run or search named 'b'"),
    ({"name": "x", "searches": {"s": {"space": "seed-cnn-grid"}}, "test": ["s"]},
     "'s' is a search without 'retrain'"),
    ({"name": "x", "searches": {"s": {"space": "seed-cnn-grid", "retrain": {"pick": "bset"}}}},
     "did you mean 'best'"),
    ({"name": "x", "searches": {"s": {"space": "seed-cnn-grid", "sampler": "gird"}}},
     "did you mean 'grid'"),
    ({"name": "x", "runs": {"a b": "mlp-small"}}, "name 'a b'"),
])
def test_bad_plans_are_refused_with_the_key_and_a_hint(raw: dict, message: str) -> None:
    with pytest.raises(ArchtuneError) as err:
        parse_plan(raw)
    assert message in str(err.value)


def test_specs_and_spaces_are_checked_before_anything_runs(tmp_path: Path, capsys) -> None:
    plan = parse_plan({"name": "x", "runs": {"a": "mlp-smal"}})
    with pytest.raises(ArchtuneError, match=r"plan 'x', run 'a': unknown spec 'mlp-smal' \(did "):
        resolve(plan)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "runs": {"a": {"spec": "mlp-small",
                                                               "set": ["train.lr=-1"]}}}))
    code, _, err = run_cli(["plan", str(path), "--plans-dir", str(tmp_path / "plans")], capsys)
    assert code == 2 and err.count("\n") == 1 and "train.lr: must be > 0" in err
    assert not (tmp_path / "plans").exists()
    code, _, err = run_cli(["plan", "homwork", "--dry-run"], capsys)
    assert code == 2 and "did you mean 'homework'" in err
    code, _, err = run_cli(["plan", "homework", "--set", "searches.nope.epochs=1", "--dry-run"],
                           capsys)
    assert code == 2 and "the plan has no search 'nope'" in err


def test_overrides_apply_last_and_edits_change_the_plan() -> None:
    plan = load_plan("homework", ["train.epochs=2", "searches.cnn-grid.epochs=1"])
    steps = {s.key: s for s in resolve(plan)}
    assert steps["run:cnn-small"].spec.train.epochs == 2  # over the built-in 30
    assert steps["search:cnn-grid"].entry.options["epochs"] == 1
    assert len(steps) == 21 and plan.test == MODELS


def test_fingerprint_is_the_resolved_spec_data_and_seed() -> None:
    a = load_spec("mlp-small").to_dict()
    b = json.loads(json.dumps(a))
    b["description"] = "another text"
    b["data"]["data_dir"] = "/elsewhere"
    assert fingerprint(a) == fingerprint(b)
    for key, section in (("seed", "train"), ("split_seed", "data"), ("epochs", "train")):
        c = json.loads(json.dumps(a))
        c[section][key] += 1
        assert fingerprint(c) != fingerprint(a), key


def test_a_run_folder_is_the_same_run_as_training_saved_the_spec(tmp_path: Path,
                                                                   tiny_npz: Path) -> None:
    """spec.yaml holds `auto` flips decided and `units: classes` bound: still the same run."""
    from archtune import train
    from archtune.plan.steps import same_run

    spec = load_spec("default", ["train.epochs=1", f"data.dataset={tiny_npz}"])
    run = train(spec, run_dir=tmp_path / "r", threads=1, progress=False)
    assert run.spec.to_dict() != spec.to_dict()
    assert same_run(tmp_path / "r", spec)
    assert not same_run(tmp_path / "r", load_spec("default", ["train.epochs=2",
                                                              f"data.dataset={tiny_npz}"]))
    assert not same_run(tmp_path / "nothing", spec)


def test_pick_trial_best_or_the_cheapest_within_one_standard_error() -> None:
    trials = [(0, 0.900, 100), (1, 0.905, 500), (2, 0.899, 50), (3, 0.80, 10)]
    assert pick_trial(trials, "best", 3000) == 1
    # se = sqrt(.905 * .095 / 3000) = 0.0054: trials 0 and 1 are within it, 0 is cheaper
    assert pick_trial(trials, "one-se", 3000) == 0
    # on 1,000 images se = 0.0093: trial 2 (0.899) is within it and cheapest
    assert pick_trial(trials, "one-se", 1000) == 2
    with pytest.raises(ArchtuneError, match="no complete trial"):
        pick_trial([], "best", 100)


def test_homework_dry_run_lists_every_step_and_writes_nothing(tmp_path: Path, capsys,
                                                                monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = run_cli(["plan", "homework", "--dry-run"], capsys)
    assert code == 0, out
    lines = out.splitlines()
    assert "21 steps (9 runs, 1 search, 10 tests)" in lines[0]
    assert sum(bool(re.match(r"\[\s*\d+/21\] ", line)) for line in lines) == 21
    assert "grid, 172 of 1,728 candidates (seed 0)" in out and "scored on 3,000 dev images" in out
    assert "cnn-large: 398,090 params" in out and "21 of 21 steps to do" in lines[-1]
    assert list(tmp_path.iterdir()) == []


def _result_lines(ran: Ran) -> list[str]:
    """The line that ends each step (not the line that announces its work)."""
    return [line for line in ran.out.splitlines()
            if re.match(r"\[\s*\d+/21\] ", line) and not line.endswith("...")]


def test_homework_plan_end_to_end(homework: tuple[Path, Ran]) -> None:
    folder, ran = homework
    lines = _result_lines(ran)
    assert len(lines) == 21 and all("reused" not in line for line in lines)
    state = json.loads((folder / "state.json").read_text())
    assert all(s["status"] == "done" for s in state["steps"].values()) and len(state["steps"]) == 21
    for name in MODELS:
        run = load_run(folder / "runs" / name)
        assert run.status == "complete" and run.spec.train.epochs == 1
        assert (folder / "runs" / name / "eval_test.json").is_file(), name
    study, info = open_study(folder / "studies" / "cnn-grid")
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == SEARCH_TRIALS and info["grid_size"] == 1728 and info["candidates"] == 172
    chosen = pick_trial([(t.number, t.value, t.user_attrs["flops"]) for t in done], "one-se", 40)
    retrained = json.loads((folder / "runs" / "cnn-grid" / "search.json").read_text())
    assert retrained["trial"] == chosen == state["steps"]["retrain:cnn-grid"]["trial"]
    saved = yaml.safe_load((folder / "plan.yaml").read_text())
    assert saved["searches"]["cnn-grid"]["dev_subset"] == 40 and "train.epochs=1" in saved["overrides"]


def test_rerun_reuses_every_step_and_the_folder_reruns_the_same_plan(homework: tuple[Path, Ran],
                                                                    plan_npz: Path) -> None:
    folder, _ = homework
    before = {p: p.stat().st_mtime_ns for p in folder.glob("runs/*/metrics.json")}
    ran = cli(homework_args(plan_npz, folder.parent))
    assert ran.code == 0, ran.err
    lines = _result_lines(ran)
    assert len(lines) == 21 and all("reused" in line for line in lines), lines
    assert {p: p.stat().st_mtime_ns for p in folder.glob("runs/*/metrics.json")} == before
    dry = cli(["plan", str(folder), "--dry-run", "--trials", str(SEARCH_TRIALS)])
    assert dry.code == 0 and "0 of 21 steps to do" in dry.out, dry.out
    # without --trials the search is topped up to its whole selected grid next time
    dry = cli(["plan", str(folder), "--dry-run"])
    assert "resume - seed-cnn-grid" in dry.out and f"({SEARCH_TRIALS} of 172 trials done)" in dry.out


def _small_plan(tmp_path: Path, npz: Path, epochs_b: int = 1) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump({
        "name": "small", "data": {"dataset": str(npz)}, "set": ["train.epochs=1"],
        "runs": {"a": {"spec": "mlp-small"}, "b": {"spec": "mlp-deep-relu",
                                                   "set": [f"train.epochs={epochs_b}"]}},
        "test": ["a", "b"]}))
    return path


def test_ctrl_c_then_the_same_command_goes_on(tmp_path: Path, plan_npz: Path, capsys,
                                              monkeypatch) -> None:
    import archtune.plan.execute as execute  # where the plan calls train

    plan = _small_plan(tmp_path, plan_npz)
    real = execute.train
    calls = []

    def interrupted_second(*args: object, **kw: object) -> object:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(execute, "train", interrupted_second)
    args = ["-q", "plan", str(plan), "--plans-dir", str(tmp_path / "plans")]
    code, out, err = run_cli(args, capsys)
    assert code == 130 and "run the same command to go on" in err
    folder = tmp_path / "plans" / "small"
    state = json.loads((folder / "state.json").read_text())
    assert state["steps"]["run:a"]["status"] == "done"
    assert state["steps"]["run:b"]["status"] == "interrupted"
    monkeypatch.setattr(execute, "train", real)
    code, out, _ = run_cli(args, capsys)
    assert code == 0, out
    assert "run a: reused" in out and "run b: trained" in out and "test b: test accuracy" in out
    # a changed entry trains again; the old run folder is moved aside, not deleted
    old = fingerprint(load_run(folder / "runs" / "b").spec.to_dict())
    code, out, _ = run_cli(["-q", "plan", str(_small_plan(tmp_path, plan_npz, epochs_b=2)),
                            "--plans-dir", str(tmp_path / "plans")], capsys)
    assert code == 0 and "run b: trained" in out and "test b: test accuracy" in out
    assert load_run(folder / "runs" / "b").spec.train.epochs == 2  # its own set: wins
    assert (folder / "runs" / f"b.{old}" / "eval_test.json").is_file()
