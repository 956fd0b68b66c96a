"""The typed study records: StudyInfo (study.json) and TrialRecord, and the one best-trial rule."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from archtune.errors import ArchtuneError
from archtune.search import (
    StudyInfo,
    TrialRecord,
    best_record,
    best_trial,
    read_info,
    trial_record,
    write_info,
)


def test_study_info_round_trips_through_study_json_keeping_unknown_keys(tmp_path: Path) -> None:
    info = StudyInfo("s1", storage="sqlite:///x.db", space={"name": "sp"}, sampler="tpe",
                     pruner="none", seed=3, trials=None, extra={"archtune": "9.9", "refine_top": [1]})
    write_info(tmp_path, info)
    raw = json.loads((tmp_path / "study.json").read_text())
    assert raw["archtune"] == "9.9" and raw["trials"] is None and "space_hash" not in raw
    back = read_info(tmp_path)
    assert back == info and back.to_dict() == raw


def test_write_info_never_writes_a_password(tmp_path: Path) -> None:
    write_info(tmp_path, StudyInfo("s", storage="postgresql://u:secret@h/db"))
    assert "secret" not in (tmp_path / "study.json").read_text()
    assert read_info(tmp_path).storage == "postgresql://u@h/db"


def test_read_info_keeps_its_validation_messages(tmp_path: Path) -> None:
    (tmp_path / "study.json").write_text(json.dumps({"study": "s", "seed": "seven"}))
    with pytest.raises(ArchtuneError, match=r"study.json: seed"):
        read_info(tmp_path)
    (tmp_path / "study.json").write_text(json.dumps({"seed": 1}))
    with pytest.raises(ArchtuneError, match="missing 'study'"):
        read_info(tmp_path)
    assert read_info(tmp_path / "none") is None


def _record(number: int, value: float | None) -> TrialRecord:
    return TrialRecord(number, "complete" if value is not None else "pruned", value, {}, {}, None, {})


def test_best_record_picks_the_best_finite_value_and_the_first_on_ties() -> None:
    trials = [_record(0, 0.5), _record(1, 0.9), _record(2, 0.9), _record(3, None),
              _record(4, float("inf"))]
    assert best_record(trials).number == 1
    assert best_record(trials, "minimize").number == 0
    assert best_record([_record(0, None)]) is None


def test_best_trial_of_a_study_follows_the_same_rule() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", study_name="m")
    with pytest.raises(ArchtuneError, match="no complete trial"):
        best_trial(study)
    for v in (0.3, 0.8, 0.8, 0.1):
        study.enqueue_trial({"x": v})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=4)
    records = [trial_record(t) for t in study.get_trials()]
    assert best_trial(study).number == best_record(records).number == 1
    assert records[1].value == 0.8 and records[1].params == {"x": 0.8}
