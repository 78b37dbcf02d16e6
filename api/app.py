"""The shard's REST API as an aiohttp app factory: routes, JSON errors, bearer auth on POST.

Handlers only read through the `ShardView` (and ask it for a registry reload); the shard's own
loop runs as a `background` context of the app (``cleanup_ctx``), in the same event loop.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import hdrs, web

from api.dataset_routes import DatasetService, add_routes
from api.http import (
    MAX_BODY_LIMIT,
    SETTINGS,
    ApiError,
    ApiSettings,
    add_document_routes,
    bearer_auth,
    json_errors,
    json_response,
    one_param,
)
from api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from api.metrics import ShardMetrics
from api.openapi import HASH_PATTERN, SYMBOL_PATTERN, YAML_TYPES, openapi_document
from api.view import ShardView
from engine.engine import Vector
from registry import RegistryError

log = logging.getLogger("feature_service.api")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SYMBOL_RE = re.compile(SYMBOL_PATTERN)
_HASH_RE = re.compile(HASH_PATTERN)


VIEW = web.AppKey("view", ShardView)
METRICS = web.AppKey("metrics", ShardMetrics)


def iso_ns(ts_ns: int) -> str:
    """Format ns since the epoch as ISO-8601 UTC with all nine fraction digits."""
    secs, frac = divmod(ts_ns, 1_000_000_000)
    return f"{(_EPOCH + timedelta(seconds=secs)):%Y-%m-%dT%H:%M:%S}.{frac:09d}Z"


def finite_or_none(values: Sequence[float]) -> list[float | None]:
    """Return the values as floats, NaN and ±inf as None (JSON has neither)."""
    return [x if math.isfinite(x) else None for x in values]


def latest_body(v: Vector, names: Sequence[str]) -> dict[str, Any]:
    """Return the JSON body of GET /features/latest for vector `v` with column `names`."""
    values = finite_or_none(v.values.tolist())
    return {"ts": iso_ns(v.ts_ns), "ts_ns": int(v.ts_ns), "symbol": v.symbol,
            "registry_hash": v.registry_hash, "book_valid": 1 if v.book_valid else 0,
            "features": dict(zip(names, values, strict=True))}


def _symbol_param(request: web.Request) -> str:
    """Return the validated ``symbol`` query parameter (400 naming what is wrong)."""
    symbol = one_param(request, "symbol", required=True) or ""
    if not symbol:
        raise ApiError(400, "empty query parameter symbol (e.g. ?symbol=BTCUSDT)")
    if not _SYMBOL_RE.match(symbol):
        raise ApiError(400, f"malformed symbol {symbol[:80]!r}: upper-case letters, digits, '-' or '_' "
                            "(e.g. BTCUSDT)")
    return symbol


def _not_owned(view: ShardView, symbol: str) -> ApiError:
    """Return the 404 for a symbol this shard does not own, naming its owner when known."""
    owner = view.owner_of(symbol)
    if owner is None:
        mine = view.symbols()
        owned = ", ".join(mine[:20]) + (f" ... ({len(mine)} in all)" if len(mine) > 20 else "") or "none"
        return ApiError(404, f"symbol {symbol} is not served by shard {view.name} and no shard in the "
                             f"cluster config owns it; this shard owns: {owned}")
    shard, url = owner
    return ApiError(404, f"symbol {symbol} is not served by shard {view.name}: shard {shard} owns it at "
                         f"{url.rstrip('/')}/features/latest?symbol={symbol}",
                    extra={"owner": {"shard": shard, "url": url}})


async def features_latest(request: web.Request) -> web.Response:
    """GET /features/latest?symbol=S: the newest vector of S with named features."""
    view = request.app[VIEW]
    symbol = _symbol_param(request)
    if symbol not in view.symbols():
        raise _not_owned(view, symbol)
    v = view.latest(symbol)
    if v is None:
        raise ApiError(503, f"no vector for {symbol} yet: shard {view.name} publishes one every tick")
    reg = view.registry(v.registry_hash)
    if reg is None:
        raise ApiError(503, f"registry {v.registry_hash} of the latest {symbol} vector is unknown")
    return json_response(latest_body(v, reg.names))


async def features_schema(request: web.Request) -> web.Response:
    """GET /features/schema[?registry_hash=H]: a registry's hash, names and canonical text."""
    view = request.app[VIEW]
    h = one_param(request, "registry_hash", required=False)
    if h is not None and not _HASH_RE.match(h):
        raise ApiError(400, f"malformed registry_hash {h[:80]!r}: lower-case hex")
    reg = view.registry(h)
    known = list(view.registry_hashes())
    if reg is None and h is not None:
        raise ApiError(404, f"unknown registry_hash {h}: this journal has used {len(known)} "
                            f"registries: {', '.join(known[-10:]) or 'none'}")
    if reg is None:
        raise ApiError(503, f"shard {view.name} has no registry in force yet")
    return json_response({"registry_hash": reg.content_hash, "names": list(reg.names),
                  "registry": reg.canonical, "known_hashes": known})


