"""Synthetic Bybit v5 linear market: books, trades, tickers and 1m klines shaped like the real frames.

Prices and sizes are kept as integers (ticks and lots) and printed as Bybit's decimal strings, so a
decoder parsing them sees exactly what the exchange would send. Every symbol's order book topic has
a snapshot first, then deltas whose ``u`` steps by one; the book itself (`book.BookModel`) is never
crossed, keeps depth/2 .. depth levels per side and its mid near the start price for ever (levels
leaving the depth are deleted in the same delta, as Bybit does).
"""

from __future__ import annotations

import math
import random
from collections import deque
from typing import NamedTuple

import orjson

from gateway_bridge.config import TopicsConfig
from tools.sim.gateway.book import BookModel
from tools.sim.gateway.config import InstrumentConfig, SyntheticConfig

MS_PER_MIN = 60_000
MS_PER_H = 3_600_000
#: Notional (quote units) of a typical resting level and a typical trade.
LEVEL_NOTIONAL = 50_000.0
TRADE_NOTIONAL = 2_000.0
#: Funding rates are kept in units of 1e-8 (Bybit prints up to 8 decimals).
FUNDING_UNIT = 100_000_000


class Frame(NamedTuple):
    """One gateway message: ZMQ topic and payload, plus what it is (for fault injection)."""

    topic: bytes
    payload: bytes
    #: ``snapshot`` | ``delta`` | ``trades`` | ``ticker`` | ``kline``
    kind: str
    symbol: str


class Decimal:
    """Integer <-> decimal-string conversion for one fixed number of decimals."""

    __slots__ = ("decimals", "unit", "scale")

    def __init__(self, step: str) -> None:
        self.decimals = len(step.split(".")[1]) if "." in step else 0
        self.scale = 10**self.decimals
        self.unit = round(float(step) * self.scale)

    def to_int(self, value: str) -> int:
        """Return `value` in steps of this decimal (rounded)."""
        return round(float(value) * self.scale / self.unit)

    def fmt(self, steps: int) -> str:
        """Return `steps` steps as a decimal string with the fixed number of decimals."""
        n = steps * self.unit
        if not self.decimals:
            return str(n)
        sign = "-" if n < 0 else ""
        q, r = divmod(abs(n), self.scale)
        return f"{sign}{q}.{r:0{self.decimals}d}"


def fmt_scaled(n: int, decimals: int, keep: int = 1) -> str:
    """Return integer `n` scaled by 10**-decimals, trailing zeros trimmed to `keep` decimals."""
    sign = "-" if n < 0 else ""
    q, r = divmod(abs(n), 10**decimals)
    frac = f"{r:0{decimals}d}".rstrip("0") if decimals else ""
    frac = frac.ljust(keep, "0") if keep else frac
    return f"{sign}{q}.{frac}" if frac else f"{sign}{q}"


class _Bar:
    """The current 1-minute kline of one symbol (prices in ticks, volume in lots)."""

    __slots__ = ("start", "open", "high", "low", "close", "volume", "turnover")

    def __init__(self, start: int, price: int) -> None:
        self.start, self.open, self.high, self.low, self.close = start, price, price, price, price
        self.volume = 0
        self.turnover = 0  # price ticks × lots

    def add(self, price: int, lots: int) -> None:
        """Fold one trade into the bar."""
        self.close = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += lots
        self.turnover += price * lots


