"""Locating registered IDX data sets: search order, missing-file errors, md5-checked downloads."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import logging
import socket
import threading
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from archtune.data import sources
from archtune.data.sources import cache_dir, download_dataset, download_file, locate
from archtune.errors import ArchtuneError
from tests._cli import run_cli

FILES = sources.SOURCES["fashion-mnist"].filenames()


def test_registry() -> None:
    assert set(sources.SOURCES) == {"fashion-mnist", "mnist"}
    fm = sources.SOURCES["fashion-mnist"]
    assert fm.classes[0] == "T-shirt/top" and fm.classes[9] == "Ankle boot"
    assert fm.md5["train_labels"] == "25c81989df183df01b3e8a0aad5dffbe"
    assert sources.SOURCES["mnist"].classes == tuple("0123456789")
    assert len(sources.SOURCES["mnist"].mirrors) == 2


def test_unknown_name_suggests(isolated_env: Path) -> None:
    with pytest.raises(ArchtuneError, match="did you mean 'fashion-mnist'"):
        locate("fashion_mnist", download=False)


def test_data_dir_first(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "mine"
    idx_folder(mine)
    env = tmp_path / "env"
    idx_folder(env / "fashion-mnist")
    monkeypatch.setenv("ARCHTUNE_DATA", str(env))
    assert locate("fashion-mnist", data_dir=mine, download=False) == mine
    # a parent folder with a <name>/ sub-folder is accepted too
    assert locate("fashion-mnist", data_dir=env, download=False) == env / "fashion-mnist"


def test_data_dir_accepts_uncompressed(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable
) -> None:
    idx_folder(tmp_path / "raw", gz=False)
    assert locate("mnist", data_dir=tmp_path / "raw", download=False) == tmp_path / "raw"
    found = sources.find_files(tmp_path / "raw", "mnist")
    assert found["train_images"] == tmp_path / "raw" / "train-images-idx3-ubyte"


def test_data_dir_missing_files_is_an_error_without_fallback(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "env"
    idx_folder(env / "fashion-mnist")
    monkeypatch.setenv("ARCHTUNE_DATA", str(env))
    partial = tmp_path / "partial"
    idx_folder(partial)
    (partial / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(
        ArchtuneError,
        match=r"partial: missing fashion-mnist file\(s\): "
        r"t10k-labels-idx1-ubyte\.gz",
    ):
        locate("fashion-mnist", data_dir=partial)
    with pytest.raises(ArchtuneError, match="data folder not found"):
        locate("fashion-mnist", data_dir=tmp_path / "nowhere")


def test_env_var_before_cache(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx_folder(cache_dir("fashion-mnist"))
    env = tmp_path / "env"
    idx_folder(env / "fashion-mnist")
    monkeypatch.setenv("ARCHTUNE_DATA", str(env))
    assert locate("fashion-mnist", download=False) == env / "fashion-mnist"
    # a registered name reads only its own sub-folder
    with pytest.raises(ArchtuneError, match="files not found"):
        locate("mnist", download=False)


def test_env_var_incomplete_falls_back_to_cache(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    idx_folder(cache_dir("mnist"))
    monkeypatch.setenv("ARCHTUNE_DATA", str(tmp_path / "empty"))
    assert locate("mnist", download=False) == isolated_env / "archtune" / "datasets" / "mnist"


def test_cache_respects_xdg_then_home(
    tmp_path: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ARCHTUNE_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir("mnist") == tmp_path / "xdg" / "archtune" / "datasets" / "mnist"
    idx_folder(tmp_path / "xdg" / "archtune" / "datasets" / "mnist")
    assert locate("mnist", download=False) == tmp_path / "xdg" / "archtune" / "datasets" / "mnist"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    home_cache = tmp_path / "home" / ".cache" / "archtune" / "datasets" / "mnist"
    assert cache_dir("mnist") == home_cache
    with pytest.raises(ArchtuneError):
        locate("mnist", download=False)
    idx_folder(home_cache, gz=False)
    assert locate("mnist", download=False) == home_cache


def test_missing_everywhere_lists_files_and_three_ways(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "urlopen", _fail_urlopen)
    with pytest.raises(ArchtuneError) as exc:
        locate("fashion-mnist", download=False)
    msg = str(exc.value)
    for f in FILES:
        assert f in msg
    assert "--data-dir DIR" in msg
    assert "ARCHTUNE_DATA=DIR" in msg and "DIR/fashion-mnist/" in msg
    assert str(cache_dir("fashion-mnist")) in msg
    assert "download disabled" in msg


def _fail_urlopen(url: str, timeout: float | None = None) -> None:
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_no_network_gives_the_same_guidance(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def opener(url: str, timeout: float | None = None) -> None:
        calls.append(url)
        _fail_urlopen(url)

    monkeypatch.setattr(sources, "urlopen", opener)
    with pytest.raises(ArchtuneError) as exc:
        locate("mnist")
    msg = str(exc.value)
    assert "download failed" in msg and "name resolution" in msg
    assert "--data-dir DIR" in msg and "ARCHTUNE_DATA=DIR" in msg
    # both mirrors were tried for the first file
    assert calls == [m + "train-images-idx3-ubyte.gz" for m in sources.SOURCES["mnist"].mirrors]
    # nothing half-written is left behind
    assert not any(cache_dir("mnist").iterdir())


def _mirror(folder: Path, idx_folder: Callable) -> dict[str, str]:
    """A fake mirror folder of .gz files; returns role -> md5 of each file."""
    idx_folder(folder)
    src = sources.SOURCES["mnist"]
    return {r: hashlib.md5((folder / src.files[r]).read_bytes()).hexdigest() for r in src.files}


def test_download_success_via_file_url(
    tmp_path: Path, isolated_env: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> None:
    mirror = tmp_path / "mirror"
    md5 = _mirror(mirror, idx_folder)
    fake = dataclasses.replace(
        sources.SOURCES["mnist"],
        md5=md5,
        mirrors=((tmp_path / "no-such-mirror").as_uri() + "/", mirror.as_uri() + "/"),
    )
    monkeypatch.setitem(sources.SOURCES, "mnist", fake)
    folder = locate("mnist")
    assert folder == cache_dir("mnist")
    for name in fake.filenames():
        assert (folder / name).read_bytes() == (mirror / name).read_bytes()
    assert sorted(p.name for p in folder.iterdir()) == sorted(fake.filenames())  # no tmp files
    # a second call finds the cache and downloads nothing
    monkeypatch.setattr(sources, "urlopen", _fail_urlopen)
    assert locate("mnist") == folder


def test_download_md5_mismatch(tmp_path: Path, isolated_env: Path, idx_folder: Callable) -> None:
    mirror = tmp_path / "mirror"
    _mirror(mirror, idx_folder)
    dest = tmp_path / "dest"
    with pytest.raises(ArchtuneError) as exc:
        download_dataset("fashion-mnist", dest, mirrors=[mirror.as_uri()], progress=False)
    msg = str(exc.value)
    assert "md5 mismatch" in msg and sources.SOURCES["fashion-mnist"].md5["train_images"] in msg
    assert list(dest.iterdir()) == []  # the bad file was discarded, not renamed into place


def test_download_file_with_monkeypatched_urlopen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = np.arange(100_000, dtype=np.uint32).tobytes()

    class Resp(io.BytesIO):
        headers = {"Content-Length": str(len(payload))}

    served: list[str] = []

    def opener(url: str, timeout: float | None = None) -> Resp:
        served.append(url)
        return Resp(payload)

    monkeypatch.setattr(sources, "urlopen", opener)
    good = hashlib.md5(payload).hexdigest()
    path = download_file(
        "blob.gz", good, tmp_path, mirrors=["http://example.invalid/a/"], progress=False
    )
    assert path == tmp_path / "blob.gz" and path.read_bytes() == payload
    assert served == ["http://example.invalid/a/blob.gz"]
    with pytest.raises(
        ArchtuneError, match=r"(?s)could not download other\.gz.*md5 mismatch \(got [0-9a-f]{32}"
    ):
        download_file(
            "other.gz", "0" * 32, tmp_path, mirrors=["http://m1/", "http://m2/"], progress=False
        )
    assert served[-2:] == ["http://m1/other.gz", "http://m2/other.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob.gz"]


def test_fashion_mnist_has_several_official_mirrors_over_schemes_they_serve() -> None:
    mirrors = sources.SOURCES["fashion-mnist"].mirrors
    assert len(mirrors) >= 2 and mirrors[0].startswith("https://github.com/zalandoresearch/")
    # S3 *website* endpoints answer plain HTTP only
    assert not [m for m in mirrors if "s3-website" in m and m.startswith("https://")]
    assert "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" in mirrors


class _Mirrors(http.server.BaseHTTPRequestHandler):
    """/missing/ 404s, /truncate/ stops half-way, /corrupt/ sends other bytes, /good/ works."""

    files: dict[str, bytes] = {}
    seen: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        kind, _, name = self.path.strip("/").partition("/")
        self.seen.append(self.path)
        data = self.files.get(name)
        if kind == "missing" or data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if kind == "truncate":
            data = data[: len(data) // 2]
        elif kind == "corrupt":
            data = bytes(b ^ 1 for b in data)
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_mirrors(
    tmp_path: Path, idx_folder: Callable, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, int, list[str], Path]]:
    """A local HTTP server (127.0.0.1) serving a tiny 'mnist' and a closed port's URL."""
    folder = tmp_path / "mirror"
    md5 = _mirror(folder, idx_folder)
    handler = type("Handler", (_Mirrors,), {"files": {p.name: p.read_bytes()
                                                      for p in folder.iterdir()}, "seen": []})
    monkeypatch.setitem(sources.SOURCES, "mnist",
                        dataclasses.replace(sources.SOURCES["mnist"], md5=md5))
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with socket.socket() as s:  # a port nobody listens on: connection refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", closed, handler.seen, folder
    finally:
        server.shutdown()
        server.server_close()


