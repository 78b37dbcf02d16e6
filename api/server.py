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
    """Start `app` on host:port (port 0: any free one); raise ServerError naming host:port if it cannot."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port: must be in 0..65535, got {port}")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as e:
        await runner.cleanup()
        reason = e.strerror if isinstance(e, socket.gaierror) or not e.errno else os.strerror(e.errno)
        raise ServerError(f"cannot listen on {host}:{port}: {reason}") from None
    bound = runner.addresses[0][1]
    return Server(runner, host, bound)
