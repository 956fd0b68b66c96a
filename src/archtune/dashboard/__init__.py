"""Live dashboard of studies: optuna-dashboard (the ``dashboard`` extra) served on a study's
storage, while its search runs: per-epoch intermediate values, history, parameter
importances, the trial table.

::
    from archtune.dashboard import Dashboard, study_storages
    with Dashboard("sqlite:///studies/tiny/study.db", port=0) as d:   # 127.0.0.1 by default
        print(d.url)                                                  # http://127.0.0.1:PORT/dashboard

The storage is opened as a search opens it (for SQLite: WAL and waiting transactions), so the
dashboard and running trials share the file without "database is locked".
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..errors import ArchtuneError
from ..search import (
    connect,
    find_folder,
    list_folders,
    load_study,
    read_info,
    storage_for_folder,
)

log = logging.getLogger(__name__)
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
STOP_WAIT_S = 10.0  # how long stop() lets the requests in flight finish


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a browser's open connection never keeps the process alive
    block_on_close = False  # stop() waits for the requests in flight itself, with a deadline

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.requests: set[threading.Thread] = set()  # handler threads not yet finished
        self.requests_lock = threading.Lock()

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        me = threading.current_thread()
        with self.requests_lock:
            self.requests.add(me)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.requests_lock:
                self.requests.discard(me)

    def finish_requests(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for the requests in flight; how many are left."""
        deadline = time.monotonic() + timeout
        with self.requests_lock:
            pending = list(self.requests)
        for thread in pending:
            thread.join(max(0.0, deadline - time.monotonic()))
        return sum(t.is_alive() for t in pending)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        log.debug("dashboard: " + format, *args)


def _storage(storage_url: str) -> Any:
    try:
        import optuna_dashboard  # noqa: F401 - checked before the storage is opened
    except ModuleNotFoundError:
        raise ArchtuneError("the dashboard needs optuna-dashboard: pip install "
                            "'archtune[dashboard]'") from None

    return connect(storage_url, must_exist=True)


def _app(storage: Any) -> Any:
    import optuna_dashboard

    return optuna_dashboard.wsgi(storage)


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, ValueError):
        return False


class Dashboard:
    """optuna-dashboard on one storage, served from a background thread of this process."""

    def __init__(self, storage_url: str, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT):
        self.storage_url = storage_url
        self.storage = _storage(storage_url)
        app = _app(self.storage)
        try:
            self.server = make_server(host, port, app, server_class=_Server,
                                      handler_class=_QuietHandler)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise ArchtuneError(f"dashboard: port {port} on {host} is in use; choose another "
                                    f"with --port") from None
            raise ArchtuneError(f"dashboard: cannot listen on {host}:{port}: "
                                f"{err.strerror or err}") from None
        self.host, self.port = host, self.server.server_address[1]
        if not is_loopback(host):
            log.warning("the dashboard listens on %s: anyone who can reach this machine can see "
                        "and edit the studies (it has no login)", host)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                       daemon=True, name="archtune-dashboard")
        self.thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/dashboard"

    def study_url(self, study_id: int) -> str:
        return f"{self.url}/studies/{study_id}"

    def stop(self) -> None:
        """Stop listening, let the requests in flight finish (a few seconds at most), then
        close the storage's connections, so the process exits at once: a request thread left
        inside SQLite while the interpreter shuts down can hang it."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        left = self.server.finish_requests(STOP_WAIT_S)
        if left:
            log.warning("dashboard: %d request(s) still running after %.0f s; stopping anyway",
                        left, STOP_WAIT_S)
        else:
            self.storage.engine.dispose()

    def __enter__(self) -> Dashboard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def study_storages(studies: list[str], *, storage: str | None = None,
                   studies_dir: str | Path = "studies") -> dict[str, list[tuple[str, int]]]:
    """{storage URL: [(study name, study id), ...]} of the studies asked for: names (or
    folders) under ``studies_dir``, every study there when none is named, or the studies of
    ``storage`` (all of them when none is named)."""

    out: dict[str, list[tuple[str, int]]] = {}
    if storage is not None:
        rdb = connect(storage, must_exist=True)
        names = studies or [s.study_name for s in rdb.get_all_studies()]
        if not names:
            raise ArchtuneError(f"storage '{storage}' holds no study yet")
        out[storage] = [(n, load_study(rdb, n, storage)._study_id) for n in names]
        return out
    folders = [find_folder(s, studies_dir) for s in studies] or list_folders(studies_dir)
    if not folders:
        raise ArchtuneError(f"no studies under {studies_dir}/; name a STUDY, give --studies-dir, "
                            f"or --storage URL")
    for folder in folders:
        info = read_info(folder)
        url = storage_for_folder(folder, info)
        name = info.study if info else folder.name
        study = load_study(connect(url, must_exist=url.startswith("sqlite:///")), name, url)
        out.setdefault(url, []).append((name, study._study_id))
    return out
