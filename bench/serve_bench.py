"""Serving benchmark: a bounded HTTP load test on loopback, and batch prediction throughput.

1. Load test: starts ``archtune serve RUN`` on 127.0.0.1 (a free port) in its own process, then
   sends ``--requests`` single-image POST /predict requests (PNG files of Fashion-MNIST test
   images) from ``--concurrency`` keep-alive connections of this (separate) client process;
   reports throughput, p50/p90/p99 latency, errors, the server's mean micro-batch, where the
   server's time went per stage (``GET /stats``: read, decode, wait for a batch, forward,
   resume, respond; and the event loop's lag) and the machine's load: the CPU used by other
   processes during the test, from /proc. Bounded by count and by ``--time-limit`` seconds;
   only 127.0.0.1 is contacted.
   With ``--baseline REV`` it also serves the same model with the code of git revision REV
   (its ``src/``, same Python environment) and interleaves the two in ``--rounds`` rounds
   (A B, B A, ...), so both see the same load.
2. Batch prediction (skip with ``--no-predict``): writes the 10,000 test images as PNG files
   and times ``predict`` on the folder (Python API, and the ``archtune predict`` command end to
   end), against the forward pass alone on in-memory tensors; checks both routes agree.

    python bench/serve_bench.py [--run runs/x] [--requests 3000] [--concurrency 32]
                                [--baseline 416a1c8] [--no-predict] [--no-write]

Without ``--run`` it first trains cnn-small briefly (a few thousand images, one epoch).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch
from _results import write_section  # noqa: I001  (bench-local helper)
from PIL import Image

import archtune as at
from archtune.data import load_dataset, test_split
from archtune.serve import Predictor
from archtune.serve.timing import STAGES, stage_summary
from archtune.training.device import set_threads

HOST = "127.0.0.1"
CLI = [sys.executable, "-c", "from archtune.cli import main; main()"]


def quick_run(folder: Path, images: int = 5000) -> Path:
    spec = at.load_spec("cnn-small", ["train.epochs=1", f"data.train_subset={images}"])
    return at.train(spec, run_dir=folder / "cnn-small", progress=False).path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def start_server(run: Path, port: int, src: Path | None = None) -> subprocess.Popen:
    """``archtune serve RUN`` in its own process (with the code in ``src`` when given)."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.Popen([*CLI, "-q", "serve", str(run), "--host", HOST, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://{HOST}:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.25)
    proc.terminate()
    raise RuntimeError("server did not answer /health within 90 s")


def source_tree(rev: str, folder: Path) -> Path:
    """The ``src/`` of git revision ``rev`` of this repository, extracted under ``folder``."""
    repo = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", rev, "src"],
                         check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        t.extractall(folder, filter="data")
    return folder / "src"


