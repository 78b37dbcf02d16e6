"""Contract suite: every `SnapshotSource` (ZMQ, HTTP) against a real peer on loopback.

The ZMQ peer is a ROUTER socket acting as the gateway's REP (a plain REP could not stay silent on
one request and then answer the next); it sees each REQ socket's routing id, so a test can tell
that a request came on a fresh socket. The HTTP peer is a real aiohttp server on 127.0.0.1 serving
the Bybit v5 ``GET /v5/market/orderbook`` shape; it sees each request's client port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import orjson
import pytest
import zmq
import zmq.asyncio
from aiohttp import web

from gateway_bridge.resync import ZmqSnapshotSource
from gateway_bridge.resync_http import HttpSnapshotSource
from gateway_bridge.snapshot_source import (
    Accepted,
    Answer,
    ResyncRejected,
    ResyncTimeout,
    ResyncTransportError,
    Snapshot,
    SnapshotSource,
)

TIMEOUT_S = 0.3


def bybit_book(symbol: str, limit: int) -> bytes:
    """A Bybit v5 REST order book answer (shape of the public docs), `limit` levels a side."""
    bids = [[f"{100 - i * 0.1:.1f}", f"{i + 1}.5"] for i in range(limit)]
    asks = [[f"{100.1 + i * 0.1:.1f}", f"{i + 2}.25"] for i in range(limit)]
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "s": symbol, "b": bids, "a": asks, "ts": 1_765_000_000_123, "u": 4_242, "seq": 9_001,
        "cts": 1_765_000_000_120}, "retExtInfo": {}, "time": 1_765_000_000_125})


class Peer(Protocol):
    """A real gateway peer whose next answers are scripted: ``ok``, ``reject`` or ``stall``."""

    script: list[str]
    #: (connection id, symbol, depth) of every request, in arrival order.
    seen: list[tuple[object, str, int]]
    reject_text: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def source(self) -> SnapshotSource: ...
    def expected(self, symbol: str, depth: int) -> Answer: ...


class ZmqPeer:
    """The gateway control endpoint: ROUTER on ipc:// answering like a REP."""

    reject_text = "no"

    def __init__(self, tmp_path: Path) -> None:
        self.endpoint = f"ipc://{tmp_path}/ctl"
        self.script: list[str] = []
        self.seen: list[tuple[object, str, int]] = []
        self.ctx = zmq.asyncio.Context()
        self._task: asyncio.Task[None] | None = None
        self._sources: list[ZmqSnapshotSource] = []

    async def start(self) -> None:
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(self.endpoint)
        self._task = asyncio.create_task(self._serve())

    async def _serve(self) -> None:
        while True:
            ident, empty, req = await self.sock.recv_multipart()
            word, symbol, depth = req.decode().split()
            assert word == "resubscribe" and empty == b""
            self.seen.append((ident, symbol, int(depth)))
            mode = self.script.pop(0) if self.script else "ok"
            if mode != "stall":
                await self.sock.send_multipart([ident, b"", b"ok" if mode == "ok" else b"no"])

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        for s in self._sources:
            await s.close()
        self.sock.close(linger=0)
        self.ctx.term()

    def source(self) -> SnapshotSource:
        s = ZmqSnapshotSource(self.endpoint, self.ctx)
        self._sources.append(s)
        return s

    def expected(self, symbol: str, depth: int) -> Answer:
        return Accepted()


