"""The computation of every catalogue function (`registry/catalog.py`), keyed by the same name.

A function takes the tick context of one symbol and a compiled feature (its parameters) and
returns one float. Work shared by several features (book statistics, trade-window sums) is done
once per tick and symbol and cached on the context. Adding a function: declare it in
`registry/catalog.py` and register its computation here with `@register("name")`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from engine import bookstats, windows
from engine.symbol_state import SymbolState, log_ratio

NAN = math.nan
NS = 1_000_000_000
DAY_NS = 86_400 * NS
MINUTE_NS = 60 * NS


class Compiled:
    """One registry feature made ready to compute: its function, parameters and inputs resolved."""

    __slots__ = ("index", "name", "function", "fn", "params", "window_ns", "every_ns", "inputs", "zscore_n",
                 "slot", "book_slot")

    def __init__(self, index: int, name: str, function: str, fn: Callable[[TickContext, Compiled], float],
                 params: dict[str, Any], window_ns: int, every_ns: int, inputs: tuple[int, ...],
                 zscore_n: int, slot: int) -> None:
        self.index, self.name, self.function, self.fn, self.params = index, name, function, fn, params
        self.window_ns, self.every_ns, self.inputs, self.zscore_n = window_ns, every_ns, inputs, zscore_n
        #: Row of this feature's window in the per-tick trade statistics (−1: not a trade feature).
        self.slot = slot
        #: Slot in the fused per-tick book statistics when its parameters are the fused ones (else −1).
        self.book_slot = book_stat_slot(function, params)


def book_stat_slot(function: str, params: dict[str, Any]) -> int:
    """The `bookstats.book_stats` slot that already holds this feature's value, or −1."""
    side = params.get("side")
    levels = params.get("levels")
    if function == "depth" and levels in (bookstats.DEPTH_K_SMALL, bookstats.DEPTH_K_LARGE):
        small = levels == bookstats.DEPTH_K_SMALL
        if side == "bid":
            return bookstats.DEPTH_BID_5 if small else bookstats.DEPTH_BID_10
        return bookstats.DEPTH_ASK_5 if small else bookstats.DEPTH_ASK_10
    if function == "depth_imbalance" and levels in (bookstats.DEPTH_K_SMALL, bookstats.DEPTH_K_LARGE):
        return bookstats.IMBALANCE_5 if levels == bookstats.DEPTH_K_SMALL else bookstats.IMBALANCE_10
    if function == "slope" and levels == bookstats.SLOPE_K:
        return bookstats.SLOPE_BID if side == "bid" else bookstats.SLOPE_ASK
    if function == "liquidity_density" and params.get("bps") == bookstats.DENSITY_BPS:
        return bookstats.DENSITY
    return {"mid_price": bookstats.MID, "spread_abs": bookstats.SPREAD}.get(function, -1)


#: Book statistics of an invalid book: every slot NaN.
_NO_BOOK = [NAN] * bookstats.N_STATS


