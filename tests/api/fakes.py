"""A test double of the shard's state behind `api.view.ShardView`, and the OpenAPI response checker."""

from __future__ import annotations

import contextlib
import copy
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import numpy as np
from jsonschema import Draft202012Validator
from referencing import Registry as RefRegistry
from referencing import Resource
from referencing.jsonschema import DRAFT202012
from yarl import URL

from api.app import create_app
from api.metrics import ShardMetrics
from api.server import start_server
from api.view import ReloadResult
from engine.engine import Vector
from registry import Registry, load_registry_text

SMALL_YAML = """\
version: 1
features:
  - {name: mid_price, function: mid_price}
  - {name: spread_abs, function: spread_abs}
  - {name: vwap_3s, function: vwap, window: 3s}
"""

OTHER_YAML = """\
version: 1
features:
  - {name: mid_price, function: mid_price}
  - {name: vol_3s, function: volume, window: 3s}
"""


def small_registry(text: str = SMALL_YAML) -> Registry:
    """Load a small test registry."""
    return load_registry_text(text, source="test")


class FakeView:
    """The shard's state as plain data: vectors, registries, owners, a health dict."""

    def __init__(self, name: str = "a", symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                 registries: tuple[Registry, ...] = ()) -> None:
        self.name = name
        self._symbols = symbols
        regs = registries or (small_registry(),)
        self.registries = {r.content_hash: r for r in regs}
        self.current = regs[-1].content_hash
        self.vectors: dict[str, Vector] = {}
        self.owners: dict[str, tuple[str, str]] = {}
        self.reloads: list[str | None] = []
        self.configured_text = OTHER_YAML
        self.next_tick_ns = 1_700_000_001_000_000_000
        self.health_dict: dict[str, Any] = {
            "shard": name, "status": "ok",
            "gateway": {"up": True, "since": "2023-11-14T22:13:20.000000000Z", "since_ns": 1_700_000_000_000_000_000},
            "books": {s: {"valid": True, "last_event_age_s": 0.25} for s in symbols},
            "journal": {"next_seq": 10, "lag_records": 0, "bytes": 4096},
            "checkpoint": None,
        }

    def put(self, symbol: str, ts_ns: int, values: list[float], book_valid: int = 1) -> Vector:
        """Store a vector of the current registry as `symbol`'s latest."""
        v = Vector(ts_ns, symbol, book_valid, np.asarray(values, dtype=np.float64), self.current)
        self.vectors[symbol] = v
        return v

    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    def latest(self, symbol: str) -> Vector | None:
        return self.vectors.get(symbol)

    def owner_of(self, symbol: str) -> tuple[str, str] | None:
        return self.owners.get(symbol)

    def registry(self, registry_hash: str | None = None) -> Registry | None:
        return self.registries.get(self.current if registry_hash is None else registry_hash)

    def registry_hashes(self) -> tuple[str, ...]:
        return tuple(self.registries)

    def health(self) -> dict:
        return self.health_dict

    async def reload_registry(self, text: str | None) -> ReloadResult:
        self.reloads.append(text)
        reg = load_registry_text(self.configured_text if text is None else text, source="reload")
        self.registries[reg.content_hash] = reg
        self.current = reg.content_hash
        return ReloadResult(reg.content_hash, self.next_tick_ns, reg.names)


class OpenApiChecker:
    """Validate response bodies against the OpenAPI document a server returned (Draft 2020-12)."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        for schema in doc["components"]["schemas"].values():
            Draft202012Validator.check_schema(schema)
        resource = Resource.from_contents(copy.deepcopy(doc), default_specification=DRAFT202012)
        self.refs = RefRegistry().with_resource("urn:openapi", resource)
        self.checked: set[tuple[str, str, int]] = set()

    def template(self, path: str) -> str:
        """The documented path `path` matches (`/dataset/{dataset_id}` for `/dataset/0123…`), else `path`."""
        if path in self.doc["paths"]:
            return path
        for p in self.doc["paths"]:
            pattern = "^" + re.sub(r"\\{[a-z_]+\\}", ".+", re.escape(p)) + "$"
            if "{" in p and re.match(pattern, path) and not path.endswith("/list"):
                return p
        return path

    def response_spec(self, method: str, path: str, status: int) -> dict[str, Any]:
        """Return the documented response; an undocumented status fails the test."""
        if method.lower() not in self.doc["paths"].get(path, {}):
            assert status in (404, 405), f"{method} {path}: undocumented route answered {status}"
            return {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        responses = self.doc["paths"][path][method.lower()]["responses"]
        assert str(status) in responses, f"{method} {path}: status {status} is not documented"
        return responses[str(status)]

    def validate(self, method: str, path: str, status: int, content_type: str, body: Any) -> None:
        """Check one real response: documented status, content type, and body against its schema."""
        path = self.template(path)
        spec = self.response_spec(method, path, status)
        assert content_type in spec["content"], f"{method} {path} {status}: content type {content_type}"
        schema = spec["content"][content_type]["schema"]
        if "$ref" in schema:
            schema = {"$ref": "urn:openapi" + schema["$ref"]}
        Draft202012Validator(schema, registry=self.refs).validate(body)
        self.checked.add((method, path, status))


class Client:
    """An aiohttp client that validates every response it gets against the server's OpenAPI."""

    def __init__(self, url: str, session: aiohttp.ClientSession, checker: OpenApiChecker) -> None:
        self.url, self.session, self.checker = url, session, checker

    async def call(self, method: str, path: str | URL, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        """Send a request (a path, or a full URL); return (status, parsed body, response), the body validated."""
        url = path if isinstance(path, URL) else URL(self.url + path)
        async with self.session.request(method, url, **kw) as r:
            raw = await r.read()
            ctype = r.content_type
            body: Any = raw.decode() if ctype == "text/plain" else await r.json()
        self.checker.validate(method, url.path, r.status, ctype, body)
        return r.status, body, r


@contextlib.asynccontextmanager
async def serve(view: FakeView, metrics: ShardMetrics | None = None, **kw: Any) -> AsyncIterator[Client]:
    """Serve `view` on 127.0.0.1 (a free port) and yield a validating client."""
    app = create_app(view, metrics or ShardMetrics(), **kw)
    server = await start_server(app, "127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/openapi.json") as r:
                assert r.status == 200 and r.content_type == "application/json"
                doc = await r.json()
            yield Client(server.url, session, OpenApiChecker(doc))
    finally:
        await server.close()


class FakeDatasets:
    """A `DatasetService` in memory: ids from the parameters, a ValueError for an unknown symbol."""

    def __init__(self) -> None:
        self.builds: dict[str, dict[str, Any]] = {}
        self.requests: list[dict[str, str]] = []

    async def request(self, params: dict[str, str]) -> dict[str, Any]:
        self.requests.append(params)
        if "XRP" in params.get("symbols", ""):
            raise ValueError("unknown symbol XRPUSDT: not in the store")
        import hashlib

        ds_id = hashlib.sha256(repr(sorted(params.items())).encode()).hexdigest()[:16]
        known = ds_id in self.builds
        self.builds.setdefault(ds_id, {"dataset_id": ds_id, "status": "running", "progress": {"done": 0, "total": 2}})
        return {"dataset_id": ds_id, "status": "running" if known else "queued"}

    def status(self, dataset_id: str) -> dict[str, Any] | None:
        return self.builds.get(dataset_id)

    def datasets(self) -> list[dict[str, Any]]:
        return list(self.builds.values())
