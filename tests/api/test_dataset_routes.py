"""The dataset routes on a real aiohttp server over an in-memory DatasetService; responses checked against /openapi.json."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from api.dataset_routes import DatasetService
from tests.api.fakes import Client, FakeDatasets, FakeView, serve

Q = "/dataset/build?from=2026-09-21T00:00:00Z&to=2026-09-22T00:00:00Z"


def run(body: Callable[[Client, FakeDatasets], Awaitable[None]], **kw: object) -> None:
    ds = FakeDatasets()

    async def main() -> None:
        async with serve(FakeView(), datasets=ds, **kw) as client:
            await body(client, ds)
    asyncio.run(main())


def test_fake_satisfies_the_protocol() -> None:
    assert isinstance(FakeDatasets(), DatasetService)


def test_build_is_202_and_the_same_request_the_same_id() -> None:
    async def body(c: Client, ds: FakeDatasets) -> None:
        s1, a, _ = await c.call("POST", Q + "&horizons=60s,5m&symbols=BTCUSDT")
        s2, b, _ = await c.call("POST", Q + "&horizons=60s,5m&symbols=BTCUSDT")
        assert s1 == s2 == 202 and a["dataset_id"] == b["dataset_id"]
        assert a["status"] == "queued" and b["status"] == "running"
        assert ds.requests[0] == {"from": "2026-09-21T00:00:00Z", "to": "2026-09-22T00:00:00Z",
                                  "horizons": "60s,5m", "symbols": "BTCUSDT"}
        s, got, _ = await c.call("GET", f"/dataset/{a['dataset_id']}")
        assert s == 200 and got["status"] == "running" and got["progress"] == {"done": 0, "total": 2}
        s, listed, _ = await c.call("GET", "/dataset/list")
        assert s == 200 and [d["dataset_id"] for d in listed["datasets"]] == [a["dataset_id"]]
    run(body)


def test_a_json_body_is_the_same_request_as_the_query() -> None:
    async def body(c: Client, ds: FakeDatasets) -> None:
        _, a, _ = await c.call("POST", Q + "&symbols=BTCUSDT,ETHUSDT&drop_invalid=true")
        _, b, _ = await c.call("POST", "/dataset/build", json={"from": "2026-09-21T00:00:00Z",
                                                              "to": "2026-09-22T00:00:00Z",
                                                              "symbols": ["BTCUSDT", "ETHUSDT"], "drop_invalid": True})
        assert a["dataset_id"] == b["dataset_id"] and ds.requests[0] == ds.requests[1]
    run(body)


def test_bad_requests_are_400_with_the_reason() -> None:
    async def body(c: Client, ds: FakeDatasets) -> None:
        for path, kw, words in ((Q + "&symbols=XRPUSDT", {}, "unknown symbol XRPUSDT"),
                                ("/dataset/build?to=x", {}, "missing parameter from"),
                                (Q + "&colour=red", {}, "unknown parameter 'colour'"),
                                ("/dataset/build", {"data": b"{nope", "headers": {"Content-Type": "application/json"}},
                                 "not JSON"),
                                ("/dataset/build", {"json": [1, 2]}, "JSON object")):
            s, got, _ = await c.call("POST", path, **kw)
            assert s == 400 and words in got["error"], (path, got)
        for bad in ("..%2F..%2Fetc", "0123", "0123456789ABCDEF", "%2e%2e"):
            s, got, _ = await c.call("GET", f"/dataset/{bad}")
            assert s in (400, 404) and "error" in got, bad
        s, got, _ = await c.call("GET", "/dataset/" + "0" * 16)
        assert s == 404 and "no dataset" in got["error"]
        s, got, _ = await c.call("GET", "/dataset/not-an-id")
        assert s == 400 and "malformed dataset id" in got["error"]
    run(body)


def test_post_needs_the_token_and_every_documented_status_is_produced() -> None:
    async def body(c: Client, ds: FakeDatasets) -> None:
        s, got, _ = await c.call("POST", Q)
        assert s == 401
        auth = {"Authorization": "Bearer t"}
        assert (await c.call("POST", Q, headers=auth))[0] == 202
        assert (await c.call("POST", Q + "&symbols=XRPUSDT", headers=auth))[0] == 400
        await c.call("GET", "/dataset/list")
        ds_id = next(iter(ds.builds))
        await c.call("GET", f"/dataset/{ds_id}")
        await c.call("GET", "/dataset/zz")
        await c.call("GET", "/dataset/" + "f" * 16)
        ds.datasets = ds.status = ds.request = _boom  # type: ignore[method-assign, assignment]
        assert (await c.call("GET", "/dataset/list"))[0] == 500
        assert (await c.call("GET", f"/dataset/{ds_id}"))[0] == 500
        assert (await c.call("POST", Q, headers=auth))[0] == 500
        documented = {(m.upper(), p, int(s)) for p, ops in c.checker.doc["paths"].items() if p.startswith("/dataset")
                      for m, op in ops.items() for s in op["responses"]}
        assert not documented - c.checker.checked, sorted(documented - c.checker.checked)
    run(body, token="t")


def _boom(*_: object) -> None:
    raise RuntimeError("boom")