class TickContext:
    """What the functions see at tick `t` for one symbol; caches shared intermediate results."""

    __slots__ = ("t", "state", "values", "trade_windows", "_trade_stats", "_book_stats", "_cache")

    def __init__(self, t: int, state: SymbolState, values: np.ndarray, trade_windows: np.ndarray) -> None:
        self.t, self.state, self.values, self.trade_windows = t, state, values, trade_windows
        self._trade_stats: list[list[float]] | None = None
        self._book_stats: list[float] | None = None
        self._cache: dict[Any, float] = {}

    def book_stats(self) -> list[float]:
        """Every fused book statistic of the feature book (one kernel call per tick); NaN if invalid."""
        if self._book_stats is None:
            book = self.state.book
            if book is None or not book.valid:
                self._book_stats = _NO_BOOK
            else:
                stats = bookstats.book_stats(book.bids(), book.n_bids, book.asks(), book.n_asks)
                self._book_stats = stats.tolist()
        return self._book_stats

    def mid(self) -> float:
        """Mid price of the feature book, NaN while it is invalid or one side is empty."""
        return self.book_stats()[bookstats.MID]

    def trade_stat(self, f: Compiled, column: int) -> float:
        """One column of the trade statistics over (t − W, t] for feature `f`'s window."""
        if self._trade_stats is None:
            # A list of Python floats: indexing it is several times cheaper than a numpy array.
            self._trade_stats = self.state.trades.stats_multi(self.t, self.trade_windows).tolist()
        return self._trade_stats[f.slot][column]

    def book_side(self, side: str) -> tuple[np.ndarray, int] | None:
        """The (n, 2) levels and count of one side of the valid feature book, else None."""
        book = self.state.book
        if book is None or not book.valid:
            return None
        return (book.bids(), book.n_bids) if side == "bid" else (book.asks(), book.n_asks)

    def depth(self, side: str, levels: int) -> float:
        """Σ size of the best `levels` levels of `side` (cached; NaN while the book is invalid)."""
        key = ("depth", side, levels)
        if key not in self._cache:
            lv = self.book_side(side)
            self._cache[key] = NAN if lv is None else bookstats.top_depth(lv[0][:, 1], lv[1], levels)
        return self._cache[key]


FUNCTIONS: dict[str, Callable[[TickContext, Compiled], float]] = {}


def register(name: str) -> Callable[[Callable[[TickContext, Compiled], float]], Callable[[TickContext, Compiled], float]]:
    """Register the computation of catalogue function `name`."""
    def deco(fn: Callable[[TickContext, Compiled], float]) -> Callable[[TickContext, Compiled], float]:
        FUNCTIONS[name] = fn
        return fn
    return deco


# --- price -------------------------------------------------------------------------------------

@register("mid_price")
def mid_price(ctx: TickContext, f: Compiled) -> float:
    """(best_bid + best_ask) / 2."""
    return ctx.mid()


@register("spread_abs")
def spread_abs(ctx: TickContext, f: Compiled) -> float:
    """best_ask − best_bid."""
    return ctx.book_stats()[bookstats.SPREAD]


@register("spread_rel")
def spread_rel(ctx: TickContext, f: Compiled) -> float:
    """spread_abs / mid_price."""
    stats = ctx.book_stats()
    mid = stats[bookstats.MID]
    return stats[bookstats.SPREAD] / mid if mid > 0.0 else NAN


@register("log_return")
def log_return(ctx: TickContext, f: Compiled) -> float:
    """ln(mid_t / mid_{t−N}) with both mids taken at ticks."""
    return log_ratio(ctx.mid(), ctx.state.mids.at(ctx.t - f.params["seconds"] * NS))


@register("volatility")
def volatility(ctx: TickContext, f: Compiled) -> float:
    """Sample std (ddof=1) of the finite 1 s log returns at ticks in (t − N s, t]."""
    return ctx.state.returns_1s.std_over(ctx.t, f.params["seconds"] * NS)


# --- trades ------------------------------------------------------------------------------------

@register("vwap")
def vwap(ctx: TickContext, f: Compiled) -> float:
    """Σ p·v / Σ v over the window; NaN without trades."""
    v = ctx.trade_stat(f, windows.STAT_SUM_V)
    return ctx.trade_stat(f, windows.STAT_SUM_PV) / v if v > 0.0 else NAN


@register("volume")
def volume(ctx: TickContext, f: Compiled) -> float:
    """Σ v over the window."""
    return ctx.trade_stat(f, windows.STAT_SUM_V)


@register("signed_volume")
def signed_volume(ctx: TickContext, f: Compiled) -> float:
    """Σ s·v (taker Buy +1, taker Sell −1)."""
    return ctx.trade_stat(f, windows.STAT_SIGNED_V)


@register("buy_sell_ratio")
def buy_sell_ratio(ctx: TickContext, f: Compiled) -> float:
    """buy_vol / sell_vol; NaN when sell_vol is 0."""
    sell = ctx.trade_stat(f, windows.STAT_SELL_V)
    return ctx.trade_stat(f, windows.STAT_BUY_V) / sell if sell > 0.0 else NAN


