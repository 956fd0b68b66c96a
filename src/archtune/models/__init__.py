"""Models built from specs."""

from .build import ACTIVATION_LAYERS, ArchtuneNet, build_model, create_activation
from .init import INITIALIZERS

__all__ = ["ACTIVATION_LAYERS", "INITIALIZERS", "ArchtuneNet", "build_model", "create_activation"]
