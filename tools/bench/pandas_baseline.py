"""A vectorised pandas implementation of the engine's work: the baseline `bench offline` measures against.

What a user with pandas would write to rebuild the registry's features offline from the same
decoded records, done well: one pass over the records applies book deltas to a dict book (a dict
price → size per side plus a sorted price list, so the best price and truncation to the topic's
depth are cheap) and takes the top-of-book quantities at each tick; everything else is columnar —
trades in a DataFrame summed per 1 s bucket and rolled over the windows, returns, volatility and
z-scores rolled over the tick series, funding forward-filled onto the ticks.

It computes the engine's quantities with the engine's rules (windows ``(t − W, t]`` of the records
applied before the tick, NaN rules, depth truncation, churn as best-price changes of the deepest
book), so the test can hold its values to the engine's within 1e-9 relative. It covers every
function of the catalogue. Not covered (what the engine does and this does not): registry changes
inside the stream (SESSION / REGISTRY_CHANGED), gateway up/down invalidating books, TICK_GAP
restarts, REST snapshots catching up on held deltas, trade-id dedupe beyond exact repeats (it drops
every repeated id, the engine only those within the trade horizon), and trade windows or ticks not
on whole seconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.record import Kind, Record
from registry import Registry

NS = 1_000_000_000
MINUTE_NS = 60 * NS
DAY_NS = 86_400 * NS
NAN = math.nan
#: Book levels captured per side at each tick (depth and slope read at most this many).
TOP_K = 10
#: Columns of the per-tick capture: best bid, best ask, then the liquidity density of each band.
_BEST_BID, _BEST_ASK = 0, 1
#: Functions whose every parameter value this baseline computes.
COVERED = frozenset({
    "mid_price", "spread_abs", "spread_rel", "log_return", "volatility", "vwap", "volume", "signed_volume",
    "buy_sell_ratio", "trade_count", "net_aggressor_pressure", "depth", "depth_imbalance", "slope",
    "churn_rate", "liquidity_density", "funding_rate", "time_to_funding", "time_of_day", "ref",
})

_SNAPSHOT, _DELTA, _TRADES, _TICKER, _FUNDING, _TICK = (
    int(k) for k in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA, Kind.TRADES, Kind.TICKER, Kind.FUNDING, Kind.TICK))


class DictBook:
    """One depth topic's book: dicts price → size and ascending price lists, the engine's update rules."""

    __slots__ = ("depth", "bids", "asks", "bid_px", "ask_px", "valid", "last_u")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.bid_px: list[float] = []  # ascending: best bid last
        self.ask_px: list[float] = []  # ascending: best ask first
        self.valid = False
        self.last_u = 0

    def snapshot(self, u: int, b: np.ndarray, a: np.ndarray) -> None:
        """Replace the book (a depth-1 stale snapshot is ignored, as the engine does)."""
        if self.depth == 1 and self.valid and u < self.last_u and u != 1:
            return
        self.bids, self.asks, self.bid_px, self.ask_px = {}, {}, [], []
        self._levels(b.tolist(), a.tolist())
        self.last_u = u
        self.valid = not self._crossed()

    def delta(self, u: int, b: np.ndarray, a: np.ndarray) -> bool:
        """Apply a delta by the engine's u rules; True when it applied and moved the best bid or ask."""
        if u != self.last_u + 1 or u == 1 or not self.valid:
            if self.valid and (u == 1 or u > self.last_u):
                self.valid = False  # reset or gap: invalid until a snapshot
            return False
        bid_px, ask_px = self.bid_px, self.ask_px
        bb = bid_px[-1] if bid_px else NAN
        ba = ask_px[0] if ask_px else NAN
        self._levels(b.tolist(), a.tolist())
        self.last_u = u
        if bid_px and ask_px and bid_px[-1] >= ask_px[0]:
            self.valid = False
            return False
        nb = bid_px[-1] if bid_px else NAN
        na = ask_px[0] if ask_px else NAN
        return not ((nb == bb or (nb != nb and bb != bb)) and (na == ba or (na != na and ba != ba)))

    def best(self) -> tuple[float, float]:
        """Best bid and best ask price, NaN for an empty side."""
        return (self.bid_px[-1] if self.bid_px else NAN, self.ask_px[0] if self.ask_px else NAN)

    def _crossed(self) -> bool:
        return bool(self.bid_px) and bool(self.ask_px) and self.bid_px[-1] >= self.ask_px[0]

    def _levels(self, bids: list, asks: list) -> None:
        """Set (size > 0) or delete each level in order, then truncate each side to the depth."""
        _apply(self.bids, self.bid_px, bids)
        _apply(self.asks, self.ask_px, asks)
        extra = len(self.bid_px) - self.depth
        if extra > 0:
            for p in self.bid_px[:extra]:
                del self.bids[p]
            del self.bid_px[:extra]
        if len(self.ask_px) > self.depth:
            for p in self.ask_px[self.depth:]:
                del self.asks[p]
            del self.ask_px[self.depth:]

    def top(self, k: int) -> tuple[list[float], list[float]]:
        """Sizes of the best k bids and the best k asks, best first."""
        bids, asks = self.bids, self.asks
        return [bids[p] for p in self.bid_px[:-k - 1:-1]], [asks[p] for p in self.ask_px[:k]]

    def density(self, mid: float, band: float) -> float:
        """Σ size both sides with |price − mid| / mid <= band, best first, stopping past the band (engine order)."""
        if not (math.isfinite(mid) and mid > 0.0):
            return NAN
        total = 0.0
        for p in reversed(self.bid_px):
            if abs(p - mid) / mid <= band:
                total += self.bids[p]
            elif p <= mid:
                break
        side = 0.0
        for p in self.ask_px:
            if abs(p - mid) / mid <= band:
                side += self.asks[p]
            elif p >= mid:
                break
        return total + side


