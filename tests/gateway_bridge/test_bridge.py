"""Bridge on a real asyncio (uvloop) loop against a real ZMQ XPUB on ipc://: order, ticks on a timer, liveness."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import uvloop
import zmq
import zmq.asyncio

from engine.record import MARKET_KINDS, NS_PER_MS, NS_PER_S, Kind, Record
from gateway_bridge.bridge import Bridge, BridgeError
from gateway_bridge.config import GatewayConfig, TicksConfig, TopicsConfig
from tools.sim.gateway.config import SyntheticConfig
from tools.sim.gateway.synthetic import generate

TOPICS = TopicsConfig()
FRAMES = generate(SyntheticConfig(symbols=("SOLUSDT",), depth=50, seed=9), TOPICS, 400, 1_786_310_819_000)
MS = NS_PER_MS


def _gw(tmp_path: Path, **kw: object) -> GatewayConfig:
    args: dict[str, object] = {"endpoint": f"ipc://{tmp_path}/gw", "control_endpoint": "", "poll_ms": 50,
                               "silence_ms": 5000}
    args.update(kw)
    return GatewayConfig(**args)  # type: ignore[arg-type]


class Publisher:
    """Test-side gateway: an XPUB that knows when the bridge's SUB has subscribed."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.bind(endpoint)
        self.subscriptions = 0

    def wait_subscribed(self, count: int = 1, timeout_s: float = 5.0) -> None:
        """Block until `count` full sets of topic subscriptions have arrived."""
        end = time.monotonic() + timeout_s
        while self.subscriptions < count * len(TOPICS.names()):
            assert time.monotonic() < end, "bridge never subscribed"
            if self.sock.poll(50) and self.sock.recv()[:1] == b"\x01":
                self.subscriptions += 1

    def send(self, *parts: bytes) -> None:
        self.sock.send_multipart(list(parts))

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


Scenario = Callable[[Bridge, Publisher], Awaitable[None]]


def run(gw: GatewayConfig, scenario: Scenario, *, last_recv_ns: int = 0,
        clock_ns: Callable[[], int] = time.time_ns) -> Bridge:
    """Open a Bridge on a uvloop loop against a Publisher, run `scenario`, close everything."""
    pub = Publisher(gw.endpoint)

    async def main() -> Bridge:
        ctx = zmq.asyncio.Context()
        bridge = Bridge(gw, TicksConfig(), ["SOLUSDT"], last_recv_ns=last_recv_ns, ctx=ctx, clock_ns=clock_ns)
        try:
            await bridge.open()
            pub.wait_subscribed()
            await scenario(bridge, pub)
        finally:
            await bridge.close()
            ctx.term()
        return bridge

    try:
        return uvloop.run(main())
    finally:
        pub.close()


async def collect(bridge: Bridge, out: list[Record], done: Callable[[], bool], timeout_s: float = 5.0,
                  returned: list[tuple[int, list[Record]]] | None = None) -> None:
    """Append batches to `out` until `done()`; note each batch's return time in `returned`."""
    end = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < end, f"condition not reached; got {[Kind(r.kind).name for r in out][-20:]}"
        batch = await bridge.next_batch()
        if returned is not None:
            returned.append((time.time_ns(), batch))
        out.extend(batch)


async def resend_until(bridge: Bridge, pub: Publisher, recs: list[Record], done: Callable[[], bool]) -> None:
    """Send frames one by one (a reconnected SUB needs a moment to subscribe) until `done()`."""
    end = time.monotonic() + 10
    i = 2
    while not done():
        assert time.monotonic() < end, "traffic never came back"
        pub.send(FRAMES[i].topic, FRAMES[i].payload)
        i += 1
        recs.extend(await asyncio.wait_for(bridge.next_batch(), 3))  # a tick comes within 1 s at most


def _market(recs: list[Record]) -> int:
    return sum(r.kind in MARKET_KINDS for r in recs)


@pytest.mark.timeout(30)
def test_every_message_in_order_and_hostile_ones_never_cost_good_ones(tmp_path: Path) -> None:
    snap, delta = FRAMES[0], FRAMES[2]
    assert snap.kind == "snapshot" and delta.kind == "delta"
    big = b"{" + b"x" * (5 * 1024 * 1024)
    recs: list[Record] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        pub.send(snap.topic, snap.payload)
        pub.send(delta.topic, delta.payload[:40])  # truncated JSON
        pub.send(delta.topic, delta.payload, b"extra")  # three parts
        pub.send(delta.topic, big, big, big)  # 15 MiB in three parts
        pub.send(delta.topic)  # one part: a topic and no frame
        pub.send(TOPICS.trades.encode() + b"X", FRAMES[1].payload)  # passes the prefix filter only
        pub.send(delta.topic, b"[1,2,3]")
        for f in FRAMES[3:50]:
            pub.send(f.topic, f.payload)
        await collect(bridge, recs, lambda: bridge.counters["received"] == 54)

    bridge = run(_gw(tmp_path), scenario)
    kinds = [r.kind for r in recs if r.kind != Kind.TICK]
    assert kinds[:7] == [Kind.BOOK_SNAPSHOT] + [Kind.BAD_FRAME] * 6 and _market(recs) == 48
    bad = [r.payload for r in recs if r.kind == Kind.BAD_FRAME]
    assert [p["reason"] for p in bad] == ["bad_json", "bad_multipart", "bad_multipart", "bad_multipart",
                                          "unknown_topic", "not_an_object"]
    assert bad[2]["raw_len"] == 3 * len(big) and len(bad[2]["raw"]) == 65536  # parts after the topic
    assert bad[4]["topic"] == TOPICS.trades + "X"
    us = [r.payload["u"] for r in recs if r.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA)]
    assert us == sorted(us) and bridge.counters["bad_total"] == 6


