"""Simulator settings: endpoints, the source of frames (synthetic market or recording), faults.

Every ``__post_init__`` raises plain `ValueError("key: message")` with the key relative to its own
dataclass; `tools.typedconfig.build` prefixes the dotted path, so errors stay right when the whole
config is nested (the demo keeps it under ``gateway_sim:``).

`EXAMPLE_YAML` is a documented example (three symbols, an occasional book gap, the HTTP snapshot
endpoint); ``feature-service gateway-sim --example`` prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

from gateway_bridge.config import TopicsConfig

Source = Literal["synthetic", "recording", "store"]
#: Book depths Bybit serves on linear perpetuals that the synthetic market can build.
SYNTHETIC_DEPTHS = (50, 200)
#: A synthetic instrument's start price must be at least this many ticks per level of depth, so
#: the book (up to 2 × depth ticks per side) and the mid band (±5 %) never reach price 0.
MIN_PRICE_TICKS_PER_LEVEL = 4
#: Largest `synthetic.generate_symbols`.
MAX_GENERATED_SYMBOLS = 10_000
#: ZMQ endpoints the simulator may bind: loopback TCP with a port, ipc:// paths, inproc:// names.
_ENDPOINT_RE = re.compile(r"^(tcp://127\.0\.0\.1:(\d{1,5})|ipc://.+|inproc://.+)$")
_HTTP_RE = re.compile(r"^127\.0\.0\.1:(\d{1,5})$")


#: A documented example config: three synthetic symbols, an occasional injected book gap, every
#: endpoint on loopback (printed by ``feature-service gateway-sim --example``).
EXAMPLE_YAML = """\
# feature-service gateway-sim --config FILE  (keys: tools/sim/gateway/config.py)
endpoint: tcp://127.0.0.1:5556          # XPUB of the gateway topics (tcp://127.0.0.1:PORT, ipc://, inproc://)
control_endpoint: tcp://127.0.0.1:5557  # REP: ping | stats | resubscribe SYMBOL DEPTH | http_stall MS [EVERY]
http_endpoint: 127.0.0.1:5558           # GET /v5/market/orderbook?category=linear&symbol=S&limit=N ("" = off)
source: synthetic                       # or recording (recording: {files: [...]}) or store (store: {config: SHARD.yaml})
synthetic:
  symbols: [BTCUSDT, ETHUSDT, SOLUSDT]  # built-in instruments: BTC, ETH, SOL, DOGE, XRP (USDT)
  generate_symbols: 0                   # N > 0 adds SYM001USDT..SYMnnnUSDT (benchmarks: 10, 100 symbols)
  depth: 200                            # orderbook.200.SYMBOL (50 or 200)
  seed: 1
  rate_hz: 1000                         # messages per second in total, across all symbols (0: flat out)
  messages: 0                           # stop after N messages (0: run until SIGINT/SIGTERM)
faults:
  drop_delta: {every: 5000}             # an occasional book gap: the shard resyncs
  http_stall_ms: 0                      # > 0: answer HTTP snapshots N ms late; -1: never answer
wait_for_subscriber: true               # hold the stream until a subscriber has every topic
wait_timeout_ms: 0                      # ... for at most this long (0: forever)
linger_ms: 2000
log_interval_s: 10
"""


def _in_range(key: str, value: float, lo: float, hi: float) -> None:
    """Raise ``ValueError("key: ...")`` unless ``lo <= value <= hi``."""
    if not lo <= value <= hi:
        raise ValueError(f"{key}: {value!r} is not within [{lo}, {hi}]")


def check_endpoint(key: str, value: str) -> None:
    """Raise unless `value` is a bindable ZMQ endpoint on loopback, ipc:// or inproc://."""
    m = _ENDPOINT_RE.match(value)
    if m is None:
        raise ValueError(f"{key}: {value!r} must be tcp://127.0.0.1:PORT, ipc://PATH or inproc://NAME")
    if m.group(2) is not None and not 1 <= int(m.group(2)) <= 65535:
        raise ValueError(f"{key}: {value!r} has a port outside 1..65535")


