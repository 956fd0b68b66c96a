"""Architecture specs: Keras-style layer lists validated, shape-checked and summarised."""

from .layers import ACTIVATIONS, INITIALIZERS, LAYER_TYPES, Layer
from .registry import list_specs, load_spec, raw_spec
from .schema import Spec, apply_overrides, read_spec_file, spec_from_dict
from .shapes import LayerInfo, infer_shapes, keras_shape, output_units, totals
from .summary import summary, summary_rows

__all__ = [
    "ACTIVATIONS", "INITIALIZERS", "LAYER_TYPES", "Layer", "LayerInfo", "Spec", "apply_overrides",
    "infer_shapes", "keras_shape", "list_specs", "load_spec", "output_units", "raw_spec",
    "read_spec_file", "spec_from_dict", "summary", "summary_rows", "totals",
]
