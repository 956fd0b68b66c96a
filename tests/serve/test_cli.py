"""``archtune predict | export | serve`` through the real entry point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from archtune.cli import main
from archtune.training import Run
from tests.serve.conftest import encode, write_png


@pytest.fixture(autouse=True)
def keep_torch_threads() -> Iterator[None]:
    """predict and serve set the model's thread count; give other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_predict_text_and_json(tiny_run: Run, class_images: tuple, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    x, y = class_images
    a = write_png(tmp_path / "a.png", x[0])
    b = tmp_path / "b.jpg"
    b.write_bytes(encode(np.stack([255 - x[1]] * 3, -1), "JPEG", quality=95))
    code, out, _ = run_cli(["predict", str(tiny_run.path), str(a), str(b), "--top", "2"], capsys)
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert lines[0].split()[1] == f"c{y[0]}" and lines[1].split()[1] == f"c{y[1]}"
    assert lines[1].endswith("(inverted)") and lines[0].count("%") == 2
    code, out, _ = run_cli(["predict", str(tiny_run.path), str(tmp_path), "--json"], capsys)
    rows = json.loads(out)
    assert code == 0 and [r["label"] for r in rows] == [f"c{y[0]}", f"c{y[1]}"]


def test_predict_exit_code_2_when_a_file_is_bad(tiny_run: Run, class_images: tuple,
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    good = write_png(tmp_path / "good.png", class_images[0][2])
    bad = tmp_path / "bad.png"
    bad.write_text("text")
    code, out, err = run_cli(["predict", str(tiny_run.path), str(bad), str(good)], capsys)
    assert code == 2 and "bad.png" in out and "not a PNG" in out and "good.png" in out
    assert "1 of 2 file(s) could not be read" in err
    code, _, err = run_cli(["predict", str(tmp_path / "no-run"), str(good)], capsys)
    assert code == 2 and "no such run folder" in err


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "m.onnx"), ("torchscript", "m.pt")])
def test_export(tiny_run: Run, tmp_path: Path, capsys: pytest.CaptureFixture[str], fmt: str,
                name: str) -> None:
    out_path = tmp_path / name
    code, out, _ = run_cli(["export", str(tiny_run.path), "--format", fmt, "-o", str(out_path),
                            "--check", "32"], capsys)
    assert code == 0 and out_path.is_file()
    assert "checked against PyTorch on 32 images" in out and "same argmax on 32/32" in out


def test_serve_builds_the_app_with_the_options(tiny_run: Run, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    import uvicorn
    from PIL import Image

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
    code, out, _ = run_cli(["serve", str(tiny_run.path), "--port", "8123", "--max-mb", "1",
                            "--max-pixels", "1000000"], capsys)
    assert code == 0 and seen["host"] == "127.0.0.1" and seen["port"] == 8123
    assert seen["app"].state.limits.max_bytes == 1024 * 1024
    assert seen["app"].state.limits.max_pixels == Image.MAX_IMAGE_PIXELS == 1_000_000
    assert "http://127.0.0.1:8123/" in out and torch.get_num_threads() == 1