def parse_http_endpoint(value: str) -> tuple[str, int]:
    """Return ``(host, port)`` of an ``http_endpoint`` value (``127.0.0.1:PORT``)."""
    m = _HTTP_RE.match(value)
    if m is None or not 1 <= int(m.group(1)) <= 65535:
        raise ValueError(f"{value!r} must be 127.0.0.1:PORT with PORT in 1..65535")
    return "127.0.0.1", int(m.group(1))


@dataclass(frozen=True)
class InstrumentConfig:
    """One synthetic instrument: start price and Bybit's tick and lot sizes (decimal strings)."""

    symbol: str = "BTCUSDT"
    #: Start price; the mid stays within ±5 % of it.
    price: str = "60000.00"
    tick_size: str = "0.10"
    qty_step: str = "0.001"
    #: Funding settlement interval in hours (Bybit sends it as ``fundingIntervalHour``).
    funding_interval_h: int = 8

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[A-Z0-9]{2,30}", self.symbol):
            raise ValueError(f"symbol: {self.symbol!r} is not 2-30 upper-case letters or digits")
        for key in ("price", "tick_size", "qty_step"):
            value = getattr(self, key)
            if not re.fullmatch(r"\d+(\.\d+)?", value) or float(value) <= 0:
                raise ValueError(f"{key}: {value!r} is not a positive decimal")
        if self.funding_interval_h not in (1, 2, 4, 8):
            raise ValueError("funding_interval_h: must be 1, 2, 4 or 8")

    def price_ticks(self) -> int:
        """Return the start price in ticks."""
        return round(float(self.price) / float(self.tick_size))


#: Instruments known without configuration (tick/lot sizes as in Bybit's instruments-info).
DEFAULT_INSTRUMENTS: dict[str, InstrumentConfig] = {
    "BTCUSDT": InstrumentConfig("BTCUSDT", "60000.00", "0.10", "0.001", 8),
    "ETHUSDT": InstrumentConfig("ETHUSDT", "3000.00", "0.01", "0.01", 8),
    "SOLUSDT": InstrumentConfig("SOLUSDT", "77.300", "0.010", "0.1", 8),
    "DOGEUSDT": InstrumentConfig("DOGEUSDT", "0.07053", "0.00001", "1", 8),
    "XRPUSDT": InstrumentConfig("XRPUSDT", "2.3000", "0.0001", "1", 4),
}


def generated_symbol(i: int, n: int) -> str:
    """Return the name of generated symbol `i` (1-based) of `n`: ``SYM001USDT`` (at least 3 digits)."""
    return f"SYM{i:0{max(3, len(str(n)))}d}USDT"


def generated_instrument(i: int, n: int) -> InstrumentConfig:
    """Return generated instrument `i` of `n`: prices 10.00 upwards, tick 0.01, lot 0.1."""
    cents = 1000 + 37 * i  # 10.37, 10.74, … (distinct, always thousands of ticks)
    return InstrumentConfig(generated_symbol(i, n), f"{cents // 100}.{cents % 100:02d}", "0.01", "0.1", 8)


