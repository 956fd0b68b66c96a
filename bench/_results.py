"""Write one section of bench/RESULTS.md (replacing an older section of the same title)."""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpu = cpu_name()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    import torch

    from archtune.training.device import cpu_has_bf16

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    bf16 = "native bf16" if cpu_has_bf16() else "no native bf16 (auto precision: fp32)"
    return f"{cpu} ({bf16}), {cores} cores, {dev}, torch {torch.__version__}, {platform.system()}"


PRECISION_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2")  # what bf16 and
# fp32 speed depend on: native bf16 (AVX512-BF16, AMX), else the widest fp32 vectors


def cpu_flags(names: tuple[str, ...] = PRECISION_FLAGS) -> dict[str, bool]:
    """Which of ``names`` the CPU has (/proc/cpuinfo; all False where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = next((set(line.split(":", 1)[1].split()) for line in text.splitlines()
                  if line.startswith("flags")), set())
    return {name: name in flags for name in names}


def commit() -> str:
    """The checkout's commit, with ' (modified)' when tracked files differ from it."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" (modified)" if dirty else "")


def mean_spread(values: list[float]) -> tuple[float, float]:
    """Mean and spread (half the min-max range) over seeds."""
    return statistics.fmean(values), (max(values) - min(values)) / 2


def verdict(values: list[float], least: float, walls: list[float] | None = None,
            most_s: float | None = None) -> str:
    """The target line of ``values`` (one per seed) against ``least``: **met** when the mean less
    the spread reaches it, **within noise** when only the mean plus the spread does, **missed**
    otherwise or when a run (``walls``) took longer than ``most_s``; one seed is not judged."""
    mean, spread = mean_spread(values)
    limit = "" if not most_s else f"{most_s:.0f} s" if most_s < 120 else f"{most_s / 60:g} min"
    what = f">= {least:.1%} mean test" + (f" within {limit} per run" if most_s else "")
    slowest = max(walls) if walls else 0.0
    if most_s and slowest > most_s:
        word = "missed"
    elif len(values) < 2:
        word = "not judged (one seed: no spread)"
    elif mean - spread >= least - 1e-12:
        word = "met"
    elif mean + spread >= least - 1e-12:
        word = "within noise"
    else:
        word = "missed"
    return (f"{what}: **{word}** (mean less spread {mean - spread:.2%}"
            + (f"; slowest run {slowest:.0f} s)" if walls else ")"))


def against(name: str, lead: str, a: list[float], other: str, b: list[float]) -> str:
    """The verdict line of arm ``lead``'s test accuracies ``a`` against arm ``other``'s ``b`` (in
    %) on data set ``name``: above / below / within noise of, by the larger seed spread (max - min)."""
    gap = statistics.mean(a) - statistics.mean(b)
    if min(len(a), len(b)) < 2:  # no spread to judge by
        return f"- {name}: {lead} against `{other}`: {gap:+.2f} points, one seed: not judged"
    noise = max(max(a) - min(a), max(b) - min(b))
    word = "above" if gap > noise else "below" if -gap > noise else "within noise of"
    return (f"- {name}: {lead} is {word} `{other}` ({gap:+.2f} points; larger spread {noise:.2f}; "
            f"{len(a)} and {len(b)} seeds)")


def write_section(title: str, body: str, command: str) -> None:
    """Replace (or append) '## title' in RESULTS.md with the body, commit, machine, date and
    command."""
    stamp = time.strftime("%Y-%m-%d %H:%M %Z")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    section = (f"## {title}\n\nCommit: {commit()}. Machine: {machine()}. Date: {stamp}. Load "
               f"average at the end (1, 5, 15 min): {load}.\n"
               f"Command: `{command}`\n\n{body.strip()}\n")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nEach section is written by the script named in it; rerun it to refresh.\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section
    RESULTS.write_text(text)


ARCHTUNE = [sys.executable, "-m", "archtune", "-q"]  # the CLI in a fresh process, quiet


def use_shared_data() -> None:
    """Read data sets from the checkout's ../shared/datasets unless ARCHTUNE_DATA says otherwise."""
    os.environ.setdefault("ARCHTUNE_DATA", str(Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def evaluate_test(run_dir: Path) -> float:
    """`archtune evaluate RUN --split test` in a fresh process (read once); its accuracy."""
    import json
    import subprocess

    subprocess.run([*ARCHTUNE, "evaluate", str(run_dir), "--split", "test"], check=True,
                   stdout=subprocess.DEVNULL)
    return float(json.loads((Path(run_dir) / "eval_test.json").read_text())["accuracy"])
