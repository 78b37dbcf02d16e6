"""What the shard says about what happened: one structured log line and its metrics per event.

Book notices from the engine (gap, crossed, reset, recovered, …), resync transitions from the
resync policy, gateway up/down and bad frames from the journaled records all come through here,
so every event is logged and counted in one place.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import structlog

from api.metrics import ShardMetrics
from engine.engine import Notice
from engine.record import KIND_NAMES, Kind, Record
from gateway_bridge.resync import ResyncEvent

log = structlog.get_logger("feature_service.shard")

_GATEWAY = {int(Kind.GATEWAY_UP), int(Kind.GATEWAY_DOWN)}
_BAD = {int(Kind.BAD_FRAME), int(Kind.BAD_FRAME_SUMMARY)}
#: Bad frames logged one by one per reason before the rest only count (summaries still log).
BAD_FRAME_LOG_LIMIT = 20


class ShardEvents:
    """Log and count journaled records, engine notices and resync events."""

    def __init__(self, metrics: ShardMetrics) -> None:
        self.metrics = metrics
        self.gateway_up = False
        self.gateway_since_ns = 0
        self.last_event_ns: dict[str, int] = {}
        self._bad_logged: Counter[str] = Counter()

    def records(self, numbered: Sequence[Record]) -> None:
        """Count journaled records by kind; note gateway transitions, bad frames, last event per symbol."""
        kinds: Counter[int] = Counter()
        last = self.last_event_ns
        for rec in numbered:
            kinds[rec.kind] += 1
            if rec.kind < 32:
                last[rec.symbol] = rec.recv_ns
                if not self.gateway_since_ns:  # traffic on a fresh journal: up without a down before it
                    self.gateway_up, self.gateway_since_ns = True, rec.recv_ns
                    self.metrics.set_gateway_up(True)
            elif rec.kind in _GATEWAY:
                self._gateway(rec)
            elif rec.kind in _BAD:
                self._bad(rec)
        for kind, n in kinds.items():
            self.metrics.count_messages(KIND_NAMES.get(kind, str(kind)), n)

    def _gateway(self, rec: Record) -> None:
        up = rec.kind == Kind.GATEWAY_UP
        self.gateway_up, self.gateway_since_ns = up, rec.recv_ns
        self.metrics.set_gateway_up(up)
        log.warning("gateway_up" if up else "gateway_down", seq=rec.seq, reason=rec.payload.get("reason"),
                    silent_ms=rec.payload.get("silent_ms"))

    def _bad(self, rec: Record) -> None:
        p = rec.payload
        if rec.kind == Kind.BAD_FRAME_SUMMARY:
            for reason, n in p["counts"].items():
                self.metrics.count_bad_frame(reason, n)
            log.warning("bad_frames_summarised", seq=rec.seq, counts=p["counts"], bytes=p["bytes"])
            return
        reason = p.get("reason", "?")
        self.metrics.count_bad_frame(reason)
        self._bad_logged[reason] += 1
        n = self._bad_logged[reason]
        if n <= BAD_FRAME_LOG_LIMIT:
            log.warning("bad_frame", seq=rec.seq, reason=reason, topic=p.get("topic", ""),
                        raw_len=p.get("raw_len"), sha256=p.get("sha256"),
                        note="further bad frames of this reason are only counted" if n == BAD_FRAME_LOG_LIMIT else None)

    def notice(self, n: Notice) -> None:
        """Log one engine notice (book trouble, recovery, a refused registry, a record it could not apply)."""
        if n.event.startswith(("error", "registry rejected")):
            log.error("engine_notice", seq=n.seq, symbol=n.symbol, event=n.event)
            return
        if n.event == "gap":
            self.metrics.count_book_gap(n.symbol)
        level = log.info if n.event == "recovered" else log.warning
        level(f"book_{n.event}", seq=n.seq, symbol=n.symbol, topic=f"orderbook.{n.depth}.{n.symbol}", resync=n.resync)

    def resync_requested(self, symbol: str, depth: int, reason: str, via: str) -> None:
        """A resync request was journaled and queued."""
        log.warning("resync_requested", symbol=symbol, topic=f"orderbook.{depth}.{symbol}", reason=reason, via=via)

    def resync_completed(self, symbol: str, depth: int, via: str, seconds: float) -> None:
        """A book asked for is valid again, `seconds` after it was first asked for."""
        self.metrics.observe_resync_duration(seconds)
        self.metrics.count_resync(symbol, via, "completed")
        log.info("resync_completed", symbol=symbol, topic=f"orderbook.{depth}.{symbol}", via=via,
                 duration_s=round(seconds, 6))

    def resync_event(self, ev: ResyncEvent) -> None:
        """One transition of the resync policy (sent, accepted, timed out, …)."""
        self.metrics.count_resync(ev.symbol, ev.via, ev.kind)
        level = log.info if ev.kind in ("requested", "accepted", "snapshot") else log.warning
        level("resync_sent" if ev.kind == "requested" else f"resync_{ev.kind}", symbol=ev.symbol, topic=f"orderbook.{ev.depth}.{ev.symbol}", via=ev.via,
              attempt=ev.attempt, detail=ev.detail or None)
