"""Build study folders directly with Optuna, following the search package's contract."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState, create_trial

SPACE = {
    "lr": {"float": [1e-4, 1e-1], "log": True},
    "batch_size": {"choice": [32, 64, 128]},
    "optimizer": {"choice": ["sgd", "adam"]},
    "dropout": {"float": [0.0, 0.5]},
    "blocks": {"int": [1, 3]},
    "filters_{i}": {"choice": [16, 32, 64]},
}


def _sample(rng: np.random.Generator) -> tuple[dict[str, Any], dict[str, Any]]:
    params: dict[str, Any] = {
        "lr": float(10 ** rng.uniform(-4, -1)),
        "batch_size": int(rng.choice([32, 64, 128])),
        "optimizer": str(rng.choice(["sgd", "adam"])),
        "dropout": float(rng.uniform(0, 0.5)),
        "blocks": int(rng.integers(1, 4)),
    }
    dists: dict[str, Any] = {
        "lr": FloatDistribution(1e-4, 1e-1, log=True),
        "batch_size": CategoricalDistribution([32, 64, 128]),
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
        "dropout": FloatDistribution(0.0, 0.5),
        "blocks": IntDistribution(1, 3),
    }
    for i in range(params["blocks"]):
        params[f"filters_{i}"] = int(rng.choice([16, 32, 64]))
        dists[f"filters_{i}"] = CategoricalDistribution([16, 32, 64])
    return params, dists


def _accuracy(params: dict[str, Any], epoch: int, rng: np.random.Generator) -> float:
    """A made-up but structured objective: lr near 3e-3 and more blocks are better."""
    quality = 0.9 - 0.05 * abs(math.log10(params["lr"]) + 2.5) + 0.01 * params["blocks"]
    return float(min(0.99, quality * (1 - math.exp(-epoch / 2)) + rng.normal(0, 0.003)))


def make_study(folder: Path, n_trials: int, *, seed: int = 0, epochs: int = 6,
               run_dirs: dict[int, str] | None = None) -> Path:
    """Write ``folder/study.json`` and ``folder/study.db`` with ``n_trials`` finished trials.

    Every 3rd trial is pruned after 2 epochs, every 17th failed; ``run_dirs`` maps trial numbers
    to run folders recorded in the ``run_dir`` user attribute.
    """
    folder.mkdir(parents=True, exist_ok=True)
    name = folder.name
    storage = f"sqlite:///{folder / 'study.db'}"
    meta = {"study": name, "storage": storage, "space": SPACE, "space_hash": "abc123",
            "sampler": "tpe", "pruner": "hyperband", "seed": seed, "direction": "maximize",
            "objective": "dev_accuracy", "created": "2024-01-01T00:00:00", "archtune": "0.1.0"}
    (folder / "study.json").write_text(json.dumps(meta, indent=2))
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    rng = np.random.default_rng(seed)
    trials = [_trial(n, rng, epochs, (run_dirs or {}).get(n)) for n in range(n_trials)]
    study.add_trials(trials)
    return folder


def _trial(number: int, rng: np.random.Generator, epochs: int, run_dir: str | None
           ) -> optuna.trial.FrozenTrial:
    params, dists = _sample(rng)
    if number % 17 == 5:
        attrs = {"status": "failed", "error": "RuntimeError: out of memory", "duration_s": 1.5,
                 "run_dir": None, "seed": number, "spec": {"name": f"t{number}"}}
        return create_trial(state=TrialState.FAIL, params=params, distributions=dists,
                            user_attrs=attrs)
    pruned = number % 3 == 1
    n_epochs = 2 if pruned else epochs
    curve = {e: _accuracy(params, e + 1, rng) for e in range(n_epochs)}
    best = max(curve.values())
    attrs = {"status": "pruned" if pruned else "complete", "dev_accuracy": best,
             "dev_loss": 1 - best, "epochs": n_epochs, "duration_s": 4.0 * n_epochs,
             "params_count": 1000 * params["blocks"], "flops": 20000 * params["blocks"],
             "seed": number, "run_dir": run_dir, "error": None, "spec": {"name": f"t{number}"}}
    state = TrialState.PRUNED if pruned else TrialState.COMPLETE
    return create_trial(state=state, value=None if pruned else best, params=params,
                        distributions=dists, user_attrs=attrs, intermediate_values=curve)
