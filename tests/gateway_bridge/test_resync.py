"""Resyncer policy on a hand-driven clock (dedupe, "again", back-off, done, concurrency, events),
and ZmqSnapshotSource specifics against a real ROUTER/REP on ipc://."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from gateway_bridge.config import BackoffConfig, GatewayConfig, ResyncConfig
from gateway_bridge.liveness import Backoff
from gateway_bridge.resync import Resyncer, ResyncEvent, ZmqSnapshotSource, source_for
from gateway_bridge.resync_http import HttpSnapshotSource
from gateway_bridge.snapshot_source import (
    Accepted,
    Answer,
    ResyncRejected,
    ResyncTimeout,
    ResyncTransportError,
    Snapshot,
)

MS = 1_000_000
#: Back-off 100, 200, 400, 800, 800 … ms (hand-computed below from these three numbers).
CFG = ResyncConfig(timeout_ms=1000, backoff=BackoffConfig(initial_ms=100, max_ms=800, factor=2.0))


class ManualClock:
    """Time that moves only when the test says so; `sleep` waits for `advance`."""

    def __init__(self) -> None:
        self.ns = 0
        self._sleepers: list[tuple[int, asyncio.Future[None]]] = []
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.ns

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        fut = asyncio.get_running_loop().create_future()
        self._sleepers.append((self.ns + round(seconds * 1e9), fut))
        await fut

    def advance_ms(self, ms: int) -> None:
        self.ns += ms * MS
        for due, fut in self._sleepers:
            if due <= self.ns and not fut.done():
                fut.set_result(None)
        self._sleepers = [(d, f) for d, f in self._sleepers if not f.done()]


class ScriptedSource:
    """A SnapshotSource whose answers the test gives by hand; it checks one fetch per book."""

    def __init__(self, via: str = "http") -> None:
        self.via = via
        self.calls: list[tuple[str, int]] = []
        self.waiting: dict[tuple[str, int], asyncio.Future[Answer]] = {}
        self.max_concurrent = 0
        self.cancelled: list[tuple[str, int]] = []
        self.closed = False

    async def fetch(self, symbol: str, depth: int, timeout_s: float) -> Answer:
        key = (symbol, depth)
        assert key not in self.waiting, f"two requests in flight for {key}"
        assert timeout_s == CFG.timeout_ms / 1000
        self.calls.append(key)
        fut = self.waiting[key] = asyncio.get_running_loop().create_future()
        self.max_concurrent = max(self.max_concurrent, len(self.waiting))
        try:
            return await fut
        except asyncio.CancelledError:
            self.cancelled.append(key)
            raise
        finally:
            del self.waiting[key]

    def answer(self, symbol: str, depth: int, answer: Answer | BaseException) -> None:
        fut = self.waiting[(symbol, depth)]
        if isinstance(answer, BaseException):
            fut.set_exception(answer)
        else:
            fut.set_result(answer)

    async def close(self) -> None:
        self.closed = True


async def settle() -> None:
    """Let every ready task run (no real time passes)."""
    for _ in range(20):
        await asyncio.sleep(0)


class Harness:
    """A Resyncer running over a ScriptedSource on a ManualClock, recording what it hands out."""

    def __init__(self, via: str = "http", on_snapshot: Callable[[str, int, bytes], None] | None = None
                 ) -> None:
        self.clock = ManualClock()
        self.src = ScriptedSource(via)
        self.events: list[ResyncEvent] = []
        self.snapshots: list[tuple[str, int, bytes]] = []
        self.r = Resyncer(self.src, CFG, on_snapshot=on_snapshot or self._keep,
                          on_event=self.events.append, clock_ns=self.clock, sleep=self.clock.sleep)

    def _keep(self, symbol: str, depth: int, body: bytes) -> None:
        self.snapshots.append((symbol, depth, body))

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def drive(scenario: Callable[[Harness], Awaitable[None]], via: str = "http",
          on_snapshot: Callable[[str, int, bytes], None] | None = None) -> Harness:
    """Run `scenario` with the Resyncer's task running; then cancel it and check it ended cleanly."""
    h = Harness(via, on_snapshot)

    async def main() -> None:
        task = asyncio.create_task(h.r.run())
        await settle()
        try:
            await asyncio.wait_for(scenario(h), 5)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert h.src.waiting == {} and not h.src.closed, "run() closed what it does not own"
        leftover = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert leftover == []
    asyncio.run(main())
    return h


