"""Architecture specs: Keras-style layer lists validated, shape-checked and summarised."""

from . import layer_types as _layer_types  # noqa: F401  (registers the built-in layer types)
from .card import spec_html
from .functions import ACTIVATIONS, INITIALIZERS
from .layers import (
    KINDS,
    LAYER_TYPES,
    Arg,
    Kind,
    Layer,
    LayerType,
    Out,
    layer_type,
    list_layers,
    register_kind,
    register_layer,
)
from .registry import list_specs, load_spec, raw_spec
from .schema import Spec, apply_overrides, read_spec_file, spec_from_dict
from .shapes import (
    LayerInfo,
    Nested,
    infer_layers,
    infer_shapes,
    keras_shape,
    output_units,
    parse_ref,
    totals,
    walk,
)
from .summary import layers_table, summary, summary_rows

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "KINDS", "LAYER_TYPES", "Arg", "Kind", "Layer", "LayerInfo", "LayerType", "Nested",
    "Out", "Spec", "apply_overrides", "infer_layers", "infer_shapes", "keras_shape", "layer_type",
    "layers_table", "list_layers", "list_specs", "load_spec", "output_units", "parse_ref", "raw_spec",
    "read_spec_file", "register_kind", "spec_html", "register_layer", "spec_from_dict", "summary", "summary_rows", "totals",
    "walk",
]
