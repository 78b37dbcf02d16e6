"""Bridge: real ZMQ sockets on ipc://, real journal files; bad frames, liveness, ticks, restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import zmq

from engine.record import MARKET_KINDS, NS_PER_S, Kind, Record
from gateway_bridge.config import GatewayConfig, TopicsConfig
from journal.config import JournalConfig
from journal.reader import JournalReader
from journal.writer import JournalWriter
from tools.shard.config import ShardConfig, ShardSection
from tools.sim.gateway.config import SyntheticConfig
from tools.sim.gateway.synthetic import generate

pytest.importorskip("gateway_bridge.decoder")
from gateway_bridge.bridge import Bridge  # noqa: E402  (needs the decoder)

TOPICS = TopicsConfig()
FRAMES = generate(SyntheticConfig(symbols=("SOLUSDT",), depth=50, seed=9), TOPICS, 400, 1_786_310_819_000)


def _cfg(tmp_path: Path, silence_ms: int = 5000) -> ShardConfig:
    return ShardConfig(shard=ShardSection(symbols=("SOLUSDT",)),
                       gateway=GatewayConfig(endpoint=f"ipc://{tmp_path}/gw", control_endpoint="",
                                             silence_ms=silence_ms, poll_ms=10),
                       journal=JournalConfig(dir=str(tmp_path / "journal")))


class Publisher:
    """Test-side gateway: an XPUB that knows when the bridge's SUB has subscribed."""

    def __init__(self, endpoint: str) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.XPUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.sock.bind(endpoint)
        self.subscriptions = 0

    def wait_subscribed(self, count: int = 1, timeout_s: float = 5.0) -> None:
        """Block until `count` full sets of topic subscriptions have arrived."""
        end = time.monotonic() + timeout_s
        while self.subscriptions < count * len(TOPICS.names()):
            assert time.monotonic() < end, "bridge never subscribed"
            if self.sock.poll(50):
                if self.sock.recv()[:1] == b"\x01":
                    self.subscriptions += 1

    def send(self, *parts: bytes) -> None:
        self.sock.send_multipart(list(parts))

    def close(self) -> None:
        self.sock.close()
        self.ctx.term()


@contextmanager
def running(cfg: ShardConfig, clock_ns: Callable[[], int] = time.time_ns) -> Iterator[tuple[Bridge, Publisher]]:
    """Run a Bridge on a thread against a test Publisher; stop, close and join on exit."""
    pub = Publisher(cfg.gateway.endpoint)
    writer = JournalWriter(cfg.journal)
    bridge = Bridge(cfg, writer, clock_ns=clock_ns)
    stop = threading.Event()
    thread = threading.Thread(target=bridge.run, args=(stop,), daemon=True)
    thread.start()
    try:
        pub.wait_subscribed()
        yield bridge, pub
    finally:
        stop.set()
        thread.join(10)
        writer.close()
        pub.close()
    assert not thread.is_alive()


def _wait(pred: Callable[[], bool], timeout_s: float = 5.0) -> None:
    end = time.monotonic() + timeout_s
    while not pred():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def _records(cfg: ShardConfig) -> list[Record]:
    return list(JournalReader(cfg.journal.dir).records())


