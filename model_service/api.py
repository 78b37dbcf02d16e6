"""model-service's REST API (aiohttp): train, list, inspect and activate models; the latest prediction.

Same conventions as the shard's API (api/http.py): JSON errors ``{"error": reason}``, bearer token
on every POST when ``api.token`` is set, OpenAPI at /openapi.json, Prometheus at /metrics.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import hdrs, web

from api.http import (
    SETTINGS,
    ApiError,
    ApiSettings,
    add_document_routes,
    bearer_auth,
    json_errors,
    json_response,
    one_param,
)
from api.openapi import SYMBOL_PATTERN
from model_service.artifacts import ModelError
from model_service.metrics import CONTENT_TYPE
from model_service.openapi import openapi_document
from model_service.request import RequestError

if TYPE_CHECKING:
    from model_service.service import ModelService

SERVICE = web.AppKey("model_service", object)
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)


def _service(request: web.Request) -> ModelService:
    return request.app[SERVICE]  # type: ignore[return-value]


def _known(svc: ModelService, model_id: str) -> dict[str, Any]:
    """The status of `model_id`: 400 when malformed, 404 when never requested."""
    try:
        found = svc.store.status(model_id)
    except ModelError as e:
        raise ApiError(400, str(e)) from None
    if found is None:
        raise ApiError(404, f"no model {model_id} (GET /model/list lists them)")
    return found


async def _body(request: web.Request) -> Any:
    """The JSON body of a POST; 415 / 400 when it is not a JSON document."""
    raw = await request.read()
    if not raw.strip():
        raise ApiError(400, "missing JSON body")
    if hdrs.CONTENT_TYPE in request.headers and request.content_type != "application/json":
        raise ApiError(415, f"Content-Type {request.content_type} is not application/json")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise ApiError(400, f"body is not JSON: {e}") from None


async def model_train(request: web.Request) -> web.Response:
    """POST /model/train: 202 {model_id, status}; the same request again gives the same id."""
    body = await _body(request)
    try:
        answer = _service(request).train(body)
    except RequestError as e:
        raise ApiError(400, str(e)) from None
    return json_response(answer, status=202)


async def model_list(request: web.Request) -> web.Response:
    """GET /model/list: every model requested, with its status, and which is active."""
    svc = _service(request)
    return json_response({"models": svc.store.list(), "active": svc.active_id()})


async def model_get(request: web.Request) -> web.Response:
    """GET /model/{id}: {model_id, status, error?, metadata?}."""
    found = _known(_service(request), request.match_info["model_id"])
    return json_response({k: found[k] for k in ("model_id", "status", "error", "metadata") if k in found})


async def model_activate(request: web.Request) -> web.Response:
    """POST /model/activate {model_id}: score live vectors with it from now on (and after a restart)."""
    body = await _body(request)
    if not isinstance(body, dict) or set(body) != {"model_id"}:
        raise ApiError(400, 'the body must be {"model_id": "<16 hex digits>"}')
    svc, model_id = _service(request), body["model_id"]
    found = _known(svc, model_id)
    if found["status"] != "done":
        why = f": {found['error']}" if found.get("error") else ""
        raise ApiError(409, f"model {model_id} is {found['status']}{why}; only a trained model can be activated")
    try:
        return json_response(svc.activate(model_id))
    except ModelError as e:
        raise ApiError(409, str(e)) from None


async def predict_latest(request: web.Request) -> web.Response:
    """GET /model/predict/latest?symbol=S: the newest prediction for S."""
    svc = _service(request)
    symbol = one_param(request, "symbol", required=True) or ""
    if not _SYMBOL_RE.match(symbol):
        raise ApiError(400, f"malformed symbol {symbol[:80]!r}: upper-case letters, digits, '-' or '_' (e.g. BTCUSDT)")
    scored = svc.cfg.subscribe.symbols
    if scored and symbol not in scored:
        raise ApiError(404, f"symbol {symbol} is not scored here (subscribe.symbols: {', '.join(scored)})")
    got = svc.inference.latest.get(symbol)
    if got is None:
        raise ApiError(503, f"no prediction for {symbol} yet: {svc.why_no_prediction()}")
    return json_response(got)


async def get_health(request: web.Request) -> web.Response:
    """GET /health: always 200; read ``status`` (ok, no_model, skew, idle)."""
    return json_response(_service(request).health())


def create_app(service: ModelService, *, token: str = "", max_body_bytes: int = 1 << 20) -> web.Application:
    """The API app over `service`."""
    app = web.Application(middlewares=[json_errors, bearer_auth], client_max_size=max_body_bytes)
    app[SERVICE] = service
    app[SETTINGS] = ApiSettings(token, max_body_bytes)
    app.router.add_post("/model/train", model_train)
    app.router.add_post("/model/activate", model_activate)
    app.router.add_get("/model/list", model_list)
    app.router.add_get("/model/predict/latest", predict_latest)
    app.router.add_get("/model/{model_id}", model_get)
    app.router.add_get("/health", get_health)
    add_document_routes(app, openapi_document(), service.metrics.render, CONTENT_TYPE)
    return app
