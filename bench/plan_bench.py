"""Time the built-in homework plan end to end, then its PDF report, and write RESULTS.md.

    python bench/plan_bench.py [--plan homework] [--keep DIR]

Runs `archtune -q plan homework` in a fresh folder as a user would (a subprocess, so its CPU
time and peak memory are measured), then `archtune report <folder> --pdf`, counts the PDF's
pages with pypdf, and writes the section "Plan: homework, end to end": wall and CPU time,
each step's seconds and result (dev and test accuracy), the precision the runs used.
Run it on a quiet machine: the wall time is the figure.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from _results import ARCHTUNE, use_shared_data, write_section  # noqa: I001  (bench-local helper)


def timed(cmd: list[str]) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, CPU seconds of it and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def steps(folder: Path) -> tuple[list[dict], set[str]]:
    """Each step of the plan's state.json (kind, name, status, seconds, best dev, test), and the
    precisions its runs used."""
    state = _json(folder / "state.json")
    out, precisions = [], set()
    for key, rec in state.get("steps", {}).items():
        kind, _, name = key.partition(":")
        path = Path(rec.get("path", ""))
        metrics = _json(path / "metrics.json") if path.is_dir() else {}
        env = _json(path / "env.json") if path.is_dir() else {}
        if env.get("precision"):
            precisions.add(env["precision"])
        out.append({"kind": kind, "name": name or key, "status": rec.get("status"),
                    "seconds": rec.get("seconds", ""),
                    "dev": (metrics.get("best") or {}).get("dev_accuracy"),
                    "test": _json(path / "eval_test.json").get("accuracy") if kind == "test" else None})
    return out, precisions


def step_rows(folder: Path) -> tuple[list[str], set[str]]:
    """One table row per step of the plan's state.json, and the precisions its runs used."""
    records, precisions = steps(folder)

    def pct(v: float | None) -> str:
        return "" if v is None else f"{v:.2%}"

    rows = [f"| {r['kind']} | {r['name']} | {r['status']} | {r['seconds']} | {pct(r['dev'])} | "
            f"{pct(r['test'])} |" for r in records]
    return rows, precisions


def measure(plan: str, root: Path, extra: Sequence[str] = ()) -> dict:
    """`archtune plan PLAN` (more options: ``extra``) in the empty folder ``root``, then its PDF
    report. Wall and CPU seconds, peak memory (MiB), the report's seconds and PDF pages (None
    when no PDF was written), the plan's folder."""
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        raise SystemExit(f"{root} is not empty: the bench times a plan from scratch")
    wall, cpu = timed([*ARCHTUNE, "plan", plan, "--plans-dir", str(root), *extra])
    folder = next(d for d in root.iterdir() if d.is_dir())  # the plan's folder, named by the plan
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    report_wall, _ = timed([*ARCHTUNE, "report", str(folder), "--pdf"])
    pdfs = sorted(folder.rglob("*.pdf"))
    pages = None
    if pdfs:
        from pypdf import PdfReader

        pages = len(PdfReader(pdfs[0]).pages)
    return {"folder": folder, "wall": wall, "cpu": cpu, "peak_mib": peak_mib,
            "report_wall": report_wall, "pages": pages, "pdf": pdfs[0].name if pdfs else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default="homework", help="a built-in plan's name or a plan file")
    ap.add_argument("--keep", help="folder to keep the plan in (default: a temporary one)")
    args = ap.parse_args()
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="plan-bench-"))
    m = measure(args.plan, root)
    folder, wall, cpu = m["folder"], m["wall"], m["cpu"]
    pages = f"{m['pages']} A4 pages ({m['pdf']})" if m["pdf"] else "no PDF written"
    rows, precisions = step_rows(folder)
    body = (f"`archtune plan {args.plan}` from an empty folder: **{wall / 60:.1f} min wall**, "
            f"{cpu / 60:.1f} CPU-min, peak memory of one process {m['peak_mib']:,.0f} MiB; "
            f"precision of its runs: {', '.join(sorted(precisions)) or 'unknown'} "
            f"(`--precision auto`). `archtune report --pdf` of it: {m['report_wall']:.0f} s, {pages}.\n\n"
            "| step | name | status | seconds | best dev | test |\n|---|---|---|---|---|---|\n"
            + "\n".join(rows))
    write_section(f"Plan: {folder.name}, end to end", body,
                  f"python bench/plan_bench.py --plan {args.plan}")
    print(body)
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    use_shared_data()
    main()
