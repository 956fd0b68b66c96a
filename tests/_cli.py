"""Run the CLI in-process the way a user's shell sees it: (exit code, stdout, stderr)."""

from __future__ import annotations

import pytest

from archtune.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
