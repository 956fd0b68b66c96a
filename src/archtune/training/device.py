"""Device, precision and thread choices, recorded in every run's env.json."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from pathlib import Path
from typing import Any, TypeVar

import torch

from .._version import __version__
from ..errors import ArchtuneError, short

M = TypeVar("M", bound=torch.nn.Module)

log = logging.getLogger(__name__)


def pick_device(requested: str | None = None) -> torch.device:
    """'cuda' when present unless told otherwise; 'cpu' always works."""
    if requested:
        dev = torch.device(requested)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ArchtuneError("--device cuda: no CUDA device is available on this machine")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); else autocast is emulated."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() == "arm64"  # Apple silicon has bf16
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested: str, device: torch.device) -> tuple[str, str]:
    """Return (precision, reason). 'auto' picks bf16 only where the hardware has it."""
    if requested == "fp32":
        return "fp32", "requested"
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
    else:
        ok = cpu_has_bf16()
    if requested == "bf16":
        if not ok:
            log.warning("bf16 requested but %s has no native bf16: it will be emulated (slow)", device)
        return "bf16", "requested"
    if ok:
        return "bf16", f"auto: {device.type} supports bf16"
    return "fp32", f"auto: {device.type} has no native bf16"


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


MAX_THREADS = 4096  # more intra-op threads than any machine has cores is a typo


def set_threads(threads: int | None) -> int:
    """Use ``threads`` intra-op threads (default: $ARCHTUNE_THREADS, else the cores this process
    may use)."""
    where = "threads"
    if threads is None:
        env = os.environ.get("ARCHTUNE_THREADS")
        where = "ARCHTUNE_THREADS"
        try:
            threads = int(env) if env else len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        except ValueError:
            raise ArchtuneError(f"ARCHTUNE_THREADS: expected a whole number of CPU threads, "
                                f"got {short(env)}") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise ArchtuneError(f"{where}: expected 1 to {MAX_THREADS} CPU threads, got {short(threads)}")
    torch.set_num_threads(threads)
    return torch.get_num_threads()


def environment(device: torch.device, precision: str, reason: str, threads: int) -> dict:
    import sys

    import numpy

    env = {
        "archtune": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "device": str(device),
        "precision": precision,
        "precision_reason": reason,
        "threads": threads,
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def memory_format(model: M, spec: Any) -> tuple[M, bool]:
    """The model in channels-last memory when the spec has a convolution (faster on CPU and
    GPU), and whether it is; training and evaluation decide it here alike."""
    channels_last = any(layer.type == "Conv2D" for layer in spec.layers)
    return (model.to(memory_format=torch.channels_last) if channels_last else model), channels_last
