"""The shard's config file: one YAML document composed of each subsystem's typed config.

Where things live: everything under `data_dir` (``journal/``, ``checkpoints/``, ``feature_log/``),
except that an explicit ``journal.dir`` still places the journal elsewhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from gateway_bridge.config import GatewayConfig, TicksConfig
from journal.config import JournalConfig
from journal.store.config import StoreConfig
from tools.typedconfig import ConfigError, build, load_yaml_file

Category = Literal["linear", "spot", "inverse", "option"]
_ENDPOINT = re.compile(r"^(tcp://(\*|[A-Za-z0-9.\-]+|\[[0-9a-fA-F:]+\]):\d{1,5}|ipc://.+|inproc://.+)$")


def check_endpoint(value: str, key: str, *, optional: bool = False) -> None:
    """Raise ValueError naming `key` unless `value` is a ZMQ endpoint (tcp://host:port, ipc://, inproc://)."""
    if optional and not value:
        return
    if not _ENDPOINT.match(value) or (value.startswith("tcp://") and not 0 < int(value.rsplit(":", 1)[1]) < 65536):
        raise ValueError(f"{key}: {value!r} is not a ZMQ endpoint (tcp://HOST:PORT, ipc://PATH or inproc://NAME)")


@dataclass(frozen=True)
class ShardSection:
    """Which symbols this shard owns (YAML key ``shard``)."""

    name: str = "shard-1"
    #: Bybit symbols owned by this shard; frames of any other symbol are skipped and counted.
    symbols: tuple[str, ...] = ("BTCUSDT",)
    #: Bybit market category of every symbol here; journaled, so a journal holds one category.
    category: Category = "linear"

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", self.name):
            raise ValueError(f"name: {self.name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if not self.symbols:
            raise ValueError("symbols: at least one symbol is required")
        seen = set()
        for i, s in enumerate(self.symbols):
            if not s or not s.isalnum() or s.upper() != s:
                raise ValueError(f"symbols[{i}]: {s!r} is not an upper-case Bybit symbol")
            if s in seen:
                raise ValueError(f"symbols[{i}]: {s!r} is listed twice")
            seen.add(s)


@dataclass(frozen=True)
class PublishConfig:
    """The features.live PUB socket (YAML key ``publish``)."""

    endpoint: str = "tcp://127.0.0.1:5560"
    #: Vectors queued per subscriber before ZMQ drops that subscriber's next ones (plain PUB: a stuck
    #: subscriber never holds up the others, and the loop never blocks on one).
    sndhwm: int = 100_000

    def __post_init__(self) -> None:
        check_endpoint(self.endpoint, "endpoint")
        if not 1 <= self.sndhwm <= 10_000_000:
            raise ValueError(f"sndhwm: {self.sndhwm} is not within [1, 10000000]")


@dataclass(frozen=True)
class ApiConfig:
    """The REST API (YAML key ``api``)."""

    host: str = "127.0.0.1"
    port: int = 8080
    #: Bearer token every POST must carry; empty: no auth.
    token: str = ""
    #: Largest request body accepted (a registry YAML); larger gets 413.
    max_body_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not within [0, 65535]")
        if not 1024 <= self.max_body_bytes <= 64 << 20:
            raise ValueError(f"max_body_bytes: {self.max_body_bytes} is not within [1024, 67108864]")


@dataclass(frozen=True)
class CheckpointConfig:
    """Engine checkpoints (YAML key ``checkpoint``): restart replays only the journal after the newest."""

    #: Seconds between checkpoints (also written at a clean stop); bounds the journal tail a restart replays.
    interval_s: float = 10.0
    #: Checkpoints kept; older ones are deleted.
    keep: int = 3

    def __post_init__(self) -> None:
        if not 0.5 <= self.interval_s <= 86_400:
            raise ValueError(f"interval_s: {self.interval_s} is not within [0.5, 86400]")
        if not 1 <= self.keep <= 100:
            raise ValueError(f"keep: {self.keep} is not within [1, 100]")


@dataclass(frozen=True)
class FeatureLogConfig:
    """The log of every published vector (YAML key ``feature_log``), Parquet under ``<data_dir>/feature_log``."""

    enabled: bool = True
    #: Seconds between flushes to disk: after kill -9 at most this much of the log is missing.
    flush_interval_s: float = 1.0

    def __post_init__(self) -> None:
        if not 0.05 <= self.flush_interval_s <= 60:
            raise ValueError(f"flush_interval_s: {self.flush_interval_s} is not within [0.05, 60]")


@dataclass(frozen=True)
class LogConfig:
    """Process logs (YAML key ``log``): structured JSON lines on stderr, one per event."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True)
class ShardConfig:
    """Everything one shard process reads at start."""

    #: Root of the shard's files: journal/, checkpoints/, feature_log/, store/ (later datasets/).
    data_dir: str = "data"
    shard: ShardSection = field(default_factory=ShardSection)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    ticks: TicksConfig = field(default_factory=TicksConfig)
    #: ``journal.dir`` empty (the default) means ``<data_dir>/journal``.
    journal: JournalConfig = field(default_factory=lambda: JournalConfig(dir=""))
    publish: PublishConfig = field(default_factory=PublishConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    feature_log: FeatureLogConfig = field(default_factory=FeatureLogConfig)
    #: ``store.dir`` empty (the default) means ``<data_dir>/store``.
    store: StoreConfig = field(default_factory=StoreConfig)
    log: LogConfig = field(default_factory=LogConfig)
    #: Feature registry file; empty means the packaged ``registry/default.yaml``. Read at start and on
    #: ``POST /feature-registry/reload`` without a body; its content is journaled either way.
    registry: str = ""
    #: Cluster config file (optional): lets the API name the shard owning a symbol it does not own.
    cluster: str = ""

    def __post_init__(self) -> None:
        if not self.data_dir:
            raise ValueError("data_dir: must not be empty")
        check_endpoint(self.gateway.endpoint, "gateway.endpoint")
        check_endpoint(self.gateway.control_endpoint, "gateway.control_endpoint", optional=True)
        if self.gateway.resync.via == "zmq" and not self.gateway.control_endpoint:
            raise ValueError("gateway.resync.via: 'zmq' needs gateway.control_endpoint")
        if self.gateway.resync.via == "http" and not self.gateway.resync.http_url:
            raise ValueError("gateway.resync.http_url: required when gateway.resync.via is 'http'")

    @property
    def data(self) -> Path:
        """The data directory."""
        return Path(self.data_dir)


def load_shard_config(path: str | Path) -> ShardConfig:
    """Load and validate a shard config file; errors name the file and the dotted key."""
    data = load_yaml_file(path)
    try:
        cfg = build(ShardConfig, data)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    return resolve(cfg)


def resolve(cfg: ShardConfig) -> ShardConfig:
    """Fill derived defaults: the journal and the store under the data dir unless their ``dir`` says otherwise."""
    if not cfg.journal.dir:
        cfg = replace(cfg, journal=replace(cfg.journal, dir=str(cfg.data / "journal")))
    if not cfg.store.dir:
        cfg = replace(cfg, store=replace(cfg.store, dir=str(cfg.data / "store")))
    return cfg
