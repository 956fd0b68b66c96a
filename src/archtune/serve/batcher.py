"""A small async micro-batcher: concurrent requests share one forward pass.

Each request submits its images (N, C, H, W) and awaits its rows of the result. One worker
task takes the first waiting request, gathers more for up to ``max_wait_ms`` (or until
``max_batch`` images), runs the model once on all of them in a worker thread, and hands each
request its slice. While a forward pass runs, new requests queue up, so under load batches grow
by themselves; a lone request waits at most ``max_wait_ms``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .timing import StageTimes

log = logging.getLogger(__name__)
_Item = tuple[np.ndarray, "asyncio.Future[tuple[np.ndarray, float]]", float]  # x, result, queued at


@dataclass
class BatchStats:
    batches: int = 0
    images: int = 0
    largest: int = 0

    @property
    def mean_batch(self) -> float:
        return self.images / self.batches if self.batches else 0.0


class MicroBatcher:
    """Gather concurrent ``submit`` calls into batched calls of ``fn`` (N, ...) -> (N, ...)."""

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 64,
                 max_wait_ms: float = 2.0, times: StageTimes | None = None):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.fn = fn
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self.times = times or StageTimes()  # wait, forward and resume of each request
        self._queue: asyncio.Queue[_Item] | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    def _ensure_started(self) -> asyncio.Queue[_Item]:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._task.get_loop() is not loop:
            self._queue = asyncio.Queue()
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archtune-model")
            self._task = loop.create_task(self._worker(self._queue))
        assert self._queue is not None
        return self._queue

    async def submit(self, x: np.ndarray) -> np.ndarray:
        """Run ``fn`` on x (N, ...) as part of a batch; returns its N rows."""
        fut: asyncio.Future[tuple[np.ndarray, float]] = asyncio.get_running_loop().create_future()
        await self._ensure_started().put((x, fut, time.perf_counter()))
        out, done = await fut
        self.times.add("resume", time.perf_counter() - done)
        return out

    @property
    def pending(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    async def _gather(self, queue: asyncio.Queue[_Item]) -> list[_Item]:
        items = [await queue.get()]
        n = len(items[0][0])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait
        while n < self.max_batch:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            items.append(item)
            n += len(item[0])
        return items

    async def _worker(self, queue: asyncio.Queue[_Item]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = await self._gather(queue)
            live = [item for item in items if not item[1].done()]  # drop cancelled requests
            if not live:
                continue
            batch = np.concatenate([x for x, _, _ in live]) if len(live) > 1 else live[0][0]
            start = time.perf_counter()
            try:
                out = await loop.run_in_executor(self._executor, self.fn, batch)
            except Exception as err:  # the model failed: every waiting request gets the error
                log.exception("batched forward pass failed")
                for _, f, _ in live:
                    if not f.done():
                        f.set_exception(err)
                continue
            done = time.perf_counter()
            self.stats.batches += 1
            self.stats.images += len(batch)
            self.stats.largest = max(self.stats.largest, len(batch))
            row = 0
            for x, f, queued in live:
                self.times.add("wait", start - queued)
                self.times.add("forward", done - start)
                if not f.done():
                    f.set_result((out[row:row + len(x)], done))
                row += len(x)

    async def close(self) -> None:
        """Stop the worker task and its thread."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, RuntimeError):
                pass
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None
