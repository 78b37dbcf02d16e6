"""The features.live publisher on real ZMQ sockets: every vector arrives bit for bit, drops are counted, bind errors named."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
import zmq.asyncio

from api.publisher import Publisher, PublishError
from api.wire import TOPIC_PREFIX, decode
from engine.engine import Vector

HASH = "cd" * 32
RECV_TIMEOUT_MS = 5000


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    """A ZMQ context terminated after the test (a leaked socket would hang here and time out)."""
    c = zmq.Context()
    yield c
    c.term()


def sub_socket(ctx: zmq.Context, endpoint: str, prefix: bytes = TOPIC_PREFIX, rcvhwm: int = 1000) -> zmq.Socket:
    """A SUB socket connected to `endpoint` and subscribed to `prefix`."""
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVHWM, rcvhwm)
    s.setsockopt(zmq.RCVTIMEO, RECV_TIMEOUT_MS)
    s.subscribe(prefix)
    s.connect(endpoint)
    return s


def await_subscription(pub: Publisher, sub: zmq.Socket) -> None:
    """Publish probes until the subscriber gets one (ZMQ's slow joiner), then drain the probes."""
    probe = Vector(0, "PROBE", 1, np.zeros(1), HASH)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pub.publish([probe])
        if sub.poll(20):
            break
    else:
        pytest.fail("subscriber never received a probe")
    while sub.poll(50):
        sub.recv_multipart()
    pub.published = 0


def vectors(n: int, width: int = 8) -> list[Vector]:
    """n vectors with random bit patterns (NaN payloads included) across three symbols."""
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**64 - 1, size=(n, width), dtype=np.uint64, endpoint=True)
    syms = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
    return [Vector(1_700_000_000_000_000_000 + i * 1_000_000_000, syms[i % 3], i % 2, bits[i].view(np.float64), HASH)
            for i in range(n)]


@pytest.mark.parametrize("kind", ["ipc", "tcp"])
def test_every_vector_arrives_bit_for_bit(ctx: zmq.Context, tmp_path: Path, kind: str) -> None:
    endpoint = f"ipc://{tmp_path}/live.sock" if kind == "ipc" else "tcp://127.0.0.1:*"
    with Publisher(endpoint, ctx) as pub:
        assert pub.bound.startswith(f"{kind}://") and not pub.bound.endswith(":*")
        sub = sub_socket(ctx, pub.bound)
        try:
            await_subscription(pub, sub)
            sent = vectors(500)
            assert pub.publish(sent) == 500
            assert (pub.published, pub.dropped) == (500, 0)
            for want in sent:
                got = decode(sub.recv_multipart())
                assert (got.ts_ns, got.symbol, got.book_valid, got.registry_hash) == \
                    (want.ts_ns, want.symbol, want.book_valid, want.registry_hash)
                assert got.values.view(np.uint64).tolist() == want.values.view(np.uint64).tolist()
        finally:
            sub.close()


def test_topic_filter_delivers_one_symbol(ctx: zmq.Context, tmp_path: Path) -> None:
    with Publisher(f"ipc://{tmp_path}/one.sock", ctx) as pub:
        sub = sub_socket(ctx, pub.bound, prefix=TOPIC_PREFIX + b"PROBE")
        try:
            await_subscription(pub, sub)
            pub.publish(vectors(9) + [Vector(5, "PROBE", 1, np.ones(2), HASH)])
            assert decode(sub.recv_multipart()).ts_ns == 5
            assert not sub.poll(100)
        finally:
            sub.close()


def test_port_in_use_raises_publish_error_naming_it(ctx: zmq.Context) -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(PublishError) as e:
            Publisher(f"tcp://127.0.0.1:{port}", ctx)
        assert str(e.value) == f"cannot bind features.live endpoint tcp://127.0.0.1:{port}: Address already in use"
        assert isinstance(e.value, OSError) and e.value.endpoint == f"tcp://127.0.0.1:{port}"
    finally:
        holder.close()


@pytest.mark.parametrize(("endpoint", "reason"), [
    ("tcp://127.0.0.1", "no port (tcp://HOST:PORT)"),
    ("tcp://no-such-host.invalid:5560", "No such device"),
    ("nope://x", "Protocol not supported"),
    ("tcp://127.0.0.1:99999", "port '99999' is not in 0..65535 or *"),
    ("tcp://127.0.0.1:-1", "port '-1' is not in 0..65535 or *"),
])
def test_malformed_endpoint_raises_publish_error(ctx: zmq.Context, endpoint: str, reason: str) -> None:
    try:
        Publisher(endpoint, ctx).close()
    except PublishError as e:
        assert str(e) == f"cannot bind features.live endpoint {endpoint}: {reason}"
    else:
        pytest.fail(f"{endpoint} was accepted")


def test_bad_hwm_is_a_value_error(ctx: zmq.Context) -> None:
    with pytest.raises(ValueError, match="sndhwm: must be in"):
        Publisher("tcp://127.0.0.1:*", ctx, sndhwm=0)


def test_full_queue_drops_and_counts_without_blocking(ctx: zmq.Context, tmp_path: Path) -> None:
    n, width = 3000, 1024  # 8 KiB vectors: far more than HWM + socket buffers hold
    with Publisher(f"ipc://{tmp_path}/slow.sock", ctx, sndhwm=4) as pub:
        sub = sub_socket(ctx, pub.bound, rcvhwm=4)
        try:
            await_subscription(pub, sub)
            batch = vectors(n, width)
            t0 = time.monotonic()
            sent = pub.publish(batch)
            elapsed = time.monotonic() - t0
            assert 0 < sent < n and pub.dropped == n - sent and pub.published == sent
            assert elapsed < 5
            # What did arrive is whole messages, in order, bit for bit.
            seen = 0
            while sub.poll(200):
                got = decode(sub.recv_multipart())
                want = next(v for v in batch if v.ts_ns == got.ts_ns)
                assert got.values.view(np.uint64).tolist() == want.values.view(np.uint64).tolist()
                seen += 1
            assert seen == sent
        finally:
            sub.close()


def test_plain_pub_mode_drops_silently(ctx: zmq.Context, tmp_path: Path) -> None:
    with Publisher(f"ipc://{tmp_path}/lossy.sock", ctx, sndhwm=4, nodrop=False) as pub:
        sub = sub_socket(ctx, pub.bound, rcvhwm=4)
        try:
            await_subscription(pub, sub)
            assert pub.publish(vectors(3000, 1024)) == 3000
            assert pub.dropped == 0
        finally:
            sub.close()


def test_no_subscriber_is_not_a_drop(ctx: zmq.Context) -> None:
    with Publisher("tcp://127.0.0.1:*", ctx) as pub:
        assert pub.publish(vectors(10)) == 10 and pub.dropped == 0


def test_close_twice_is_harmless(ctx: zmq.Context) -> None:
    pub = Publisher("tcp://127.0.0.1:*", ctx)
    pub.close()
    pub.close()


@pytest.mark.timeout(20)
def test_asyncio_context_still_sends_synchronously(ctx: zmq.Context, tmp_path: Path) -> None:
    actx = zmq.asyncio.Context()
    try:
        with Publisher(f"ipc://{tmp_path}/a.sock", actx) as pub:
            sub = sub_socket(ctx, pub.bound)  # the reading side on a plain context
            try:
                await_subscription(pub, sub)
                assert pub.publish(vectors(3)) == 3
                assert [decode(sub.recv_multipart()).ts_ns for _ in range(3)] == [v.ts_ns for v in vectors(3)]
            finally:
                sub.close()
    finally:
        actx.term()
