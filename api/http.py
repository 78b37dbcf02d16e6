"""HTTP plumbing shared by the shard API and model-service: JSON errors, bearer auth on POST, settings."""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

import orjson
from aiohttp import hdrs, web

log = logging.getLogger("feature_service.api")

#: Largest accepted `max_body_bytes` (1 GiB).
MAX_BODY_LIMIT = 1 << 30


class ApiSettings(NamedTuple):
    """Settings the handlers read: the POST bearer token ("" = no auth) and the body limit."""

    token: str
    max_body_bytes: int


SETTINGS = web.AppKey("settings", ApiSettings)


class ApiError(Exception):
    """An error answer: HTTP `status` with JSON body ``{"error": message, **extra}``."""

    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.extra, self.headers = status, message, extra or {}, headers or {}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """Return `body` as an orjson-encoded JSON response."""
    return web.Response(body=orjson.dumps(body), status=status, headers=headers,
                        content_type="application/json")


def one_param(request: web.Request, name: str, required: bool) -> str | None:
    """Return query parameter `name` (None when absent and optional); 400 if repeated or missing."""
    got = request.query.getall(name, [])
    if len(got) > 1:
        raise ApiError(400, f"give {name} once, got {len(got)} values")
    if not got:
        if required:
            raise ApiError(400, f"missing query parameter {name} (e.g. ?{name}=BTCUSDT)")
        return None
    return got[0]


def _http_error_message(request: web.Request, e: web.HTTPException) -> str:
    """Return a one-line reason for an aiohttp HTTP error raised outside our handlers."""
    if isinstance(e, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(e.allowed_methods))
        return f"method {e.method} is not allowed on {request.path} (allowed: {allowed})"
    if isinstance(e, web.HTTPNotFound) and e.text == "404: Not Found":
        return f"no route {request.method} {request.path}"
    if e.text and e.text != f"{e.status}: {e.reason}":
        return e.text
    return e.reason


def _error_response(err: ApiError) -> web.Response:
    """Return the JSON response of `err`."""
    return json_response({"error": err.message, **err.extra}, status=err.status, headers=err.headers)


@web.middleware
async def json_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """Answer every error as JSON ``{"error": reason}``; an unexpected exception is a logged 500."""
    try:
        return await handler(request)
    except ApiError as e:
        return _error_response(e)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        keep = {k: v for k, v in e.headers.items() if k not in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH)}
        return _error_response(ApiError(e.status, _http_error_message(request, e), headers=keep))
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("api handler failed: %s %s", request.method, request.path_qs)
        return _error_response(ApiError(500, f"internal error handling {request.method} {request.path} "
                                             "(a bug; see the service log)"))


@web.middleware
async def bearer_auth(request: web.Request, handler: Callable) -> web.StreamResponse:
    """With a token configured, refuse any POST without ``Authorization: Bearer <token>`` (401)."""
    token = request.app[SETTINGS].token
    if token and request.method == hdrs.METH_POST:
        scheme, _, given = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
        challenge = {hdrs.WWW_AUTHENTICATE: "Bearer"}
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, f"POST {request.path} needs an Authorization: Bearer <token> header",
                           headers=challenge)
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise ApiError(401, "wrong bearer token", headers=challenge)
    return await handler(request)




def add_document_routes(app: web.Application, openapi: dict[str, Any], render_metrics: Callable[[], bytes],
                        metrics_type: str) -> None:
    """GET /openapi.json (the document, encoded once) and GET /metrics (rendered per request)."""
    doc = orjson.dumps(openapi)

    async def get_openapi(request: web.Request) -> web.Response:
        return web.Response(body=doc, content_type="application/json")

    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=render_metrics(), headers={hdrs.CONTENT_TYPE: metrics_type})

    app.router.add_get("/openapi.json", get_openapi)
    app.router.add_get("/metrics", get_metrics)