def _assert_tick_positions(recs: list[Record]) -> list[int]:
    """Every tick sits after all records stamped before its boundary and before all stamped at/after it."""
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False))
    ticks = [i for i, r in enumerate(recs) if r.kind == Kind.TICK]
    for i in ticks:
        b = recs[i].recv_ns
        assert b % NS_PER_S == 0
        assert all(r.recv_ns < b for r in recs[:i] if r.kind != Kind.TICK)
        assert all(r.recv_ns >= b for r in recs[i + 1:])
    return ticks


@pytest.mark.timeout(30)
def test_ticks_fire_on_a_timer_at_10_msgs_per_s(tmp_path: Path) -> None:
    recs: list[Record] = []
    returned: list[tuple[int, list[Record]]] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        async def publish() -> None:
            for f in FRAMES[:28]:  # 2.8 s at 10 msgs/s
                pub.send(f.topic, f.payload)
                await asyncio.sleep(0.1)

        task = asyncio.create_task(publish())
        await collect(bridge, recs, lambda: task.done() and bridge.counters["received"] == 28, 10, returned)

    bridge = run(_gw(tmp_path), scenario)
    ticks = _assert_tick_positions(recs)
    assert len(ticks) >= 2 and _market(recs) == 28 and bridge.counters["ticks"] == len(ticks)
    lateness = [ret - r.recv_ns for ret, batch in returned for r in batch if r.kind == Kind.TICK]
    # The batch holding a tick is back with the caller within a few ms of the boundary (it was 48 ms median);
    # ~50 µs on a quiet machine. One late wake-up is tolerated: the test machine is shared.
    _assert_timely(lateness)


