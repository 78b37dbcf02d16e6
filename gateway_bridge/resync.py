"""Resync: ask the gateway for fresh book snapshots without flooding it (SPEC C.5, issue 6 §4).

`Resyncer` is the policy, written once for every `SnapshotSource`: requests queue per book
(``symbol``, ``depth``); asking for a queued book is a no-op; asking for the book in flight owes
exactly one more request after its answer (that answer may predate the new need); at most one
request per book is in flight; after a timeout, a rejection, an error *and* after an answer the
book's next request waits out its capped exponential back-off, so a book that keeps failing is asked
at most once per interval. An answer not followed by `done` within ``timeout_ms`` (the promised
snapshot never arrived, or the REST body did not decode) queues the book again. `done` (the engine
applied a snapshot) starts the back-off over and returns how long the episode took since its first
request; it never cancels a queued or owed request (an HTTP answer can predate the need that was registered while it was in flight), so at
worst one extra, rate-limited snapshot is asked for. A `Snapshot` answer goes to ``on_snapshot``;
every transition goes to ``on_event`` as a `ResyncEvent`. Several books can be in flight at once;
the ZMQ source serialises them itself (one REQ socket), and its timeout starts once the request
is sent, not while it waits for the socket.

`ZmqSnapshotSource` is the Lazy Pirate REQ client of the gateway control endpoint (zguide): it
sends ``resubscribe SYMBOL DEPTH`` and expects ``ok``; on a timeout it drops the socket (a REQ with
a lost reply is stuck) and opens a fresh one next time. One event loop, no threads.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import zmq
import zmq.asyncio

from gateway_bridge.config import GatewayConfig, ResyncConfig
from gateway_bridge.liveness import Backoff
from gateway_bridge.resync_http import HttpSnapshotSource
from gateway_bridge.snapshot_source import (
    Accepted,
    Answer,
    ResyncError,
    ResyncRejected,
    ResyncTimeout,
    ResyncTransportError,
    Snapshot,
    SnapshotSource,
    clip,
)

log = logging.getLogger("gateway_bridge.resync")

NS_PER_S = 1_000_000_000
MS = 1_000_000
#: Largest control reply accepted (a bigger one drops the connection and the request times out).
MAX_REPLY = 64 * 1024

__all__ = [
    "Accepted", "Answer", "ResyncError", "ResyncEvent", "ResyncRejected", "ResyncTimeout",
    "ResyncTransportError", "Resyncer", "Snapshot", "SnapshotSource", "ZmqSnapshotSource",
    "source_for",
]


# --- ZMQ transport --------------------------------------------------------------------------
class ZmqSnapshotSource:
    """`SnapshotSource` over the gateway's REQ/REP control endpoint (Lazy Pirate)."""

    via = "zmq"

    def __init__(self, endpoint: str, ctx: zmq.asyncio.Context) -> None:
        self.endpoint = endpoint
        self._ctx = ctx
        self._sock: zmq.asyncio.Socket | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self._check_endpoint()

    async def fetch(self, symbol: str, depth: int, timeout_s: float) -> Answer:
        """Send ``resubscribe SYMBOL DEPTH`` and await ``ok``; one exchange at a time (REQ)."""
        async with self._lock:
            if self._closed:
                raise ResyncTransportError("zmq snapshot source is closed")
            sock = self._socket()
            try:
                async with asyncio.timeout(timeout_s):
                    await sock.send_string(f"resubscribe {symbol} {depth}")
                    parts = await sock.recv_multipart()
            except TimeoutError:
                self._drop()
                raise ResyncTimeout(f"no reply from {self.endpoint} within {timeout_s:g} s") from None
            except zmq.ZMQError as e:
                self._drop()
                raise ResyncTransportError(f"{self.endpoint}: {e}") from None
            except BaseException:
                self._drop()  # cancelled mid-exchange: this REQ socket is out of step for good
                raise
        reply = parts[0].decode("utf-8", "replace").strip() if parts else ""
        if reply != "ok":
            raise ResyncRejected(clip(reply))
        return Accepted()

    async def close(self) -> None:
        """Close the socket (not the context, which the caller owns); idempotent."""
        self._closed = True
        self._drop()

    def _check_endpoint(self) -> None:
        """Raise ``ValueError`` naming the config key if the endpoint cannot be connected to."""
        probe = self._ctx.socket(zmq.REQ)
        try:
            probe.connect(self.endpoint)
        except zmq.ZMQError as e:
            raise ValueError(f"gateway.control_endpoint: {self.endpoint!r}: {e}") from None
        finally:
            probe.close(linger=0)

    def _socket(self) -> zmq.asyncio.Socket:
        """Return the REQ socket, opening a fresh one after a timeout."""
        if self._sock is None:
            sock = self._ctx.socket(zmq.REQ)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY)
            sock.connect(self.endpoint)
            self._sock = sock
        return self._sock

    def _drop(self) -> None:
        """Close the socket now (linger 0); the next fetch opens a fresh one."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close(linger=0)


def source_for(gw: GatewayConfig, ctx: zmq.asyncio.Context,
               category: str = "linear") -> SnapshotSource | None:
    """Return the snapshot source ``gateway.resync.via`` names, or None (``none``, or no endpoint)."""
    cfg = gw.resync
    if cfg.via == "http":
        return HttpSnapshotSource(cfg.http_url, category=category, max_limit=cfg.http_max_limit)
    if cfg.via == "zmq" and gw.control_endpoint:
        return ZmqSnapshotSource(gw.control_endpoint, ctx)
    return None


# --- policy ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ResyncEvent:
    """One transition of a book's resync, for the shard to log and count."""

    #: ``requested`` | ``accepted`` | ``snapshot`` | ``timeout`` | ``rejected`` | ``error``.
    kind: str
    symbol: str
    depth: int
    #: The source's transport: ``zmq`` or ``http``.
    via: str
    #: Attempt number within this episode (1 for the first request after the book went invalid).
    attempt: int
    #: The reason given to `Resyncer.request` (``requested``) or the failure (capped), else "".
    detail: str = ""


