"""Models built from specs."""

from ..specs.functions import INITIALIZERS, create_activation
from .build import (
    ACTIVATION_LAYERS,
    ArchtuneNet,
    Builder,
    EnsembleNet,
    Residual,
    SamePool2d,
    build_model,
    module_at,
    weight_layers,
)

__all__ = ["ACTIVATION_LAYERS", "INITIALIZERS", "ArchtuneNet", "Builder", "EnsembleNet", "Residual", "SamePool2d",
           "build_model", "create_activation", "module_at", "weight_layers"]
