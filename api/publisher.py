"""The features.live publisher: one bound ZMQ socket that sends each vector without ever blocking.

Plain PUB sockets drop silently at the high-water mark, so nobody would know a vector was lost.
The publisher therefore uses XPUB with ``XPUB_NODROP``: when a subscriber's queue is full the
non-blocking send fails with EAGAIN and the vector is counted in `dropped` (the tick loop never
waits). The price: while one matching subscriber is stuck with a full queue (``sndhwm`` messages
behind), nobody matching that topic gets the vector — loud and counted, rather than silent. Pass
``nodrop=False`` for classic PUB behaviour (a slow subscriber loses alone, uncounted).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import zmq

from api.wire import WireVector, encode

if TYPE_CHECKING:
    from engine.engine import Vector


class PublishError(OSError):
    """The features.live socket cannot be set up; the message names the endpoint and the reason."""

    def __init__(self, endpoint: str, reason: str) -> None:
        self.endpoint, self.reason = endpoint, reason
        super().__init__(f"cannot bind features.live endpoint {endpoint}: {reason}")


def _check_tcp_port(endpoint: str) -> None:
    """Refuse a tcp:// port outside 0..65535 (libzmq would silently bind it modulo 65536)."""
    if not endpoint.startswith("tcp://"):
        return
    host, colon, port = endpoint[len("tcp://"):].rpartition(":")
    if not colon:
        raise PublishError(endpoint, "no port (tcp://HOST:PORT)")
    if port != "*" and not (port.isdigit() and int(port) <= 65535):
        raise PublishError(endpoint, f"port {port!r} is not in 0..65535 or *")


class Publisher:
    """Bind `endpoint` and publish vectors on it; `published` and `dropped` count the outcomes."""

    def __init__(self, endpoint: str, ctx: zmq.Context, sndhwm: int = 100_000, *,
                 nodrop: bool = True) -> None:
        if not 1 <= sndhwm <= 100_000_000:
            raise ValueError(f"sndhwm: must be in 1..100000000, got {sndhwm}")
        _check_tcp_port(endpoint)
        self.endpoint = endpoint
        self.published = 0
        self.dropped = 0
        self._sock = zmq.Socket(ctx, zmq.XPUB)  # a plain socket even on a zmq.asyncio context
        try:
            self._sock.setsockopt(zmq.LINGER, 0)
            self._sock.setsockopt(zmq.SNDHWM, sndhwm)
            self._sock.setsockopt(zmq.XPUB_NODROP, 1 if nodrop else 0)
            self._sock.bind(endpoint)
        except zmq.ZMQError as e:
            self._sock.close(linger=0)
            raise PublishError(endpoint, zmq.strerror(e.errno)) from None
        self.bound = self._sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def publish(self, vectors: Iterable[Vector | WireVector]) -> int:
        """Send each vector without blocking; return how many were sent (the rest count as dropped)."""
        self._drain_subscriptions()
        sent = 0
        send = self._sock.send_multipart
        for v in vectors:
            try:
                send(encode(v), flags=zmq.NOBLOCK)
            except zmq.Again:
                self.dropped += 1
            else:
                sent += 1
        self.published += sent
        return sent

    def publish_message(self, topic: bytes, body: bytes) -> bool:
        """Send one `[topic, body]` message (e.g. ``features.dataset.ready``) without blocking; False if dropped."""
        self._drain_subscriptions()
        try:
            self._sock.send_multipart([topic, body], flags=zmq.NOBLOCK)
        except zmq.Again:
            self.dropped += 1
            return False
        return True

    def _drain_subscriptions(self) -> None:
        """Discard the (un)subscribe messages XPUB delivers, so they never pile up."""
        while self._sock.poll(0, zmq.POLLIN):
            self._sock.recv(zmq.NOBLOCK)

    def close(self, linger_ms: int = 0) -> None:
        """Close the socket (by default dropping what is still queued, so `ctx.term()` never hangs)."""
        if not self._sock.closed:
            self._sock.close(linger=linger_ms)

    def __enter__(self) -> Publisher:
        """Use as a context manager that closes the socket."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Close the socket."""
        self.close()
