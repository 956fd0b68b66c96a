"""The HTTP app (FastAPI, ASGI): predictions, model facts, health and a small web page.

::

    GET  /              the web page: drop an image, see it as the model does, bars, activations
    POST /predict       one or many images (multipart, raw image body or JSON pixels) -> top-k
    POST /explain       one image -> prediction, the 28x28 input and first-conv activation maps
    GET  /model         spec summary, classes, metrics, preprocessing and limits
    GET  /health        liveness and micro-batching counters
    GET  /stats         cumulative per-stage latency histograms (see :mod:`.timing`)
    GET  /openapi.json  the OpenAPI schema

Every client mistake is a 4xx with ``{"error": code, "detail": message}``; predictions of
concurrent requests share forward passes through a :class:`~.batcher.MicroBatcher`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from .._version import __version__
from ..specs import infer_shapes, totals
from ..training.runs import Run
from .batcher import MicroBatcher
from .explain import explain_image
from .inputs import ApiError, Inputs, Limits, read_inputs
from .predict import Predictor
from .preprocess import ImageError
from .schemas import (
    ERRORS,
    REQUEST_BODY,
    ExplainResponse,
    HealthResponse,
    ModelInfo,
    PredictResponse,
)
from .timing import StageTimes

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
RESIZE_TEXT = {"fit": "keep aspect ratio, bilinear, pad with the background",
               "crop": "keep aspect ratio, bilinear, cover the input and keep the centre"}
_STATUS_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed",
                 413: "request_too_large", 415: "unsupported_media_type"}


class NonFiniteOutput(Exception):
    """The model's output holds NaN or infinity (broken weights): a 500, never a NaN answer."""


def _error(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail}, status_code=status)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError) -> JSONResponse:
        return _error(err.status, err.code, err.message)

    @app.exception_handler(ImageError)
    async def image_error(_: Request, err: ImageError) -> JSONResponse:
        return _error(err.status, err.code, str(err))

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, _: ClientDisconnect) -> JSONResponse:
        # nobody is left to read the answer; one debug line instead of a traceback
        client = f"{request.client.host}:{request.client.port}" if request.client else "client"
        log.debug("%s disconnected during %s %s", client, request.method, request.url.path)
        return _error(400, "client_disconnected", "the client disconnected")

    @app.exception_handler(NonFiniteOutput)
    async def non_finite(_: Request, err: NonFiniteOutput) -> JSONResponse:
        log.error("%s", err)
        return _error(500, "internal_error", f"{err} (logged on the server)")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException) -> JSONResponse:
        code = _STATUS_CODES.get(err.status_code, "error" if err.status_code >= 500 else "bad_request")
        return _error(err.status_code, code, str(err.detail))

    @app.exception_handler(Exception)
    async def server_error(_: Request, err: Exception) -> JSONResponse:  # a bug, not the client's
        log.exception("internal error")
        return _error(500, "internal_error", "internal server error (logged on the server)")

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in err.errors()]
        return _error(422, "invalid_request", "; ".join(parts) or "invalid request")


def model_info(predictor: Predictor, limits: Limits, invert: str) -> dict[str, Any]:
    """What ``GET /model`` answers: spec summary, classes, metrics (no file-system paths)."""
    run = predictor.run
    infos = infer_shapes(predictor.spec)
    t = totals(infos)
    metrics: dict[str, Any] = {}
    if run is not None:
        metrics = {k: run.metrics.get(k) for k in ("status", "best_epoch", "epochs_run", "best")}
        test = run.evaluation("test")
        if test:
            metrics["test_accuracy"] = test.get("accuracy")
    fmt = predictor.format
    return {"name": predictor.name, "run": run.name if run else None,
            "input_shape": [fmt.height, fmt.width, fmt.channels], "classes": predictor.classes,
            "params": t.params, "flops": t.flops,
            "layers": [{"name": i.name, "type": i.layer.type, "output_shape": i.keras_shape,
                        "params": i.params} for i in infos],
            "metrics": metrics,
            "preprocessing": {"resize": RESIZE_TEXT[fmt.resize],
                              "background": fmt.background or "unknown", "invert": invert,
                              "scale": "pixels / 255; standardisation is inside the model",
                              "accepted": ["PNG", "JPEG", "BMP", "WebP"]},
            "limits": limits.to_dict()}


def _prediction_dicts(predictor: Predictor, probs: np.ndarray, inputs: Inputs, top: int,
                      all_classes: bool) -> list[dict[str, Any]]:
    if not np.isfinite(probs).all():  # never answer NaN (JSON has none; clients would get null)
        raise NonFiniteOutput(f"the model gave non-finite probabilities for {len(probs)} image(s)")
    out = []
    for pred, name, prep in zip(predictor.decode(probs, top), inputs.names, inputs.prepared,
                                strict=True):
        out.append({"file": name, **pred.to_dict(all_classes=all_classes),
                    "inverted": prep.inverted if prep is not None else None})
    return out