def test_download_over_http_falls_back_to_the_mirror_that_works(
    isolated_env: Path, http_mirrors: tuple, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, closed, seen, folder = http_mirrors
    mirrors = (f"http://127.0.0.1:{closed}/", f"{url}/missing/", f"{url}/truncate/",
               f"{url}/corrupt/", f"{url}/good/")
    fake = dataclasses.replace(sources.SOURCES["mnist"], mirrors=mirrors)
    monkeypatch.setitem(sources.SOURCES, "mnist", fake)
    with caplog.at_level(logging.DEBUG, logger="archtune"):
        got = locate("mnist")
    assert got == cache_dir("mnist")
    assert sorted(p.name for p in got.iterdir()) == sorted(fake.filenames())  # no .part left
    for name in fake.filenames():
        assert (got / name).read_bytes() == (folder / name).read_bytes()
    first = fake.files["train_images"]
    assert seen[:4] == [f"/{k}/{first}" for k in ("missing", "truncate", "corrupt", "good")]
    problems = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert len(problems) == 4 * 4 and all(r.levelno == logging.DEBUG for r in caplog.records
                                          if "failed" in r.getMessage())
    assert "refused" in problems[0] and "HTTP 404" in problems[1]
    size = len((folder / first).read_bytes())
    assert f"truncated: got {size // 2:,} of {size:,} bytes" in problems[2]
    assert "md5 mismatch" in problems[3]


def test_a_failed_download_is_one_line(
    isolated_env: Path, http_mirrors: tuple, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, closed, _, _ = http_mirrors
    mirrors = (f"http://127.0.0.1:{closed}/", f"{url}/truncate/", f"{url}/corrupt/")
    monkeypatch.setitem(sources.SOURCES, "mnist",
                        dataclasses.replace(sources.SOURCES["mnist"], mirrors=mirrors))
    code, out, err = run_cli(["data", "mnist"], capsys)
    lines = [line.rsplit("\r", 1)[-1] for line in err.split("\n") if line.rsplit("\r", 1)[-1]]
    assert code == 2 and out == "" and len(lines) == 1, err
    assert lines[0].startswith("error: data set 'mnist': files not found: the cache ")
    for problem in ("refused", "truncated", "md5 mismatch", "--data-dir DIR"):
        assert problem in lines[0]
    assert not any(cache_dir("mnist").iterdir())  # nothing half-written left behind
