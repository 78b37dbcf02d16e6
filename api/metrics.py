"""The shard's Prometheus metrics, on a registry of their own (never the process-global one).

Metrics (all names start ``fs_``):

- ``fs_messages_total{kind}`` counter: journaled records by kind name (``book_delta``, ``tick``...).
- ``fs_bad_frames_total{reason}`` counter: frames from the gateway that could not be decoded.
- ``fs_book_gaps_total{symbol}`` counter: sequence gaps / crossed books that invalidated a book.
- ``fs_resyncs_total{symbol,via,outcome}`` counter: resync transitions; ``via`` is ``zmq`` or
  ``http``, ``outcome`` the transition (``requested``, ``accepted``, ``timeout``, ``completed``...).
- ``fs_resync_duration_seconds`` histogram: from a book going invalid to its snapshot applied.
- ``fs_book_invalid_seconds_total{symbol}`` counter: seconds a symbol's book has been invalid.
- ``fs_tick_to_publish_seconds`` histogram: tick boundary (wall clock) to its vectors sent.
- ``fs_journal_bytes`` gauge: bytes the journal holds on disk.
- ``fs_fsync_seconds`` histogram: duration of each journal fsync.
- ``fs_vectors_published_total`` / ``fs_vectors_dropped_total`` counters: features.live sends that
  succeeded / were dropped because a subscriber's queue was full.
- ``fs_receive_dropped_total{reason}`` counter: gateway messages dropped by receive bounds
  (``hwm``, ``too_large``...).
- ``fs_gateway_up`` gauge: 1 while the gateway is sending, 0 after ``gateway_down``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

#: The Content-Type of `ShardMetrics.render()` (Prometheus text format 0.0.4).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Tick-to-publish buckets, 50 µs to 1 s (the goals are p99 ≤ 1 ms / 5 ms; the spec allows 70 ms).
TICK_TO_PUBLISH_BUCKETS = (50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 20e-3,
                           50e-3, 100e-3, 200e-3, 500e-3, 1.0)

#: Resync duration buckets, 10 ms to 2 min (back-off is capped well below that).
RESYNC_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

#: fsync buckets, 50 µs to 1 s.
FSYNC_BUCKETS = (50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3,
                 100e-3, 250e-3, 1.0)


class ShardMetrics:
    """The metrics one shard exports, with one plain method per thing the shard counts."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = CollectorRegistry() if registry is None else registry
        r = self.registry
        self.messages = Counter("fs_messages", "Journaled records by kind", ["kind"], registry=r)
        self.bad_frames = Counter("fs_bad_frames", "Undecodable gateway frames by reason", ["reason"], registry=r)
        self.book_gaps = Counter("fs_book_gaps", "Book sequence gaps by symbol", ["symbol"], registry=r)
        self.resyncs = Counter("fs_resyncs", "Snapshot requests by symbol, transport and outcome",
                               ["symbol", "via", "outcome"], registry=r)
        self.resync_duration = Histogram("fs_resync_duration_seconds", "Book invalid to snapshot applied",
                                         buckets=RESYNC_BUCKETS, registry=r)
        self.book_invalid = Counter("fs_book_invalid_seconds", "Seconds a symbol's book was invalid",
                                    ["symbol"], registry=r)
        self.tick_to_publish = Histogram("fs_tick_to_publish_seconds", "Tick boundary to vectors sent",
                                         buckets=TICK_TO_PUBLISH_BUCKETS, registry=r)
        self.journal_bytes = Gauge("fs_journal_bytes", "Bytes in the journal", registry=r)
        self.fsync = Histogram("fs_fsync_seconds", "Journal fsync duration", buckets=FSYNC_BUCKETS, registry=r)
        self.published = Counter("fs_vectors_published", "features.live vectors sent", registry=r)
        self.dropped = Counter("fs_vectors_dropped", "features.live vectors dropped (queue full)", registry=r)
        self.receive_dropped = Counter("fs_receive_dropped", "Gateway messages dropped by receive bounds",
                                       ["reason"], registry=r)
        self.gateway_up = Gauge("fs_gateway_up", "1 while the gateway is up", registry=r)

    def count_messages(self, kind: str, n: int = 1) -> None:
        """Add `n` journaled records of `kind`."""
        self.messages.labels(kind).inc(n)

    def count_bad_frame(self, reason: str, n: int = 1) -> None:
        """Add `n` bad frames with `reason`."""
        self.bad_frames.labels(reason).inc(n)

    def count_book_gap(self, symbol: str) -> None:
        """Count one book gap (or crossed book) of `symbol`."""
        self.book_gaps.labels(symbol).inc()

    def count_resync(self, symbol: str, via: str, outcome: str) -> None:
        """Count one snapshot request for `symbol` over `via` that ended in `outcome`."""
        self.resyncs.labels(symbol, via, outcome).inc()

    def observe_resync_duration(self, seconds: float) -> None:
        """Record how long a book stayed invalid before its snapshot was applied."""
        self.resync_duration.observe(seconds)

    def add_book_invalid_seconds(self, symbol: str, seconds: float) -> None:
        """Add `seconds` of invalid book time for `symbol`."""
        self.book_invalid.labels(symbol).inc(seconds)

    def observe_tick_to_publish(self, seconds: float) -> None:
        """Record one tick's boundary-to-sent latency."""
        self.tick_to_publish.observe(seconds)

    def set_journal_bytes(self, n: int) -> None:
        """Set the journal's size on disk."""
        self.journal_bytes.set(n)

    def observe_fsync(self, seconds: float) -> None:
        """Record one fsync's duration."""
        self.fsync.observe(seconds)

    def count_published(self, sent: int, dropped: int = 0) -> None:
        """Add the outcome of one `Publisher.publish` call."""
        self.published.inc(sent)
        self.dropped.inc(dropped)

    def count_receive_dropped(self, reason: str, n: int = 1) -> None:
        """Add `n` gateway messages dropped by a receive bound (`reason`)."""
        self.receive_dropped.labels(reason).inc(n)

    def set_gateway_up(self, up: bool) -> None:
        """Set whether the gateway is up."""
        self.gateway_up.set(1 if up else 0)

    def render(self) -> bytes:
        """Return every metric in the Prometheus text format (`CONTENT_TYPE`)."""
        return generate_latest(self.registry)