@dataclass(frozen=True)
class SyntheticConfig:
    """Synthetic market: symbols, book depth, message mix and rate, seeded for reproducibility."""

    symbols: tuple[str, ...] = ("BTCUSDT",)
    #: Extra or overriding instruments (symbols not in the built-in table need one).
    instruments: tuple[InstrumentConfig, ...] = ()
    #: Also simulate N generated symbols ``SYM001USDT`` … (prices from 10.37, tick 0.01, lot 0.1),
    #: appended after `symbols` (0..10000; for benchmarks with many symbols). `symbols` may then be
    #: empty.
    generate_symbols: int = 0
    #: Book depth of the ``orderbook.{depth}.{symbol}`` topic (50 or 200); each side keeps between
    #: depth/2 and depth levels within 2 × depth ticks of its touch.
    depth: int = 200
    seed: int = 1
    #: Messages per second across all symbols (the total, whatever the symbol count; 0..10000000);
    #: 0 publishes as fast as possible.
    rate_hz: float = 1000.0
    #: Stop after this many messages (0: run until stopped).
    messages: int = 0
    #: Pre-generate all `messages` before publishing (max-speed blasting; needs messages > 0).
    pregenerate: bool = False
    #: Relative weights of the message mix (each 0..1e6, not all 0).
    weight_book: float = 70.0
    weight_trades: float = 15.0
    weight_ticker: float = 12.0
    weight_kline: float = 3.0

    def __post_init__(self) -> None:
        if self.depth not in SYNTHETIC_DEPTHS:
            raise ValueError(f"depth: {self.depth} is not one of {SYNTHETIC_DEPTHS}")
        _in_range("generate_symbols", self.generate_symbols, 0, MAX_GENERATED_SYMBOLS)
        if not self.symbols and not self.generate_symbols:
            raise ValueError("symbols: at least one symbol is required (or generate_symbols > 0)")
        _in_range("rate_hz", self.rate_hz, 0.0, 10_000_000.0)
        _in_range("messages", self.messages, 0, 10**15)
        if self.pregenerate and self.messages == 0:
            raise ValueError("pregenerate: needs messages > 0")
        if self.pregenerate and self.messages > 50_000_000:
            raise ValueError("pregenerate: messages must be <= 50000000 to pre-generate")
        weights = ("weight_book", "weight_trades", "weight_ticker", "weight_kline")
        for key in weights:
            _in_range(key, getattr(self, key), 0.0, 1e6)
        if sum(getattr(self, k) for k in weights) <= 0:
            raise ValueError("weight_book: the message weights must not all be 0")
        self._check_symbols()

    def _check_symbols(self) -> None:
        """Every symbol needs an instrument, once, whose price leaves room for the book."""
        known = set(DEFAULT_INSTRUMENTS) | {i.symbol for i in self.instruments}
        seen: set[str] = set()
        for i, s in enumerate(self.symbols):
            if s not in known:
                raise ValueError(f"symbols[{i}]: {s!r} has no entry in instruments (or use generate_symbols)")
            if s in seen:
                raise ValueError(f"symbols[{i}]: {s!r} is listed twice")
            seen.add(s)
        clash = seen & {generated_symbol(i, self.generate_symbols) for i in range(1, self.generate_symbols + 1)}
        if clash:
            raise ValueError(f"symbols: {sorted(clash)[0]!r} clashes with a generated symbol")
        need = MIN_PRICE_TICKS_PER_LEVEL * self.depth
        for i, inst in enumerate(self.instruments):
            if inst.price_ticks() < need:
                raise ValueError(f"instruments[{i}].price: {inst.price} is {inst.price_ticks()} ticks; a "
                                 f"depth-{self.depth} book needs at least {need} ticks")

    def all_symbols(self) -> tuple[str, ...]:
        """Return every simulated symbol: `symbols`, then the generated ones."""
        n = self.generate_symbols
        return self.symbols + tuple(generated_symbol(i, n) for i in range(1, n + 1))

    def instrument(self, symbol: str) -> InstrumentConfig:
        """Return the instrument for `symbol` (configured entries override the built-in table)."""
        for inst in self.instruments:
            if inst.symbol == symbol:
                return inst
        if symbol in DEFAULT_INSTRUMENTS:
            return DEFAULT_INSTRUMENTS[symbol]
        n = self.generate_symbols
        m = re.fullmatch(r"SYM(\d+)USDT", symbol)
        if m and 1 <= int(m.group(1)) <= n and symbol == generated_symbol(int(m.group(1)), n):
            return generated_instrument(int(m.group(1)), n)
        raise KeyError(symbol)


@dataclass(frozen=True)
class RecordingConfig:
    """Playback of recorded frames in any import format."""

    files: tuple[str, ...] = ()
    #: One of the journal import formats (``frames``, ``tardis``, ``hftbacktest``, ``cryptofeed``).
    format: str = "frames"
    #: 1.0 real speed (recv-time spacing), N for ×N (up to 1e6), 0 as fast as possible.
    speed: float = 1.0
    #: Number of passes over the files (0: loop forever).
    loops: int = 1

    def __post_init__(self) -> None:
        _in_range("speed", self.speed, 0.0, 1e6)
        _in_range("loops", self.loops, 0, 10**9)


