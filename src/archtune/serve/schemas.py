"""Response bodies of the HTTP API (they make the OpenAPI schema), and the request bodies'
OpenAPI description (the endpoints read the body themselves, to enforce the limits)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class TopClass(BaseModel):
    label: str
    probability: float


class PredictionOut(BaseModel):
    file: str | None = Field(None, description="Upload's file name (multipart), else null.")
    label: str = Field(description="The most probable class.")
    index: int = Field(description="Its index in the model's class list.")
    probability: float
    top: list[TopClass] = Field(description="The top-k classes, most probable first.")
    probabilities: list[float] | None = Field(
        None, description="Every class's probability, in class order (when asked for).")
    inverted: bool | None = Field(
        None, description="Whether the image was inverted (light background); null for pixels.")


class PredictResponse(BaseModel):
    model: str
    predictions: list[PredictionOut]


class ExplainResponse(BaseModel):
    model: str
    classes: list[str]
    prediction: PredictionOut
    input: dict[str, Any] = Field(description="The image as the model sees it (PNG data URL).")
    activations: dict[str, Any] | None = Field(
        description="First conv layer: name, shape, maps as PNG data URLs; null for an MLP.")


class ErrorResponse(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. 'unsupported_image'.")
    detail: str = Field(description="What was wrong, for a person.")


class HealthResponse(BaseModel):
    status: str
    model: str
    batches: int = Field(description="Forward passes run so far.")
    images: int = Field(description="Images predicted so far.")
    mean_batch: float = Field(description="Mean images per forward pass (micro-batching).")
    pending: int = Field(description="Requests waiting for the model now.")


class LayerOut(BaseModel):
    name: str
    type: str
    output_shape: str
    params: int


class ModelInfo(BaseModel):
    name: str
    run: str | None = Field(description="Run folder name (not its path).")
    input_shape: list[int] = Field(description="[height, width, channels]")
    classes: list[str]
    params: int
    flops: int
    layers: list[LayerOut]
    metrics: dict[str, Any]
    preprocessing: dict[str, Any]
    limits: dict[str, int]


_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PIXELS = {"type": "array", "description": "[H][W], [H][W][C], [N][H][W] or [N][H][W][C] "
                                           "numbers in 0..255 (the model's input size)",
           "items": {}}

REQUEST_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object",
        "properties": {"file": {"type": "array", "items": {"type": "string", "format": "binary"},
                                "description": "One or more image files (any field name)."}}}},
    "image/png": _BINARY, "image/jpeg": _BINARY, "image/bmp": _BINARY, "image/webp": _BINARY,
    "application/json": {"schema": {"oneOf": [_PIXELS, {
        "type": "object", "required": ["pixels"],
        "properties": {"pixels": _PIXELS, "max_value": {"type": "number", "default": 255}}}]}},
}}}

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text} for code, text in (
        (400, "Empty body, no file part, invalid JSON or malformed multipart."),
        (413, "Request, image (pixels) or image count over the limit."),
        (415, "Not an accepted content type, or a file that is not a PNG/JPEG/BMP/WebP image."),
        (422, "Truncated or corrupt image, wrong pixel-array shape or values, bad parameter."))}