async def _registry_text(request: web.Request) -> str | None:
    """Return the YAML body of a reload request (None when empty); 413/415/400 when unusable."""
    limit = request.app[SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, f"request body of {request.content_length} bytes exceeds the limit of {limit}")
    body = await request.read()
    if not body:
        return None
    if hdrs.CONTENT_TYPE not in request.headers:
        raise ApiError(415, f"missing Content-Type: send the registry as {YAML_TYPES[0]}")
    if request.content_type not in YAML_TYPES:
        raise ApiError(415, f"Content-Type {request.content_type} is not a registry: send "
                            f"{' or '.join(YAML_TYPES)}")
    try:
        return body.decode(request.charset or "utf-8")
    except (UnicodeDecodeError, LookupError) as e:
        raise ApiError(400, f"registry body is not {request.charset or 'utf-8'} text: {e}") from None


async def registry_reload(request: web.Request) -> web.Response:
    """POST /feature-registry/reload: validate and journal a new registry (body YAML or none)."""
    text = await _registry_text(request)
    try:
        res = await request.app[VIEW].reload_registry(text)
    except RegistryError as e:
        raise ApiError(400, str(e)) from None
    return json_response({"registry_hash": res.registry_hash, "effective_ts": iso_ns(res.effective_ns),
                  "effective_ns": int(res.effective_ns), "names": list(res.names)})


async def get_health(request: web.Request) -> web.Response:
    """GET /health: the shard's health dict, always 200 (read `status`)."""
    return json_response(request.app[VIEW].health())


Background = Callable[[web.Application], AsyncIterator[None]]


def create_app(view: ShardView, metrics: ShardMetrics, *, token: str = "",
               max_body_bytes: int = 1 << 20, background: Sequence[Background] = (),
               datasets: DatasetService | None = None) -> web.Application:
    """Build the API app over `view`; each `background` context runs for the app's lifetime;
    `datasets` adds the /dataset routes."""
    if not 1 <= max_body_bytes <= MAX_BODY_LIMIT:
        raise ValueError(f"max_body_bytes: must be in 1..{MAX_BODY_LIMIT}, got {max_body_bytes}")
    app = web.Application(middlewares=[json_errors, bearer_auth], client_max_size=max_body_bytes)
    app[VIEW] = view
    app[METRICS] = metrics
    app[SETTINGS] = ApiSettings(token, max_body_bytes)
    for ctx in background:
        app.cleanup_ctx.append(ctx)
    app.router.add_get("/features/latest", features_latest)
    app.router.add_get("/features/schema", features_schema)
    app.router.add_post("/feature-registry/reload", registry_reload)
    app.router.add_get("/health", get_health)
    add_document_routes(app, openapi_document(), lambda: metrics.render(), METRICS_CONTENT_TYPE)
    if datasets is not None:
        add_routes(app, datasets)
    return app
