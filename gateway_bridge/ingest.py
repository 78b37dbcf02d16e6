"""The one ingest pipeline: stamp -> decode -> ticks -> liveness -> bad-frame budget. Pure.

`Ingest` turns what arrives — live gateway messages, capture frames, the shard's own resync
requests and REST snapshots — into the UNNUMBERED records a shard journals, in journal order. It
owns no socket and never sleeps; time comes from the injected ``clock_ns`` (live stamps) or from
the capture (imports), so the live bridge (`gateway_bridge.bridge`) and the importer
(`gateway_bridge.importer`) journal exactly the same records for the same traffic at the same times.

Journal order rules, whatever the entry point:

- the tick of whole second ``b`` comes right before the first record at or after ``b`` (or, idle,
  when `idle` passes ``b``); a gap longer than ``ticks.max_backfill_s`` is capped by `TickClock`
  (per-second ticks, one TICK_GAP, the tick of the current second);
- ``silence_ms`` without traffic journals GATEWAY_DOWN (reason ``silence``) when `idle` notices it
  — for an import, at ``last + silence_ms``, exactly when a live shard's idle poll would have;
  the next traffic journals GATEWAY_UP before its first record;
- a bad message becomes one BAD_FRAME (raw cut to 64 KiB, with ``raw_len`` and ``sha256``) until
  the bad frames of that second have used ``gateway.bad_frames_max_bytes_per_s`` (raw + topic +
  `BAD_FRAME_OVERHEAD` each, so empty bad frames count too); past it they are
  counted into one BAD_FRAME_SUMMARY per second (journaled when the second is over). A bad
  message never costs a good one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from engine.record import NS_PER_MS, NS_PER_S, Kind, Record
from gateway_bridge.clock import MonotonicStamper
from gateway_bridge.config import GatewayConfig, TicksConfig
from gateway_bridge.decoder import MAX_TOPIC, Decoder, bad_frame
from gateway_bridge.liveness import Liveness
from gateway_bridge.ticks import TickClock, next_second

Message = tuple[int, list[bytes]]
#: Bytes a journaled BAD_FRAME costs beyond its raw bytes and topic (header, keys, digest), for the budget.
BAD_FRAME_OVERHEAD = 160
#: Bytes of frame 0 decoded to name the topic of a bad message (the name is cut to MAX_TOPIC chars).
_TOPIC_BYTES = 4 * MAX_TOPIC


class BadFrameBudget:
    """Per-second byte budget for BAD_FRAME records; what exceeds it is summarised, one record a second."""

    __slots__ = ("max_bytes", "second", "used", "counts", "bytes", "from_ns", "to_ns", "due_ns",
                 "summarised", "dropped_bytes", "summaries")

    def __init__(self, max_bytes_per_s: int) -> None:
        self.max_bytes = max_bytes_per_s
        self.second = -1
        self.used = 0
        #: The pending summary (None when nothing is pending) and its fields.
        self.counts: Counter[str] | None = None
        self.bytes = self.from_ns = self.to_ns = 0
        #: When the pending summary is journaled: the end of its second.
        self.due_ns = 0
        self.summarised = self.dropped_bytes = self.summaries = 0

    def admit(self, rec: Record) -> bool:
        """Return True to journal this BAD_FRAME as is; False if it went into the summary."""
        sec = rec.recv_ns // NS_PER_S
        if sec != self.second:
            self.second, self.used = sec, 0
        p = rec.payload
        size = len(p["raw"]) + len(p["topic"]) + BAD_FRAME_OVERHEAD
        if self.counts is None and self.used + size <= self.max_bytes:
            self.used += size
            return True
        if self.counts is None:
            self.counts = Counter()
            self.bytes, self.from_ns, self.due_ns = 0, rec.recv_ns, (sec + 1) * NS_PER_S
        self.counts[p["reason"]] += 1
        self.bytes += p["raw_len"]
        self.to_ns = rec.recv_ns
        self.summarised += 1
        self.dropped_bytes += p["raw_len"]
        return False

    def flush(self, now_ns: int) -> Record | None:
        """Return the pending BAD_FRAME_SUMMARY once its second is over at `now_ns`, else None."""
        if self.counts is None or now_ns < self.due_ns:
            return None
        payload = {"counts": dict(self.counts), "bytes": self.bytes, "from_ns": self.from_ns, "to_ns": self.to_ns}
        self.counts = None
        self.summaries += 1
        return Record(0, self.to_ns, Kind.BAD_FRAME_SUMMARY, "", 0, 0, payload)


class Ingest:
    """Records to journal for gateway traffic, capture frames and control events; see the module docstring."""

    def __init__(self, gateway: GatewayConfig, ticks: TicksConfig, symbols: Iterable[str] | None, *,
                 last_recv_ns: int = 0, clock_ns: Callable[[], int], skip_unknown_symbols: bool = False) -> None:
        self.gateway = gateway
        self.last_recv_ns = last_recv_ns
        self.stamper = MonotonicStamper(clock_ns=clock_ns, start_ns=last_recv_ns)
        # Continue the tick series of the journal: the next tick is the first second after it.
        self.ticks = TickClock(next_second(last_recv_ns) if last_recv_ns else None, ticks.max_backfill_s)
        self.decoder = Decoder(symbols, gateway.topics, skip_unknown_symbols=skip_unknown_symbols)
        self.liveness = Liveness(gateway.silence_ms, last_recv_ns or None)
        self.budget = BadFrameBudget(gateway.bad_frames_max_bytes_per_s)
        self._silence_ns = gateway.silence_ms * NS_PER_MS
        self._topics = {name.encode(): name for name in gateway.topics.names()}
        self._c: Counter[str] = Counter(dict.fromkeys(("received", "gateway_up", "gateway_down",
                                                       "resync_requests", "rest_snapshots"), 0))
        self._bad: Counter[str] = Counter()

    # --- time -----------------------------------------------------------------------------------
    def stamp(self) -> int:
        """Return the injected clock now, made non-decreasing (the receive stamp of live messages)."""
        return self.stamper.stamp()

    @property
    def next_tick_ns(self) -> int | None:
        """Return the next tick boundary (None before the series starts): when a live loop must wake."""
        return self.ticks.next_boundary_ns

    def next_wake_ns(self) -> int | None:
        """Return the earliest time `idle` has something to journal: a tick, a down edge, a summary."""
        times = [t for t in (self.ticks.next_boundary_ns, self.liveness.deadline_ns(),
                             self.budget.due_ns if self.budget.counts is not None else None) if t is not None]
        return min(times) if times else None

    # --- entry points ---------------------------------------------------------------------------
    def watch(self) -> None:
        """Start watching for silence from now, if no traffic or journal tail gave a start yet (live)."""
        if self.liveness.last_ns is None:
            self.liveness.last_ns = self.stamp()

    def restart(self) -> list[Record]:
        """Return GATEWAY_DOWN ``shard_restart`` at the journal's last record time (restart = reconnect)."""
        last = self.last_recv_ns
        if not last:
            return []
        silent_ms = (self.stamp() - last) // NS_PER_MS
        self.liveness.mark_down(last)
        return [*self.ticks.before(last), self._gateway(Kind.GATEWAY_DOWN, last, "shard_restart", silent_ms)]

    def messages(self, msgs: Sequence[Message]) -> list[Record]:
        """Return the records of live messages, each ``(recv_ns from stamp(), [topic, payload])``.

        Messages sharing a stamp (a drained batch) are decoded together, as `batch` does.
        """
        out: list[Record] = []
        i, n = 0, len(msgs)
        while i < n:
            t, j = msgs[i][0], i + 1
            while j < n and msgs[j][0] == t:
                j += 1
            out += self.batch(t, [parts for _, parts in msgs[i:j]])
            i = j
        return out

    def batch(self, recv_ns: int, msgs: Sequence[list[bytes]]) -> list[Record]:
        """Return the records of a drained batch of live messages (each ``[topic, payload]``), all
        received by `recv_ns` (one `stamp()` per drain: the time the drain ended)."""
        out: list[Record] = []
        if not msgs:
            return out
        self._traffic(recv_ns, out)
        self._decode_batch(recv_ns, msgs, out)
        self.liveness.last_ns = recv_ns
        self.stamper.monotonic(recv_ns)
        self._c["received"] += len(msgs)
        return out

    def frame(self, raw_ns: int, payload: bytes, head: list[Record] | None = None) -> list[Record]:
        """Return the records of one capture frame (no gateway topic) received at `raw_ns` (import).

        `head` records (an import's SESSION) are stamped with the time of the first frame that
        decodes to records and go right before them; the list is emptied once they are used, so
        a skipped frame (an ack) does not start the tick series any earlier than it did.
        """
        last = self.liveness.last_ns
        out = self.idle(last + self._silence_ns) if last is not None and raw_ns - last > self._silence_ns else []
        t = self.stamper.monotonic(raw_ns)
        self._traffic(t, out)
        recs = self.decoder.decode_frame(payload, t)
        if recs and head:
            out.extend(self.control(head, t))
            head.clear()
        if recs:
            self._before(t, out)
            if recs[0].kind == Kind.BAD_FRAME:
                self._bad_into(recs, out)
            else:
                out.extend(recs)
        self._c["received"] += 1
        return out

    def idle(self, now_ns: int) -> list[Record]:
        """Return what passing time alone journals by `now_ns`: a due summary, ticks, GATEWAY_DOWN."""
        now = self.stamper.monotonic(now_ns)
        out: list[Record] = []
        summary = self.budget.flush(now)
        if summary is not None:
            out.append(summary)
        out.extend(self.ticks.until(now))
        silent_ms = self.liveness.check(now)
        if silent_ms is not None:
            out.extend(self.ticks.before(now))
            out.append(self._gateway(Kind.GATEWAY_DOWN, now, "silence", silent_ms))
        return out

    def control(self, records: Sequence[Record], now_ns: int | None = None) -> list[Record]:
        """Return `records` (the shard's own: SESSION, REGISTRY_CHANGED, …) stamped now, ticks due first."""
        now = self.stamp() if now_ns is None else self.stamper.monotonic(now_ns)
        out: list[Record] = []
        self._before(now, out)
        out.extend(r._replace(recv_ns=now) for r in records)
        return out

    def resync_request(self, symbol: str, depth: int, reason: str, via: str) -> list[Record]:
        """Return a RESYNC_REQUEST stamped now for the book ``orderbook.<depth>.<symbol>`` (ticks due first)."""
        now = self.stamp()
        out: list[Record] = []
        self._before(now, out)
        payload = {"topic": f"orderbook.{depth}.{symbol}", "depth": depth, "reason": reason, "via": via}
        out.append(Record(0, now, Kind.RESYNC_REQUEST, symbol, 0, 0, payload))
        self._c["resync_requests"] += 1
        return out

    def rest_snapshot(self, symbol: str, depth: int, body: bytes) -> list[Record]:
        """Return the BOOK_SNAPSHOT (``src: "rest"``) of a REST orderbook answer, or its BAD_FRAME."""
        now = self.stamp()
        rec = self.decoder.decode_rest_orderbook(body, now, depth, symbol)
        out: list[Record] = []
        self._before(now, out)
        if rec.kind == Kind.BAD_FRAME:
            self._bad_into([rec], out)
        else:
            out.append(rec)
            self._c["rest_snapshots"] += 1
        return out

    @property
    def edges(self) -> tuple[int, int]:
        """Return how many GATEWAY_UP and GATEWAY_DOWN records were journaled (cheap, for the loop)."""
        return self._c["gateway_up"], self._c["gateway_down"]

    # --- counters -------------------------------------------------------------------------------
    @property
    def counters(self) -> dict[str, Any]:
        """Return received, ticks, tick gaps, gateway up/down, bad by reason, bad bytes dropped, …."""
        b, t = self.budget, self.ticks
        out: dict[str, Any] = dict(self._c)
        out.update(ticks=t.ticks, tick_gaps=t.gaps, tick_gap_seconds=t.gap_seconds, bad=dict(self._bad),
                   bad_total=sum(self._bad.values()), bad_summarised=b.summarised,
                   bad_bytes_dropped=b.dropped_bytes, bad_summaries=b.summaries,
                   stamps_held=self.stamper.held, skipped=sum(self.decoder.counters["skipped"].values()))
        return out

    # --- internals ------------------------------------------------------------------------------
    def _decode_batch(self, recv_ns: int, msgs: Sequence[list[bytes]], out: list[Record]) -> None:
        """Append due ticks and the decoded records of one batch stamped `recv_ns` to `out`."""
        topics = self._topics
        names = [topics.get(parts[0]) if len(parts) == 2 else None for parts in msgs]
        bad_before = self.decoder.bad_frames
        if None in names:  # a message on no configured topic or of the wrong shape: rare, one by one
            recs = []
            for name, parts in zip(names, msgs, strict=True):
                recs += (self.decoder.decode_many([name], [parts[1]], recv_ns) if name is not None
                         else [self._bad_message(recv_ns, parts)])
        else:
            recs = self.decoder.decode_many(names, [parts[1] for parts in msgs], recv_ns)
        if not recs:
            return
        self._before(recv_ns, out)  # the tick series starts at a record, not at an ack
        bad_kind = Kind.BAD_FRAME
        if self.decoder.bad_frames != bad_before or None in names:
            for rec in recs:
                if rec.kind == bad_kind:
                    self._bad_into([rec], out)
                else:
                    out.append(rec)
        else:
            out += recs

    def _before(self, t: int, out: list[Record]) -> None:
        """Append what must precede a record stamped `t`: a summary whose second is over, due ticks."""
        summary = self.budget.flush(t)
        if summary is not None:
            out.append(summary)
        out.extend(self.ticks.before(t))

    def _traffic(self, t: int, out: list[Record]) -> None:
        """Note traffic at `t`; after a silence append the due ticks and GATEWAY_UP."""
        silent_ms = self.liveness.traffic(t)
        if silent_ms is not None:
            self._before(t, out)
            out.append(self._gateway(Kind.GATEWAY_UP, t, "traffic", silent_ms))

    def _bad_message(self, recv_ns: int, parts: list[bytes]) -> Record:
        """Return the BAD_FRAME of a message with the wrong part count or a topic not configured exactly."""
        if len(parts) == 2:
            reason, raw = "unknown_topic", parts[1:]
        else:
            reason, raw = "bad_multipart", (parts[1:] if len(parts) > 2 else parts)
        topic = bytes(parts[0][:_TOPIC_BYTES]).decode("utf-8", "replace") if len(parts) >= 2 else ""
        return bad_frame(recv_ns, reason, topic, raw)

    def _bad_into(self, recs: list[Record], out: list[Record]) -> None:
        """Count bad frames; append those within this second's byte budget, summarise the rest."""
        budget = self.budget
        for rec in recs:
            summary = budget.flush(rec.recv_ns)
            if summary is not None:
                out.append(summary)
            self._bad[rec.payload["reason"]] += 1
            if budget.admit(rec):
                out.append(rec)

    def _gateway(self, kind: Kind, t: int, reason: str, silent_ms: int) -> Record:
        """Return a GATEWAY_UP/DOWN record (and count the transition)."""
        self._c["gateway_up" if kind == Kind.GATEWAY_UP else "gateway_down"] += 1
        return Record(0, t, kind, "", 0, 0, {"reason": reason, "silent_ms": int(silent_ms)})
