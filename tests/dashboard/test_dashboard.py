"""The live dashboard (optuna-dashboard on a study's storage): loopback by default, clear errors,
and, in headless Chromium, live while a search writes to the same SQLite file."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from archtune import ArchtuneError
from archtune.dashboard import Dashboard, study_storages
from archtune.search import Execution, search
from tests._cli import run_cli
from tests.conftest import make_splits
from tests.search.conftest import TINY_SPACE, archtune_cmd, space
from tests.serve.cdp import Browser

LOCKED = "database is locked"


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.load(r)


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("studies")
    for name in ("one", "two"):
        search(space(TINY_SPACE, epochs=1), study=name, trials=1, studies_dir=root,
               splits=make_splits(), execution=Execution(progress=False))
    return root


def test_serves_a_studys_trials_on_loopback_only(studies: Path) -> None:
    groups = study_storages(["one"], studies_dir=studies)
    (url, [(name, study_id)]), = groups.items()
    assert name == "one" and url == f"sqlite:///{(studies / 'one' / 'study.db').resolve()}"
    with Dashboard(url, port=0) as board:
        assert board.server.server_address[0] == "127.0.0.1"
        assert board.study_url(study_id) == f"http://127.0.0.1:{board.port}/dashboard/studies/{study_id}"
        detail = get_json(f"http://127.0.0.1:{board.port}/api/studies/{study_id}?after=0")
        (trial,) = detail["trials"]
        assert trial["state"] == "Complete" and len(trial["intermediate_values"]) == 1
        with pytest.raises(ArchtuneError, match=f"port {board.port} on 127.0.0.1 is in use"):
            Dashboard(url, port=board.port)
    with pytest.raises(OSError):  # stopped: nothing listens any more
        socket.create_connection(("127.0.0.1", board.port), timeout=2)


def test_stop_lets_requests_in_flight_finish_and_closes_the_storage(studies: Path) -> None:
    """A browser's requests racing the stop: stop() returns with none left running and no
    connection checked out (a request thread inside SQLite at exit can hang the process)."""
    (url, [(_, study_id)]), = study_storages(["one"], studies_dir=studies).items()
    board = Dashboard(url, port=0)
    api = f"http://127.0.0.1:{board.port}/api/studies/{study_id}?after=0"
    started = threading.Event()
    gate = threading.Event()
    real = board.server.get_app()

    def slow_app(environ, start_response):  # holds the request open until the stop has begun
        started.set()
        gate.wait(10)
        return real(environ, start_response)

    board.server.set_app(slow_app)
    answers: list[int] = []
    client = threading.Thread(target=lambda: answers.append(len(get_json(api)["trials"])))
    client.start()
    assert started.wait(30)
    assert len(board.server.requests) == 1
    threading.Timer(0.5, gate.set).start()
    board.stop()
    assert not board.server.requests  # the request finished before stop() returned
    client.join(30)
    assert answers == [1]  # and its answer reached the browser
    assert board.storage.engine.pool.checkedout() == 0


def test_each_storage_of_the_studies_asked_for(studies: Path) -> None:
    groups = study_storages([], studies_dir=studies)  # every study folder: one file each
    assert sorted(n for found in groups.values() for n, _ in found) == ["one", "two"]
    assert len(groups) == 2
    with pytest.raises(ArchtuneError, match="no study 'onee' \\(did you mean 'one'\\?\\)"):
        study_storages(["onee"], studies_dir=studies)
    with pytest.raises(ArchtuneError, match="no studies under"):
        study_storages([], studies_dir=studies / "none")
    with pytest.raises(ArchtuneError, match="no such database file"):
        study_storages([], storage=f"sqlite:///{studies}/missing.db")


class Lines:
    """Collect a process's output lines in a thread (so its pipe never fills)."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)

    def wait_for(self, pattern: str, proc: subprocess.Popen, timeout: float = 120) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if m := re.search(pattern, line):
                    return m
            assert proc.poll() is None, f"process ended: {''.join(self.lines)}"
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in {''.join(self.lines)}")

    @property
    def text(self) -> str:
        self.thread.join(timeout=30)
        return "".join(self.lines)


