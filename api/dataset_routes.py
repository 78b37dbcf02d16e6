"""The dataset routes (SPEC §6, §9): POST /dataset/build, GET /dataset/list, GET /dataset/{id}.

Handlers only talk to a `DatasetService` (the shard implements it in tools/shard/dataset_runner.py):
a request it cannot serve raises `ValueError` with the reason (400). Ids are checked against
`ID_PATTERN` before anything is looked up, so no request can name a path outside the datasets directory.
"""

from __future__ import annotations

import re
from typing import Any, Protocol, runtime_checkable

import orjson
from aiohttp import web

from api.http import ApiError, json_response

ID_PATTERN = r"^[0-9a-f]{16}$"
_ID_RE = re.compile(ID_PATTERN)
#: Build parameters accepted (query string or JSON body).
PARAMS = ("from", "to", "symbols", "horizons", "threshold_bps", "drop_invalid")


@runtime_checkable
class DatasetService(Protocol):
    """Dataset builds as the API sees them."""

    async def request(self, params: dict[str, str]) -> dict[str, Any]:
        """Start (or find) the build of `params`: ``{dataset_id, status}``; ValueError with the reason if bad."""
        ...

    def status(self, dataset_id: str) -> dict[str, Any] | None:
        """``{dataset_id, status, progress?, error?, manifest?}``; None for an id never requested."""
        ...

    def datasets(self) -> list[dict[str, Any]]:
        """Every dataset and build."""
        ...


SERVICE = web.AppKey("datasets", DatasetService)


async def _build_params(request: web.Request) -> dict[str, str]:
    """The parameters from the query string and/or a JSON object body, as strings; 400 when malformed."""
    params = {}
    for k in request.query:
        if k not in PARAMS:
            raise ApiError(400, f"unknown parameter {k[:40]!r}; known: {', '.join(PARAMS)}")
        got = request.query.getall(k)
        if len(got) > 1:
            raise ApiError(400, f"give {k} once, got {len(got)} values")
        params[k] = got[0]
    body = await request.read()
    if body.strip():
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise ApiError(400, f"body is not JSON: {e}") from None
        if not isinstance(doc, dict):
            raise ApiError(400, "body must be a JSON object of build parameters")
        for k, v in doc.items():
            if k not in PARAMS:
                raise ApiError(400, f"unknown parameter {str(k)[:40]!r}; known: {', '.join(PARAMS)}")
            params[k] = ",".join(map(str, v)) if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else str(v)
    for k in ("from", "to"):
        if not params.get(k):
            raise ApiError(400, f"missing parameter {k} (e.g. ?from=2026-09-21T00:00:00Z&to=2026-09-22T00:00:00Z)")
    return params


async def dataset_build(request: web.Request) -> web.Response:
    """POST /dataset/build: 202 {dataset_id, status}; the same request again gives the same id."""
    params = await _build_params(request)
    try:
        answer = await request.app[SERVICE].request(params)
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    return json_response(answer, status=202)


async def dataset_list(request: web.Request) -> web.Response:
    """GET /dataset/list: every dataset and build."""
    return json_response({"datasets": request.app[SERVICE].datasets()})


async def dataset_get(request: web.Request) -> web.Response:
    """GET /dataset/{id}: its status, progress and manifest."""
    ds_id = request.match_info["dataset_id"]
    if not _ID_RE.match(ds_id):
        raise ApiError(400, f"malformed dataset id {ds_id[:80]!r}: 16 lower-case hex digits")
    found = request.app[SERVICE].status(ds_id)
    if found is None:
        raise ApiError(404, f"no dataset {ds_id} (GET /dataset/list lists them)")
    return json_response(found)


def add_routes(app: web.Application, service: DatasetService) -> None:
    """Register the dataset routes over `service`."""
    app[SERVICE] = service
    app.router.add_post("/dataset/build", dataset_build)
    app.router.add_get("/dataset/list", dataset_list)
    app.router.add_get("/dataset/{dataset_id}", dataset_get)
