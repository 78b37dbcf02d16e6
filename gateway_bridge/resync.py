"""Resync client: asks the gateway's control endpoint for fresh book snapshots, without flooding it.

Lazy Pirate (zguide): a REQ socket sends "resubscribe SYMBOL DEPTH" and waits for the reply with a
timeout; on timeout the socket is closed and reopened (a REQ socket cannot send twice) and the
request is retried after an exponentially growing delay. Requests queue per book topic: asking again
for a queued topic is a no-op; asking again for the topic in flight sends exactly one more request
after it (its snapshot may predate the new need); a topic answered recently is not asked again
before its back-off has passed, so a book that keeps failing cannot flood the gateway.

Not thread-safe: drive it from the thread that owns it by calling `poll()` in its loop.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import zmq

from gateway_bridge.config import BackoffConfig
from gateway_bridge.liveness import Backoff

log = logging.getLogger("gateway_bridge.resync")


@dataclass
class _Topic:
    """Per-book state: back-off and when the next request may go out."""

    symbol: str
    depth: int
    backoff: Backoff
    due_ns: int = 0
    queued: bool = False
    #: Asked again while a request was in flight: its answer may predate the new need, so one
    #: more request follows it.
    again: bool = False


class ResyncClient:
    """REQ client of the gateway control endpoint with per-topic back-off and one request in flight."""

    def __init__(self, control_endpoint: str, backoff: BackoffConfig,
                 clock: Callable[[], int] = time.monotonic_ns, timeout_ms: int = 1000,
                 ctx: zmq.Context | None = None) -> None:
        self.endpoint = control_endpoint
        self.backoff_cfg = backoff
        self.clock = clock
        self.timeout_ns = timeout_ms * 1_000_000
        self._own_ctx = ctx is None
        self._ctx = ctx or zmq.Context()
        self._sock: zmq.Socket | None = None
        self._topics: dict[str, _Topic] = {}
        self._inflight: tuple[str, int] | None = None  # (topic, deadline_ns)
        self.counters: Counter[str] = Counter()

    def request(self, symbol: str, depth: int) -> bool:
        """Queue a resync of ``orderbook.DEPTH.SYMBOL``; False if it is already queued or in flight."""
        key = f"orderbook.{depth}.{symbol}"
        t = self._topics.get(key)
        if t is None:
            t = self._topics[key] = _Topic(symbol, depth, Backoff(self.backoff_cfg))
        if t.queued:
            if self._inflight is not None and self._inflight[0] == key:
                t.again = True
            self.counters["deduplicated"] += 1
            return False
        t.queued = True
        self.counters["requested"] += 1
        return True

    def pending(self) -> list[str]:
        """Return the topics queued or in flight."""
        return [k for k, t in self._topics.items() if t.queued]

    def done(self, symbol: str, depth: int) -> None:
        """Reset a topic's back-off once its snapshot arrived (the book is valid again)."""
        t = self._topics.get(f"orderbook.{depth}.{symbol}")
        if t is not None:
            t.backoff.reset()

    def poll(self, timeout_ms: int = 0) -> list[str]:
        """Drive requests: read a reply (waiting up to `timeout_ms`), send the next due one.

        Returns the topics the gateway accepted during this call.
        """
        accepted: list[str] = []
        if self._inflight is not None:
            topic = self._await_reply(timeout_ms)
            if topic:
                accepted.append(topic)
        if self._inflight is None:
            self._send_next()
        return accepted

    def close(self) -> None:
        """Close the socket (and the context if this client made it)."""
        self._close_socket()
        if self._own_ctx:
            self._ctx.term()

    def __enter__(self) -> ResyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals --------------------------------------------------------------------------
    def _socket(self) -> zmq.Socket:
        if self._sock is None:
            sock = self._ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.endpoint)
            self._sock = sock
        return self._sock

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def _send_next(self) -> None:
        """Send the queued topic that has been due the longest, if any is due now."""
        now = self.clock()
        due = [(t.due_ns, k) for k, t in self._topics.items() if t.queued and t.due_ns <= now]
        if not due:
            return
        _, key = min(due)
        t = self._topics[key]
        self._socket().send_string(f"resubscribe {t.symbol} {t.depth}")
        self._inflight = (key, now + self.timeout_ns)
        self.counters["sent"] += 1
        log.info("resync request topic=%s attempt=%d endpoint=%s", key, t.backoff.attempts + 1, self.endpoint)

    def _await_reply(self, timeout_ms: int) -> str | None:
        """Return the topic accepted by a reply; on timeout reopen the socket and back off."""
        assert self._inflight is not None and self._sock is not None
        key, deadline = self._inflight
        wait_ms = max(0, min(timeout_ms, (deadline - self.clock()) // 1_000_000))
        if self._sock.poll(wait_ms, zmq.POLLIN):
            reply = self._sock.recv_string()
            self._inflight = None
            return self._on_reply(key, reply)
        if self.clock() < deadline:
            return None
        self._inflight = None
        self._close_socket()  # Lazy Pirate: a REQ socket with a lost reply is unusable
        self._retry(key, "timeout")
        return None

    def _on_reply(self, key: str, reply: str) -> str | None:
        t = self._topics[key]
        if reply == "ok":
            t.queued, t.again = t.again, False  # asked again meanwhile: stay queued for one more
            t.due_ns = self.clock() + t.backoff.next_ns()  # rate limit repeats of this topic
            self.counters["accepted"] += 1
            log.info("resync accepted topic=%s", key)
            return key
        self._retry(key, f"rejected:{reply}")
        return None

    def _retry(self, key: str, reason: str) -> None:
        t = self._topics[key]
        delay = t.backoff.next_ns()
        t.due_ns = self.clock() + delay
        self.counters[reason.split(":")[0]] += 1
        log.warning("resync retry topic=%s reason=%s delay_ms=%d", key, reason, delay // 1_000_000)
