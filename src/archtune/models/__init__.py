"""Models built from specs."""

from ..specs.functions import INITIALIZERS, create_activation
from .build import ACTIVATION_LAYERS, ArchtuneNet, Builder, SamePool2d, build_model

__all__ = ["ACTIVATION_LAYERS", "INITIALIZERS", "ArchtuneNet", "Builder", "SamePool2d", "build_model",
           "create_activation"]
