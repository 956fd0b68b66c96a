"""``tune.json``: a tune's progress in its study folder, so a killed tune resumes where its last
rung ended. The one reader and writer of the file; what it reads is validated like user input."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ArchtuneError, short

TUNE_FILE = "tune.json"
VERSION = 1
STATUSES = ("training", "paused", "stopped", "failed", "delivered")


@dataclass
class Candidate:
    """One trial of the tune and the rungs it reached."""

    number: int  # the Optuna trial
    params: dict[str, Any]
    spec: dict[str, Any] | None  # as trained (schedule wsd); None: not a valid model
    run_dir: str | None
    start_point: int | None = None  # its index in the space's start points
    parent: int | None = None  # the trial it mutates
    status: str = "training"
    scores: list[float] = field(default_factory=list)  # dev accuracy at each rung it finished
    epochs: list[int] = field(default_factory=list)  # epochs trained at each of them
    seconds: list[float] = field(default_factory=list)  # training seconds at each of them
    ranked: list[float] = field(default_factory=list)  # dev accuracy at each rung's compared
    # epoch (TuneState.compared_at), the score its rung decided on
    error: str | None = None

    @property
    def label(self) -> str:
        what = (f"start point {self.start_point}" if self.start_point is not None
                else f"mutation of {self.parent}" if self.parent is not None else "sampled")
        return f"trial {self.number} ({what})"


@dataclass
class TuneState:
    """Everything a resumed tune needs besides the study and the run folders."""

    study: str
    space_hash: str
    minutes: float
    explore: float
    seed: int
    plan: dict[str, Any]
    elapsed_s: float = 0.0  # budget spent, as of the last save
    rung: int = 0  # the rung being trained (len(plan rungs): the winner's final stretch)
    phase: str = "rungs"  # rungs | final | done
    candidates: list[Candidate] = field(default_factory=list)
    compared_at: list[int] = field(default_factory=list)  # each decided rung's compared epoch
    margins: list[float] = field(default_factory=list)  # and the margin a start point had there
    delivered: str | None = None  # the delivered run folder
    dev_accuracy: float | None = None
    version: int = VERSION

    def alive(self) -> list[Candidate]:
        return [c for c in self.candidates if c.status in ("training", "paused")]

    def find(self, number: int) -> Candidate:
        for c in self.candidates:
            if c.number == number:
                return c
        raise KeyError(number)


def write_state(folder: Path, state: TuneState) -> None:
    from ..training.runs import write_json  # torch: kept out of reading a tune

    write_json(folder / TUNE_FILE, asdict(state))


def read_state(folder: Path) -> TuneState | None:
    """The folder's tune.json, or None when there is none."""
    path = folder / TUNE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ArchtuneError(f"{path}: not a readable tune file ({short(str(err))}); remove it "
                            "or pass --new to start the tune again") from None
    try:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise TypeError(f"version {short(data.get('version') if isinstance(data, dict) else data)}, "
                            f"expected {VERSION}")
        data = dict(data)
        candidates = [Candidate(**c) for c in data.pop("candidates")]
        state = TuneState(**data, candidates=candidates)
        for c in candidates:
            if (c.status not in STATUSES or not isinstance(c.scores, list)
                    or not isinstance(c.ranked, list)):
                raise TypeError(f"trial {short(c.number)}: status {short(c.status)}")
        if (state.phase not in ("rungs", "final", "done") or not isinstance(state.plan, dict)
                or not isinstance(state.compared_at, list) or not isinstance(state.margins, list)):
            raise TypeError(f"phase {short(state.phase)}")
    except (TypeError, KeyError, AttributeError) as err:
        raise ArchtuneError(f"{path}: not a tune file of this archtune ({short(str(err))}); "
                            "remove it or pass --new to start the tune again") from None
    return state
