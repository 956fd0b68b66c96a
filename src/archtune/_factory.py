"""``create_model``: timm-style factory over the spec registry."""

from __future__ import annotations

from typing import Any

from .models import ArchtuneNet, build_model
from .specs import Spec, load_spec


def create_model(spec: str | dict[str, Any] | Spec) -> ArchtuneNet:
    """Build the torch module of a built-in name, a spec file, a dict or a Spec."""
    return build_model(spec if isinstance(spec, Spec) else load_spec(spec))