def _apply(sizes: dict[float, float], prices: list[float], levels: list) -> None:
    """Apply (price, size) levels in order to one side; a non-finite price is ignored."""
    insort, find = bisect.insort, bisect.bisect_left
    for p, s in levels:
        if p - p != 0.0:  # NaN or ±inf
            continue
        if s > 0.0:
            if p not in sizes:
                insort(prices, p)
            sizes[p] = s
        elif p in sizes:
            del sizes[p]
            del prices[find(prices, p)]


@dataclass
class _SymbolPass:
    """What the one pass over the records gathered for one symbol."""

    books: dict[int, DictBook] = field(default_factory=dict)
    primary: int = 0
    churn_pos: list[int] = field(default_factory=list)
    churn_ns: list[int] = field(default_factory=list)
    tops: list[tuple[float, ...]] = field(default_factory=list)
    top_bid: list[list[float]] = field(default_factory=list)
    top_ask: list[list[float]] = field(default_factory=list)
    valid: list[bool] = field(default_factory=list)
    trades: list[tuple[int, int, Any]] = field(default_factory=list)
    tickers: list[tuple[int, str | None, str | None, str | None]] = field(default_factory=list)

    def book_record(self, pos: int, rec: Record, snapshot: bool) -> None:
        """Apply one book record to its depth topic's dict book; note churn of the feature book."""
        p = rec.payload
        depth = p["depth"]
        book = self.books.get(depth)
        if book is None:
            book = self.books[depth] = DictBook(int(depth))
            self.primary = max(self.primary, depth)
        if snapshot:
            book.snapshot(int(p["u"]), p["b"], p["a"])
        elif book.delta(p["u"], p["b"], p["a"]) and depth == self.primary:
            self.churn_pos.append(pos)
            self.churn_ns.append(rec.recv_ns)

    def capture(self, bands: tuple[float, ...]) -> None:
        """Take the feature book's quantities at a tick (NaN while it is invalid)."""
        book = self.books.get(self.primary)
        self.valid.append(book is not None and book.valid)
        if book is None or not book.valid:
            self.tops.append((NAN, NAN) + (NAN,) * len(bands))
            self.top_bid.append([])
            self.top_ask.append([])
            return
        bb, ba = book.best()
        mid = (bb + ba) / 2.0
        self.tops.append((bb, ba, *(book.density(mid, band) for band in bands)))
        b, a = book.top(TOP_K)
        self.top_bid.append(b)
        self.top_ask.append(a)


