"""Simulator settings: endpoints, the source of frames (synthetic market or recording), faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gateway_bridge.config import TopicsConfig
from tools.typedconfig import ConfigError

Source = Literal["synthetic", "recording"]
#: Book depths Bybit serves on linear perpetuals that the synthetic market can build.
SYNTHETIC_DEPTHS = (50, 200)


@dataclass(frozen=True)
class InstrumentConfig:
    """One synthetic instrument: start price and Bybit's tick and lot sizes (decimal strings)."""

    symbol: str = "BTCUSDT"
    price: str = "60000.00"
    tick_size: str = "0.10"
    qty_step: str = "0.001"
    #: Funding settlement interval in hours (Bybit sends it as ``fundingIntervalHour``).
    funding_interval_h: int = 8

    def __post_init__(self) -> None:
        for key in ("price", "tick_size", "qty_step"):
            value = getattr(self, key)
            try:
                ok = float(value) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ConfigError(f"synthetic.instruments[{self.symbol}].{key}: {value!r} is not a positive decimal")
        if self.funding_interval_h not in (1, 2, 4, 8):
            raise ConfigError(f"synthetic.instruments[{self.symbol}].funding_interval_h: must be 1, 2, 4 or 8")


#: Instruments known without configuration (tick/lot sizes as in Bybit's instruments-info).
DEFAULT_INSTRUMENTS: dict[str, InstrumentConfig] = {
    "BTCUSDT": InstrumentConfig("BTCUSDT", "60000.00", "0.10", "0.001", 8),
    "ETHUSDT": InstrumentConfig("ETHUSDT", "3000.00", "0.01", "0.01", 8),
    "SOLUSDT": InstrumentConfig("SOLUSDT", "77.300", "0.010", "0.1", 8),
    "DOGEUSDT": InstrumentConfig("DOGEUSDT", "0.07053", "0.00001", "1", 8),
    "XRPUSDT": InstrumentConfig("XRPUSDT", "2.3000", "0.0001", "1", 4),
}


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic market: symbols, book depth, message mix and rate, seeded for reproducibility."""

    symbols: tuple[str, ...] = ("BTCUSDT",)
    #: Extra or overriding instruments (symbols not in the built-in table need one).
    instruments: tuple[InstrumentConfig, ...] = ()
    depth: int = 200
    seed: int = 1
    #: Messages per second across all symbols; 0 publishes as fast as possible.
    rate_hz: float = 1000.0
    #: Stop after this many messages (0: run until stopped).
    messages: int = 0
    #: Pre-generate all `messages` before publishing (max-speed blasting; needs messages > 0).
    pregenerate: bool = False
    #: Relative weights of the message mix.
    weight_book: float = 70.0
    weight_trades: float = 15.0
    weight_ticker: float = 12.0
    weight_kline: float = 3.0

    def __post_init__(self) -> None:
        if self.depth not in SYNTHETIC_DEPTHS:
            raise ConfigError(f"synthetic.depth: {self.depth} is not one of {SYNTHETIC_DEPTHS}")
        if not self.symbols:
            raise ConfigError("synthetic.symbols: at least one symbol is required")
        if self.rate_hz < 0 or self.messages < 0:
            raise ConfigError("synthetic.rate_hz / synthetic.messages: must be >= 0")
        if self.pregenerate and self.messages == 0:
            raise ConfigError("synthetic.pregenerate: needs synthetic.messages > 0")
        known = set(DEFAULT_INSTRUMENTS) | {i.symbol for i in self.instruments}
        for i, s in enumerate(self.symbols):
            if s not in known:
                raise ConfigError(f"synthetic.symbols[{i}]: {s!r} has no entry in synthetic.instruments")

    def instrument(self, symbol: str) -> InstrumentConfig:
        """Return the instrument for `symbol` (configured entries override the built-in table)."""
        for inst in self.instruments:
            if inst.symbol == symbol:
                return inst
        return DEFAULT_INSTRUMENTS[symbol]


@dataclass(frozen=True)
class RecordingConfig:
    """Playback of recorded frames in any import format."""

    files: tuple[str, ...] = ()
    #: One of the journal import formats (``frames``, ``tardis``, ``hftbacktest``, ``cryptofeed``).
    format: str = "frames"
    #: 1.0 real speed (recv-time spacing), N for ×N, 0 as fast as possible.
    speed: float = 1.0
    #: Number of passes over the files (0: loop forever).
    loops: int = 1

    def __post_init__(self) -> None:
        if self.speed < 0:
            raise ConfigError("recording.speed: must be >= 0")
        if self.loops < 0:
            raise ConfigError("recording.loops: must be >= 0")


@dataclass(frozen=True)
class FaultSpec:
    """Inject one fault with probability `prob` per eligible frame and/or on every `every`-th one."""

    prob: float = 0.0
    every: int = 0

    @property
    def enabled(self) -> bool:
        """Whether this fault can fire at all."""
        return self.prob > 0 or self.every > 0


@dataclass(frozen=True)
class PauseSpec(FaultSpec):
    """Go silent for `ms` milliseconds."""

    ms: int = 1000


@dataclass(frozen=True)
class FaultsConfig:
    """Fault injection; every fault is off by default."""

    seed: int = 7
    #: Drop a book delta (the consumer sees a ``u`` gap).
    drop_delta: FaultSpec = field(default_factory=FaultSpec)
    #: Publish a frame twice.
    duplicate: FaultSpec = field(default_factory=FaultSpec)
    #: Swap a frame with the next one.
    reorder: FaultSpec = field(default_factory=FaultSpec)
    #: Mangle a frame's bytes (the consumer sees a bad frame).
    corrupt: FaultSpec = field(default_factory=FaultSpec)
    #: Exchange restart of one symbol's book: a snapshot with ``u = 1``, deltas continue from 1.
    restart: FaultSpec = field(default_factory=FaultSpec)
    #: Silence for `pause.ms`.
    pause: PauseSpec = field(default_factory=PauseSpec)
    #: Exit abruptly after this many published frames (0: never).
    kill_after: int = 0

    def __post_init__(self) -> None:
        for name in ("drop_delta", "duplicate", "reorder", "corrupt", "restart", "pause"):
            spec = getattr(self, name)
            if not 0.0 <= spec.prob <= 1.0:
                raise ConfigError(f"faults.{name}.prob: {spec.prob} is not within [0, 1]")
            if spec.every < 0:
                raise ConfigError(f"faults.{name}.every: must be >= 0")
        if self.pause.ms < 0 or self.kill_after < 0:
            raise ConfigError("faults.pause.ms / faults.kill_after: must be >= 0")


@dataclass(frozen=True)
class SimConfig:
    """Typed, frozen simulator config (the whole YAML document of ``gateway-sim --config``)."""

    #: PUB endpoint (an XPUB socket, so the simulator can wait for its subscriber).
    endpoint: str = "tcp://127.0.0.1:5556"
    #: REP control endpoint ("resubscribe SYMBOL DEPTH", "ping"); empty disables it.
    control_endpoint: str = "tcp://127.0.0.1:5557"
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    source: Source = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    #: Hold publishing until a subscriber has subscribed to every topic (ZMQ slow-joiner guard).
    wait_for_subscriber: bool = True
    #: Give up waiting for a subscriber after this long (0: wait forever).
    wait_timeout_ms: int = 0
    #: Send high-water mark; 0 means no limit (a slow subscriber then never loses frames).
    sndhwm: int = 0
    #: On stop, how long unsent frames may still be flushed.
    linger_ms: int = 2000
    #: Seconds between structured counter log lines.
    log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        for key in ("endpoint", "control_endpoint"):
            value = getattr(self, key)
            if value and not value.startswith(("tcp://127.0.0.1:", "ipc://", "inproc://")):
                raise ConfigError(f"{key}: {value!r} must bind on tcp://127.0.0.1, ipc:// or inproc://")
        if self.source == "recording" and not self.recording.files:
            raise ConfigError("recording.files: source 'recording' needs at least one file")


def load_sim_config(path: str) -> SimConfig:
    """Load and validate a simulator config file; errors name the file and the dotted key."""
    from tools.typedconfig import build, load_yaml_file

    try:
        return build(SimConfig, load_yaml_file(path))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