@dataclass(frozen=True)
class StoreSourceConfig:
    """Playback of a shard's raw store (hot + archive) as Bybit frames (`tools.sim.gateway.store_source`)."""

    #: Shard config file whose ``store`` section (dir, archive_dir) names the store; or use `dir`.
    config: str = ""
    #: The store's hot root directly (instead of `config`).
    dir: str = ""
    #: With `dir`: the store's archive root ("" none).
    archive_dir: str = ""
    #: First receive time played, inclusive (ISO-8601 or epoch s/ms/ns; empty: the store's start).
    from_time: str | int | date | None = None
    #: Receive time where playback stops, exclusive (empty: the store's end).
    to_time: str | int | date | None = None
    #: Only these symbols (empty: all the store holds).
    symbols: tuple[str, ...] = ()
    #: 1.0 real speed (recv-time spacing), N for ×N (up to 1e6), 0 as fast as possible.
    speed: float = 1.0
    #: Number of passes over the range (0: loop forever).
    loops: int = 1

    def __post_init__(self) -> None:
        if self.config and (self.dir or self.archive_dir):
            raise ValueError("config: give store.config or store.dir, not both")
        if self.archive_dir and not self.dir:
            raise ValueError("archive_dir: needs store.dir")
        _in_range("speed", self.speed, 0.0, 1e6)
        _in_range("loops", self.loops, 0, 10**9)
        lo, hi = self.range_ns()
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"from_time: {self.from_time!r} is not before to_time {self.to_time!r}")
        for i, s in enumerate(self.symbols):
            if not re.fullmatch(r"[A-Z0-9][A-Z0-9_-]{0,63}", s):
                raise ValueError(f"symbols[{i}]: {s!r} is not an upper-case Bybit symbol")

    def range_ns(self) -> tuple[int | None, int | None]:
        """`from_time` and `to_time` as epoch ns (None: open)."""
        return _time_ns("from_time", self.from_time), _time_ns("to_time", self.to_time)


def _time_ns(key: str, value: str | int | date | None) -> int | None:
    """A configured time as epoch ns (YAML hands an unquoted ISO time or date over as a datetime or date)."""
    from tools.timeparse import parse_time

    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        text = value.isoformat() if value.tzinfo is not None else value.isoformat() + "Z"
        return parse_time(text.replace("+00:00", "Z"), key)
    if isinstance(value, date):
        return parse_time(value.isoformat(), key)
    return parse_time(str(value), key)


@dataclass(frozen=True)
class FaultSpec:
    """Inject one fault with probability `prob` per eligible frame and/or on every `every`-th one."""

    #: Probability per eligible frame, 0..1.
    prob: float = 0.0
    #: Fire on every N-th eligible frame (0: never; up to 1e12).
    every: int = 0

    def __post_init__(self) -> None:
        _in_range("prob", self.prob, 0.0, 1.0)
        _in_range("every", self.every, 0, 10**12)

    @property
    def enabled(self) -> bool:
        """Whether this fault can fire at all."""
        return self.prob > 0 or self.every > 0


@dataclass(frozen=True)
class PauseSpec(FaultSpec):
    """Go silent for `ms` milliseconds."""

    #: Length of the silence, 0..3600000 ms.
    ms: int = 1000

    def __post_init__(self) -> None:
        super().__post_init__()
        _in_range("ms", self.ms, 0, 3_600_000)


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
    #: Silence for `pause.ms` (before the frame it fires on).
    pause: PauseSpec = field(default_factory=PauseSpec)
    #: Exit abruptly after this many published frames (0: never).
    kill_after: int = 0
    #: HTTP snapshot endpoint stall: 0 off; N > 0 answers N ms late (1..600000); -1 never answers
    #: (the connection stays open until the client gives up or the simulator stops).
    http_stall_ms: int = 0
    #: Stall only every N-th HTTP request (1: all of them; up to 1e9).
    http_stall_every: int = 1

    def __post_init__(self) -> None:
        _in_range("kill_after", self.kill_after, 0, 10**15)
        _in_range("http_stall_ms", self.http_stall_ms, -1, 600_000)
        _in_range("http_stall_every", self.http_stall_every, 1, 10**9)


