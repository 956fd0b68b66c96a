"""bench/headline.py: its rows and estimates, the target rule, and a smoke run of one cheap row
that writes its line into a results file (never into bench/RESULTS.md)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
SMOKE_TITLE = "## Headline figures, regenerated (smoke run: tiny sizes, not the benchmark)"


def headline(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / "headline.py"), *args],
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.syspath_prepend(str(BENCH))
    import headline as module

    return module


def test_list_gives_every_row_its_minutes(module) -> None:  # noqa: ANN001
    done = headline("--list", "--seeds", "3")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for name in module.ROWS:
        line = next(li for li in lines if li.split()[0] == name)
        wall, cpu = map(float, line.split()[1:3])
        assert cpu == pytest.approx(2 * wall, abs=1)
    assert "needs hours" in next(li for li in lines if li.startswith("accurate"))
    assert lines[-1].startswith("total") and "3 seed(s)" in lines[-1]
    assert "unknown row(s) nope" in headline("--list", "--rows", "default,nope").stderr


def test_smoke_refuses_bench_results() -> None:
    done = headline("--smoke", "--rows", "fast", "--results", str(BENCH / "RESULTS.md"))
    assert done.returncode != 0 and "never writes to bench/RESULTS.md" in done.stderr


@pytest.mark.parametrize(("values", "walls", "word"), [
    ([0.955, 0.965], None, "met"),                      # mean less spread 95.5%
    ([0.94, 0.96], None, "within noise"),               # 94.0%..96.0%: the target inside
    ([0.93, 0.94], None, "missed"),
    ([0.96, 0.97], [1700.0, 1801.0], "missed"),         # a run over its time
    ([0.99], None, "not judged"),                       # one seed: no spread
])
def test_a_target_is_met_only_beyond_the_seed_spread(module, values, walls, word) -> None:  # noqa: ANN001
    line = module.verdict(values, 0.95, walls, 1800.0 if walls else None)
    assert f"**{word}" in line


def test_smoke_row_writes_its_line_and_keeps_the_others(tmp_path: Path, real_data: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(f"# Benchmark results\n\n{SMOKE_TITLE}\n\n| faults | kept from before |\n")
    bench_results = (BENCH / "RESULTS.md").read_text()
    done = headline("--smoke", "--rows", "fast", "--seeds", "2", "--results", str(results),
                    "--work", str(tmp_path / "work"))
    assert done.returncode == 0, done.stderr[-3000:]
    text = results.read_text()
    assert text.count(SMOKE_TITLE) == 1
    assert re.search(r"^Commit: \w+.*Machine: .+Date: .+Load average", text, re.M)
    assert "CPU flags for precision: avx512_bf16 " in text and "`--precision auto`" in text
    assert "Command: `python bench/headline.py --rows fast --seeds 2 --smoke`" in text
    assert "| faults | kept from before |" in text
    line = next(li for li in text.splitlines() if li.startswith("| fast |"))
    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
    assert len(cells) == 9
    assert re.match(r"\d+\.\d\d% ± \d+\.\d\d% mean test, \d+ ± \d+ s per run", cells[2])
    assert ">= 91.6% mean test within 30 s per run: **missed**" in cells[3]  # 1 epoch, 320 images
    assert cells[4] == "2" and cells[5] in ("bf16", "fp32")
    assert "`archtune train --epochs 2 --seed S`" in cells[6]
    assert (BENCH / "RESULTS.md").read_text() == bench_results


def test_a_row_taken_up_again_keeps_the_units_it_finished(module, tmp_path: Path,  # noqa: ANN001
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import _results

    state = {"commit": "abc1234", "calls": 0}
    monkeypatch.setattr(_results, "commit", lambda: state["commit"])
    monkeypatch.setattr(_results, "machine", lambda: "a CPU, 2 cores")

    def measure(out: Path) -> dict:
        assert not any(out.iterdir()), "a unit starts in an empty folder"
        (out / "run").mkdir()
        state["calls"] += 1
        return {"call": state["calls"]}

    def ctx():  # noqa: ANN202
        return module.Ctx([0], False, tmp_path, None)

    first = ctx()
    assert module.unit(first, "s0/tune", measure) == {"call": 1} and first.dates
    again = ctx()
    assert module.unit(again, "s0/tune", measure) == {"call": 1}  # kept, not measured
    assert state["calls"] == 1 and again.dates == first.dates
    (tmp_path / "s1" / "tune").mkdir(parents=True)  # a unit stopped part way: measured anew
    (tmp_path / "s1" / "tune" / "half.pt").write_text("x")
    assert module.unit(ctx(), "s1/tune", measure) == {"call": 2}
    state["commit"] = "abc1234 (modified)"  # never kept from a modified checkout
    assert module.unit(ctx(), "s0/tune", measure) == {"call": 3}
    state["commit"] = "def5678"  # nor from another commit
    assert module.unit(ctx(), "s0/tune", measure) == {"call": 4}
    monkeypatch.setattr(_results, "machine", lambda: "another CPU, 2 cores")  # nor machine
    assert module.unit(ctx(), "s0/tune", measure) == {"call": 5}
    assert module.unit(ctx(), "s0/tune", measure) == {"call": 5}