class SymbolMarket:
    """State and frame generation for one symbol."""

    def __init__(self, inst: InstrumentConfig, depth: int, rng: random.Random, topics: TopicsConfig,
                 now_ms: int) -> None:
        self.s = inst.symbol
        self.inst = inst
        self.depth = depth
        self.rng = rng
        self.px = Decimal(inst.tick_size)
        self.qty = Decimal(inst.qty_step)
        mid = self.px.to_int(inst.price)
        self.book = BookModel(mid, depth, rng, self._level_lots)
        #: The book's levels (price ticks -> lots), shared with `book`.
        self.bids = self.book.bids.levels
        self.asks = self.book.asks.levels
        self.u = rng.randint(1_000_000, 90_000_000)
        self.seq = rng.randint(10**11, 3 * 10**11)
        #: ``seq``, ``ts`` and ``cts`` of the last book frame (what a REST snapshot reports).
        self.book_seq, self.book_ts, self.book_cts = self.seq, now_ms, now_ms
        self.last_price = mid
        self.trade_seq = self.seq
        self.funding = rng.randint(-2000, 10_000)  # 1e-8 units: -0.00002 .. 0.0001
        self.open_interest = rng.randint(10**5, 10**7)  # lots
        self.volume24h = rng.randint(10**6, 10**8)  # lots
        self.turnover24h = self.volume24h * mid  # ticks × lots
        self.bar = _Bar(now_ms - now_ms % MS_PER_MIN, mid)
        self.topic_book = f"orderbook.{depth}.{self.s}"
        self.topic_trade = f"publicTrade.{self.s}"
        self.topic_ticker = f"tickers.{self.s}"
        self.topic_kline = f"kline.1.{self.s}"
        self.t = {k: getattr(topics, k).encode() for k in TopicsConfig.__dataclass_fields__}

    # --- book -------------------------------------------------------------------------------
    def _level_lots(self, price: int) -> int:
        """Return a lognormal resting size (lots) worth about LEVEL_NOTIONAL."""
        mean = LEVEL_NOTIONAL / max(price * self.px.unit / self.px.scale * self.qty.unit / self.qty.scale, 1e-12)
        return max(1, int(self.rng.lognormvariate(math.log(max(mean, 1.0)), 0.8)))

    def best_bid(self) -> int:
        """Return the best bid in ticks."""
        return self.book.bids.best

    def best_ask(self) -> int:
        """Return the best ask in ticks."""
        return self.book.asks.best

    def _levels(self, side: dict[int, int], reverse: bool) -> list[list[str]]:
        fp, fq = self.px.fmt, self.qty.fmt
        return [[fp(p), fq(side[p])] for p in sorted(side, reverse=reverse)]

    def _book_frame(self, kind: str, data: dict, now_ms: int) -> Frame:
        """Stamp a book frame's ``seq``, ``ts`` and ``cts`` (remembered for REST) and encode it."""
        self.seq += self.rng.randint(1, 50)
        data["seq"] = self.book_seq = self.seq
        self.book_ts, self.book_cts = now_ms, now_ms - self.rng.randint(1, 10)
        frame = {"topic": self.topic_book, "type": kind, "ts": now_ms, "data": data, "cts": self.book_cts}
        topic = self.t["orderbook_snapshot"] if kind == "snapshot" else self.t["orderbook_delta"]
        return Frame(topic, orjson.dumps(frame), kind, self.s)

    def book_snapshot(self, now_ms: int, restart: bool = False) -> Frame:
        """Return a snapshot of the current book; `restart` sets ``u = 1`` (exchange restart)."""
        self.u = 1 if restart else self.u + 1
        data = {"s": self.s, "b": self._levels(self.bids, True), "a": self._levels(self.asks, False),
                "u": self.u}
        return self._book_frame("snapshot", data, now_ms)

    def book_delta(self, now_ms: int) -> Frame:
        """Return a delta of level changes (updates, inserts, deletes; sometimes a touch move)."""
        cb, ca = self.book.step()
        self.u += 1
        fp, fq = self.px.fmt, self.qty.fmt
        data = {"s": self.s,
                "b": [[fp(p), fq(cb[p])] for p in sorted(cb, reverse=True)],
                "a": [[fp(p), fq(ca[p])] for p in sorted(ca)],
                "u": self.u}
        return self._book_frame("delta", data, now_ms)

    def rest_state(self, limit: int) -> dict:
        """Return the book as Bybit's REST orderbook ``result`` (top `limit` levels per side).

        ``u`` is the ``u`` of the last book frame made, so deltas made afterwards continue at u+1.
        """
        bids, asks = self.book.top(limit)
        fp, fq = self.px.fmt, self.qty.fmt
        return {"s": self.s, "a": [[fp(p), fq(q)] for p, q in asks], "b": [[fp(p), fq(q)] for p, q in bids],
                "ts": self.book_ts, "u": self.u, "seq": self.book_seq, "cts": self.book_cts}

    # --- trades, ticker, kline --------------------------------------------------------------
    def trades(self, now_ms: int) -> Frame:
        """Return a publicTrade burst of 1–50 taker trades on one side at the touch."""
        rng = self.rng
        n = min(50, 1 + int(rng.expovariate(1 / 1.5)))
        buy = rng.random() < 0.5
        price = self.best_ask() if buy else self.best_bid()
        mean = TRADE_NOTIONAL / max(price * self.px.unit / self.px.scale * self.qty.unit / self.qty.scale, 1e-12)
        out = []
        for _ in range(n):
            lots = max(1, int(rng.lognormvariate(math.log(max(mean, 1.0)), 1.2)))
            tick_dir = ("Plus" if price > self.last_price else "Minus" if price < self.last_price
                        else ("ZeroPlus" if buy else "ZeroMinus")) + "Tick"
            self.trade_seq += rng.randint(1, 20)
            out.append({"T": now_ms, "s": self.s, "S": "Buy" if buy else "Sell", "v": self.qty.fmt(lots),
                        "p": self.px.fmt(price), "L": tick_dir, "i": _uuid(rng), "BT": False,
                        "RPI": False, "seq": self.trade_seq})
            self.last_price = price
            self._roll_bar(now_ms)
            self.bar.add(price, lots)
            self.volume24h += lots
            self.turnover24h += price * lots
        frame = {"topic": self.topic_trade, "type": "snapshot", "ts": now_ms + 1, "data": out}
        return Frame(self.t["trades"], orjson.dumps(frame), "trades", self.s)

    def _next_funding_ms(self, now_ms: int) -> int:
        step = self.inst.funding_interval_h * MS_PER_H
        return (now_ms // step + 1) * step

    def _funding_str(self) -> str:
        return fmt_scaled(self.funding, 8, keep=0)

    def _top_fields(self) -> dict[str, str]:
        bb, ba = self.best_bid(), self.best_ask()
        fp, fq = self.px.fmt, self.qty.fmt
        return {"bid1Price": fp(bb), "bid1Size": fq(self.bids[bb]), "ask1Price": fp(ba), "ask1Size": fq(self.asks[ba])}

    def _ticker_frame(self, kind: str, data: dict[str, str], now_ms: int) -> Frame:
        self.seq += self.rng.randint(1, 50)
        frame = {"topic": self.topic_ticker, "type": kind, "data": data, "cs": self.seq, "ts": now_ms}
        return Frame(self.t["ticker"], orjson.dumps(frame), "ticker", self.s)

    def ticker_snapshot(self, now_ms: int) -> Frame:
        """Return a full tickers snapshot (every field, as Bybit sends the first message)."""
        fp, fq = self.px.fmt, self.qty.fmt
        mid = (self.best_bid() + self.best_ask()) // 2
        data = {"symbol": self.s, "tickDirection": "ZeroPlusTick", "price24hPcnt": "0.01337",
                "lastPrice": fp(self.last_price), "prevPrice24h": fp(mid), "highPrice24h": fp(mid + 50),
                "lowPrice24h": fp(max(1, mid - 50)), "prevPrice1h": fp(mid), "markPrice": fp(mid),
                "indexPrice": fp(mid), "openInterest": fq(self.open_interest),
                "openInterestValue": self._notional(self.open_interest * mid, 2),
                "turnover24h": self._notional(self.turnover24h, 4), "volume24h": fq(self.volume24h),
                "fundingIntervalHour": str(self.inst.funding_interval_h), "fundingCap": "0.005",
                "nextFundingTime": str(self._next_funding_ms(now_ms)), "fundingRate": self._funding_str(),
                **self._top_fields(), "preOpenPrice": "", "preQty": "", "curPreListingPhase": ""}
        return self._ticker_frame("snapshot", data, now_ms)

    def _notional(self, tick_lots: int, decimals: int) -> str:
        """Return ticks × lots as a quote amount truncated to `decimals` decimals."""
        digits = self.px.decimals + self.qty.decimals
        n = tick_lots * self.px.unit * self.qty.unit
        return fmt_scaled(n // 10 ** max(0, digits - decimals), min(digits, decimals), keep=decimals)

    def ticker_delta(self, now_ms: int) -> Frame:
        """Return a tickers delta carrying only changed fields (top of book, funding, OI, …)."""
        rng = self.rng
        data: dict[str, str] = {"symbol": self.s}
        r = rng.random()
        if r < 0.5:
            data.update(self._top_fields())
        elif r < 0.7:
            data.update(turnover24h=self._notional(self.turnover24h, 4), volume24h=self.qty.fmt(self.volume24h),
                        lastPrice=self.px.fmt(self.last_price))
        elif r < 0.85:
            self.open_interest = max(1, self.open_interest + rng.randint(-1000, 1000))
            data["openInterest"] = self.qty.fmt(self.open_interest)
            data["markPrice"] = self.px.fmt((self.best_bid() + self.best_ask()) // 2)
        else:
            self.funding += rng.randint(-50, 50)
            data["fundingRate"] = self._funding_str()
            data["nextFundingTime"] = str(self._next_funding_ms(now_ms))
        return self._ticker_frame("delta", data, now_ms)

    def _roll_bar(self, now_ms: int) -> Frame | None:
        """Start a new bar when the minute changed; return the confirmed frame of the old one."""
        start = now_ms - now_ms % MS_PER_MIN
        if start == self.bar.start:
            return None
        closed = self._kline_frame(self.bar, True, now_ms)
        self.bar = _Bar(start, self.bar.close)
        return closed

    def _kline_frame(self, bar: _Bar, confirm: bool, now_ms: int) -> Frame:
        fp = self.px.fmt
        row = {"start": bar.start, "end": bar.start + MS_PER_MIN - 1, "interval": "1", "open": fp(bar.open),
               "close": fp(bar.close), "high": fp(bar.high), "low": fp(bar.low),
               "volume": self.qty.fmt(bar.volume),
               "turnover": self._notional(bar.turnover, 4),
               "confirm": confirm, "timestamp": now_ms}
        frame = {"topic": self.topic_kline, "data": [row], "ts": now_ms, "type": "snapshot"}
        return Frame(self.t["kline_1m"], orjson.dumps(frame), "kline", self.s)

    def klines(self, now_ms: int) -> list[Frame]:
        """Return the running 1m bar, preceded by the confirmed previous bar at a minute change."""
        closed = self._roll_bar(now_ms)
        current = self._kline_frame(self.bar, False, now_ms)
        return [closed, current] if closed else [current]


def _uuid(rng: random.Random) -> str:
    """Return a UUID-shaped trade id drawn from `rng` (unique for practical purposes, reproducible)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class SyntheticMarket:
    """All symbols of a synthetic market; `next(now_ms)` returns the next frame of the mix."""

    def __init__(self, cfg: SyntheticConfig, topics: TopicsConfig, now_ms: int) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.symbols = {s: SymbolMarket(cfg.instrument(s), cfg.depth, self.rng, topics, now_ms)
                        for s in cfg.all_symbols()}
        self._pending: deque[Frame] = deque()
        for m in self.symbols.values():
            self._pending.append(m.book_snapshot(now_ms))
            self._pending.append(m.ticker_snapshot(now_ms))
        w = (cfg.weight_book, cfg.weight_trades, cfg.weight_ticker, cfg.weight_kline)
        total = sum(w) or 1.0
        self._cum = [sum(w[: i + 1]) / total for i in range(4)]
        self._markets = list(self.symbols.values())

    def next(self, now_ms: int) -> Frame:
        """Return the next frame (opening snapshots first, then the configured mix)."""
        if self._pending:
            return self._pending.popleft()
        m = self.rng.choice(self._markets)
        r = self.rng.random()
        if r < self._cum[0]:
            return m.book_delta(now_ms)
        if r < self._cum[1]:
            return m.trades(now_ms)
        if r < self._cum[2]:
            return m.ticker_delta(now_ms)
        frames = m.klines(now_ms)
        self._pending.extend(frames[1:])
        return frames[0]

    def snapshot(self, symbol: str, depth: int, now_ms: int, restart: bool = False) -> Frame | None:
        """Return a fresh book snapshot of `symbol` (``None`` for an unknown symbol or depth)."""
        m = self.symbols.get(symbol)
        if m is None or depth != m.depth:
            return None
        return m.book_snapshot(now_ms, restart=restart)

    def rest_state(self, symbol: str, limit: int) -> dict | None:
        """Return `symbol`'s book as a REST orderbook ``result`` (``None`` for an unknown symbol)."""
        m = self.symbols.get(symbol)
        return None if m is None else m.rest_state(limit)


def generate(cfg: SyntheticConfig, topics: TopicsConfig, n: int, start_ms: int,
             step_us: int = 100) -> list[Frame]:
    """Return `n` frames of a synthetic market on a simulated clock advancing `step_us` per frame."""
    market = SyntheticMarket(cfg, topics, start_ms)
    return [market.next(start_ms + i * step_us // 1000) for i in range(n)]
