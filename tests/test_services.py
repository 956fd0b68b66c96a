"""The test set-up itself: under CI a test that cannot run fails instead of skipping, the real
data are found through ARCHTUNE_DATA, and scripts/services.sh never prints an empty variable."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[1]
NEEDS = '''
from tests.conftest import chromium, pg_url, real_data  # noqa: F401


def test_browser(chromium):
    assert chromium


def test_database(pg_url):
    assert pg_url


def test_real_data(real_data):
    assert (real_data / "fashion-mnist").is_dir()
'''


def _pytest(folder: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run pytest on the NEEDS tests in ``folder`` with ``env`` added: (exit code, output)."""
    folder.mkdir()
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "test_needs.py").write_text(NEEDS)
    full = {k: v for k, v in os.environ.items() if k not in ("CI", "ARCHTUNE_DATA")}
    full |= {"PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]), **env}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             "-rA", str(folder)], cwd=folder, env=full, capture_output=True,
                            text=True, timeout=300)
    return result.returncode, result.stdout


def test_missing_services_fail_under_ci_and_skip_elsewhere(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "fashion-mnist").mkdir(parents=True)
    gone = {"ARCHTUNE_CHROMIUM": "", "ARCHTUNE_TEST_PG_URL": "postgresql://x@127.0.0.1:1/none"}
    code, ci = _pytest(tmp_path / "ci", {**gone, "CI": "true", "ARCHTUNE_DATA": str(data)})
    assert code == 1 and "1 passed, 2 errors" in ci, ci  # data found through ARCHTUNE_DATA
    assert "ARCHTUNE_CHROMIUM=''" in ci and "cannot connect to ARCHTUNE_TEST_PG_URL" in ci
    assert "CI=true: a test that cannot run fails the run" in ci
    code, local = _pytest(tmp_path / "local", {**gone, "ARCHTUNE_DATA": str(tmp_path / "empty")})
    assert code == 0 and "3 skipped" in local and "error" not in local, local
    assert f"ARCHTUNE_DATA={tmp_path / 'empty'}" in local


def _fake_path(bin_dir: Path, *, with_chromium: bool) -> str:
    """A PATH with only what scripts/services.sh runs, a no-op apt-get (it records its calls)
    and, if asked, a fake chromium."""
    bin_dir.mkdir()
    for tool in ("id", "ls", "sort", "tail", "mkdir", "rm", "chown", "runuser", "cat", "g++"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    scripts = {"apt-get": f'echo "$@" >> {bin_dir}/apt-calls\n', "sudo": 'shift; exec "$@"\n'}
    if with_chromium:
        scripts["chromium"] = "exit 0\n"
    for name, body in scripts.items():
        (bin_dir / name).write_text("#!/bin/sh\n" + body)
        (bin_dir / name).chmod(0o755)
    return str(bin_dir)


@pytest.mark.parametrize("with_chromium", [False, True])
def test_services_sh_fails_rather_than_print_an_empty_variable(
        tmp_path: Path, pg_url: str, with_chromium: bool) -> None:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/pg_isready")):
        unavailable("no PostgreSQL in /usr/lib/postgresql (scripts/services.sh installs it)")
    port = pg_url.rsplit(":", 1)[1].split("/")[0]  # reuse the running server
    env = {"PATH": _fake_path(tmp_path / "bin", with_chromium=with_chromium),
           "ARCHTUNE_PGPORT": port, "HOME": str(tmp_path)}
    result = subprocess.run(["/bin/bash", str(ROOT / "scripts" / "services.sh")], env=env,
                            capture_output=True, text=True, timeout=120)
    if with_chromium:
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [
            f"export ARCHTUNE_TEST_PG_URL=postgresql://archtune@127.0.0.1:{port}/postgres",
            f"export ARCHTUNE_CHROMIUM={tmp_path / 'bin' / 'chromium'}"]
        assert not (tmp_path / "bin" / "apt-calls").exists()  # nothing to install
    else:  # the install "worked" but left no chromium: say so, print nothing to eval
        assert result.returncode != 0 and result.stdout == ""
        assert "install -y -qq chromium" in (tmp_path / "bin" / "apt-calls").read_text()
        assert result.stderr.strip().splitlines()[-1] == (
            "scripts/services.sh: no chromium (or chromium-browser) on PATH after installing it")