class HttpPeer:
    """A Bybit-shaped REST server on 127.0.0.1, port chosen by the OS."""

    reject_text = "Illegal category"

    def __init__(self, tmp_path: Path) -> None:
        self.script: list[str] = []
        self.seen: list[tuple[object, str, int]] = []
        self._release = asyncio.Event()
        self._sources: list[HttpSnapshotSource] = []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v5/market/orderbook", self._orderbook)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.base = f"http://{host}:{port}"

    async def _orderbook(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        assert q["category"] == "linear"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append((peer, q["symbol"], int(q["limit"])))
        mode = self.script.pop(0) if self.script else "ok"
        if mode == "stall":
            await self._release.wait()
        if mode == "reject":
            body = {"retCode": 10001, "retMsg": self.reject_text, "result": {}, "retExtInfo": {},
                    "time": 1}
            return web.Response(body=orjson.dumps(body), content_type="application/json")
        return web.Response(body=bybit_book(q["symbol"], int(q["limit"])),
                            content_type="application/json")

    async def stop(self) -> None:
        self._release.set()
        for s in self._sources:
            await s.close()
        await self.runner.cleanup()

    def source(self) -> SnapshotSource:
        s = HttpSnapshotSource(self.base)
        self._sources.append(s)
        return s

    def expected(self, symbol: str, depth: int) -> Answer:
        return Snapshot(bybit_book(symbol, depth))


PEERS: dict[str, Callable[[Path], Peer]] = {"zmq": ZmqPeer, "http": HttpPeer}


@pytest.fixture(params=sorted(PEERS))
def run_with_peer(request: pytest.FixtureRequest, tmp_path: Path
                  ) -> Callable[[Callable[[Peer], Awaitable[None]]], None]:
    """Run ``case(peer)`` in a fresh event loop with the parametrised peer started and stopped."""
    make = PEERS[request.param]

    def run(case: Callable[[Peer], Awaitable[None]]) -> None:
        async def main() -> None:
            peer = make(tmp_path)
            await peer.start()
            try:
                await asyncio.wait_for(case(peer), 10)
            finally:
                await peer.stop()
        asyncio.run(main())
    return run


def test_the_source_names_its_transport(run_with_peer: Callable) -> None:
    async def case(peer: Peer) -> None:
        src = peer.source()
        assert isinstance(src, SnapshotSource) and src.via in ("zmq", "http")
    run_with_peer(case)


def test_answered(run_with_peer: Callable) -> None:
    """The peer answers: Accepted over ZMQ, the body itself over HTTP; it saw symbol and depth."""
    async def case(peer: Peer) -> None:
        src = peer.source()
        assert await src.fetch("BTCUSDT", 50, TIMEOUT_S) == peer.expected("BTCUSDT", 50)
        assert [(s, d) for _, s, d in peer.seen] == [("BTCUSDT", 50)]
    run_with_peer(case)


def test_rejected_then_usable(run_with_peer: Callable) -> None:
    """A rejection raises ResyncRejected with the peer's words; the next request is answered."""
    async def case(peer: Peer) -> None:
        src = peer.source()
        peer.script = ["reject"]
        with pytest.raises(ResyncRejected) as e:
            await src.fetch("ETHUSDT", 200, TIMEOUT_S)
        assert peer.reject_text in e.value.reply
        assert await src.fetch("ETHUSDT", 200, TIMEOUT_S) == peer.expected("ETHUSDT", 200)
    run_with_peer(case)


def test_timeout_then_success_on_a_fresh_connection(run_with_peer: Callable) -> None:
    """Lazy Pirate: no answer → ResyncTimeout after timeout_s; the retry goes out on a new socket."""
    async def case(peer: Peer) -> None:
        src = peer.source()
        peer.script = ["stall"]
        t0 = time.monotonic()
        with pytest.raises(ResyncTimeout):
            await src.fetch("SOLUSDT", 50, TIMEOUT_S)
        elapsed = time.monotonic() - t0
        assert TIMEOUT_S * 0.9 <= elapsed < TIMEOUT_S + 0.5
        assert await src.fetch("SOLUSDT", 50, TIMEOUT_S) == peer.expected("SOLUSDT", 50)
        assert len(peer.seen) == 2 and peer.seen[0][0] != peer.seen[1][0], "same connection reused"
    run_with_peer(case)


def test_concurrent_fetches_are_all_answered(run_with_peer: Callable) -> None:
    """Several books asked at once: each gets its own answer (a REQ socket is serialised)."""
    async def case(peer: Peer) -> None:
        src = peer.source()
        books = [("BTCUSDT", 50), ("ETHUSDT", 50), ("SOLUSDT", 200)]
        answers = await asyncio.gather(*(src.fetch(s, d, 2.0) for s, d in books))
        assert answers == [peer.expected(s, d) for s, d in books]
        assert sorted((s, d) for _, s, d in peer.seen) == sorted(books)
    run_with_peer(case)


def test_close_is_idempotent_and_final(run_with_peer: Callable) -> None:
    async def case(peer: Peer) -> None:
        unused = peer.source()
        await unused.close()
        await unused.close()
        src = peer.source()
        assert await src.fetch("BTCUSDT", 1, TIMEOUT_S) == peer.expected("BTCUSDT", 1)
        await src.close()
        await src.close()
        with pytest.raises(ResyncTransportError):
            await src.fetch("BTCUSDT", 1, TIMEOUT_S)
        assert len(peer.seen) == 1, "a closed source sent nothing"
    run_with_peer(case)