# --- policy ---------------------------------------------------------------------------------
def test_asking_for_a_queued_book_is_a_no_op() -> None:
    async def scenario(h: Harness) -> None:
        assert h.r.request("BTCUSDT", 50, "gap")
        assert not h.r.request("BTCUSDT", 50, "gap")
        await settle()
        assert h.src.calls == [("BTCUSDT", 50)]
        assert h.r.pending() == ["orderbook.50.BTCUSDT"]
        h.src.answer("BTCUSDT", 50, Accepted())
        await settle()
        assert h.r.done("BTCUSDT", 50) is not None  # the snapshot came on the stream and was applied
        h.clock.advance_ms(10_000)
        await settle()
        assert h.src.calls == [("BTCUSDT", 50)] and h.r.pending() == []
    h = drive(scenario)
    assert h.r.counters["deduplicated"] == 1 and h.r.counters["sent"] == 1


def test_asked_again_while_in_flight_owes_exactly_one_more_request() -> None:
    """The in-flight answer may predate the new need: one more request follows it, not more."""
    async def scenario(h: Harness) -> None:
        h.r.request("SOLUSDT", 50, "gap")
        await settle()
        assert not h.r.request("SOLUSDT", 50, "crossed")
        assert not h.r.request("SOLUSDT", 50, "crossed")
        h.src.answer("SOLUSDT", 50, Accepted())
        await settle()
        assert h.r.pending() == ["orderbook.50.SOLUSDT"], "one more request is owed"
        assert len(h.src.calls) == 1, "not before the book's back-off"
        h.clock.advance_ms(99)
        await settle()
        assert len(h.src.calls) == 1
        h.clock.advance_ms(1)  # 100 ms after the answer: the initial back-off
        await settle()
        assert len(h.src.calls) == 2
        h.src.answer("SOLUSDT", 50, Accepted())
        await settle()
        assert h.r.done("SOLUSDT", 50) is not None  # the snapshot came on the stream and was applied
        h.clock.advance_ms(10_000)
        await settle()
        assert len(h.src.calls) == 2 and h.r.pending() == []
    h = drive(scenario)
    assert [e.detail for e in h.events if e.kind == "requested"] == ["gap", "crossed"]


def test_asked_again_while_waiting_out_a_back_off_owes_nothing_more() -> None:
    """A failed book stays queued; a request meanwhile is served by the retry itself."""
    async def scenario(h: Harness) -> None:
        h.r.request("SOLUSDT", 50, "gap")
        await settle()
        h.src.answer("SOLUSDT", 50, ResyncTimeout("t"))
        await settle()
        assert not h.r.request("SOLUSDT", 50, "gap")
        h.clock.advance_ms(100)
        await settle()
        h.src.answer("SOLUSDT", 50, Accepted())
        await settle()
        assert h.r.done("SOLUSDT", 50) is not None  # the snapshot came on the stream and was applied
        h.clock.advance_ms(10_000)
        await settle()
        assert len(h.src.calls) == 2 and h.r.pending() == []
    drive(scenario)


@pytest.mark.parametrize("answer", [Accepted(), Snapshot(b"not a book")], ids=["ok", "rest"])
def test_an_answer_without_a_snapshot_applied_is_asked_again_after_timeout_ms(answer: Answer) -> None:
    """"ok" but the snapshot was lost on the stream, or a REST body that did not decode: re-asked."""
    async def scenario(h: Harness) -> None:
        h.r.request("BTCUSDT", 50, "gap")
        await settle()
        h.src.answer("BTCUSDT", 50, answer)
        await settle()
        h.clock.advance_ms(CFG.timeout_ms - 10)
        await settle()
        assert h.r.pending() == [] and len(h.src.calls) == 1
        h.clock.advance_ms(10)  # timeout_ms after the answer, past its 100 ms back-off
        await settle()
        assert len(h.src.calls) == 2
        h.src.answer("BTCUSDT", 50, answer)
        await settle()
        assert h.r.done("BTCUSDT", 50) == pytest.approx(1.0)
        h.clock.advance_ms(60_000)
        await settle()
        assert len(h.src.calls) == 2, "applied: nothing more to ask"
    h = drive(scenario)
    kind = "accepted" if isinstance(answer, Accepted) else "snapshot"
    assert h.kinds() == ["requested", kind, "timeout", "requested", kind]
    assert h.events[2].detail == "no snapshot applied within 1 s of the answer"
    assert h.r.counters["unapplied"] == 1