@register("trade_count")
def trade_count(ctx: TickContext, f: Compiled) -> float:
    """Number of trades in the window."""
    return ctx.trade_stat(f, windows.STAT_COUNT)


@register("net_aggressor_pressure")
def net_aggressor_pressure(ctx: TickContext, f: Compiled) -> float:
    """Σ s·p·v: buy notional − sell notional."""
    return ctx.trade_stat(f, windows.STAT_SIGNED_PV)


# --- order book --------------------------------------------------------------------------------

@register("depth")
def depth(ctx: TickContext, f: Compiled) -> float:
    """Σ size of the best `levels` levels of `side`."""
    if f.book_slot >= 0:
        return ctx.book_stats()[f.book_slot]
    return ctx.depth(f.params["side"], f.params["levels"])


@register("depth_imbalance")
def depth_imbalance(ctx: TickContext, f: Compiled) -> float:
    """(bid − ask)/(bid + ask) over the top `levels`; NaN with zero depth."""
    if f.book_slot >= 0:
        return ctx.book_stats()[f.book_slot]
    levels = f.params["levels"]
    return bookstats.depth_imbalance(ctx.depth("bid", levels), ctx.depth("ask", levels))


@register("slope")
def slope(ctx: TickContext, f: Compiled) -> float:
    """OLS slope of size against level index 1..levels on `side`; NaN with fewer than 2 levels."""
    if f.book_slot >= 0:
        return ctx.book_stats()[f.book_slot]
    lv = ctx.book_side(f.params["side"])
    return NAN if lv is None else bookstats.ols_slope(lv[0][:, 1], lv[1], f.params["levels"])


@register("churn_rate")
def churn_rate(ctx: TickContext, f: Compiled) -> float:
    """Best-price changes (one per delta at most) in the window, per second."""
    return ctx.state.churn.count(ctx.t, f.window_ns) / (f.window_ns / NS)


@register("liquidity_density")
def liquidity_density(ctx: TickContext, f: Compiled) -> float:
    """Total size on both sides at levels within `bps` of mid."""
    if f.book_slot >= 0:
        return ctx.book_stats()[f.book_slot]
    book = ctx.state.book
    if book is None or not book.valid:
        return NAN
    return bookstats.liquidity_density(book.bids(), book.n_bids, book.asks(), book.n_asks,
                                       ctx.mid(), f.params["bps"])


# --- perpetual, clock, references --------------------------------------------------------------

@register("funding_rate")
def funding_rate(ctx: TickContext, f: Compiled) -> float:
    """Last known funding rate."""
    return ctx.state.funding.rate


@register("time_to_funding")
def time_to_funding(ctx: TickContext, f: Compiled) -> float:
    """Minutes from t to the next funding settlement; never negative, NaN while unknown.

    A ``nextFundingTime`` already past at t (a stale ticker, or a recording replayed later) is
    rolled forward on the symbol's funding-interval grid (``fundingIntervalHour``) to the first
    settlement after t; NaN if the interval is unknown. At a settlement instant itself it is 0.
    """
    funding = ctx.state.funding
    if funding.next_ms <= 0:
        return NAN
    nxt = funding.next_ms * 1_000_000
    if nxt < ctx.t:
        step = int(funding.interval_h * 3_600) * NS
        if step <= 0:
            return NAN
        nxt += ((ctx.t - nxt) // step + 1) * step
    return (nxt - ctx.t) / MINUTE_NS


@register("time_of_day")
def time_of_day(ctx: TickContext, f: Compiled) -> float:
    """Seconds since UTC midnight / 86400."""
    return (ctx.t % DAY_NS) / DAY_NS


@register("ref")
def ref(ctx: TickContext, f: Compiled) -> float:
    """The current value of another feature (computed earlier in dependency order)."""
    return float(ctx.values[f.inputs[0]])
