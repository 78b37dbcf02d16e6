"""start_server: a real listener on 127.0.0.1, port 0 resolved, a port in use named."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import pytest

from api.app import create_app
from api.metrics import ShardMetrics
from api.server import ServerError, start_server
from tests.api.fakes import FakeView


def test_port_zero_is_resolved_and_close_stops_listening() -> None:
    async def main() -> None:
        server = await start_server(create_app(FakeView(), ShardMetrics()), "127.0.0.1", 0)
        assert server.port > 0 and server.url == f"http://127.0.0.1:{server.port}"
        async with aiohttp.ClientSession() as s, s.get(server.url + "/health") as r:
            assert r.status == 200
        await server.close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
    asyncio.run(main())


def test_port_in_use_names_host_and_port() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    started: list[bool] = []

    async def ctx(app: object):  # noqa: ANN202 - an aiohttp cleanup context
        started.append(True)
        yield

    async def main() -> None:
        app = create_app(FakeView(), ShardMetrics(), background=[ctx])
        with pytest.raises(ServerError) as e:
            await start_server(app, "127.0.0.1", port)
        assert str(e.value) == f"cannot listen on 127.0.0.1:{port}: Address already in use"
    try:
        asyncio.run(main())
    finally:
        holder.close()
    assert started == []  # the port is bound first: the background (the shard's loop) never started


def test_bad_port_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="port: must be in 0..65535"):
        asyncio.run(start_server(create_app(FakeView(), ShardMetrics()), "127.0.0.1", 70000))


def test_unknown_host_is_named() -> None:
    async def main() -> None:
        with pytest.raises(ServerError, match=r"^cannot listen on no-such-host\.invalid:0: \S"):
            await start_server(create_app(FakeView(), ShardMetrics()), "no-such-host.invalid", 0)
    asyncio.run(main())
