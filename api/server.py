"""Serve an aiohttp app on one TCP address inside the running event loop (no `run_app`)."""

from __future__ import annotations

import os
import socket

from aiohttp import web


class ServerError(OSError):
    """The API cannot listen; the message names host:port and the reason."""


class Server:
    """A started app: `host`, the bound `port` (real even when 0 was asked), `url`, `close()`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int) -> None:
        self.runner, self.host, self.port = runner, host, port
        self.url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening, finish the requests in flight, then run the app's cleanup contexts."""
        await self.runner.cleanup()


async def start_server(app: web.Application, host: str = "127.0.0.1", port: int = 8080, *,
                       shutdown_timeout: float = 5.0) -> Server:
    """Start `app` on host:port (port 0: any free one); raise ServerError naming host:port if it cannot.

    The port is bound BEFORE the app's startup (its cleanup contexts: the shard's loop) runs, so a
    port in use fails without starting, journaling or tearing down anything.
    """
    if not 0 <= port <= 65535:
        raise ValueError(f"port: must be in 0..65535, got {port}")
    sock = _bind(host, port)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    try:
        await runner.setup()
        await web.SockSite(runner, sock).start()
    except BaseException:
        await runner.cleanup()
        sock.close()
        raise
    return Server(runner, host, sock.getsockname()[1])


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port, or ServerError naming them and the reason."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _, addr = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as e:
        raise ServerError(f"cannot listen on {host}:{port}: {_reason(e)}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise ServerError(f"cannot listen on {host}:{port}: {_reason(e)}") from None
    return sock


def _reason(e: OSError) -> str:
    return e.strerror if isinstance(e, socket.gaierror) or not e.errno else os.strerror(e.errno)
