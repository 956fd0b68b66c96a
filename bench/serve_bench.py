"""Serving benchmark: a bounded HTTP load test on loopback, and batch prediction throughput.

1. Load test: starts ``archtune serve RUN`` on 127.0.0.1 (a free port) in a subprocess, then
   sends ``--requests`` single-image POST /predict requests (PNG files of Fashion-MNIST test
   images) from ``--concurrency`` concurrent clients; reports throughput, p50/p90/p99 latency,
   the error count and the server's mean micro-batch size. Bounded by count and by
   ``--time-limit`` seconds; only 127.0.0.1 is contacted.
2. Batch prediction: writes the 10,000 test images as PNG files and times ``predict`` on the
   folder (Python API, and the ``archtune predict`` command end to end), against the forward
   pass alone on in-memory tensors; checks both routes give the same classes.

    python bench/serve_bench.py [--run runs/x] [--requests 5000] [--concurrency 32]

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
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from _results import write_section  # noqa: I001  (bench-local helper)
from PIL import Image

import archtune as at
from archtune.data import load_dataset, test_split
from archtune.serve import Predictor
from archtune.training.device import set_threads

HOST = "127.0.0.1"
CLI = [sys.executable, "-c", "from archtune.cli import main; main()"]


def quick_run(folder: Path) -> Path:
    spec = at.load_spec("cnn-small", ["train.epochs=1", "data.train_subset=5000"])
    return at.train(spec, run_dir=folder / "cnn-small", progress=False).path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def png_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def start_server(run: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([*CLI, "-q", "serve", str(run), "--host", HOST, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


def load_test(run: Path, images: np.ndarray, n: int, concurrency: int, time_limit: float) -> str:
    payloads = [png_bytes(a) for a in images[:256]]
    port = free_port()
    proc = start_server(run, port)
    url = f"http://{HOST}:{port}"
    try:
        asyncio.run(load(port, payloads, 200, concurrency, 60))  # warm-up, not counted
        before = httpx.get(url + "/health").json()
        lat, errors, elapsed = asyncio.run(load(port, payloads, n, concurrency, time_limit))
        after = httpx.get(url + "/health").json()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    ms = np.array(lat) * 1000
    batches = max(after["batches"] - before["batches"], 1)
    mean_batch = (after["images"] - before["images"]) / batches
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    print(f"load: {len(lat)} requests in {elapsed:.1f}s, {len(lat) / elapsed:.0f} req/s, "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, errors {errors}, mean batch {mean_batch:.1f}")
    return ("| requests | concurrency | seconds | requests/s | p50 ms | p90 ms | p99 ms | errors "
            "| mean batch |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
            f"| {len(lat):,} | {concurrency} | {elapsed:.1f} | {len(lat) / elapsed:,.0f} | "
            f"{p50:.1f} | {p90:.1f} | {p99:.1f} | {errors} | {mean_batch:.1f} |\n")


def predict_throughput(run: Path, images: np.ndarray, folder: Path) -> str:
    files = folder / "test-png"
    files.mkdir()
    for i, a in enumerate(images):
        Image.fromarray(a).save(files / f"{i:05d}.png")
    set_threads(1)  # as `archtune predict` does by default
    predictor = Predictor.from_run(run)
    x = images[:, None].astype(np.float32) / 255
    t0 = time.perf_counter()
    probs = predictor.probabilities(x)
    t_tensor = time.perf_counter() - t0
    t0 = time.perf_counter()
    rows = predictor.predict_files([files])
    t_files = time.perf_counter() - t0
    same = sum(r["index"] == int(k) for r, k in zip(rows, probs.argmax(1), strict=True))
    t0 = time.perf_counter()
    subprocess.run([*CLI, "-q", "predict", str(run), str(files), "--json"], check=True,
                   stdout=subprocess.DEVNULL)
    t_cli = time.perf_counter() - t0
    n = len(images)
    print(f"predict: tensors {n / t_tensor:,.0f}/s, files {n / t_files:,.0f}/s, "
          f"CLI {n / t_cli:,.0f}/s; same class {same}/{n}")
    return ("| route (10,000 test images) | seconds | images/s |\n| --- | ---: | ---: |\n"
            f"| forward pass only, in-memory tensors (batches of 256, 1 thread) | {t_tensor:.2f} | {n / t_tensor:,.0f} |\n"
            f"| `Predictor.predict_files(folder)`: decode PNG + preprocess + forward "
            f"| {t_files:.2f} | {n / t_files:,.0f} |\n"
            f"| `archtune predict RUN folder --json`, whole command incl. start-up "
            f"| {t_cli:.2f} | {n / t_cli:,.0f} |\n\n"
            f"Files and in-memory tensors give the same class for {same:,} of {n:,} images.\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, help="run folder (default: train cnn-small briefly)")
    p.add_argument("--requests", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--time-limit", type=float, default=240.0, help="load test stops after this")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="archtune-serve-bench-") as tmp:
        run = args.run or quick_run(Path(tmp))
        ds = load_dataset("fashion-mnist")
        images = (test_split(ds).x[:, 0] * 255).round().byte().numpy()
        spec_name = Predictor.from_run(run).name
        loadavg = ", ".join(f"{v:.1f}" for v in os.getloadavg())
        load_table = load_test(run, images, args.requests, args.concurrency, args.time_limit)
        predict_table = predict_throughput(run, images, Path(tmp))
    body = (f"Model: {spec_name}. Server: `archtune serve` (uvicorn, one process, micro-batching "
            f"2 ms / 64 images, 1 model thread) and the load client (asyncio, keep-alive "
            f"connections) share the machine; single PNG images per request over loopback. "
            f"Load average before the run (1, 5, 15 min): {loadavg}; a value above the core "
            f"count means other jobs were sharing the CPU.\n\n"
            f"{load_table}\n{predict_table}")
    command = " ".join(["python bench/serve_bench.py", *sys.argv[1:]])
    write_section("Serving: HTTP load test and batch prediction", body, command)
    print(f"written to bench/RESULTS.md (cores: {os.cpu_count()})")


if __name__ == "__main__":
    main()
