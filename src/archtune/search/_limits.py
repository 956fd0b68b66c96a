"""Budgets a candidate must fit before it is trained: parameters, FLOPs per image and batch-1
CPU latency (the ``search:`` keys ``max_params``, ``max_flops``, ``max_latency_ms``).

A candidate over budget is rejected from its spec alone: no training, recorded ``invalid`` with
the reason. Each limit is also an Optuna constraint of the trial (``value / limit - 1``, <= 0
when it fits), so TPE learns which regions of the space are over budget and stops proposing
them. Latency is measured once per architecture per process (median of timed forward passes of
one image, fp32, on this process's CPU threads).
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

    from ..specs import Spec

LATENCY_RUNS = 20  # timed forward passes (after 3 warm-up passes); the median is kept
_latency_cache: dict[str, float] = {}


@dataclass(frozen=True)
class Limits:
    max_params: int | None = None
    max_flops: float | None = None
    max_latency_ms: float | None = None

    @classmethod
    def of(cls, info: Any) -> Limits | None:
        """The limits recorded in a study's info (None when it has none)."""
        limits = cls(*(getattr(info, k, None) for k in ("max_params", "max_flops", "max_latency_ms")))
        return limits if any(v is not None for v in vars(limits).values()) else None

    def check(self, spec: Spec, params: int, flops: float) -> tuple[dict[str, float], dict[str, Any]]:
        """({constraint name: value / limit - 1}, measured values) of a candidate; the latency
        is measured only when the cheaper limits hold (an over-budget model is never built)."""
        return self.check_costs(params, flops, lambda: latency_ms(spec))

    def check_costs(self, params: int, flops: float, latency: Callable[[], float]
                    ) -> tuple[dict[str, float], dict[str, Any]]:
        """As :meth:`check`, from the costs; ``latency()`` is called only when needed."""
        constraints: dict[str, float] = {}
        measured: dict[str, Any] = {}
        if self.max_params is not None:
            constraints["params"] = params / self.max_params - 1
        if self.max_flops is not None:
            constraints["flops"] = flops / self.max_flops - 1
        if self.max_latency_ms is not None:
            if any(v > 0 for v in constraints.values()):
                constraints["latency_ms"] = 0.0  # not measured: rejected already
            else:
                measured["latency_ms"] = latency()
                constraints["latency_ms"] = measured["latency_ms"] / self.max_latency_ms - 1
        return constraints, measured

    def reason(self, constraints: dict[str, float], params: int, flops: float,
               measured: dict[str, Any]) -> str | None:
        """One line naming every limit the candidate exceeds, or None when it fits."""
        over = []
        if constraints.get("params", 0) > 0:
            over.append(f"{params:,} parameters > max_params {self.max_params:,}")
        if constraints.get("flops", 0) > 0:
            over.append(f"{flops:,.0f} FLOPs per image > max_flops {self.max_flops:,.0f}")
        if constraints.get("latency_ms", 0) > 0:
            over.append(f"batch-1 latency {measured['latency_ms']:.3g} ms > max_latency_ms "
                        f"{self.max_latency_ms:g}")
        return "over budget: " + "; ".join(over) + " (not trained)" if over else None


def architecture_key(spec: Spec) -> str:
    """What latency depends on: the layers and the input shape (not training settings)."""
    d = spec.to_dict()
    text = json.dumps({"layers": d["layers"], "input_shape": d.get("input_shape")}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def latency_ms(spec: Spec) -> float:
    """Median milliseconds of a forward pass of one image, fp32, eval mode, on the CPU."""
    key = architecture_key(spec)
    if key not in _latency_cache:
        import torch

        from ..models import build_model

        model = build_model(spec).eval()
        h, w, c = spec.input_shape
        x = torch.zeros(1, c, h, w)
        times = []
        with torch.inference_mode():
            for i in range(3 + LATENCY_RUNS):
                t0 = time.perf_counter()
                model(x)
                if i >= 3:
                    times.append((time.perf_counter() - t0) * 1000)
        _latency_cache[key] = statistics.median(times)
    return _latency_cache[key]


def apply(trial: optuna.Trial, constraints: dict[str, float]) -> None:
    """Record the constraints in the trial, for samplers that use them (TPE)."""
    for name, value in constraints.items():
        trial.set_constraint(name, value)