@dataclass
class _Book:
    """Per-book state: wanted, in flight, owed one more, back-off and the current episode."""

    symbol: str
    depth: int
    backoff: Backoff
    due_ns: int = 0
    queued: bool = False
    in_flight: bool = False
    #: Asked again while in flight: its answer may predate the new need, so one more follows.
    again: bool = False
    reason: str = ""
    attempt: int = 0
    #: When the first request of this episode was made (None: no episode open).
    first_ns: int | None = None
    #: When the last answer came while no snapshot has been applied since (None: not waiting).
    answered_ns: int | None = None


Sleep = Callable[[float], Awaitable[object]]


class Resyncer:
    """Resync policy over one `SnapshotSource`: dedupe, one in flight per book, per-book back-off."""

    def __init__(self, source: SnapshotSource, cfg: ResyncConfig, *,
                 on_snapshot: Callable[[str, int, bytes], None],
                 on_event: Callable[[ResyncEvent], None] | None = None,
                 clock_ns: Callable[[], int] = time.monotonic_ns,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.source = source
        self.cfg = cfg
        self.timeout_s = cfg.timeout_ms / 1000
        self.timeout_ns = cfg.timeout_ms * MS
        self.on_snapshot = on_snapshot
        self.on_event = on_event
        self.clock_ns = clock_ns
        self.sleep = sleep
        self.counters: Counter[str] = Counter()
        self._books: dict[tuple[str, int], _Book] = {}
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # --- called by the shard (same loop, never re-entrant into the engine) ---------------------
    def request(self, symbol: str, depth: int, reason: str) -> bool:
        """Queue a snapshot request for a book; False if it is already queued (or in flight)."""
        b = self._book(symbol, depth)
        if b.queued:
            if b.in_flight and not b.again:
                b.again, b.reason = True, reason  # the owed request serves this newer reason
                self.counters["again"] += 1
            self.counters["deduplicated"] += 1
            return False
        b.queued, b.reason, b.answered_ns = True, reason, None
        self._open_episode(b)
        self.counters["requested"] += 1
        self._wake.set()
        return True

    def done(self, symbol: str, depth: int) -> float | None:
        """A snapshot of this book was applied: restart its back-off; return the episode's seconds."""
        b = self._books.get((symbol, depth))
        if b is None:
            return None
        b.backoff.reset()
        b.answered_ns = None
        now = self.clock_ns()
        first, b.first_ns = b.first_ns, None
        if b.queued and (b.again or not b.in_flight):  # still owed a request: a new episode
            self._open_episode(b)
        if first is None:
            return None
        self.counters["completed"] += 1
        return (now - first) / NS_PER_S

    def pending(self) -> list[str]:
        """Return the books queued or in flight, as ``orderbook.DEPTH.SYMBOL``."""
        return [f"orderbook.{b.depth}.{b.symbol}" for b in self._books.values() if b.queued]

    def in_flight(self) -> list[str]:
        """Return the books with a request in flight, as ``orderbook.DEPTH.SYMBOL``."""
        return [f"orderbook.{b.depth}.{b.symbol}" for b in self._books.values() if b.in_flight]

    # --- the background task --------------------------------------------------------------------
    async def run(self) -> None:
        """Send due requests until cancelled; on cancel, cancel the requests in flight and re-raise."""
        try:
            while True:
                self._wake.clear()
                self._launch_due()
                await self._wait(self._next_due_s())
        finally:
            await self._cancel_tasks()

    def _launch_due(self) -> None:
        """Start one attempt for every queued book whose back-off has passed, oldest due first."""
        now = self.clock_ns()
        self._requeue_unapplied(now)
        due = [b for b in self._books.values() if b.queued and not b.in_flight and b.due_ns <= now]
        for b in sorted(due, key=lambda b: b.due_ns):
            self._open_episode(b)  # a retry after done() came while it was in flight
            b.in_flight = True
            b.attempt += 1
            self.counters["sent"] += 1
            self._emit("requested", b, b.reason)
            task = asyncio.create_task(self._attempt(b), name=f"resync {b.symbol} {b.depth}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _requeue_unapplied(self, now: int) -> None:
        """Queue again a book answered `timeout_ms` ago whose snapshot was never applied.

        "ok" promises a snapshot on the stream, which can still be lost (a PUB drops at its
        high-water mark); without this the book would stay invalid until its next gap.
        """
        for b in self._books.values():
            if b.answered_ns is not None and not b.queued and now - b.answered_ns >= self.timeout_ns:
                b.answered_ns, b.queued = None, True
                self.counters["unapplied"] += 1
                self._emit("timeout", b, f"no snapshot applied within {self.timeout_s:g} s of the answer")

    def _next_due_s(self) -> float | None:
        """Seconds until the next queued idle book is due or an answer goes stale (None: neither)."""
        waiting = [b.due_ns for b in self._books.values() if b.queued and not b.in_flight]
        waiting += [b.answered_ns + self.timeout_ns for b in self._books.values()
                    if b.answered_ns is not None and not b.queued]
        if not waiting:
            return None
        return max(0.0, (min(waiting) - self.clock_ns()) / NS_PER_S)

    async def _wait(self, timeout_s: float | None) -> None:
        """Wait for a request, an answer or the next due time, whichever comes first."""
        if self._wake.is_set():
            return
        waker = asyncio.create_task(self._wake.wait())
        if timeout_s is None:
            waiters = {waker}
        else:
            waiters = {waker, asyncio.create_task(_sleep_task(self.sleep, timeout_s))}
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    async def _attempt(self, b: _Book) -> None:
        """Run one request of a book and fold its outcome into the book's state."""
        try:
            answer = await self.source.fetch(b.symbol, b.depth, self.timeout_s)
        except ResyncError as e:
            self._failed(b, e.kind, e.reason)
        except Exception as e:  # a faulty source must not end the resync task
            log.exception("resync source failed symbol=%s depth=%d", b.symbol, b.depth)
            self._failed(b, "error", clip(f"{type(e).__name__}: {e}"))
        else:
            self._answered(b, answer)
        finally:
            b.in_flight = False
            self._wake.set()

    def _answered(self, b: _Book, answer: Answer) -> None:
        """An answer: stay queued only if one more is owed; wait out the back-off before it."""
        b.in_flight = False
        b.queued, b.again = b.again, False
        waiting = b.first_ns is not None and not b.queued  # for done(); else re-asked in timeout
        b.answered_ns = self.clock_ns() if waiting else None
        if b.first_ns is None:  # done() came first (snapshot before "ok"): a fresh back-off
            delay = self.cfg.backoff.initial_ms * MS
        else:
            delay = b.backoff.next_ns()
        b.due_ns = self.clock_ns() + delay
        if isinstance(answer, Snapshot):
            self._emit("snapshot", b, f"{len(answer.body)} bytes")
            self._deliver(b, answer.body)
        else:
            self._emit("accepted", b, "")

    def _deliver(self, b: _Book, body: bytes) -> None:
        """Hand a snapshot body to the shard; a failing callback counts as an error and retries."""
        try:
            self.on_snapshot(b.symbol, b.depth, body)
        except Exception as e:
            log.exception("resync on_snapshot failed symbol=%s depth=%d", b.symbol, b.depth)
            b.queued, b.answered_ns = True, None
            self._emit("error", b, clip(f"on_snapshot: {type(e).__name__}: {e}"))

    def _failed(self, b: _Book, kind: str, detail: str) -> None:
        """A timeout, rejection or error: the book stays queued and waits out its back-off."""
        b.again = False  # the retry that follows serves the newer need too
        b.due_ns = self.clock_ns() + b.backoff.next_ns()
        self._emit(kind, b, detail)

    def _emit(self, kind: str, b: _Book, detail: str) -> None:
        """Count a transition and pass it to ``on_event``."""
        if kind != "requested":
            self.counters[kind] += 1
        if self.on_event is None:
            return
        try:
            self.on_event(ResyncEvent(kind, b.symbol, b.depth, self.source.via, b.attempt, detail))
        except Exception:
            log.exception("resync on_event failed kind=%s symbol=%s", kind, b.symbol)

    def _open_episode(self, b: _Book) -> None:
        """Start timing a book's resync (attempts count from 1) unless an episode is open."""
        if b.first_ns is None:
            b.first_ns = self.clock_ns()
            b.attempt = 0

    def _book(self, symbol: str, depth: int) -> _Book:
        b = self._books.get((symbol, depth))
        if b is None:
            b = self._books[(symbol, depth)] = _Book(symbol, depth, Backoff(self.cfg.backoff))
        return b

    async def _cancel_tasks(self) -> None:
        """Cancel the attempts in flight and wait for them (their books stay queued)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _sleep_task(sleep: Sleep, seconds: float) -> None:
    """Await the injected sleep (a coroutine wrapper, so it can run as a task)."""
    await sleep(seconds)
