"""archtune: build, train, tune and explain neural-network image classifiers.

The public API, each step one call (the CLI is a thin layer over these)::

    import archtune as at
    spec = at.load_spec("cnn-classic")            # or a YAML/JSON path or a dict
    print(at.summary(spec))
    run = at.train(spec)                          # -> runs/<name>-<time>/
    result = at.evaluate(run, "test")

Names are imported on first use, so ``import archtune`` (and the CLI's start-up) stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# public name -> module that defines it
_EXPORTS = {
    "ArchtuneError": "archtune.errors", "Callback": "archtune.callbacks",
    "Dataset": "archtune.data", "Splits": "archtune.data", "list_datasets": "archtune.data",
    "load_dataset": "archtune.data", "split_dataset": "archtune.data", "test_split": "archtune.data",
    "capacity_verdict": "archtune.evaluate", "evaluate": "archtune.evaluate",
    "format_evaluation": "archtune.evaluate", "metrics_from_logits": "archtune.evaluate",
    "ArchtuneNet": "archtune.models", "build_model": "archtune.models",
    "Spec": "archtune.specs", "infer_shapes": "archtune.specs", "list_specs": "archtune.specs",
    "load_spec": "archtune.specs", "summary": "archtune.specs",
    "Run": "archtune.training", "list_runs": "archtune.training",
    "load_checkpoint": "archtune.training", "load_run": "archtune.training",
    "train": "archtune.training",
    "create_model": "archtune._factory",
    "tune": "archtune.tuning", "TuneResult": "archtune.tuning",
    "ensemble": "archtune._ensemble",
}

_SUBPACKAGES = {"config", "data", "errors", "models", "report", "search", "serve", "specs", "training"}

if TYPE_CHECKING:
    from ._ensemble import ensemble
    from ._factory import create_model
    from .callbacks import Callback
    from .data import Dataset, Splits, list_datasets, load_dataset, split_dataset, test_split
    from .errors import ArchtuneError
    from .evaluate import capacity_verdict, evaluate, format_evaluation, metrics_from_logits
    from .models import ArchtuneNet, build_model
    from .specs import Spec, infer_shapes, list_specs, load_spec, summary
    from .training import Run, list_runs, load_checkpoint, load_run, train
    from .tuning import TuneResult, tune


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:  # archtune.specs, archtune.data, ... as attributes
        return importlib.import_module(f"archtune.{name}")
    raise AttributeError(f"module 'archtune' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, "__version__"])


__all__ = [
    "ArchtuneError", "ArchtuneNet", "Callback", "Dataset", "Run", "Spec", "Splits", "__version__", "build_model",
    "capacity_verdict", "create_model", "ensemble", "evaluate", "format_evaluation", "infer_shapes",
    "list_datasets", "list_runs", "list_specs", "load_checkpoint", "load_dataset", "load_run",
    "load_spec", "metrics_from_logits", "split_dataset", "summary", "test_split", "train",
    "TuneResult", "tune",
]