class Connection:
    """A lean HTTP/1.1 keep-alive client (asyncio streams), so the client costs little CPU and
    the load test measures the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int):
        self.reader, self.writer, self.port = reader, writer, port

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection(HOST, port), port)

    async def post_png(self, body: bytes) -> tuple[int, bytes]:
        self.writer.write(f"POST /predict HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
                          f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n\r\n"
                          .encode() + body)
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def load(port: int, payloads: list[bytes], n: int, concurrency: int,
               time_limit: float) -> tuple[list[float], int, float]:
    """Send n requests over `concurrency` connections; (latencies in s, errors, elapsed s)."""
    latencies: list[float] = []
    errors = 0
    counter = iter(range(n))
    deadline = time.perf_counter() + time_limit

    async def worker() -> None:
        nonlocal errors
        conn = await Connection.open(port)
        try:
            for i in counter:
                if time.perf_counter() > deadline:
                    return
                t0 = time.perf_counter()
                try:
                    status, body = await conn.post_png(payloads[i % len(payloads)])
                    ok = status == 200 and b'"predictions":[{' in body
                except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                    ok = False
                    conn.close()
                    conn = await Connection.open(port)
                latencies.append(time.perf_counter() - t0)
                errors += not ok
        finally:
            conn.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - start


def _cpu_seconds(pids: list[int]) -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, CPU seconds of ``pids``) so far, from /proc."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        busy = sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)  # minus idle, iowait
        own = 0
        for pid in pids:
            stat = Path(f"/proc/{pid}/stat").read_text()
            own += sum(int(v) for v in stat[stat.rindex(")") + 2:].split()[11:13])  # utime, stime
        return busy / ticks, own / ticks
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


@dataclass
class Variant:
    """One server under test and what its load segments measured."""

    name: str
    proc: subprocess.Popen
    port: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    images: int = 0
    batches: int = 0
    others_cpu: float = 0.0  # CPU seconds used by other processes while this variant ran
    stages: list[tuple[dict, dict]] = field(default_factory=list)

    def get(self, path: str) -> dict | None:
        r = httpx.get(f"http://{HOST}:{self.port}{path}", timeout=30)
        return r.json() if r.status_code == 200 else None

    def segment(self, payloads: list[bytes], n: int, concurrency: int, limit: float) -> None:
        """Send n requests and add what they measured."""
        health, stats = self.get("/health"), self.get("/stats")
        cpu0 = _cpu_seconds([self.proc.pid, os.getpid()])
        lat, errors, elapsed = asyncio.run(load(self.port, payloads, n, concurrency, limit))
        cpu1 = _cpu_seconds([self.proc.pid, os.getpid()])
        after = self.get("/health")
        self.latencies += lat
        self.errors += errors
        self.seconds += elapsed
        self.images += after["images"] - health["images"]
        self.batches += after["batches"] - health["batches"]
        self.others_cpu += (cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])
        if stats is not None:
            self.stages.append((stats, self.get("/stats")))

    def figures(self) -> dict:
        """Requests, requests/s, latency percentiles (ms), errors, mean batch, and the cores
        busy with other processes while the load ran."""
        ms = np.array(self.latencies) * 1000
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return {"requests": len(ms), "rps": len(ms) / self.seconds, "p50": p50, "p90": p90,
                "p99": p99, "max": ms.max(), "errors": self.errors,
                "mean_batch": self.images / max(self.batches, 1),
                "others": self.others_cpu / self.seconds}

    def row(self, concurrency: int) -> str:
        f = self.figures()
        print(f"{self.name}: {f['requests']} requests in {self.seconds:.1f}s, {f['rps']:.0f} req/s, "
              f"p50 {f['p50']:.1f} ms, p90 {f['p90']:.1f} ms, p99 {f['p99']:.1f} ms, max "
              f"{f['max']:.1f} ms, errors {self.errors}, mean batch {f['mean_batch']:.1f}, other "
              f"processes used {f['others']:.2f} cores")
        return (f"| {self.name} | {f['requests']:,} | {concurrency} | {f['rps']:,.0f} | "
                f"{f['p50']:.1f} | {f['p90']:.1f} | {f['p99']:.1f} | {f['max']:.1f} | {self.errors} "
                f"| {f['mean_batch']:.1f} | {f['others']:.2f} |\n")

    def stage_table(self) -> str:
        """Per-stage server times summed over the segments (empty for a server without /stats)."""
        if not self.stages:
            return ""
        merged: dict[str, dict[str, float]] = {}
        for before, after in self.stages:
            for stage, v in stage_summary(before, after).items():
                m = merged.setdefault(stage, {"count": 0, "sum": 0.0, "p50": 0.0, "p99": 0.0})
                m["count"] += v["count"]
                m["sum"] += v["mean_ms"] * v["count"]
                m["p50"], m["p99"] = max(m["p50"], v["p50_ms"]), max(m["p99"], v["p99_ms"])
        lines = [f"Server stages of {self.name} (ms; p50/p99 from histogram buckets, the largest "
                 "over the segments):\n", "| stage | what | count | mean | p50 | p99 |",
                 "| --- | --- | ---: | ---: | ---: | ---: |"]
        for stage, m in merged.items():
            lines.append(f"| {stage} | {STAGES[stage]} | {m['count']:,.0f} | "
                         f"{m['sum'] / m['count']:.2f} | {m['p50']:.2f} | {m['p99']:.2f} |")
            print(f"  {stage:9s} n={m['count']:6.0f} mean {m['sum'] / m['count']:7.2f} ms  "
                  f"p50 {m['p50']:7.2f}  p99 {m['p99']:7.2f}")
        return "\n".join(lines) + "\n"


def serve_load(run: Path, images: np.ndarray, n: int, concurrency: int, time_limit: float,
               sources: dict[str, Path | None], rounds: int) -> list[Variant]:
    """Serve ``run`` with each source tree (None: this checkout), interleave their loads, and
    return what each measured."""
    payloads = [png_bytes(a) for a in images[:256]]
    variants: list[Variant] = []
    try:
        for name, src in sources.items():
            port = free_port()
            variants.append(Variant(name, start_server(run, port, src), port))
        for v in variants:
            asyncio.run(load(v.port, payloads, 300, concurrency, 60))  # warm-up, not counted
        per = max(1, n // rounds)
        for r in range(rounds):
            for v in variants if r % 2 == 0 else variants[::-1]:
                v.segment(payloads, per, concurrency, time_limit / rounds)
    finally:
        for v in variants:
            v.proc.terminate()
            v.proc.wait(timeout=30)
    return variants


def load_test(run: Path, images: np.ndarray, n: int, concurrency: int, time_limit: float,
              sources: dict[str, Path | None], rounds: int) -> str:
    """:func:`serve_load`, as the section's tables."""
    variants = serve_load(run, images, n, concurrency, time_limit, sources, rounds)
    table = ("| server | requests | concurrency | requests/s | p50 ms | p90 ms | p99 ms | max ms "
             "| errors | mean batch | cores used by other processes |\n"
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
    table += "".join(v.row(concurrency) for v in variants)
    return table + "\n" + "\n".join(filter(None, (v.stage_table() for v in variants)))


def predict_rates(run: Path, images: np.ndarray, folder: Path) -> dict:
    """Seconds to predict ``images`` three ways (in-memory tensors, ``predict_files`` on PNG files,
    the ``archtune predict`` command), and how many of the files' classes match the tensors'."""
    files = folder / "test-png"
    files.mkdir()
    for i, a in enumerate(images):
        Image.fromarray(a).save(files / f"{i:05d}.png")
    threads = torch.get_num_threads()
    set_threads(1)  # as `archtune predict` does by default
    try:
        predictor = Predictor.from_run(run)
        x = images[:, None].astype(np.float32) / 255
        t0 = time.perf_counter()
        probs = predictor.probabilities(x)
        t_tensor = time.perf_counter() - t0
        t0 = time.perf_counter()
        rows = predictor.predict_files([files])
        t_files = time.perf_counter() - t0
    finally:
        torch.set_num_threads(threads)
    same = sum(r["index"] == int(k) for r, k in zip(rows, probs.argmax(1), strict=True))
    t0 = time.perf_counter()
    subprocess.run([*CLI, "-q", "predict", str(run), str(files), "--json"], check=True,
                   stdout=subprocess.DEVNULL)
    t_cli = time.perf_counter() - t0
    n = len(images)
    print(f"predict: tensors {n / t_tensor:,.0f}/s, files {n / t_files:,.0f}/s, "
          f"CLI {n / t_cli:,.0f}/s; same class {same}/{n}")
    return {"images": n, "tensor_s": t_tensor, "files_s": t_files, "cli_s": t_cli, "same": same}


def predict_throughput(run: Path, images: np.ndarray, folder: Path) -> str:
    r = predict_rates(run, images, folder)
    n, t_tensor, t_files, t_cli = r["images"], r["tensor_s"], r["files_s"], r["cli_s"]
    return (f"| route ({n:,} test images) | seconds | images/s |\n| --- | ---: | ---: |\n"
            f"| forward pass only, in-memory tensors (batches of 256, 1 thread) | {t_tensor:.2f} | {n / t_tensor:,.0f} |\n"
            f"| `Predictor.predict_files(folder)`: decode PNG + preprocess + forward "
            f"| {t_files:.2f} | {n / t_files:,.0f} |\n"
            f"| `archtune predict RUN folder --json`, whole command incl. start-up "
            f"| {t_cli:.2f} | {n / t_cli:,.0f} |\n\n"
            f"Files and in-memory tensors give the same class for {r['same']:,} of {n:,} images.\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, help="run folder (default: train cnn-small briefly)")
    p.add_argument("--requests", type=int, default=3000, help="per server, over all rounds")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--time-limit", type=float, default=240.0, help="load test stops after this")
    p.add_argument("--baseline", metavar="REV", help="also serve with git revision REV's code, "
                   "interleaved with this checkout's (A/B under the same load)")
    p.add_argument("--rounds", type=int, default=4, help="interleaved segments per server")
    p.add_argument("--no-predict", action="store_true", help="skip the batch-prediction part")
    p.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="archtune-serve-bench-") as tmp:
        run = args.run or quick_run(Path(tmp))
        ds = load_dataset("fashion-mnist")
        images = (test_split(ds).x[:, 0] * 255).round().byte().numpy()
        spec_name = Predictor.from_run(run).name
        loadavg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        sources: dict[str, Path | None] = {}
        if args.baseline:
            sources[f"baseline {args.baseline}"] = source_tree(args.baseline, Path(tmp) / "base")
        sources["this checkout"] = None
        load_table = load_test(run, images, args.requests, args.concurrency, args.time_limit,
                               sources, args.rounds if args.baseline else 1)
        predict_table = "" if args.no_predict else predict_throughput(run, images, Path(tmp))
    body = (f"Model: {spec_name}. Server: `archtune serve` (uvicorn, one process, micro-batching "
            f"2 ms / 64 images, 1 model thread) in its own process; the load client (asyncio, "
            f"keep-alive connections, this script's process) shares the machine; single PNG "
            f"images per request over loopback. "
            + (f"Both servers run the same model in the same Python environment; their load "
               f"segments alternate ({args.rounds} rounds, A B, B A, ...). " if args.baseline else "")
            + f"Load average before the run (1, 5, 15 min): {loadavg}; the last column is the "
            f"CPU (in cores, out of {os.cpu_count()}) used by processes other than the server "
            f"and the client while the load ran: above 0.1, the machine was not quiet.\n\n"
            f"{load_table}\n{predict_table}")
    if args.no_write:
        return
    command = " ".join(["python bench/serve_bench.py", *sys.argv[1:]])
    write_section("Serving: HTTP load test and batch prediction", body, command)
    print(f"written to bench/RESULTS.md (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
