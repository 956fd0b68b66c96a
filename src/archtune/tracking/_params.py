"""A run's parameters as the experiment loggers record them (flat, scalar values)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..specs import Spec


def scalar(value: Any) -> str | int | float | bool:
    """A value TensorBoard's HParams and MLflow accept (lists and None as JSON text)."""
    if isinstance(value, bool | int | float | str):
        return value
    return json.dumps(value)


def run_params(spec: Spec, info: dict[str, Any]) -> dict[str, str | int | float | bool]:
    """A run's parameters, flat: spec name, size, then every train.* and data.* key."""
    out: dict[str, Any] = {"spec": spec.name, "params_count": info.get("params", 0),
                           "flops": info.get("flops", 0), "layers": len(spec.layers)}
    raw = spec.to_dict()

    def flat(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                flat(f"{prefix}.{k}", v)
        else:
            out[prefix] = scalar(value)

    for section in ("train", "data"):
        flat(section, raw[section])
    return out


def replanned_epochs(metrics: dict[str, Any]) -> int | None:
    """The epochs a time-budgeted run trained when re-planning changed them from the plan the
    loggers were given at its start (metrics.json ``time_budget``); None otherwise."""
    plan = metrics.get("time_budget") or {}
    final = plan.get("epochs_final")
    return final if isinstance(final, int) and final != plan.get("epochs") else None