def _json(content: dict[str, Any]) -> Response:
    """The answer as compact JSON; refuses NaN and infinities instead of writing them."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), media_type="application/json")


async def _watch_loop(times: StageTimes, period: float = 0.01) -> None:
    """Record how late a ``period`` timer fires: the event loop's lag, blocked or starved."""
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + period
        await asyncio.sleep(period)
        times.add("loop_lag", max(0.0, loop.time() - due))


def _add_info_routes(app: FastAPI, predictor: Predictor, batcher: MicroBatcher,
                     info: dict[str, Any]) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health", response_model=HealthResponse)
    async def health() -> dict[str, Any]:
        s = batcher.stats
        return {"status": "ok", "model": predictor.name, "batches": s.batches, "images": s.images,
                "mean_batch": round(s.mean_batch, 3), "pending": batcher.pending}

    @app.get("/model", response_model=ModelInfo)
    async def model() -> dict[str, Any]:
        return info

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        """Cumulative micro-batching counters and per-stage latency histograms."""
        s = batcher.stats
        return {"batches": s.batches, "images": s.images, **batcher.times.snapshot()}


def _add_prediction_routes(app: FastAPI, predictor: Predictor, batcher: MicroBatcher,
                           limits: Limits, invert: str) -> None:
    times = batcher.times

    @app.post("/predict", response_model=PredictResponse, responses=ERRORS,
              openapi_extra=REQUEST_BODY)
    async def predict(request: Request,
                      top: int = Query(3, ge=1, le=1000, description="How many classes to list."),
                      probabilities: bool = Query(False, description="Add every class's probability."),
                      ) -> Response:
        """Predict one or many images: multipart files, a raw image body, or JSON pixels."""
        t0 = time.perf_counter()
        inputs = await read_inputs(request, predictor, limits, invert, times)
        probs = await batcher.submit(inputs.pixels)
        t1 = time.perf_counter()
        answer = _json({"model": predictor.name,
                        "predictions": _prediction_dicts(predictor, probs, inputs, top,
                                                         probabilities)})
        t2 = time.perf_counter()
        times.add("respond", t2 - t1)
        times.add("handler", t2 - t0)
        return answer

    @app.post("/explain", response_model=ExplainResponse, responses=ERRORS,
              openapi_extra=REQUEST_BODY)
    async def explain(request: Request) -> Response:
        """One image: its prediction, the input as the model sees it, first-conv activations."""
        inputs = await read_inputs(request, predictor, limits, invert)
        if len(inputs.pixels) != 1:
            raise ApiError(422, "one_image_expected",
                           f"/explain takes one image, got {len(inputs.pixels)}; use /predict")
        probs = await batcher.submit(inputs.pixels)
        pred = _prediction_dicts(predictor, probs, inputs, len(predictor.classes), True)[0]
        extra = await run_in_threadpool(explain_image, predictor, inputs.pixels[0])
        return _json({"model": predictor.name, "classes": predictor.classes, "prediction": pred,
                      **extra})


def create_app(run: Run | str | Path | Predictor, *, limits: Limits | None = None,
               invert: str = "auto", max_batch: int = 64, max_wait_ms: float = 2.0,
               device: str = "cpu", freeze_gc: bool = False) -> FastAPI:
    """The ASGI app serving a run folder's best model (or a ready :class:`Predictor`).

    ``max_batch`` and ``max_wait_ms`` tune the micro-batcher; ``invert`` is the preprocessing's
    inversion policy (auto | always | never); ``limits`` bounds request size, pixels and images.
    ``freeze_gc``: at start-up, move every object that exists then (torch, the model, the app)
    out of the garbage collector's reach (``gc.freeze``), so that a full collection under load
    scans only what requests allocate instead of pausing every request for ~150 ms; for a
    process that only serves (``archtune serve``).
    """
    predictor = run if isinstance(run, Predictor) else Predictor.from_run(run, device=device)
    limits = limits or Limits()
    batcher = MicroBatcher(predictor.probabilities, max_batch=max_batch, max_wait_ms=max_wait_ms)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        log.debug("serving %s (%d classes, input %s)", predictor.name, len(predictor.classes),
                  predictor.format.chw)
        if freeze_gc:
            gc.collect()
            gc.freeze()
        watch = asyncio.get_running_loop().create_task(_watch_loop(batcher.times))
        yield
        watch.cancel()
        await batcher.close()

    app = FastAPI(title="archtune", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # their pages load scripts from a CDN
                  description=f"Predictions of the archtune model '{predictor.name}'.")
    app.state.predictor, app.state.batcher, app.state.limits = predictor, batcher, limits
    _install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_info_routes(app, predictor, batcher, model_info(predictor, limits, invert))
    _add_prediction_routes(app, predictor, batcher, limits, invert)
    return app
