"""HttpSnapshotSource specifics against a real aiohttp server on 127.0.0.1: the query it sends,
URL checks, HTTP errors, odd bodies, and the Resyncer asking for several books at once."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import orjson
import pytest
from aiohttp import web

from gateway_bridge import resync_http
from gateway_bridge.config import BackoffConfig, ResyncConfig
from gateway_bridge.resync import Resyncer, ResyncEvent
from gateway_bridge.resync_http import HttpSnapshotSource
from gateway_bridge.snapshot_source import ResyncRejected, ResyncTransportError, Snapshot

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ok(symbol: str) -> bytes:
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"s": symbol, "b": [["1.0", "2"]],
                         "a": [["1.1", "3"]], "ts": 1, "u": 77, "seq": 5, "cts": 1},
                         "retExtInfo": {}, "time": 2})


def serve(handler: Handler, scenario: Callable[[str], Awaitable[None]], prefix: str = "") -> None:
    """Run `scenario(base_url)` against a real server whose orderbook route is `handler`."""
    async def main() -> None:
        app = web.Application()
        app.router.add_get(prefix + "/v5/market/orderbook", handler)
        runner = web.AppRunner(app, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        try:
            await asyncio.wait_for(scenario(f"http://{host}:{port}{prefix}"), 10)
        finally:
            await runner.cleanup()
    asyncio.run(main())


@pytest.mark.parametrize("url", ["", "localhost:8081", "ftp://127.0.0.1/x", "http://", "http:///v5",
                                 "http://127.0.0.1:8081/?x=1", "http://127.0.0.1:8081/#frag"])
def test_a_malformed_base_url_is_a_config_error_naming_the_key(url: str) -> None:
    with pytest.raises(ValueError, match=r"^gateway\.resync\.http_url: "):
        HttpSnapshotSource(url)


def test_parse_base_url_names_the_key_it_is_given() -> None:
    with pytest.raises(ValueError, match=r"^http_url: "):
        resync_http.parse_base_url("127.0.0.1:8081", key="http_url")
    assert str(resync_http.parse_base_url("https://h:1/p")) == "https://h:1/p"


def test_max_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="http_max_limit"):
        HttpSnapshotSource("http://127.0.0.1:1", max_limit=0)


def test_query_names_category_symbol_and_a_capped_limit_under_a_path_prefix() -> None:
    queries: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        queries.append(dict(request.query))
        return web.Response(body=_ok(request.query["symbol"]), content_type="application/json")

    async def scenario(base: str) -> None:
        src = HttpSnapshotSource(base + "/", category="inverse", max_limit=500)
        try:
            assert await src.fetch("BTCUSD", 1000, 1.0) == Snapshot(_ok("BTCUSD"))
            assert await src.fetch("BTCUSD", 50, 1.0) == Snapshot(_ok("BTCUSD"))
        finally:
            await src.close()
    serve(handler, scenario, prefix="/bybit")
    assert queries == [{"category": "inverse", "symbol": "BTCUSD", "limit": "500"},
                       {"category": "inverse", "symbol": "BTCUSD", "limit": "50"}]


@pytest.mark.parametrize(("status", "body", "error", "match"), [
    (500, b"oops", ResyncTransportError, "HTTP 500"),
    (404, b"", ResyncTransportError, "HTTP 404"),
    (200, b"<html>rate limited</html>", ResyncRejected, "not JSON"),
    (200, b"[1, 2]", ResyncRejected, "no retCode"),
    (200, b'{"retMsg": "OK"}', ResyncRejected, "no retCode"),
    (200, b'{"retCode": 10001, "retMsg": "params error: symbol invalid"}', ResyncRejected,
     "retCode 10001: params error: symbol invalid"),
])
def test_bad_answers_raise_the_right_error(status: int, body: bytes, error: type, match: str) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body)

    async def scenario(base: str) -> None:
        src = HttpSnapshotSource(base)
        try:
            with pytest.raises(error, match=match):
                await src.fetch("BTCUSDT", 50, 1.0)
        finally:
            await src.close()
    serve(handler, scenario)


def test_an_oversized_answer_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resync_http, "MAX_BODY", 1000)

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()  # chunked: no Content-Length to refuse up front
        await resp.prepare(request)
        for _ in range(4):
            await resp.write(b" " * 400)
        await resp.write_eof()
        return resp

    async def scenario(base: str) -> None:
        src = HttpSnapshotSource(base)
        try:
            with pytest.raises(ResyncTransportError, match="exceeds 1000"):
                await src.fetch("BTCUSDT", 50, 1.0)
        finally:
            await src.close()
    serve(handler, scenario)


def test_connection_refused_is_a_transport_error() -> None:
    with socket.socket() as s:  # a port nobody listens on once this socket is closed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main() -> None:
        src = HttpSnapshotSource(f"http://127.0.0.1:{port}")
        try:
            with pytest.raises(ResyncTransportError, match=f"127.0.0.1:{port}"):
                await src.fetch("BTCUSDT", 50, 1.0)
        finally:
            await src.close()
    asyncio.run(main())


def test_resyncer_asks_for_several_books_at_once_one_request_each() -> None:
    """Real server that holds each answer until three requests are open at once."""
    open_now: list[str] = []
    most = 0
    three = asyncio.Event()
    bodies: list[tuple[str, int, bytes]] = []
    events: list[ResyncEvent] = []

    async def handler(request: web.Request) -> web.Response:
        nonlocal most
        sym = request.query["symbol"]
        assert sym not in open_now, f"two requests in flight for {sym}"
        open_now.append(sym)
        most = max(most, len(open_now))
        if len(open_now) == 3:
            three.set()
        await three.wait()
        open_now.remove(sym)
        return web.Response(body=_ok(sym), content_type="application/json")

    async def scenario(base: str) -> None:
        src = HttpSnapshotSource(base)
        cfg = ResyncConfig(via="http", http_url=base, timeout_ms=3000,
                           backoff=BackoffConfig(initial_ms=50, max_ms=200))
        r = Resyncer(src, cfg, on_snapshot=lambda s, d, b: bodies.append((s, d, b)),
                     on_event=events.append)
        task = asyncio.create_task(r.run())
        for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            assert r.request(sym, 50, "gateway_up")
            assert not r.request(sym, 50, "gateway_up")
        while len(bodies) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await src.close()
        assert r.pending() == [] and r.counters["sent"] == 3

    serve(handler, scenario)
    assert most == 3
    assert sorted(bodies) == [(s, 50, _ok(s)) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT")]
    assert sorted(e.kind for e in events) == ["requested"] * 3 + ["snapshot"] * 3
