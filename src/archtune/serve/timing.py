"""Where a request's time goes: cumulative per-stage histograms, cheap enough to keep always on.

Each stage of a ``/predict`` request (reading the body, decoding the images, waiting for a
forward pass, the forward pass, handing the result back to the request, encoding the answer)
adds its duration to a fixed-bucket histogram. The counters only grow, so a client reads
``GET /stats`` before and after a load test and subtracts (:func:`stage_summary`): means are
exact, percentiles are read from the buckets (upper edges, within a factor of ~1.12).
"""

from __future__ import annotations

import bisect
from typing import Any

# upper bucket edges in ms: 0.01 ms to 10 s, twenty buckets per decade, then +inf
EDGES_MS: tuple[float, ...] = tuple(round(10 ** (e / 20 - 2), 6) for e in range(121))

STAGES = {
    "read": "receiving the request body",
    "decode": "decoding and preparing the images (thread hand-off included)",
    "wait": "queued for the model until its batch's forward pass starts",
    "forward": "the batch's forward pass",
    "resume": "forward pass done -> the request's handler runs again",
    "respond": "building and encoding the JSON answer",
    "handler": "the /predict handler from start to its answer",
    "loop_lag": "event-loop lag: how late a 10 ms timer fires",
}


class StageTimes:
    """Cumulative duration histograms, one per stage in :data:`STAGES`."""

    def __init__(self) -> None:
        self.counts = {s: [0] * (len(EDGES_MS) + 1) for s in STAGES}
        self.totals = dict.fromkeys(STAGES, 0.0)

    def add(self, stage: str, seconds: float) -> None:
        ms = seconds * 1000.0
        self.counts[stage][bisect.bisect_left(EDGES_MS, ms)] += 1
        self.totals[stage] += ms

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready counters (what ``GET /stats`` answers under ``stages``)."""
        return {"edges_ms": list(EDGES_MS),
                "stages": {s: {"count": sum(c), "total_ms": round(self.totals[s], 3),
                               "buckets": list(c)} for s, c in self.counts.items()}}


def _percentile(buckets: list[int], q: float) -> float:
    """Upper edge (ms) of the bucket holding quantile q of the counts (inf past the last)."""
    n = sum(buckets)
    rank, seen = q * n, 0
    for i, c in enumerate(buckets):
        seen += c
        if seen >= rank and c:
            return EDGES_MS[i] if i < len(EDGES_MS) else float("inf")
    return 0.0


def stage_summary(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per stage between two :meth:`StageTimes.snapshot` s: count, mean, p50 and p99 in ms."""
    out = {}
    for stage, a in after["stages"].items():
        b = before["stages"].get(stage, {"count": 0, "total_ms": 0.0,
                                         "buckets": [0] * len(a["buckets"])})
        n = a["count"] - b["count"]
        if n <= 0:
            continue
        diff = [x - y for x, y in zip(a["buckets"], b["buckets"], strict=True)]
        out[stage] = {"count": n, "mean_ms": (a["total_ms"] - b["total_ms"]) / n,
                      "p50_ms": _percentile(diff, 0.5), "p99_ms": _percentile(diff, 0.99)}
    return out
