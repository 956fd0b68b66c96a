"""archtune: build, train, tune and explain neural-network image classifiers.

The public API, each step one call (the CLI is a thin layer over these)::

    import archtune as at
    spec = at.load_spec("cnn-classic")            # or a YAML/JSON path or a dict
    print(at.summary(spec))
    run = at.train(spec)                          # -> runs/<name>-<time>/
    result = at.evaluate(run, "test")
"""

from ._factory import create_model
from .data import Dataset, Splits, list_datasets, load_dataset, split_dataset, test_split
from .errors import ArchtuneError
from .evaluate import capacity_verdict, evaluate, format_evaluation, metrics_from_logits
from .models import ArchtuneNet, build_model
from .specs import Spec, infer_shapes, list_specs, load_spec, summary
from .train import Run, list_runs, load_checkpoint, load_run, train

__version__ = "0.1.0"

__all__ = [
    "ArchtuneError", "ArchtuneNet", "Dataset", "Run", "Spec", "Splits", "build_model",
    "capacity_verdict", "create_model", "evaluate", "format_evaluation", "infer_shapes",
    "list_datasets", "list_runs", "list_specs", "load_checkpoint", "load_dataset", "load_run",
    "load_spec", "metrics_from_logits", "split_dataset", "summary", "test_split", "train",
    "__version__",
]