def _send_times(fails: int, answer: Callable[[], BaseException]) -> list[int]:
    """Fail every attempt at once, stepping the clock 10 ms at a time; return send times (ms)."""
    times: list[int] = []

    async def scenario(h: Harness) -> None:
        h.r.request("ETHUSDT", 200, "gap")
        while len(times) < fails:
            await settle()
            if len(h.src.calls) > len(times):
                times.append(h.clock.ns // MS)
                h.src.answer("ETHUSDT", 200, answer())
                for _ in range(30):  # many requests during the back-off add nothing
                    h.r.request("ETHUSDT", 200, "gap")
                await settle()
            h.clock.advance_ms(10)
    drive(scenario)
    return times


def test_backoff_grows_to_the_cap_after_timeouts() -> None:
    # delays 100, 200, 400, 800, 800, 800 ms after each immediate timeout
    assert _send_times(7, lambda: ResyncTimeout("t")) == [0, 100, 300, 700, 1500, 2300, 3100]


def test_backoff_grows_after_rejections_and_errors_too() -> None:
    assert _send_times(4, lambda: ResyncRejected("no")) == [0, 100, 300, 700]
    assert _send_times(4, lambda: ResyncTransportError("HTTP 500")) == [0, 100, 300, 700]


def test_a_book_that_keeps_timing_out_is_asked_at_most_once_per_back_off() -> None:
    """30 s of a silent gateway, asked for the book every 10 ms: one attempt per timeout + back-off."""
    sent_at: list[int] = []

    async def scenario(h: Harness) -> None:
        h.r.request("BTCUSDT", 50, "gap")
        while h.clock.ns < 30_000 * MS:
            await settle()
            if ("BTCUSDT", 50) in h.src.waiting:
                sent_at.append(h.clock.ns // MS)
                h.clock.advance_ms(CFG.timeout_ms)  # the source's own timeout passes
                h.src.answer("BTCUSDT", 50, ResyncTimeout("t"))
                await settle()
            h.r.request("BTCUSDT", 50, "gap")
            h.clock.advance_ms(10)
    h = drive(scenario)
    expected, t, k = [], 0, 0  # naive: each cycle is the 1 s timeout + min(800, 100 * 2^k) ms
    while t < 30_000:
        expected.append(t)
        t += CFG.timeout_ms + min(800, 100 * 2**k)
        k += 1
    assert sent_at == expected and len(expected) == 18
    assert h.r.counters["timeout"] == 18 and h.r.counters["deduplicated"] >= 1000


def test_done_resets_the_backoff_and_returns_the_episode_duration() -> None:
    async def scenario(h: Harness) -> None:
        h.clock.advance_ms(5_000)
        h.r.request("BTCUSDT", 50, "gap")  # the episode starts at 5.000 s
        await settle()
        h.src.answer("BTCUSDT", 50, ResyncTimeout("t"))
        await settle()
        h.clock.advance_ms(100)
        await settle()
        h.src.answer("BTCUSDT", 50, ResyncTimeout("t"))
        await settle()
        h.clock.advance_ms(200)
        await settle()
        h.src.answer("BTCUSDT", 50, Accepted())
        h.clock.advance_ms(50)  # the snapshot arrives on the stream 50 ms after "ok"
        assert h.r.done("BTCUSDT", 50) == pytest.approx(0.350)
        assert h.r.done("BTCUSDT", 50) is None, "no episode open any more"
        assert h.r.done("XRPUSDT", 50) is None, "never asked"
        await settle()  # now the "ok" is folded in: the book is no longer pending
        assert h.r.pending() == []
        # a new episode: the first failure waits the initial 100 ms again, not 800
        h.clock.advance_ms(1_000)
        h.r.request("BTCUSDT", 50, "gap")
        await settle()
        assert len(h.src.calls) == 4
        h.src.answer("BTCUSDT", 50, ResyncTimeout("t"))
        await settle()
        h.clock.advance_ms(99)
        await settle()
        assert len(h.src.calls) == 4
        h.clock.advance_ms(1)
        await settle()
        assert len(h.src.calls) == 5
        h.src.answer("BTCUSDT", 50, Accepted())
        await settle()
        assert h.r.done("BTCUSDT", 50) == pytest.approx(0.100)
    h = drive(scenario, via="zmq")
    assert [e.attempt for e in h.events if e.kind == "requested"] == [1, 2, 3, 1, 2]


def test_done_while_in_flight_keeps_a_request_owed_by_the_again_rule() -> None:
    """A snapshot applied mid-flight does not cancel a request asked for meanwhile."""
    async def scenario(h: Harness) -> None:
        h.r.request("BTCUSDT", 50, "gap")
        await settle()
        h.clock.advance_ms(30)
        assert not h.r.request("BTCUSDT", 50, "gap")  # in flight: one more is owed
        h.clock.advance_ms(20)
        assert h.r.done("BTCUSDT", 50) == pytest.approx(0.050)
        h.clock.advance_ms(10)
        h.src.answer("BTCUSDT", 50, Snapshot(b"old"))
        await settle()
        assert h.r.pending() == ["orderbook.50.BTCUSDT"]
        h.clock.advance_ms(100)
        await settle()
        assert len(h.src.calls) == 2
        h.src.answer("BTCUSDT", 50, Snapshot(b"new"))
        await settle()
        h.clock.advance_ms(5)
        assert h.r.done("BTCUSDT", 50) == pytest.approx(0.115)  # timed from the done() at 50 ms
    h = drive(scenario)
    assert [b for _, _, b in h.snapshots] == [b"old", b"new"]


def test_a_request_failing_after_done_is_still_retried_and_timed_from_its_retry() -> None:
    """done() mid-flight, then the reply is lost: the book is asked again (harmless, rate-limited)."""
    async def scenario(h: Harness) -> None:
        h.r.request("BTCUSDT", 50, "gap")
        await settle()
        assert h.r.done("BTCUSDT", 50) == 0.0
        h.clock.advance_ms(1000)
        h.src.answer("BTCUSDT", 50, ResyncTimeout("t"))
        await settle()
        h.clock.advance_ms(100)
        await settle()
        assert len(h.src.calls) == 2
        h.clock.advance_ms(40)
        assert h.r.done("BTCUSDT", 50) == pytest.approx(0.040)
        h.src.answer("BTCUSDT", 50, Accepted())
        await settle()
    h = drive(scenario, via="zmq")
    assert [(e.kind, e.attempt) for e in h.events] == [("requested", 1), ("timeout", 1),
                                                       ("requested", 1), ("accepted", 1)]


def test_several_books_in_flight_at_once_but_one_per_book() -> None:
    async def scenario(h: Harness) -> None:
        books = [("BTCUSDT", 50), ("ETHUSDT", 50), ("BTCUSDT", 200)]
        for s, d in books:
            assert h.r.request(s, d, "gateway_up")
        await settle()
        assert sorted(h.src.waiting) == sorted(books)
        assert sorted(h.r.in_flight()) == ["orderbook.200.BTCUSDT", "orderbook.50.BTCUSDT",
                                           "orderbook.50.ETHUSDT"]
        for s, d in books:
            assert not h.r.request(s, d, "gap")  # owes one more each, still one in flight each
        await settle()
        assert len(h.src.calls) == 3
        h.src.answer("ETHUSDT", 50, Snapshot(b"{}"))
        await settle()
        h.clock.advance_ms(100)
        await settle()
        assert len(h.src.calls) == 4 and h.src.calls[-1] == ("ETHUSDT", 50)
        for key in list(h.src.waiting):
            h.src.answer(*key, Snapshot(b"{}"))
    h = drive(scenario)
    assert h.src.max_concurrent == 3


def test_a_snapshot_answer_goes_to_on_snapshot_with_its_body() -> None:
    async def scenario(h: Harness) -> None:
        h.r.request("SOLUSDT", 1000, "gap")
        await settle()
        h.src.answer("SOLUSDT", 1000, Snapshot(b'{"retCode":0,"result":{"u":7}}'))
        await settle()
    h = drive(scenario)
    assert h.snapshots == [("SOLUSDT", 1000, b'{"retCode":0,"result":{"u":7}}')]
    assert h.kinds() == ["requested", "snapshot"] and h.r.pending() == []


def test_events_are_emitted_in_order_with_attempts_and_details() -> None:
    async def scenario(h: Harness) -> None:
        h.r.request("DOGEUSDT", 50, "gap")
        await settle()
        h.src.answer("DOGEUSDT", 50, ResyncTimeout("no reply within 1 s"))
        await settle()
        h.clock.advance_ms(100)
        await settle()
        h.src.answer("DOGEUSDT", 50, ResyncRejected("error no live book"))
        await settle()
        h.clock.advance_ms(200)
        await settle()
        h.src.answer("DOGEUSDT", 50, ResyncTransportError("zmq: EFSM"))
        await settle()
        h.clock.advance_ms(400)
        await settle()
        h.src.answer("DOGEUSDT", 50, Accepted())
        await settle()
    h = drive(scenario, via="zmq")
    got = [(e.kind, e.attempt, e.detail) for e in h.events]
    assert got == [("requested", 1, "gap"), ("timeout", 1, "no reply within 1 s"),
                   ("requested", 2, "gap"), ("rejected", 2, "rejected: error no live book"),
                   ("requested", 3, "gap"), ("error", 3, "zmq: EFSM"),
                   ("requested", 4, "gap"), ("accepted", 4, "")]
    assert {(e.symbol, e.depth, e.via) for e in h.events} == {("DOGEUSDT", 50, "zmq")}
    c = h.r.counters
    assert (c["sent"], c["timeout"], c["rejected"], c["error"], c["accepted"]) == (4, 1, 1, 1, 1)


def test_a_failing_on_snapshot_or_source_is_an_error_event_and_is_retried() -> None:
    bodies: list[bytes] = []

    def on_snapshot(symbol: str, depth: int, body: bytes) -> None:
        bodies.append(body)
        if len(bodies) == 1:
            raise ValueError("bad book")

    async def scenario(h: Harness) -> None:
        h.r.request("BTCUSDT", 50, "gap")
        await settle()
        h.src.answer("BTCUSDT", 50, Snapshot(b"first"))
        await settle()
        h.clock.advance_ms(100)
        await settle()
        h.src.answer("BTCUSDT", 50, RuntimeError("bug in a source"))
        await settle()
        h.clock.advance_ms(200)
        await settle()
        h.src.answer("BTCUSDT", 50, Snapshot(b"second"))
        await settle()
    h = drive(scenario, on_snapshot=on_snapshot)
    assert bodies == [b"first", b"second"]
    assert h.kinds() == ["requested", "snapshot", "error", "requested", "error", "requested",
                         "snapshot"]
    assert "bad book" in h.events[2].detail and "bug in a source" in h.events[4].detail


def test_cancelling_run_cancels_the_request_in_flight_and_keeps_the_book_queued() -> None:
    h = Harness()

    async def main() -> None:
        task = asyncio.create_task(h.r.run())
        h.r.request("BTCUSDT", 50, "gap")
        await settle()
        assert h.src.calls == [("BTCUSDT", 50)]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert h.src.cancelled == [("BTCUSDT", 50)] and not h.src.closed
        assert h.r.pending() == ["orderbook.50.BTCUSDT"] and h.r.in_flight() == []
        # a new run() picks the book up again
        task = asyncio.create_task(h.r.run())
        await settle()
        assert len(h.src.calls) == 2
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    asyncio.run(main())


def test_backoff_doubles_to_the_cap_and_resets() -> None:
    b = Backoff(BackoffConfig(initial_ms=50, max_ms=400, factor=2.0))
    assert [b.next_ns() // MS for _ in range(5)] == [50, 100, 200, 400, 400]
    b.reset()
    assert b.next_ns() // MS == 50


# --- ZmqSnapshotSource specifics, and the policy over real transports ------------------------
@pytest.mark.parametrize("endpoint", ["nonsense", "tcp://no host here", "ipc://", "tcp://127.0.0.1"])
def test_a_malformed_control_endpoint_is_a_config_error_naming_the_key(endpoint: str) -> None:
    ctx = zmq.asyncio.Context()
    try:
        with pytest.raises(ValueError, match="gateway.control_endpoint"):
            ZmqSnapshotSource(endpoint, ctx)
    finally:
        ctx.term()


def test_source_for_follows_gateway_resync_via(tmp_path: Path) -> None:
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        try:
            gw = GatewayConfig(control_endpoint=f"ipc://{tmp_path}/ctl")
            zs = source_for(gw, ctx)
            assert isinstance(zs, ZmqSnapshotSource) and zs.endpoint == gw.control_endpoint
            await zs.close()
            http = GatewayConfig(resync=ResyncConfig(via="http", http_url="http://127.0.0.1:1",
                                                     http_max_limit=500))
            hs = source_for(http, ctx, category="inverse")
            assert isinstance(hs, HttpSnapshotSource)
            assert hs.params("BTCUSD", 1000) == {"category": "inverse", "symbol": "BTCUSD",
                                                 "limit": "500"}
            await hs.close()
            assert source_for(GatewayConfig(resync=ResyncConfig(via="none")), ctx) is None
            assert source_for(GatewayConfig(control_endpoint=""), ctx) is None
        finally:
            ctx.term()
    asyncio.run(main())


async def _rep(sock: zmq.asyncio.Socket, answers: dict[str, bytes], seen: list[str]) -> None:
    """A REP peer: answer each request from `answers` (default ``ok``), or never (``None``)."""
    while True:
        req = (await sock.recv()).decode()
        seen.append(req)
        await sock.send(answers.get(req.split()[1], b"ok"))


def test_resyncer_over_zmq_against_a_real_rep(tmp_path: Path) -> None:
    """Real clock and sockets: two books accepted one after the other, a wrong depth rejected."""
    events: list[ResyncEvent] = []

    async def main() -> None:
        ctx = zmq.asyncio.Context()
        rep = ctx.socket(zmq.REP)
        rep.setsockopt(zmq.LINGER, 0)
        rep.bind(f"ipc://{tmp_path}/ctl")
        seen: list[str] = []
        peer = asyncio.create_task(_rep(rep, {"XRPUSDT": b"error no such book"}, seen))
        src = ZmqSnapshotSource(f"ipc://{tmp_path}/ctl", ctx)
        cfg = ResyncConfig(timeout_ms=1000, backoff=BackoffConfig(initial_ms=50, max_ms=100))
        r = Resyncer(src, cfg, on_snapshot=lambda *a: None, on_event=events.append)
        task = asyncio.create_task(r.run())
        for s in ("BTCUSDT", "ETHUSDT", "XRPUSDT"):
            r.request(s, 50, "gateway_up")
        deadline = time.monotonic() + 5
        while r.pending() != ["orderbook.50.XRPUSDT"] and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # XRPUSDT keeps being rejected, once per 50–100 ms at most
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        peer.cancel()
        await asyncio.gather(peer, return_exceptions=True)
        await src.close()
        rep.close(linger=0)
        ctx.term()
        assert r.pending() == ["orderbook.50.XRPUSDT"]
        assert {"resubscribe BTCUSDT 50", "resubscribe ETHUSDT 50"} <= set(seen)
        assert 2 <= seen.count("resubscribe XRPUSDT 50") <= 7
    asyncio.run(main())
    accepted = sorted(e.symbol for e in events if e.kind == "accepted")
    assert accepted == ["BTCUSDT", "ETHUSDT"]
    assert {e.detail for e in events if e.kind == "rejected"} == {"rejected: error no such book"}


def test_resyncer_over_zmq_against_a_silent_gateway_does_not_flood(tmp_path: Path) -> None:
    """A REP that never answers: each attempt times out on a fresh socket; a handful, not a flood."""
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        sink = ctx.socket(zmq.ROUTER)  # receives requests and never answers
        sink.setsockopt(zmq.LINGER, 0)
        sink.bind(f"ipc://{tmp_path}/dead")
        src = ZmqSnapshotSource(f"ipc://{tmp_path}/dead", ctx)
        cfg = ResyncConfig(timeout_ms=50, backoff=BackoffConfig(initial_ms=50, max_ms=400))
        r = Resyncer(src, cfg, on_snapshot=lambda *a: None)
        task = asyncio.create_task(r.run())
        r.request("BTCUSDT", 200, "gap")
        idents: list[bytes] = []
        end = time.monotonic() + 0.8
        while time.monotonic() < end:
            try:
                ident, _, _ = await asyncio.wait_for(sink.recv_multipart(), end - time.monotonic())
            except TimeoutError:
                break
            idents.append(ident)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await src.close()
        sink.close(linger=0)
        ctx.term()
        # attempts at 0, 100, 250, 500 ms (+ scheduling): 50 ms timeout + 50, 100, 200 … back-off
        assert 3 <= len(idents) <= 5 and len(set(idents)) == len(idents), "a fresh socket each time"
        assert r.counters["timeout"] >= len(idents) - 1 and r.pending() == ["orderbook.200.BTCUSDT"]
    asyncio.run(main())