def _ticker_fields(fields: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    return fields.get("fundingRate"), fields.get("nextFundingTime"), fields.get("fundingIntervalHour")


@dataclass
class Pass:
    """The one pass over the records: ticks (their stream positions) and each symbol's gathered data."""

    tick_pos: np.ndarray
    tick_ns: np.ndarray
    symbols: dict[str, _SymbolPass]
    funding: dict[str, list[tuple[int, float, int, float]]]


def one_pass(records: Iterable[Record], symbols: list[str], bands: tuple[float, ...]) -> Pass:
    """Apply book records to dict books (capturing at ticks) and gather trades, tickers and funding by symbol."""
    per = {s: _SymbolPass() for s in symbols}
    funding: dict[str, list[tuple[int, float, int, float]]] = {s: [] for s in symbols}
    tick_pos: list[int] = []
    tick_ns: list[int] = []
    last_tick = 0
    for pos, rec in enumerate(records):
        kind = rec.kind
        if kind == _TICK:
            if rec.recv_ns > last_tick:
                last_tick = rec.recv_ns
                tick_pos.append(pos)
                tick_ns.append(rec.recv_ns)
                for s in per.values():
                    s.capture(bands)
            continue
        s = per.get(rec.symbol)
        if s is None:
            continue
        if kind == _DELTA or kind == _SNAPSHOT:
            s.book_record(pos, rec, kind == _SNAPSHOT)
        elif kind == _TRADES:
            s.trades.append((pos, rec.recv_ns, rec.payload))
        elif kind == _TICKER:
            s.tickers.append((pos, *_ticker_fields(rec.payload["fields"])))
        elif kind == _FUNDING:
            p = rec.payload
            funding[rec.symbol].append((pos, float(p["rate"]), int(p["next_ms"]), float(p.get("interval_h") or NAN)))
    return Pass(np.asarray(tick_pos, dtype=np.int64), np.asarray(tick_ns, dtype=np.int64), per, funding)


# --- columnar features ------------------------------------------------------------------------------

def window_sums(frame: pd.DataFrame, tick_pos: np.ndarray, tick_ns: np.ndarray, windows_s: Iterable[int]) -> dict[int, pd.DataFrame]:
    """Per window W (whole seconds): the column sums of `frame`'s rows in (t − W, t] applied before each tick t.

    `frame` has columns ``pos`` (stream position), ``ns`` and the value columns. A row's 1 s bucket
    ends at ceil(ns); at tick t the window is the closed buckets (t − W, t − 1 s] (all applied
    before t) plus the rows of bucket t that precede tick t in the stream — the engine's order.
    """
    values = frame.drop(columns=["pos", "ns"])
    if len(tick_ns) == 0:
        return {w: values.iloc[:0] for w in windows_s}
    bucket = -(-frame["ns"].to_numpy() // NS) * NS
    grid = np.arange(min(bucket.min(initial=tick_ns[0]), tick_ns[0]), tick_ns[-1] + NS, NS)
    full = values.groupby(bucket).sum().reindex(grid, fill_value=0.0)
    nxt = np.searchsorted(tick_pos, frame["pos"].to_numpy())
    early_mask = (nxt < len(tick_ns)) & (tick_ns[np.minimum(nxt, len(tick_ns) - 1)] == bucket)
    early = values[early_mask].groupby(bucket[early_mask]).sum().reindex(tick_ns, fill_value=0.0)
    out = {}
    for w in windows_s:
        closed = full.rolling(w - 1, min_periods=1).sum().shift(1, fill_value=0.0) if w > 1 else full * 0.0
        out[w] = closed.reindex(tick_ns) + early
    return out


def _trade_frame(trades: list[tuple[int, int, Any]]) -> pd.DataFrame:
    """One row per trade (repeated ids dropped): position, time and the summed columns."""
    if not trades:
        return pd.DataFrame({c: np.empty(0) for c in ("pos", "ns", "v", "pv", "buy_v", "buy_pv", "sell_v",
                                                      "sell_pv", "count")})
    n = np.fromiter((len(p["p"]) for _, _, p in trades), dtype=np.int64, count=len(trades))
    pos = np.repeat(np.fromiter((t[0] for t in trades), dtype=np.int64, count=len(trades)), n)
    ns = np.repeat(np.fromiter((t[1] for t in trades), dtype=np.int64, count=len(trades)), n)
    p = np.concatenate([t[2]["p"] for t in trades])
    v = np.concatenate([t[2]["v"] for t in trades])
    side = np.concatenate([t[2]["side"] for t in trades])
    ids = pd.Series([i for t in trades for i in t[2]["id"]])
    keep = ~ids.duplicated().to_numpy()
    pv = p * v
    buy, sell = (side > 0).astype(np.float64), (side < 0).astype(np.float64)
    df = pd.DataFrame({"pos": pos, "ns": ns, "v": v, "pv": pv, "buy_v": v * buy, "buy_pv": pv * buy,
                       "sell_v": v * sell, "sell_pv": pv * sell, "count": np.ones(len(v))})
    return df[keep]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den where den > 0, else NaN."""
    out = np.full(len(num), NAN)
    ok = den > 0.0
    out[ok] = num[ok] / den[ok]
    return out


def trade_columns(sums: pd.DataFrame, function: str) -> np.ndarray:
    """One trade function's column from its window's sums."""
    s = {c: sums[c].to_numpy() for c in sums.columns}
    if function == "vwap":
        return _ratio(s["pv"], s["v"])
    if function == "volume":
        return s["v"]
    if function == "signed_volume":
        return s["buy_v"] - s["sell_v"]
    if function == "buy_sell_ratio":
        return _ratio(s["buy_v"], s["sell_v"])
    if function == "trade_count":
        return s["count"]
    return s["buy_pv"] - s["sell_pv"]  # net_aggressor_pressure


def log_ratio(now: np.ndarray, then: np.ndarray) -> np.ndarray:
    """ln(now / then) where both are finite and positive, else NaN."""
    ok = np.isfinite(now) & np.isfinite(then) & (now > 0.0) & (then > 0.0)
    out = np.full(len(now), NAN)
    out[ok] = np.log(now[ok] / then[ok])
    return out


def _padded(rows: list[list[float]]) -> np.ndarray:
    """Rows of up to TOP_K sizes as a (n, TOP_K) array padded with NaN."""
    out = np.full((len(rows), TOP_K), NAN)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def top_depth(sizes: np.ndarray, k: int) -> np.ndarray:
    """Σ of the best k sizes per row (0 for an empty side)."""
    return np.nansum(sizes[:, :k], axis=1)


def ols_slope(sizes: np.ndarray, k: int) -> np.ndarray:
    """OLS slope of size against level 1..m per row, m = min(levels held, k); NaN when m < 2."""
    m = np.minimum(np.isfinite(sizes[:, :k]).sum(axis=1), k)
    x = np.arange(1, k + 1, dtype=np.float64)
    dx = x[None, :] - (m[:, None] + 1) / 2.0
    used = x[None, :] <= m[:, None]
    sxy = np.where(used, dx * np.nan_to_num(sizes[:, :k]), 0.0).sum(axis=1)
    sxx = np.where(used, dx * dx, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m >= 2, sxy / sxx, NAN)


def rolling_zscore(x: np.ndarray, n: int) -> np.ndarray:
    """(x − mean) / std (ddof=1) over the last n values, finite ones only; NaN when undefined or std 0."""
    s = pd.Series(np.where(np.isfinite(x), x, NAN))
    roll = s.rolling(n, min_periods=2)
    mean, std = roll.mean().to_numpy(), roll.std().to_numpy()
    ok = np.isfinite(x) & np.isfinite(std) & (std != 0.0)
    out = np.full(len(x), NAN)
    out[ok] = (x[ok] - mean[ok]) / std[ok]
    return out


class _SymbolFeatures:
    """The vectorised columns of one symbol over all ticks (computed lazily, cached)."""

    def __init__(self, symbol: str, data: _SymbolPass, ps: Pass, bands: tuple[float, ...], trade_windows: list[int],
                 churn_windows: list[int]) -> None:
        self.t, self.data, self.bands = ps.tick_ns, data, bands
        tops = np.asarray(data.tops, dtype=np.float64).reshape(len(self.t), 2 + len(bands))
        self.valid = np.asarray(data.valid, dtype=bool)
        self.tops = tops
        self.mid = (tops[:, _BEST_BID] + tops[:, _BEST_ASK]) / 2.0
        self.bid_sizes, self.ask_sizes = _padded(data.top_bid), _padded(data.top_ask)
        self.trades = window_sums(_trade_frame(data.trades), ps.tick_pos, ps.tick_ns, trade_windows)
        churn = pd.DataFrame({"pos": np.asarray(data.churn_pos, dtype=np.int64),
                              "ns": np.asarray(data.churn_ns, dtype=np.int64),
                              "n": np.ones(len(data.churn_pos))})
        self.churn = window_sums(churn, ps.tick_pos, ps.tick_ns, churn_windows)
        self.mids = pd.Series(self.mid, index=self.t)
        self.ret_1s = log_ratio(self.mid, self.mids.reindex(self.t - NS).to_numpy())
        self.funding = _funding_columns(data.tickers, ps, ps.funding[symbol])

    def book_valid_mask(self, x: np.ndarray) -> np.ndarray:
        """x where the feature book was valid at the tick, NaN elsewhere."""
        return np.where(self.valid, x, NAN)


def _funding_columns(tickers: list, ps: Pass, funding: list) -> dict[str, np.ndarray]:
    """Last known funding rate, next settlement (ms) and interval (h) at each tick, forward-filled by position."""
    df = pd.DataFrame(tickers, columns=["pos", "rate", "next", "interval"])
    for c in ("rate", "next", "interval"):
        df[c] = pd.to_numeric(df[c].replace("", None), errors="coerce").astype(np.float64)
        df.loc[~np.isfinite(df[c].to_numpy()), c] = NAN
    if funding:
        extra = pd.DataFrame(funding, columns=["pos", "rate", "next", "interval"])
        df = pd.concat([df, extra]).sort_values("pos", kind="stable")
    df["next"] = np.trunc(df["next"])
    filled = df.ffill()
    idx = np.searchsorted(df["pos"].to_numpy(), ps.tick_pos) - 1
    out = {}
    for c, empty in (("rate", NAN), ("next", 0.0), ("interval", 0.0)):
        col = filled[c].fillna(empty).to_numpy()
        out[c] = np.where(idx >= 0, col[np.maximum(idx, 0)], empty) if len(col) else np.full(len(ps.tick_pos), empty)
    return out


def time_to_funding(t: np.ndarray, next_ms: np.ndarray, interval_h: np.ndarray) -> np.ndarray:
    """Minutes to the next settlement, rolled forward on the interval grid when already past; NaN unknown."""
    nxt = next_ms.astype(np.int64) * 1_000_000
    step = np.trunc(interval_h * 3_600).astype(np.int64) * NS
    past = nxt < t
    safe = np.where(step > 0, step, 1)
    rolled = np.where(past, nxt + ((t - nxt) // safe + 1) * safe, nxt)
    out = (rolled - t) / MINUTE_NS
    bad = (next_ms <= 0) | (past & (step <= 0))
    return np.where(bad, NAN, out)


def _book_column(sf: _SymbolFeatures, function: str, params: dict[str, Any]) -> np.ndarray:
    """A book function's column (NaN where the book was invalid)."""
    tops, mid = sf.tops, sf.mid
    if function == "mid_price":
        return mid
    if function in ("spread_abs", "spread_rel"):
        spread = tops[:, _BEST_ASK] - tops[:, _BEST_BID]
        return spread if function == "spread_abs" else _ratio(spread, mid)
    if function == "liquidity_density":
        return tops[:, 2 + sf.bands.index(float(params["bps"]) * 1e-4)]
    levels = int(params["levels"])
    if function == "depth":
        return sf.book_valid_mask(top_depth(sf.bid_sizes if params["side"] == "bid" else sf.ask_sizes, levels))
    if function == "depth_imbalance":
        b, a = top_depth(sf.bid_sizes, levels), top_depth(sf.ask_sizes, levels)
        tot = b + a
        with np.errstate(invalid="ignore", divide="ignore"):
            return sf.book_valid_mask(np.where(tot == 0.0, NAN, (b - a) / tot))
    return sf.book_valid_mask(ols_slope(sf.bid_sizes if params["side"] == "bid" else sf.ask_sizes, levels))


_BOOK = frozenset({"mid_price", "spread_abs", "spread_rel", "liquidity_density", "depth", "depth_imbalance", "slope"})
_TRADE = frozenset({"vwap", "volume", "signed_volume", "buy_sell_ratio", "trade_count", "net_aggressor_pressure"})


def _raw_column(sf: _SymbolFeatures, f: Any, values: np.ndarray, index_of: Any) -> np.ndarray:
    """The raw (un-normalised) column of feature `f` over every tick."""
    fn, params, t = f.function, dict(f.params), sf.t
    if fn in _BOOK:
        return _book_column(sf, fn, params)
    if fn in _TRADE:
        return trade_columns(sf.trades[f.window_ns // NS], fn)
    if fn == "log_return":
        return log_ratio(sf.mid, sf.mids.reindex(t - int(params["seconds"]) * NS).to_numpy())
    if fn == "volatility":
        ret = pd.Series(sf.ret_1s, index=pd.to_datetime(t, unit="ns"))
        return ret.rolling(pd.Timedelta(int(params["seconds"]), "s"), min_periods=2).std().to_numpy()
    if fn == "churn_rate":
        return sf.churn[f.window_ns // NS]["n"].to_numpy() / (f.window_ns / NS)
    if fn == "funding_rate":
        return sf.funding["rate"]
    if fn == "time_to_funding":
        return time_to_funding(t, sf.funding["next"], sf.funding["interval"])
    if fn == "time_of_day":
        return (t % DAY_NS) / DAY_NS
    return values[:, index_of(f.inputs[0])]  # ref


def uncovered(registry: Registry) -> list[str]:
    """Names of the registry's features this baseline cannot compute (their columns come out NaN)."""
    return [f.name for f in registry.features
            if f.function not in COVERED or (f.window_ns or NS) % NS or (f.normalise and f.normalise.method != "zscore")]


@dataclass
class BaselineResult:
    """One symbol's columns at every tick: tick times, feature values (ticks × features), book validity."""

    ts_ns: np.ndarray
    values: np.ndarray
    book_valid: np.ndarray


def compute(records: Iterable[Record], registry: Registry, symbols: list[str]) -> dict[str, BaselineResult]:
    """The registry's feature columns for each symbol at every tick of `records` (see the module docstring)."""
    feats = registry.features
    bands = tuple(sorted({float(f.param("bps")) * 1e-4 for f in feats if f.function == "liquidity_density"}))
    trade_w = sorted({f.window_ns // NS for f in feats if f.function in _TRADE and f.window_ns and f.window_ns % NS == 0})
    churn_w = sorted({f.window_ns // NS for f in feats if f.function == "churn_rate" and f.window_ns and f.window_ns % NS == 0})
    ps = one_pass(records, symbols, bands)
    skip = set(uncovered(registry))
    out = {}
    for sym in symbols:
        sf = _SymbolFeatures(sym, ps.symbols[sym], ps, bands, trade_w, churn_w)
        values = np.full((len(ps.tick_ns), len(feats)), NAN)
        for i in registry.order:
            f = feats[i]
            if f.name not in skip:
                values[:, i] = _cadenced(sf, f, values, registry.index_of)
        out[sym] = BaselineResult(ps.tick_ns, values, sf.valid.astype(np.int64))
    return out


def _cadenced(sf: _SymbolFeatures, f: Any, values: np.ndarray, index_of: Any) -> np.ndarray:
    """Feature `f`'s column: raw, z-scored over its own cadence when normalised, held between cadence ticks."""
    x = _raw_column(sf, f, values, index_of).astype(np.float64)
    if f.every_ns == NS:
        return rolling_zscore(x, f.normalise.n) if f.normalise else x
    on = sf.t % f.every_ns == 0
    kept = rolling_zscore(x[on], f.normalise.n) if f.normalise else x[on]
    col = pd.Series(NAN, index=np.arange(len(x)))
    col[on] = kept
    return col.ffill().to_numpy()
