"""Fault matrix: kill archtune with SIGKILL at awkward moments, resume it, count the damage.

Each search case starts ``archtune search`` (random sampler, seed 1, tiny trials on synthetic
images), kills it with SIGKILL during its first trial, in the middle of a later trial, or just
after a trial finished, with ``--jobs 1`` and ``--jobs 2``, on SQLite and on PostgreSQL, then
runs the same command again to resume it. One more case kills ``archtune train``. LEGEND
below defines the columns (a resumed process replaying the sequence from its start shows as
'replayed', and so do parallel workers proposing each other's points). Every cell should read
0; '-' marks a column that does not apply.

    python bench/faults.py                              # SQLite; PostgreSQL too when
    ARCHTUNE_TEST_PG_URL=postgresql://... python bench/faults.py --write   # ... a URL is given
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, fields
from pathlib import Path

import _results  # noqa: I001  (bench-local helper)
import numpy as np
import optuna
import yaml
from optuna.trial import TrialState

from archtune._process import start_time
from archtune.search import connect
from archtune.training import list_runs

ARCHTUNE = [sys.executable, "-c", "from archtune.cli import main; main()", "-q"]
MOMENTS = ("first trial", "mid-trial", "between trials")
TRIALS, EPOCHS, IMAGES = 6, 3, 3000
SPACE = {
    "name": "faults",
    "layers": [
        {"repeat": {"int": [1, 2]}, "name": "conv", "block": [
            {"Conv2D": {"filters": {"choice": [4, 8]}, "kernel_size": 3, "padding": "same",
                        "activation": "relu"}},
            {"MaxPooling2D": {"pool_size": 2}}]},
        "Flatten",
        {"Dense": {"units": 10, "activation": "softmax"}},
    ],
    "train": {"lr": {"float": [0.005, 0.05], "log": True},
              "optimizer": {"choice": {"sgd": {"momentum": 0.9}, "adam": {}}},
              "batch_size": 32, "epochs": EPOCHS},
}


LEGEND = """lost: trials complete at the kill and not complete, unchanged, after the resume, plus
trials missing from the budget. rerun: complete trials whose point and trial seed had already
completed. replayed: complete trials whose point is not the one the uninterrupted search (run
first) proposed at that place of its sequence. orphans: processes of the killed command alive
10 s after the kill, or completing a trial after it. running: run folders (kept trials, the
train run) that `list_runs` reports as `running` after the kill and the resume."""


@dataclass
class Row:
    case: str
    lost: int | None = None
    rerun: int | None = None
    replayed: int | None = None
    orphans: int | None = None
    running: int | None = None


def make_data(folder: Path) -> Path:
    """Synthetic 28x28 images: class k lights a square at a class-dependent place."""
    rng = np.random.default_rng(0)
    y = np.arange(IMAGES + 200) % 10
    x = rng.integers(0, 60, (len(y), 28, 28), dtype=np.uint8)
    for i, k in enumerate(y):
        r, c = 2 + 5 * (k // 5), 2 + 5 * (k % 5)
        x[i, r:r + 6, c:c + 6] = 255
    path = folder / "synthetic.npz"
    np.savez(path, x_train=x[:IMAGES], y_train=y[:IMAGES], x_test=x[IMAGES:], y_test=y[IMAGES:])
    return path


def descendants(pid: int) -> dict[int, str | None]:
    """{pid: start time} of every process below ``pid`` (Linux /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
    out, todo = {}, [pid]
    while todo:
        below = [child for child, parent in parents.items() if parent == todo[-1]]
        todo.pop()
        out.update({child: start_time(child) for child in below})
        todo += below
    return out


def alive(procs: dict[int, str | None]) -> list[int]:
    return [pid for pid, start in procs.items() if start is not None and start_time(pid) == start]


class Study:
    """Read a study's trials while archtune writes them."""

    def __init__(self, url: str, name: str, folder: Path):
        self.url, self.name, self.folder, self.storage = url, name, folder, None

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        if self.storage is None:
            if not (self.folder / "study.json").exists():
                return []  # not created yet (and its tables maybe not either)
            self.storage = connect(self.url)  # (as archtune connects: drivers, SQLite setup)
        return optuna.load_study(study_name=self.name, storage=self.storage).get_trials()


def kill_and_count(proc: subprocess.Popen, study: Study | None = None) -> int:
    """SIGKILL ``proc``; count its descendants that go on: alive 10 s later (then ended here),
    or that completed a trial of ``study`` later than 0.5 s after the kill."""
    tree = descendants(proc.pid)
    os.kill(proc.pid, signal.SIGKILL)
    killed = datetime.datetime.now()
    proc.wait()
    deadline = time.monotonic() + 10
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = set(alive(tree))
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    late = killed + datetime.timedelta(seconds=0.5)
    for t in study.trials() if study else []:
        pid = int(str(t.user_attrs.get("worker", ":0")).rsplit(":", 1)[1])
        if pid in tree and t.datetime_complete is not None and t.datetime_complete > late:
            left.add(pid)
    return len(left)


def wait_for(moment: str, proc: subprocess.Popen, study: Study) -> None:
    """Return at the moment to kill: during the first trial, during a trial's training after
    one was complete, or right after a trial (not the first) completed."""
    deadline, seen = time.monotonic() + 300, None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the search ended (exit code {proc.returncode}) before the kill")
        trials = study.trials()
        done = sum(t.state == TrialState.COMPLETE for t in trials)
        running = [t for t in trials if t.state == TrialState.RUNNING]
        if moment == "first trial" and done == 0 and running:
            return
        if moment == "mid-trial" and done >= 1 and any(t.intermediate_values for t in running):
            return
        if moment == "between trials" and seen is not None and done > seen >= 1:
            return
        seen = done
        time.sleep(0.02 if moment == "between trials" else 0.2)
    raise SystemExit(f"timed out waiting for the moment '{moment}'")


def original(t: optuna.trial.FrozenTrial) -> int:
    return t.system_attrs.get("failed_trial", t.number)


def place(trials: list[optuna.trial.FrozenTrial], t: optuna.trial.FrozenTrial) -> int:
    """The trial's place in the sequence of proposals (a retry takes its original's place)."""
    n = original(t)
    return n - sum(1 for u in trials if u.number < n and "failed_trial" in u.system_attrs)


def points(trials: list[optuna.trial.FrozenTrial]) -> dict[int, str]:
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    return {place(trials, t): json.dumps(t.params, sort_keys=True) for t in done}


def damage(before: list, after: list, reference: dict[int, str]) -> tuple[int, int, int]:
    """(lost, rerun, replayed) of a killed and resumed study (see the module's docstring)."""
    now = {t.number: t for t in after}
    lost = sum(1 for t in before if t.state == TrialState.COMPLETE and not (
        t.number in now and now[t.number].state == TrialState.COMPLETE
        and (now[t.number].value, now[t.number].datetime_complete) == (t.value, t.datetime_complete)))
    done = [t for t in after if t.state == TrialState.COMPLETE]
    lost += max(0, TRIALS - len(done))
    rerun = len(done) - len({original(t) for t in done})
    replayed = sum(1 for i, p in points(after).items() if reference.get(i) != p)
    return lost, rerun, replayed


def running_runs(root: Path) -> int:
    return sum(1 for r in list_runs(root) if r.status == "running")


def search_args(work: Path, name: str, url: str | None, jobs: int) -> list[str]:
    args = ["search", str(work / "space.yaml"), "--study", name, "--trials", str(TRIALS),
            "--sampler", "random", "--seed", "1", "--pruner", "none", "--jobs", str(jobs),
            "--studies-dir", str(work / "studies"), "--keep-runs"]
    return args + (["--storage", url] if url else [])


def run(args: list[str], log: Path, timeout: float = 600) -> None:
    with log.open("a") as out:
        done = subprocess.run([*ARCHTUNE, *args], stdout=out, stderr=out, timeout=timeout)
    if done.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise SystemExit(f"archtune {' '.join(args)} failed ({done.returncode}); see {log}:\n{tail}")


def search_case(work: Path, kind: str, url: str | None, jobs: int, moment: str,
                reference: dict[int, str]) -> Row:
    name = f"f-{kind}-{jobs}-{moment.split()[0]}-{uuid.uuid4().hex[:6]}"
    study = Study(url or f"sqlite:///{work}/studies/{name}/study.db", name, work / "studies" / name)
    args, log = search_args(work, name, url, jobs), work / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([*ARCHTUNE, *args], stdout=out, stderr=out)
    try:
        wait_for(moment, proc, study)
        before = study.trials()
        orphans = kill_and_count(proc, study)
    finally:
        if proc.poll() is None:
            proc.kill()
    run(args, log)
    after = study.trials()
    lost, rerun, replayed = damage(before, after, reference)
    if url:
        optuna.delete_study(study_name=name, storage=study.storage)
    return Row(f"search --jobs {jobs}, {kind}, kill {moment}", lost, rerun, replayed, orphans,
               running_runs(work / "studies" / name / "trials"))


def train_case(work: Path, data: Path) -> Row:
    root = work / "runs"
    args = ["train", "cnn-small", "--data", str(data), "--epochs", "30", "--run-dir",
            str(root / "killed")]
    with (work / "train.log").open("w") as out:
        proc = subprocess.Popen([*ARCHTUNE, *args], stdout=out, stderr=out)
    metrics = root / "killed" / "metrics.json"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if json.loads(metrics.read_text()).get("epochs_run", 0) >= 1:
                break
        except (OSError, ValueError):
            pass
        if proc.poll() is not None:
            raise SystemExit(f"archtune train ended ({proc.returncode}); see {work / 'train.log'}")
        time.sleep(0.2)
    orphans = kill_and_count(proc)
    return Row("train, kill mid-epoch", orphans=orphans, running=running_runs(root))


def table(rows: list[Row]) -> str:
    heads = ["case", "completed trials lost", "completed trials rerun", "points replayed",
             "orphan processes", "runs left running"]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        cells = [getattr(r, f.name) for f in fields(r)]
        lines.append("| " + " | ".join("-" if c is None else str(c) for c in cells) + " |")
    return "\n".join(lines)


def matrix(work: Path, pg_url: str | None, only: str) -> list[Row]:
    data = make_data(work)
    (work / "space.yaml").write_text(yaml.safe_dump({**SPACE, "data": {"dataset": str(data)}}))
    cases = [(kind, url, jobs, moment)
             for kind, url in [("SQLite", None)] + ([("PostgreSQL", pg_url)] if pg_url else [])
             for jobs in (1, 2) for moment in MOMENTS
             if only in f"search --jobs {jobs}, {kind}, kill {moment}"]
    rows = []
    if cases:  # the uninterrupted search the killed ones are compared with
        run(search_args(work, "reference", None, 1), work / "reference.log")
        folder = work / "studies" / "reference"
        reference = points(Study(f"sqlite:///{folder}/study.db", "reference", folder).trials())
    for kind, url, jobs, moment in cases:
        rows.append(search_case(work, kind, url, jobs, moment, reference))
        print(table(rows[-1:]).splitlines()[-1], file=sys.stderr, flush=True)
    if only in "train, kill mid-epoch":
        rows.append(train_case(work, data))
    return rows


def run_matrix(pg_url: str | None, only: str = "") -> tuple[list[Row], float]:
    """:func:`matrix` in a temporary folder (kept when a case fails), one thread per archtune
    process unless ARCHTUNE_THREADS says otherwise; its rows and minutes."""
    started = time.perf_counter()
    threads = os.environ.get("ARCHTUNE_THREADS")
    os.environ.setdefault("ARCHTUNE_THREADS", "1")  # tiny models: one thread per process
    try:
        work = Path(tempfile.mkdtemp(prefix="archtune-faults-"))
        rows = matrix(work, pg_url, only)
        shutil.rmtree(work)
    finally:
        if threads is None:
            del os.environ["ARCHTUNE_THREADS"]
    return rows, (time.perf_counter() - started) / 60


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pg-url", default=os.environ.get("ARCHTUNE_TEST_PG_URL"),
                    help="PostgreSQL URL (default: $ARCHTUNE_TEST_PG_URL; none: SQLite only)")
    ap.add_argument("--only", default="", help="run only the cases whose name holds this text")
    ap.add_argument("--write", action="store_true", help="write the table to bench/RESULTS.md")
    args = ap.parse_args()
    rows, minutes = run_matrix(args.pg_url, args.only)
    text = table(rows)
    print(text)
    if args.write and not args.only:
        note = ("" if args.pg_url else "PostgreSQL not tested (no URL given).\n\n")
        body = (f"{note}{text}\n\nEach search: {TRIALS} trials of {EPOCHS} epochs on {IMAGES} "
                f"synthetic images, random sampler, seed 1, `--keep-runs`; killed with SIGKILL, "
                f"then resumed with the same command. The matrix took {minutes:.1f} min.\n\n"
                f"{LEGEND}")
        _results.write_section("Faults: kill, resume, count the damage", body,
                               "python bench/faults.py --write")


if __name__ == "__main__":
    main()