@pytest.mark.timeout(30)
def test_good_frames_around_bad_ones_are_all_journaled(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    snap, delta = FRAMES[0], FRAMES[2]
    assert snap.kind == "snapshot" and delta.kind == "delta"
    with running(cfg) as (bridge, pub):
        pub.send(snap.topic, snap.payload)
        pub.send(delta.topic, delta.payload[:40])  # truncated JSON
        pub.send(delta.topic, delta.payload, b"extra")  # three parts
        pub.send(delta.topic)  # one part: a topic and no frame
        pub.send(TOPICS.ticker.encode() + b".x", FRAMES[1].payload)  # prefix-matches, unknown topic
        pub.send(delta.topic, delta.payload)
        _wait(lambda: bridge.counters["received"] == 6)
    recs = [r for r in _records(cfg) if r.kind != Kind.TICK]
    assert [r.kind for r in recs] == [Kind.BOOK_SNAPSHOT, Kind.BAD_FRAME, Kind.BAD_FRAME, Kind.BAD_FRAME,
                                      Kind.BAD_FRAME, Kind.BOOK_DELTA]
    reasons = [r.payload["reason"] for r in recs if r.kind == Kind.BAD_FRAME]
    assert reasons[1:] == ["bad_multipart", "bad_multipart", "unknown_topic"]
    assert bridge.counters["bad_total"] == 4 and bridge.counters["bad"]["unknown_topic"] == 1
    assert recs[-1].payload["u"] == recs[0].payload["u"] + 1


@pytest.mark.timeout(30)
def test_silence_journals_gateway_down_then_up_and_reconnects(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, silence_ms=200)
    with running(cfg) as (bridge, pub):
        pub.send(FRAMES[0].topic, FRAMES[0].payload)
        _wait(lambda: bridge.counters.get("gateway_down", 0) == 1)
        _wait(lambda: bridge.counters.get("reconnects", 0) >= 1)
        i = 2
        while bridge.counters.get("gateway_up", 0) == 0:  # the reopened SUB needs a moment
            pub.send(FRAMES[i].topic, FRAMES[i].payload)
            i += 1
            time.sleep(0.02)
        _wait(lambda: bridge.counters["received"] >= 2)
    recs = [r for r in _records(cfg) if r.kind != Kind.TICK]
    kinds = [r.kind for r in recs]
    down, up = kinds.index(Kind.GATEWAY_DOWN), kinds.index(Kind.GATEWAY_UP)
    assert kinds.count(Kind.GATEWAY_DOWN) == 1 and down == 1 and up == 2
    assert recs[down].payload["silent_ms"] >= 200 and recs[down].payload["reason"] == "silence"
    assert recs[up].payload["silent_ms"] >= recs[down].payload["silent_ms"]
    assert recs[up + 1].kind in MARKET_KINDS


@pytest.mark.timeout(30)
def test_ticks_at_every_whole_second_busy_and_idle(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    m0 = time.monotonic_ns()
    base = 1_786_310_819 * NS_PER_S + 700_000_000  # the first boundary comes 300 ms in
    with running(cfg, clock_ns=lambda: base + time.monotonic_ns() - m0) as (bridge, pub):
        for f in FRAMES[:100]:  # ~1 s of traffic, then ~1.3 s idle
            pub.send(f.topic, f.payload)
            time.sleep(0.01)
        _wait(lambda: bridge.counters["received"] == 100)
        time.sleep(1.3)
    recs = _records(cfg)
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False))
    ticks = [i for i, r in enumerate(recs) if r.kind == Kind.TICK]
    bounds = [recs[i].recv_ns for i in ticks]
    assert len(bounds) >= 2 and all(b % NS_PER_S == 0 for b in bounds)
    assert bounds == list(range(bounds[0], bounds[-1] + 1, NS_PER_S))
    first_market = next(r for r in recs if r.kind in MARKET_KINDS)
    assert bounds[0] == (first_market.recv_ns // NS_PER_S + 1) * NS_PER_S
    for i in ticks:  # each tick sits between the records before and after its boundary
        assert all(r.recv_ns < recs[i].recv_ns for r in recs[:i] if r.kind in MARKET_KINDS)
        assert all(r.recv_ns >= recs[i].recv_ns for r in recs[i + 1:])
    last_market = max(i for i, r in enumerate(recs) if r.kind in MARKET_KINDS)
    assert ticks[-1] > last_market, "idle ticks keep coming without traffic"


@pytest.mark.timeout(30)
def test_restart_continues_seq_stamps_and_ticks(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    for start in (0, 10):
        with running(cfg) as (bridge, pub):
            for f in FRAMES[start:start + 10]:
                pub.send(f.topic, f.payload)
            _wait(lambda: bridge.counters["received"] == 10)
    recs = _records(cfg)
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
    assert sum(r.kind in MARKET_KINDS for r in recs) == 20
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False))
    bounds = [r.recv_ns for r in recs if r.kind == Kind.TICK]
    assert len(set(bounds)) == len(bounds)
