"""The live edge of a shard: ZMQ SUB from ws-gateway -> `Ingest` -> batches of records, on ONE asyncio loop.

`Bridge.next_batch` waits on the SUB socket (every wait has a timeout: Paranoid Pirate) until the
first of: traffic, the next tick boundary, ``poll_ms``, a silence deadline, or control records
queued by the loop (`queue`, `request_resync`, `rest_snapshot`, `control`). It then drains up to
``max_batch`` messages without blocking and returns the unnumbered records to journal, in journal
order (`gateway_bridge.ingest` decides them). The caller journals them, then applies what the
journal returned; the bridge calls nothing back. The messages of one drain share one ``recv_ns``: the
clock when the drain ended (each had arrived by then; stamps stay non-decreasing).

Ticks fire on a timer: the loop timer wakes ``SPIN_NS`` before the boundary and the rest is spun
on the clock, so a tick is stamped within ~100 µs after its boundary even with no traffic.

Bounds: ``gateway.rcvhwm`` messages queued (ZMQ drops past it) and ``gateway.max_msg_bytes`` per
message (ZMQ drops the connection of a peer sending more; counted as ``peer_disconnects``). While
the gateway is down the SUB socket is reopened with exponential back-off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from time import perf_counter_ns
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from engine.record import NS_PER_MS, NS_PER_S, Kind, Record
from gateway_bridge.config import GatewayConfig, TicksConfig
from gateway_bridge.ingest import Ingest
from gateway_bridge.liveness import Backoff

log = logging.getLogger("gateway_bridge.bridge")

#: The loop timer wakes this long before a tick boundary (approached in steps); the rest is spun on the clock.
SPIN_NS = 2 * NS_PER_MS
#: Counters of the bridge itself (the ingest pipeline's are merged into `Bridge.counters`).
COUNTERS = ("batches", "reconnects", "peer_disconnects", "tick_late_max_us", "tick_late_last_us",
            "stage_recv_ns", "stage_ingest_ns")


class BridgeError(RuntimeError):
    """The bridge cannot run as configured (the message names the config key)."""


class Bridge:
    """SUB socket + ingest pipeline for one asyncio loop; see the module docstring."""

    def __init__(self, gateway: GatewayConfig, ticks: TicksConfig, symbols: Iterable[str] | None, *,
                 last_recv_ns: int, ctx: zmq.asyncio.Context, clock_ns: Callable[[], int] = time.time_ns,
                 log_interval_s: float = 10.0) -> None:
        self.gw = gateway
        # One gateway feeds every shard of a cluster: frames of symbols other shards own are skipped
        # and counted (decoder counters: skipped.unknown_symbol), not journaled as bad frames.
        self.ingest = Ingest(gateway, ticks, symbols, last_recv_ns=last_recv_ns, clock_ns=clock_ns,
                             skip_unknown_symbols=symbols is not None)
        self._ctx = ctx
        self._sock: zmq.asyncio.Socket | None = None
        self._shadow: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        self._monitor_owner: zmq.Socket | None = None
        self._queued: list[Record] = []
        self._wake: asyncio.Future[None] | None = None
        self.reconnect = Backoff(gateway.reconnect)
        self._reconnect_due = 0
        self._c: Counter[str] = Counter(dict.fromkeys(COUNTERS, 0))
        self._log_interval_ns = int(log_interval_s * NS_PER_S)
        self._next_log = 0

    # --- lifecycle --------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect the SUB socket and subscribe; a malformed endpoint raises `BridgeError` naming it."""
        self.ingest.decoder.warm_up()
        self._open_socket()
        self.ingest.watch()
        log.info("bridge open endpoint=%s rcvhwm=%d max_msg_bytes=%d", self.gw.endpoint, self.gw.rcvhwm,
                 self.gw.max_msg_bytes)

    async def close(self) -> None:
        """Close the sockets (linger 0); the context stays the caller's."""
        self._close_socket()
        log.info("bridge closed %s", self.format_counters())

    def restart(self) -> list[Record]:
        """Return what a restarted shard journals first: GATEWAY_DOWN ``shard_restart`` (see `Ingest.restart`)."""
        recs = self.ingest.restart()
        if recs:
            self._reconnect_due = self.ingest.stamp() + self.reconnect.next_ns()
            log.warning("shard restart: gateway marked down since the last journaled record silent_ms=%d",
                        recs[-1].payload["silent_ms"])
        return recs

    # --- control records ----------------------------------------------------------------------
    def queue(self, records: Sequence[Record]) -> None:
        """Put control records (already stamped) into the next batch, waking a waiting `next_batch`."""
        if not records:
            return
        self._queued.extend(records)
        wake = self._wake
        if wake is not None and not wake.done():
            wake.set_result(None)

    def control(self, records: Sequence[Record]) -> None:
        """Stamp the shard's own records (SESSION, REGISTRY_CHANGED, …) now and queue them."""
        self.queue(self.ingest.control(records))

    def request_resync(self, symbol: str, depth: int, reason: str, via: str) -> None:
        """Queue the RESYNC_REQUEST record of a book (the loop's resync client does the asking)."""
        self.queue(self.ingest.resync_request(symbol, depth, reason, via))

    def rest_snapshot(self, symbol: str, depth: int, body: bytes) -> None:
        """Queue the BOOK_SNAPSHOT (or BAD_FRAME) of a REST orderbook answer."""
        self.queue(self.ingest.rest_snapshot(symbol, depth, body))

    # --- the batch ----------------------------------------------------------------------------
    async def next_batch(self) -> list[Record]:
        """Wait for traffic, a tick, a deadline or queued records; return the next records to journal."""
        if self._sock is None:
            raise BridgeError("bridge is not open")
        ing = self.ingest
        while True:
            await self._wait()
            out, self._queued = self._queued, []
            edges = self._edges()
            t0 = perf_counter_ns()
            msgs = self._drain()
            # One stamp per drain, taken once it ended: every message of the batch had arrived by
            # then, and recv_ns stays non-decreasing (a clock read per message cost ~0.3 µs).
            now = ing.stamp()
            t1 = perf_counter_ns()
            out += ing.batch(now, msgs)
            idle = ing.idle(now)
            if idle:
                self._note_ticks(idle, now)
                out += idle
            self._c["stage_recv_ns"] += t1 - t0
            self._c["stage_ingest_ns"] += perf_counter_ns() - t1
            self._after(now, edges)
            if out:
                self._c["batches"] += 1
                return out

    async def _wait(self) -> None:
        """Return when there is something to do; never later than the next deadline."""
        await asyncio.sleep(0)  # let the rest of the loop run between two batches
        if self._queued or self._readable():
            return
        stamp = self.ingest.stamp
        while True:
            now = stamp()
            deadline, precise = self._deadline(now)
            rest = deadline - now - (SPIN_NS if precise else 0)
            if rest <= 0:
                break
            # Towards a tick, wait 9/10 of the rest and look again: a VM's timer can run late in
            # proportion to the wait (1-2 % seen here), which would otherwise land a 1 s wait past the boundary.
            await self._poll(-(-(rest * 9 // 10 if precise else rest) // NS_PER_MS))
            if self._queued or self._readable() or not precise:
                return
        # A tick boundary: spin the last ≤ SPIN_NS on the clock (the loop timer is only ms-accurate).
        while stamp() < deadline and not self._readable() and not self._queued:
            pass

    def _deadline(self, now: int) -> tuple[int, bool]:
        """Return when the loop must wake (next tick, silence, reconnect or poll_ms) and if it is a tick."""
        deadline = now + self.gw.poll_ms * NS_PER_MS
        precise = False
        tick = self.ingest.next_tick_ns
        if tick is not None and tick - SPIN_NS <= deadline:  # no plain poll may run into a boundary
            deadline, precise = max(now, tick), True
        wake = self.ingest.next_wake_ns()
        if wake is not None and wake < deadline:
            deadline, precise = max(now, wake), precise and wake == tick
        if self.ingest.liveness.down and self._reconnect_due < deadline:
            deadline, precise = max(now, self._reconnect_due), False
        return deadline, precise

    async def _poll(self, timeout_ms: int) -> None:
        """Wait up to `timeout_ms` for the socket to be readable or `queue` to be called."""
        assert self._sock is not None
        wake = self._wake = asyncio.get_running_loop().create_future()
        ready = self._sock.poll(timeout_ms, zmq.POLLIN)
        try:
            await asyncio.wait((ready, wake), return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._wake = None
            for fut in (ready, wake):
                if not fut.done():
                    fut.cancel()

    def _readable(self) -> bool:
        """Return True if a message is waiting (no system call beyond one getsockopt)."""
        assert self._shadow is not None
        return bool(self._shadow.getsockopt(zmq.EVENTS) & zmq.POLLIN)

    def _drain(self) -> list[list[bytes]]:
        """Return up to max_batch messages, each ``[topic, payload]`` (or however many parts it had)."""
        assert self._shadow is not None
        recv = self._shadow.recv
        out: list[list[bytes]] = []
        append = out.append
        try:
            for _ in range(self.gw.max_batch):
                # Frame-wise receive: ~1 µs against ~2.4 µs for recv_multipart (its Python loop and
                # RCVMORE getsockopt). A multipart message arrives whole, so the later parts never block.
                frame = recv(zmq.NOBLOCK, copy=False)
                parts = [frame.bytes]
                while frame.more:
                    frame = recv(copy=False)
                    parts.append(frame.bytes)
                append(parts)
        except zmq.Again:
            pass
        return out

    # --- bookkeeping --------------------------------------------------------------------------
    def _note_ticks(self, idle: list[Record], now: int) -> None:
        """Record how late after its boundary the last idle tick was stamped (the timer's precision)."""
        ticks = [r for r in idle if r.kind == Kind.TICK]
        if ticks:
            late_us = (now - ticks[-1].recv_ns) // 1000
            self._c["tick_late_last_us"] = late_us
            self._c["tick_late_max_us"] = max(self._c["tick_late_max_us"], late_us)

    def _edges(self) -> tuple[int, int, int, int]:
        """Return the counts whose change the loop acts on or logs: up, down, tick gaps, bad-frame summaries."""
        ing = self.ingest
        return (*ing.edges, ing.ticks.gaps, ing.budget.summaries)

    def _after(self, now: int, edges: tuple[int, int, int, int]) -> None:
        """Act on liveness edges, drain socket events, reconnect while down, log counters now and then."""
        ing = self.ingest
        up, down, gaps, summaries = self._edges()
        if down != edges[1]:
            self._reconnect_due = now + self.reconnect.next_ns()
            log.warning("gateway down silent_ms=%d endpoint=%s", self.gw.silence_ms, self.gw.endpoint)
        if up != edges[0]:
            self.reconnect.reset()
            log.warning("gateway up endpoint=%s", self.gw.endpoint)
        if gaps != edges[2]:
            log.warning("tick gap: seconds past ticks.max_backfill_s journaled as one TICK_GAP total_seconds=%d",
                        ing.ticks.gap_seconds)
        if summaries != edges[3]:
            log.warning("bad frames over gateway.bad_frames_max_bytes_per_s summarised total=%d bytes_dropped=%d",
                        ing.budget.summarised, ing.budget.dropped_bytes)
        self._socket_events()
        if ing.liveness.down and now >= self._reconnect_due:
            self._reopen(now)
        if now >= self._next_log:
            if self._next_log:
                log.info("bridge counters %s", self.format_counters())
            self._next_log = now + self._log_interval_ns

    def _socket_events(self) -> None:
        """Count the disconnects ZMQ reports (a message over max_msg_bytes drops the connection)."""
        mon = self._monitor
        if mon is None or not mon.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            return
        try:
            while True:
                event = parse_monitor_message(mon.recv_multipart(zmq.NOBLOCK))
                if event["event"] == zmq.EVENT_DISCONNECTED:
                    self._c["peer_disconnects"] += 1
                    log.warning("gateway connection dropped (a message over gateway.max_msg_bytes=%d, or the "
                                "network) endpoint=%s", self.gw.max_msg_bytes, self.gw.endpoint)
        except zmq.Again:
            pass

    @property
    def counters(self) -> dict[str, Any]:
        """Return the ingest counters plus batches, reconnects, peer disconnects and tick lateness."""
        out = self.ingest.counters
        out.update(self._c)
        return out

    def format_counters(self) -> str:
        """Return the counters as one ``key=value`` line."""
        c = self.counters
        bad = c.pop("bad")
        c.update({f"bad.{k}": v for k, v in bad.items()})
        return " ".join(f"{k}={v}" for k, v in sorted(c.items()))

    # --- sockets ------------------------------------------------------------------------------
    def _open_socket(self) -> None:
        """Create, bound, subscribe and connect the SUB socket (and its disconnect monitor)."""
        sock = self._ctx.socket(zmq.SUB)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.RCVHWM, self.gw.rcvhwm)
            sock.setsockopt(zmq.MAXMSGSIZE, self.gw.max_msg_bytes)
            for name in self.gw.topics.names():
                sock.setsockopt(zmq.SUBSCRIBE, name.encode())
            sock.connect(self.gw.endpoint)
        except zmq.ZMQError as e:
            sock.close(linger=0)
            raise BridgeError(f"gateway.endpoint: cannot connect to {self.gw.endpoint!r}: {e}") from None
        self._sock = sock
        self._shadow = zmq.Socket.shadow(sock.underlying)
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self._monitor = zmq.Socket.shadow(monitor.underlying)
        self._monitor_owner = monitor

    def _close_socket(self) -> None:
        """Close the SUB socket and its monitor, if open."""
        if self._sock is None:
            return
        self._sock.disable_monitor()
        if self._monitor_owner is not None:
            self._monitor_owner.close(linger=0)
        self._sock.close(linger=0)
        self._sock = self._shadow = self._monitor = self._monitor_owner = None

    def _reopen(self, now: int) -> None:
        """Close and reopen the SUB socket (unless traffic just arrived); schedule the next try."""
        if self._readable():
            return
        self._close_socket()
        self._open_socket()
        self._c["reconnects"] += 1
        delay = self.reconnect.next_ns()
        self._reconnect_due = now + delay
        log.info("gateway reconnect endpoint=%s next_in_ms=%d", self.gw.endpoint, delay // NS_PER_MS)
