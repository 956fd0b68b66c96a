"""Who is doing the work: a record of this process (host, boot, pid, start time) that another
process on the same machine can check later, to tell a live run or worker from a dead one."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any


def start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def this_process() -> dict[str, Any]:
    """host, boot id, pid and start time of this process (start time: Linux only, else None)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid, "start": start_time(pid)}


def is_gone(record: Any) -> bool:
    """True only for a process of this machine (same host and boot) that no longer runs: its
    pid is free, or now belongs to a process that started at another time. A process of
    another machine, or one that cannot be checked, is never called gone."""
    me = this_process()
    if not isinstance(record, dict) or record.get("host") != me["host"] \
            or record.get("boot") != me["boot"]:
        return False
    pid = record.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0 or pid == me["pid"]:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return record.get("start") is not None and start_time(pid) != record.get("start")
