"""HTTP snapshot endpoint shaped like Bybit's REST ``GET /v5/market/orderbook`` (v5, linear).

``GET /v5/market/orderbook?category=linear&symbol=S&limit=N`` answers (HTTP 200, like Bybit)::

    {"retCode": 0, "retMsg": "OK",
     "result": {"s": S, "a": [[price, size], ...], "b": [[price, size], ...],
                "ts": ms, "u": int, "seq": int, "cts": ms},
     "retExtInfo": {}, "time": ms}

with prices and sizes as strings, bids descending, asks ascending, at most `limit` levels per side
(default 25, 1..500 as Bybit allows for linear). ``u`` is the last update id made for the book of
the simulator's depth topic, so the deltas published afterwards continue at ``u + 1``. A missing or
wrong parameter and an unknown symbol answer ``retCode`` 10001 with a message; another path is 404.
Served by a stdlib `ThreadingHTTPServer` on its own thread; the book is copied under the
simulator's lock. The ``http_stall_ms`` fault answers late or never, for clients' timeout paths.
"""

from __future__ import annotations

import logging
import select
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import orjson

from tools.sim.gateway.config import FaultsConfig, parse_http_endpoint

log = logging.getLogger("gateway_sim.rest")

ORDERBOOK_PATH = "/v5/market/orderbook"
#: Bybit's "params error" return code.
PARAMS_ERROR = 10001
#: Bybit's limit for linear/inverse order books: default and range.
DEFAULT_LIMIT = 25
MAX_LIMIT = 500
#: How often a never-answering handler checks whether its client has gone.
STALL_POLL_S = 0.1


class BookSource(Protocol):
    """What the endpoint reads: a symbol's book as a REST ``result`` (``None``: unknown)."""

    def rest_book(self, symbol: str, limit: int) -> dict | None: ...


def envelope(code: int, msg: str, result: dict[str, Any]) -> dict[str, Any]:
    """Return Bybit's response envelope around `result`."""
    return {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": time.time_ns() // 1_000_000}


def _params_error(msg: str) -> tuple[int, dict[str, Any]]:
    return 200, envelope(PARAMS_ERROR, f"params error: {msg}", {})


class RestServer:
    """The HTTP endpoint on its own thread; binds at construction (`OSError` when it cannot)."""

    def __init__(self, source: BookSource, endpoint: str, faults: FaultsConfig) -> None:
        self.source = source
        self.stall_ms = faults.http_stall_ms
        self.stall_every = faults.http_stall_every
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._counters: Counter[str] = Counter()
        self._httpd = _Server(parse_http_endpoint(endpoint), _Handler)
        self._httpd.rest = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="gateway-sim-http", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving, release stalled requests and close the listening socket."""
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def set_stall(self, ms: int, every: int = 1) -> None:
        """Change the stall fault: answer `ms` late (-1: never, 0: at once) every `every`-th request."""
        with self._lock:
            self.stall_ms, self.stall_every = ms, every

    def count(self, key: str) -> None:
        """Add one to counter `key` (thread-safe)."""
        with self._lock:
            self._counters[key] += 1

    def counter_copy(self) -> Counter[str]:
        """Return a copy of the HTTP counters."""
        with self._lock:
            return Counter(self._counters)

    def stall(self, conn: socket.socket) -> bool:
        """Apply the stall fault to one request; return False when it must not be answered."""
        with self._lock:
            self._counters["http_requests"] += 1
            n, ms, every = self._counters["http_requests"], self.stall_ms, self.stall_every
        if ms == 0 or n % every:
            return True
        self.count("http_stalled")
        if ms > 0:
            return not self._closing.wait(ms / 1000)
        while not self._closing.is_set():  # never answer; give the thread back once the client left
            readable, _, _ = select.select([conn], [], [], STALL_POLL_S)
            if readable and not conn.recv(1, socket.MSG_PEEK):
                break
        return False

    def answer(self, target: str) -> tuple[int, dict[str, Any]]:
        """Return ``(http_status, body)`` for a request target (path and query)."""
        url = urlsplit(target)
        if url.path != ORDERBOOK_PATH:
            return 404, envelope(404, f"not found: {url.path}", {})
        q = parse_qs(url.query, keep_blank_values=True)
        category, symbol, limit_s = (q.get(k, [None])[-1] for k in ("category", "symbol", "limit"))
        if not category:
            return _params_error("category is required")
        if category != "linear":
            return _params_error(f"category {category!r} is not served (only linear)")
        if not symbol:
            return _params_error("symbol is required")
        limit = DEFAULT_LIMIT
        if limit_s is not None:
            if not limit_s.isdigit() or not 1 <= int(limit_s) <= MAX_LIMIT:
                return _params_error(f"limit {limit_s!r} is not an integer in [1, {MAX_LIMIT}]")
            limit = int(limit_s)
        result = self.source.rest_book(symbol, limit)
        if result is None:
            return _params_error(f"symbol invalid: {symbol!r} is not simulated")
        return 200, envelope(0, "OK", result)


class _Server(ThreadingHTTPServer):
    """Threading HTTP server whose handler threads never block shutdown."""

    daemon_threads = True
    rest: RestServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed request (a client that hung up) instead of printing a traceback."""
        log.debug("gateway_sim http request from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    """One HTTP connection (keep-alive): GET answers from the simulator's book."""

    protocol_version = "HTTP/1.1"
    server_version = "gateway-sim"
    #: Small answers on a keep-alive socket: without TCP_NODELAY, Nagle + delayed ACK add ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        """Answer one GET (after the stall fault, if it fires)."""
        rest = self.server.rest
        if not rest.stall(self.connection):
            self.close_connection = True
            return
        status, body = rest.answer(self.path)
        rest.count("http_ok" if body["retCode"] == 0 else "http_errors")
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base
        """Send the access log to debug logging, not stderr."""
        log.debug("gateway_sim http " + format, *args)