def _assert_timely(lateness: list[int], median_ns: int = MS) -> None:
    assert sorted(lateness)[len(lateness) // 2] < median_ns, lateness
    assert sum(x >= 5 * MS for x in lateness) <= 1 and max(lateness) < 25 * MS, lateness


@pytest.mark.timeout(30)
def test_an_idle_tick_comes_within_5_ms_of_its_boundary(tmp_path: Path) -> None:
    returned: list[tuple[int, list[Record]]] = []
    recs: list[Record] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        pub.send(FRAMES[0].topic, FRAMES[0].payload)  # starts the tick series
        await collect(bridge, recs, lambda: sum(r.kind == Kind.TICK for r in recs) >= 3, 6, returned)

    bridge = run(_gw(tmp_path, poll_ms=1000), scenario)
    lateness = [ret - r.recv_ns for ret, batch in returned for r in batch if r.kind == Kind.TICK]
    assert len(lateness) >= 3 and min(lateness) >= 0  # three, so the median is not the worst of two
    # A 1 s wait on the loop timer: on a VM whose timers run 1-2 % late it lands 15-20 ms past the
    # boundary unless the bridge approaches it in steps (it does); 2.5 ms leaves room for a slow host.
    _assert_timely(lateness, median_ns=5 * MS // 2)
    assert 0 <= bridge.counters["tick_late_last_us"] < 25_000


@pytest.mark.timeout(30)
def test_silence_journals_gateway_down_then_traffic_gateway_up(tmp_path: Path) -> None:
    recs: list[Record] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        pub.send(FRAMES[0].topic, FRAMES[0].payload)
        await collect(bridge, recs, lambda: bridge.counters["gateway_down"] == 1)
        await collect(bridge, recs, lambda: bridge.counters["reconnects"] >= 1)
        await resend_until(bridge, pub, recs, lambda: bridge.counters["gateway_up"] == 1)

    bridge = run(_gw(tmp_path, silence_ms=200, poll_ms=10), scenario)
    recs = [r for r in recs if r.kind != Kind.TICK]
    kinds = [r.kind for r in recs]
    down, up = kinds.index(Kind.GATEWAY_DOWN), kinds.index(Kind.GATEWAY_UP)
    assert kinds.count(Kind.GATEWAY_DOWN) == 1 and (down, up) == (1, 2)
    assert recs[down].payload["silent_ms"] >= 200 and recs[down].payload["reason"] == "silence"
    assert recs[up].payload["silent_ms"] >= recs[down].payload["silent_ms"]
    assert recs[up + 1].kind in MARKET_KINDS and bridge.counters["gateway_up"] == 1


@pytest.mark.timeout(30)
def test_queued_control_records_wake_the_waiting_batch(tmp_path: Path) -> None:
    got: list[tuple[float, list[Record]]] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        async def later() -> float:
            await asyncio.sleep(0.1)
            bridge.request_resync("SOLUSDT", 50, "gap", "zmq")
            return time.monotonic()

        task = asyncio.create_task(later())
        while not any(r.kind == Kind.RESYNC_REQUEST for _, b in got for r in b):
            batch = await asyncio.wait_for(bridge.next_batch(), 2)
            got.append((time.monotonic(), batch))
        got.append((await task, []))

    run(_gw(tmp_path, poll_ms=1000), scenario)
    queued_at = got[-1][0]
    back_at, batch = next((t, b) for t, b in got if any(r.kind == Kind.RESYNC_REQUEST for r in b))
    req = next(r for r in batch if r.kind == Kind.RESYNC_REQUEST)
    assert req.payload == {"topic": "orderbook.50.SOLUSDT", "depth": 50, "reason": "gap", "via": "zmq"}
    assert back_at - queued_at < 0.05  # woken by the queue, not by the 1 s poll


@pytest.mark.timeout(30)
def test_restart_journals_down_first_and_traffic_brings_it_up(tmp_path: Path) -> None:
    last = time.time_ns() - 3 * NS_PER_S
    recs: list[Record] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        recs.extend(bridge.restart())
        pub.send(FRAMES[0].topic, FRAMES[0].payload)
        await collect(bridge, recs, lambda: bridge.counters["received"] == 1)

    run(_gw(tmp_path), scenario, last_recv_ns=last)
    kinds = [r.kind for r in recs]
    assert kinds[0] == Kind.GATEWAY_DOWN and recs[0].recv_ns == last and recs[0].payload["reason"] == "shard_restart"
    assert kinds.count(Kind.TICK) >= 2 and kinds.index(Kind.GATEWAY_UP) < kinds.index(Kind.BOOK_SNAPSHOT)
    _assert_tick_positions(recs)


@pytest.mark.timeout(30)
def test_a_message_over_max_msg_bytes_is_dropped_and_counted(tmp_path: Path) -> None:
    recs: list[Record] = []

    async def scenario(bridge: Bridge, pub: Publisher) -> None:
        pub.send(FRAMES[0].topic, FRAMES[0].payload)
        pub.send(FRAMES[1].topic, b"{" + b"x" * 100_000)  # over the 64 KiB bound: ZMQ drops the connection
        await collect(bridge, recs, lambda: bridge.counters["peer_disconnects"] >= 1)
        await resend_until(bridge, pub, recs, lambda: _market(recs) >= 2)  # ZMQ reconnects by itself

    bridge = run(_gw(tmp_path, max_msg_bytes=65536), scenario)
    assert bridge.counters["peer_disconnects"] >= 1 and bridge.counters["bad_total"] == 0


def test_a_malformed_endpoint_is_a_bridge_error_naming_it() -> None:
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        try:
            bridge = Bridge(GatewayConfig(endpoint="tcp//nowhere"), TicksConfig(), None, last_recv_ns=0, ctx=ctx)
            with pytest.raises(BridgeError, match=r"gateway\.endpoint: .*'tcp//nowhere'"):
                await bridge.open()
        finally:
            ctx.term()  # returns: no socket was left open

    uvloop.run(main())


@pytest.mark.parametrize("kw,key", [
    ({"max_batch": 0}, "max_batch"), ({"poll_ms": 0}, "poll_ms"), ({"poll_ms": 1001}, "poll_ms"),
    ({"silence_ms": 99}, "silence_ms"), ({"rcvhwm": -1}, "rcvhwm"), ({"max_msg_bytes": 1023}, "max_msg_bytes"),
    ({"bad_frames_max_bytes_per_s": -1}, "bad_frames_max_bytes_per_s"),
])
def test_gateway_config_ranges(kw: dict[str, int], key: str) -> None:
    with pytest.raises(ValueError, match=rf"^{key}: "):
        GatewayConfig(**kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("kw,key", [
    ({"initial_ms": 0}, "initial_ms"), ({"initial_ms": 100, "max_ms": 99}, "max_ms"),
    ({"factor": 0.5}, "factor"), ({"factor": 11.0}, "factor"), ({"factor": float("nan")}, "factor"),
])
def test_backoff_config_ranges(kw: dict[str, float], key: str) -> None:
    from gateway_bridge.config import BackoffConfig

    with pytest.raises(ValueError, match=rf"^{key}: "):
        BackoffConfig(**kw)  # type: ignore[arg-type]


def test_config_errors_get_their_dotted_path() -> None:
    from tools.shard.config import ShardConfig
    from tools.typedconfig import ConfigError, build

    with pytest.raises(ConfigError, match=r"^gateway\.reconnect\.factor: "):
        build(ShardConfig, {"gateway": {"reconnect": {"factor": 1e308}}})
