"""Print a report's HTML page to PDF with headless Chromium (the page's print CSS sets A4).

Chromium is found through ``ARCHTUNE_CHROMIUM`` or on the PATH; without it, ``--pdf`` fails
with one line before anything is written.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..errors import ArchtuneError

log = logging.getLogger(__name__)

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-pdf-header-footer", "--print-to-pdf-no-header")


def find_chromium() -> str:
    """The Chromium (or Chrome) binary: ``ARCHTUNE_CHROMIUM``, else the first of NAMES on PATH."""
    env = os.environ.get("ARCHTUNE_CHROMIUM")
    if env:
        path = shutil.which(env) or (env if Path(env).is_file() and os.access(env, os.X_OK) else None)
        if path is None:
            raise ArchtuneError(f"ARCHTUNE_CHROMIUM={env}: not an executable file; point it at "
                                f"a Chromium or Chrome binary")
        return path
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise ArchtuneError("--pdf prints the page with headless Chromium or Chrome, and none was "
                        f"found ({', '.join(NAMES)} on PATH); install one or set "
                        f"ARCHTUNE_CHROMIUM=/path/to/chromium")


def html_to_pdf(page: str | Path, output: str | Path, *, timeout: float = 180.0) -> Path:
    """Print ``page`` (an HTML file) to ``output``; written atomically. Returns ``output``."""
    binary = find_chromium()
    page, output = Path(page), Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    with tempfile.TemporaryDirectory(prefix="archtune-chromium-", ignore_cleanup_errors=True) as profile:
        cmd = [binary, *FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp.resolve()}",
               page.resolve().as_uri()]
        try:
            done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise ArchtuneError(f"{binary} did not print {page} within {timeout:.0f} s") from None
        except OSError as err:
            raise ArchtuneError(f"{binary}: cannot be started ({err})") from None
    try:
        ok = tmp.is_file() and tmp.read_bytes()[:5] == b"%PDF-"
        if not ok:
            lines = done.stderr.decode(errors="replace").strip().splitlines()
            raise ArchtuneError(f"{binary} wrote no PDF of {page} (exit code {done.returncode}"
                                + (f": {lines[-1][:200]}" if lines else "") + ")")
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s", output)
    return output