@dataclass(frozen=True)
class SimConfig:
    """Typed, frozen simulator config (the whole YAML document of ``gateway-sim --config``)."""

    #: PUB endpoint (an XPUB socket, so the simulator can wait for its subscriber):
    #: ``tcp://127.0.0.1:PORT``, ``ipc://PATH`` or ``inproc://NAME``.
    endpoint: str = "tcp://127.0.0.1:5556"
    #: REP control endpoint; empty disables it. Requests: ``ping`` -> ``pong``; ``stats`` -> counters;
    #: ``resubscribe SYMBOL DEPTH`` -> ``ok`` and a fresh snapshot on the stream (``u`` continues);
    #: ``http_stall MS [EVERY]`` -> ``ok`` and the HTTP stall fault changed (MS 0 ends it, -1 never
    #: answers); anything else -> ``error ...``.
    control_endpoint: str = "tcp://127.0.0.1:5557"
    #: HTTP snapshot endpoint ``127.0.0.1:PORT`` answering Bybit's
    #: ``GET /v5/market/orderbook?category=linear&symbol=S&limit=N`` from the live synthetic book
    #: (its ``u`` continues into the published deltas); empty (the default) disables it.
    http_endpoint: str = ""
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    source: Source = "synthetic"
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    #: ``source: store``: play a shard's raw store (see `StoreSourceConfig`).
    store: StoreSourceConfig = field(default_factory=StoreSourceConfig)
    faults: FaultsConfig = field(default_factory=FaultsConfig)
    #: Hold publishing until a subscriber has subscribed to every topic (ZMQ slow-joiner guard).
    wait_for_subscriber: bool = True
    #: Give up waiting for a subscriber after this long (0: wait forever; up to 86400000).
    wait_timeout_ms: int = 0
    #: Send high-water mark; 0 means no limit (a slow subscriber then never loses frames).
    sndhwm: int = 0
    #: On stop, how long unsent frames may still be flushed (0..60000 ms).
    linger_ms: int = 2000
    #: Seconds between structured counter log lines (0.1..86400).
    log_interval_s: float = 10.0

    def __post_init__(self) -> None:
        check_endpoint("endpoint", self.endpoint)
        if self.control_endpoint:
            check_endpoint("control_endpoint", self.control_endpoint)
            if self.control_endpoint == self.endpoint:
                raise ValueError("control_endpoint: must differ from endpoint")
        if self.http_endpoint:
            try:
                parse_http_endpoint(self.http_endpoint)
            except ValueError as e:
                raise ValueError(f"http_endpoint: {e}") from None
            if self.source != "synthetic" or self.synthetic.pregenerate:
                raise ValueError("http_endpoint: needs a live book (source synthetic, not pregenerate)")
        if self.source == "recording" and not self.recording.files:
            raise ValueError("recording.files: source 'recording' needs at least one file")
        if self.source == "store" and not (self.store.config or self.store.dir):
            raise ValueError("store.config: source 'store' needs store.config (a shard config) or store.dir")
        _in_range("wait_timeout_ms", self.wait_timeout_ms, 0, 86_400_000)
        _in_range("sndhwm", self.sndhwm, 0, 10**9)
        _in_range("linger_ms", self.linger_ms, 0, 60_000)
        _in_range("log_interval_s", self.log_interval_s, 0.1, 86_400.0)


def load_sim_config(path: str) -> SimConfig:
    """Load and validate a simulator config file; errors name the file and the dotted key."""
    from tools.typedconfig import ConfigError, build, load_yaml_file

    try:
        return build(SimConfig, load_yaml_file(path))
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
