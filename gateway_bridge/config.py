"""Bridge settings: the ws-gateway endpoints, its topic names, liveness and reconnect timing."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: Longest back-off delay accepted (one day): keeps every delay far from integer overflow.
MAX_DELAY_MS = 86_400_000


@dataclass(frozen=True)
class TopicsConfig:
    """Gateway topic names (ZMQ multipart frame 0). Names are configuration, never code."""

    orderbook_snapshot: str = "market.orderbook.snapshot"
    orderbook_delta: str = "market.orderbook.delta"
    trades: str = "market.trades"
    kline_1s: str = "market.kline.1s"
    kline_1m: str = "market.kline.1m"
    ticker: str = "market.ticker"
    funding: str = "market.funding"
    executions: str = "trading.executions"

    def names(self) -> tuple[str, ...]:
        """Return every configured topic name (what the SUB socket subscribes to)."""
        return tuple(getattr(self, f) for f in self.__dataclass_fields__)


@dataclass(frozen=True)
class BackoffConfig:
    """Exponential back-off between reconnects and resync requests."""

    initial_ms: int = 100
    max_ms: int = 5000
    factor: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.initial_ms <= MAX_DELAY_MS:
            raise ValueError(f"initial_ms: must be in [1, {MAX_DELAY_MS}], got {self.initial_ms}")
        if not self.initial_ms <= self.max_ms <= MAX_DELAY_MS:
            raise ValueError(f"max_ms: must be in [initial_ms ({self.initial_ms}), {MAX_DELAY_MS}], got {self.max_ms}")
        if not 1.0 <= self.factor <= 10.0:  # also rejects NaN
            raise ValueError(f"factor: must be in [1, 10], got {self.factor}")


@dataclass(frozen=True)
class ResyncConfig:
    """How a shard asks for a fresh book snapshot (YAML key ``gateway.resync``), SPEC C.5."""

    #: ``zmq``: "resubscribe SYMBOL DEPTH" to ``gateway.control_endpoint`` (the snapshot comes on
    #: the stream); ``http``: GET ``{http_url}/v5/market/orderbook`` (the answer is journaled as the
    #: snapshot); ``none``: never ask (books stay invalid until the stream sends a snapshot).
    via: Literal["zmq", "http", "none"] = "zmq"
    #: Base URL of the Bybit-shaped REST endpoint, e.g. ``http://127.0.0.1:8081`` (``via: http``).
    http_url: str = ""
    #: Largest ``limit`` asked over HTTP (the book's depth, capped at this; Bybit linear allows 500).
    http_max_limit: int = 500
    #: A request unanswered this long is abandoned (Lazy Pirate: a fresh socket) and retried.
    timeout_ms: int = 1000
    #: Back-off per book between attempts (and before asking again for a book just answered).
    backoff: BackoffConfig = field(default_factory=lambda: BackoffConfig(initial_ms=200, max_ms=10_000, factor=2.0))

    def __post_init__(self) -> None:
        if self.http_url and not self.http_url.startswith(("http://", "https://")):
            raise ValueError(f"http_url: {self.http_url!r} is not an http:// or https:// URL")
        if not 1 <= self.http_max_limit <= 1000:
            raise ValueError(f"http_max_limit: {self.http_max_limit} is not within [1, 1000]")
        if not 10 <= self.timeout_ms <= 60_000:
            raise ValueError(f"timeout_ms: {self.timeout_ms} is not within [10, 60000]")


@dataclass(frozen=True)
class TicksConfig:
    """The 1 s tick series (YAML key ``ticks``)."""

    #: A silence in receive time journals per-second ticks for at most this many seconds, then one
    #: TICK_GAP record for the rest, so downtime costs no time or memory in proportion to its length.
    max_backfill_s: int = 60

    def __post_init__(self) -> None:
        if not 0 <= self.max_backfill_s <= 86_400:
            raise ValueError(f"max_backfill_s: {self.max_backfill_s} is not within [0, 86400]")


@dataclass(frozen=True)
class GatewayConfig:
    """Typed, frozen gateway config (YAML key ``gateway``)."""

    #: ZMQ PUB endpoint of ws-gateway the shard subscribes to.
    endpoint: str = "tcp://127.0.0.1:5556"
    #: ZMQ REP control endpoint (resync: "resubscribe symbol/depth"); empty disables it.
    control_endpoint: str = "tcp://127.0.0.1:5557"
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    #: No traffic for this long journals ``gateway_down``; traffic again journals ``gateway_up``.
    silence_ms: int = 5000
    #: Poll timeout of the receive loop (also the idle tick/fsync cadence).
    poll_ms: int = 50
    reconnect: BackoffConfig = field(default_factory=BackoffConfig)
    #: Largest batch drained from the socket before one journal write.
    max_batch: int = 1024
    resync: ResyncConfig = field(default_factory=ResyncConfig)
    #: ZMQ RCVHWM of the SUB socket, in messages (0 = unbounded): past it ZMQ drops messages.
    rcvhwm: int = 100_000
    #: ZMQ MAXMSGSIZE, bytes: a larger message makes ZMQ drop the connection (counted; it reconnects).
    max_msg_bytes: int = 64 * 1024 * 1024
    #: Raw bytes of bad frames journaled one by one per second; past it they are only summarised.
    bad_frames_max_bytes_per_s: int = 1024 * 1024

    def __post_init__(self) -> None:
        checks = (("max_batch", self.max_batch, 1, 1_000_000), ("poll_ms", self.poll_ms, 1, 1000),
                  ("silence_ms", self.silence_ms, 100, MAX_DELAY_MS), ("rcvhwm", self.rcvhwm, 0, 2**31 - 1),
                  ("max_msg_bytes", self.max_msg_bytes, 1024, 2**62),
                  ("bad_frames_max_bytes_per_s", self.bad_frames_max_bytes_per_s, 0, 2**62))
        for key, value, lo, hi in checks:
            if not lo <= value <= hi:
                raise ValueError(f"{key}: must be in [{lo}, {hi}], got {value}")
