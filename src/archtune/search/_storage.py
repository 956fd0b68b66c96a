"""Optuna storage: URLs, connections (heartbeat and retry of dead trials), study folders.

A study lives in ``<studies_dir>/<study>/``: ``study.json`` (what it searches and how), by
default ``study.db`` (its SQLite storage) and, when kept, ``trials/<number>/`` run folders.
Any Optuna RDB URL works as storage (PostgreSQL for many machines).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._files import is_file, read_object
from ..errors import ArchtuneError, did_you_mean, short
from ._records import STUDY_FIELDS, StudyInfo

if TYPE_CHECKING:
    import optuna
    from optuna.storages import RDBStorage

log = logging.getLogger(__name__)

HEARTBEAT_S = 15  # a running trial records a heartbeat this often
GRACE_S = 45  # a trial without heartbeat for this long is failed and retried
MAX_RETRY = 3  # a trial whose worker keeps dying is retried at most this many times
STUDY_FILE = "study.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
STUDY_DB = "study.db"  # a study folder's own SQLite storage
SCRATCH = "scratch"  # a study folder's trial runs in progress (those not kept), <number> each


@dataclass
class Handle:
    """An open study with its storage, its archtune info (study.json) and its folder."""

    study: optuna.Study
    storage: RDBStorage
    info: StudyInfo
    folder: Path

    @property
    def name(self) -> str:
        return self.study.study_name


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ArchtuneError(f"study name {short(name)}: use letters, digits, '.', '_' and '-' (at most 100)")
    return name


def default_storage(studies_dir: str | Path, study: str) -> str:
    """``sqlite:///<studies_dir>/<study>/study.db`` (relative to the working folder when
    ``studies_dir`` is)."""
    return f"sqlite:///{Path(studies_dir).as_posix()}/{study}/study.db"


_CREDENTIALS = re.compile(r"^((?:[A-Za-z][\w+.-]*://)?[^:/@\s]*):.*@", re.S)
_SECRET_PARAMS = re.compile(r"(?i)([?&;](?:password|passwd|pwd|secret|token)=)[^&;\s]*")


def public_url(url: str) -> str:
    """The URL without its password (kept out of study.json and messages; use ~/.pgpass). A
    URL that does not parse is redacted as text: whatever stands between ``user:`` and the last
    ``@``, and password-like query parameters."""
    from sqlalchemy.engine import make_url

    url = str(url)
    try:
        parsed = make_url(url) if url.count("@") <= 1 else None  # else ambiguous: as text
    except Exception:  # sqlalchemy raises ArgumentError and others for junk
        parsed = None
    if parsed is None:
        return _SECRET_PARAMS.sub(r"\1***", _CREDENTIALS.sub(r"\1@", url))
    secret = {k for k in parsed.query if _SECRET_PARAMS.match(f"?{k}=")}
    if not parsed.password and not secret:
        return url
    parsed = parsed._replace(password=None).difference_update_query(secret)
    return parsed.render_as_string(hide_password=False)


def _scrub(text: str, url: str) -> str:
    """``text`` (e.g. a driver's message) with the URL's password, if any, replaced."""
    from sqlalchemy.engine import make_url

    try:
        password = make_url(url).password
    except Exception:
        password = None
    return text.replace(str(password), "***") if password else text


def stored_url(url: str) -> str:
    """The form of a storage URL written to study.json: no password, and a relative SQLite
    file made absolute (a command-line path is relative to the working folder *now*)."""
    path = _sqlite_path(url)
    if path is not None:
        query = url.partition("?")[1] + url.partition("?")[2]
        url = f"sqlite:///{path.resolve().as_posix()}{query}"
    return public_url(url)


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    rest = url[len("sqlite:///"):].split("?", 1)[0]
    return None if rest in ("", ":memory:") else Path(rest)


def _check_url(url: str, must_exist: bool) -> None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ArchtuneError(f"storage '{public_url(url)}': not a database URL; expected e.g. "
                            f"sqlite:///studies/my.db or postgresql://user@host/db") from None
    if parsed.drivername.split("+")[0] not in ("sqlite", "postgresql", "mysql", "oracle", "mssql"):
        raise ArchtuneError(f"storage '{public_url(url)}': unsupported database "
                            f"'{parsed.drivername}'; use sqlite or postgresql")
    path = _sqlite_path(url)
    if path is not None:
        if must_exist and not path.is_file():
            raise ArchtuneError(f"storage '{public_url(url)}': no such database file {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ArchtuneError(f"storage '{public_url(url)}': cannot make folder {path.parent}: "
                                f"{err.strerror}") from None


def _sqlite_setup(storage: RDBStorage, path: Path) -> None:
    """WAL journal (readers never block the writer) and BEGIN IMMEDIATE transactions, so
    processes sharing the file wait for each other instead of failing with 'database is locked'."""
    import sqlite3

    from sqlalchemy import event

    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")

    @event.listens_for(storage.engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; fewer fsyncs

    @event.listens_for(storage.engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    storage.engine.dispose()  # connections made before the listeners existed


def _with_driver(url: str) -> str:
    """``postgresql://`` names no driver and SQLAlchemy 2.1 then wants psycopg 3; use psycopg2
    (archtune's ``postgres`` extra) when psycopg 3 is not installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg") is None \
            and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def connect(url: str, *, must_exist: bool = False) -> RDBStorage:
    """An Optuna RDB storage with heartbeats; a trial whose worker died is retried."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    _check_url(url, must_exist)
    shown, url = public_url(url), _with_driver(url)
    path = _sqlite_path(url)
    if path is not None:
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 120}}
    elif url.startswith("postgresql"):
        kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    else:
        kwargs = {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
            storage = optuna.storages.RDBStorage(
                url, engine_kwargs=kwargs, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                heartbeat_stale_trial_callback=retry)
        if path is not None:
            _sqlite_setup(storage, path)
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError, ImportError, OSError) as err:
        reason = (str(getattr(err, "orig", None) or err).strip().splitlines() or ["?"])[0]
        raise ArchtuneError(f"cannot open storage '{shown}': {_scrub(reason, url)}") from None
    return storage


def load_study(storage: RDBStorage, name: str, url: str) -> optuna.Study:
    """Load a study by name; the error lists the studies the storage holds."""
    import optuna

    names = [s.study_name for s in storage.get_all_studies()]
    if name not in names:
        where = f" in '{public_url(url)}'"
        found = f"; it holds: {', '.join(sorted(names))}" if names else "; it holds no study"
        raise ArchtuneError(f"no study {short(name)}{did_you_mean(name, names)}{where}{found}")
    return optuna.load_study(study_name=name, storage=storage)


def read_info(folder: str | Path) -> StudyInfo | None:
    """The folder's study.json (validated), or None when it has none: the one reader of
    study.json."""
    path = Path(folder) / STUDY_FILE
    if not path.exists():
        return None
    return StudyInfo.from_dict(read_object(path, STUDY_FIELDS, ("study",), "study file"))


def write_info(folder: Path, info: StudyInfo) -> None:
    from ..training.runs import write_json  # torch: kept out of opening a study

    folder.mkdir(parents=True, exist_ok=True)
    if info.storage is not None:
        info = info.replace(storage=public_url(info.storage))  # never a password on disk
    write_json(folder / STUDY_FILE, info.to_dict())


def storage_for_folder(folder: Path, info: StudyInfo | None, *, must_exist: bool = True) -> str:
    """The storage URL of a study folder, never resolved against the working folder.

    The folder's own database (``study.db``; study.json names it as the default
    ``sqlite:///<studies_dir>/<study>/study.db``, relative or absolute) is always the
    ``study.db`` inside the folder, wherever the folder now is; another relative SQLite path is
    relative to the folder; any other URL is used as stored. A missing SQLite file is an error
    naming it (with ``must_exist``)."""
    url = str(info and info.storage or f"sqlite:///{STUDY_DB}")
    path = _sqlite_path(url)
    if path is None:
        return url
    own = path.name == STUDY_DB and (not path.is_absolute() or path.parent.name in
                                     (folder.name, info and info.study))
    target = folder / STUDY_DB if own else path if path.is_absolute() else folder / path
    if must_exist and not target.is_file():
        raise ArchtuneError(f"{folder}: the study's database {target} is missing (study.json "
                            f"names {public_url(url)})")
    return f"sqlite:///{target.resolve().as_posix()}"


def find_folder(path_or_name: str | Path, studies_dir: str | Path) -> Path:
    """The study folder of a path (holding study.json) or of a name under ``studies_dir``."""
    path = Path(path_or_name)
    if is_file(path / STUDY_FILE):
        return path
    folder = Path(studies_dir) / str(path_or_name)
    if is_file(folder / STUDY_FILE):
        return folder
    known = list_folders(studies_dir)
    hint = did_you_mean(str(path_or_name), [f.name for f in known])
    found = f" (studies there: {', '.join(f.name for f in known)})" if known else ""
    raise ArchtuneError(f"no study {short(str(path_or_name))}{hint} under {studies_dir}/{found}; "
                        f"give --studies-dir, or --storage URL for a study elsewhere")


def list_folders(studies_dir: str | Path) -> list[Path]:
    root = Path(studies_dir)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / STUDY_FILE).is_file())