def _ctrl_c_as_in_a_terminal() -> None:
    """In the child before it starts: SIGINT back to its default. A test suite started in the
    background by a shell script (as CI may) inherits SIGINT ignored, and Python then leaves it
    ignored, so the Ctrl-C this test sends would never arrive (the CI 'hang' of sessions 5-8)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_dashboards_stay_live_while_a_search_writes_the_same_sqlite_file(tmp_path: Path,
                                                                         big_npz: Path,
                                                                         chromium: str) -> None:
    """`search --dashboard` and a separate `archtune dashboard` read the study.db the search
    writes; Chromium sees trials and their per-epoch values appear; nobody sees a lock error."""
    raw = space(TINY_SPACE, big_npz, epochs=8)  # 8 trials: ~20 s of trials on 2 shared cores, to look at
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(raw))
    env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")  # SIGABRT: every thread's stack
    browser = Browser(chromium)  # started first: the search's seconds go to looking, not to starting it
    search_proc = subprocess.Popen(
        archtune_cmd("search", "s.yaml", "--trials", "8", "--pruner", "none", "--dashboard",
                     "--dashboard-port", "0"),
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = Lines(search_proc.stdout), Lines(search_proc.stderr)
    board_proc = None
    try:
        beside = out.wait_for(r"dashboard of study 'tiny': (http://127\.0\.0\.1:\d+/\S+)",
                              search_proc).group(1)
        board_proc = subprocess.Popen(archtune_cmd("dashboard", "tiny", "--port", "0"), cwd=tmp_path,
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, preexec_fn=_ctrl_c_as_in_a_terminal)
        board_out, board_err = Lines(board_proc.stdout), Lines(board_proc.stderr)
        own = board_out.wait_for(r"study 'tiny': (http://127\.0\.0\.1:\d+/\S+)", board_proc).group(1)
        seen: list[list[object]] = []
        for url in (beside, own):
            browser.open(url)
            browser.wait_for("document.body.innerText.includes('tiny')", timeout=60)
            # the page's own API: trials, their state and per-epoch values, while the search runs
            api = url.replace("/dashboard/studies/", "/api/studies/") + "?after=0"
            seen += _trials_seen(browser, api, board_err, search_proc)
        assert sum(int(t[1]) for t in seen) >= 1, "no per-epoch value was visible"
        assert search_proc.wait(timeout=300) == 0, err.text
        browser.open(own)  # after the search: every trial, and the best one, on the page
        browser.wait_for("document.body.innerText.includes('Best Trial')", timeout=60)
        board_proc.send_signal(signal.SIGINT)
        try:
            code = board_proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # a rare CI hang: show where each thread stands
            board_proc.send_signal(signal.SIGABRT)
            board_proc.wait(timeout=30)
            pytest.fail(f"archtune dashboard did not stop within 60 s of Ctrl-C; its stderr "
                        f"(thread stacks at the end):\n{board_err.text}\n{board_out.text}")
        assert code == 0
        assert "dashboard stopped" in board_err.text
        assert LOCKED not in board_err.text and LOCKED not in board_out.text
        assert LOCKED not in err.text and LOCKED not in out.text
        assert "8 trials done (8 complete)" in out.text and "dashboard stopped" in out.text
    finally:
        browser.close()
        for proc in (search_proc, board_proc):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()


def _trials_seen(browser: Browser, api: str, log: Lines, search_proc: subprocess.Popen,
                 timeout: float = 120.0) -> list[list[object]]:
    """[state, number of per-epoch values] of each trial the page's API lists, fetched from the
    page until it lists a running trial. One look is not enough: a CI run once asked before the
    search had made its first trial (the suite's 4th test, on 2 busy cores), and another, on a
    faster CPU, asked between two trials and then after the last one (stop 29)."""
    deadline = time.monotonic() + timeout
    while True:
        browser.evaluate("window.__trials = null")
        browser.evaluate(f"fetch('{api}').then(r => r.json()).then(j => window.__trials = "
                         f"JSON.stringify(j.trials.map(t => [t.state, t.intermediate_values.length])))"
                         f".catch(e => window.__trials = JSON.stringify([['fetch failed', String(e)]]))")
        trials = json.loads(browser.wait_for("window.__trials", timeout=max(deadline - time.monotonic(), 1)))
        assert not trials or trials[0][0] != "fetch failed", f"{api}: {trials}\n{log.text}"
        if any(t[0] == "Running" for t in trials):
            return trials
        assert search_proc.poll() is None and time.monotonic() < deadline, \
            f"{api}: no running trial seen while the search ran; last answer {trials}"
        time.sleep(0.2)


def test_sigterm_stops_the_dashboard_as_ctrl_c_does(studies: Path) -> None:
    proc = subprocess.Popen(archtune_cmd("dashboard", "one", "--studies-dir", str(studies), "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = Lines(proc.stdout)
    try:
        out.wait_for(r"press Ctrl-C to stop", proc)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert "dashboard stopped" in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_errors_are_one_line(studies: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_cli(["dashboard", "onee", "--studies-dir", str(studies)], capsys)
    assert code == 2 and err.count("\n") == 1 and "did you mean 'one'" in err
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # not installed
    code, out, err = run_cli(["dashboard", "one", "--studies-dir", str(studies)], capsys)
    assert code == 2 and err == "error: the dashboard needs optuna-dashboard: pip install " \
                                "'archtune[dashboard]'\n"
