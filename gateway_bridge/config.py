"""Bridge settings: the ws-gateway endpoints, its topic names, liveness and reconnect timing."""

from __future__ import annotations

from dataclasses import dataclass, field


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
