"""Naive pure-Python versions of the engine's work, measured beside it in `bench engine`.

Deliberately straightforward: dict books sorted on demand, trade lists rescanned per window,
`statistics` for standard deviations. They compute the same quantities so the ratio is fair.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

NS = 1_000_000_000


class NaiveBook:
    """Dict book: apply levels, truncate by sorting, best prices by max/min."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def snapshot(self, bids: list, asks: list) -> None:
        """Replace the book."""
        self.bids = {float(p): float(s) for p, s in bids}
        self.asks = {float(p): float(s) for p, s in asks}

    def delta(self, bids: list, asks: list) -> None:
        """Apply levels (size 0 deletes) and truncate each side to the depth."""
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if s == 0.0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(s)
        self.bids = dict(sorted(self.bids.items(), reverse=True)[: self.depth])
        self.asks = dict(sorted(self.asks.items())[: self.depth])

    def best_prices(self) -> tuple[float | None, float | None]:
        """Best bid and best ask price (None for an empty side)."""
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

    def top(self, side: str, k: int) -> list[tuple[float, float]]:
        """Best k levels of a side."""
        return sorted(self.bids.items(), reverse=True)[:k] if side == "bid" else sorted(self.asks.items())[:k]


class NaiveSymbol:
    """Naive per-symbol state and the default registry's features computed from raw lists."""

    def __init__(self, depth: int) -> None:
        self.book = NaiveBook(depth)
        self.trades: list[tuple[int, float, float, int]] = []
        self.mids: dict[int, float] = {}
        self.rets: dict[int, float] = {}
        self.churn: list[int] = []
        self.hist: dict[str, deque] = {k: deque(maxlen=300) for k in ("spread_rel", "sv1m", "imb5")}
        self.funding = math.nan

    def trade_window(self, t: int, w: int) -> list[tuple[int, float, float, int]]:
        """Trades in (t − w, t]."""
        return [x for x in self.trades if t - w < x[0] <= t]

    def tick(self, t: int) -> list[float]:
        """Compute the default registry's columns at tick t."""
        b, a = self.book.top("bid", 10), self.book.top("ask", 10)
        mid = (b[0][0] + a[0][0]) / 2 if b and a else math.nan
        self.mids[t] = mid
        prev = self.mids.get(t - NS, math.nan)
        self.rets[t] = math.log(mid / prev) if mid > 0 and prev > 0 else math.nan
        out = [mid, a[0][0] - b[0][0], (a[0][0] - b[0][0]) / mid]
        out += [self._ret(t, n) for n in (1, 3, 60)]
        for w in (3, 15, 60):
            tr = self.trade_window(t, w * NS)
            v = sum(x[2] for x in tr)
            out.append(sum(x[1] * x[2] for x in tr) / v if v else math.nan)
        out += [sum(x[2] for x in self.trade_window(t, w * NS)) for w in (3, 15, 60)]
        out += [self._vol(t, 60), self._vol(t, 300)]
        out += [sum(x[3] * x[2] for x in self.trade_window(t, w * NS)) for w in (3, 15, 60)]
        tr = self.trade_window(t, 60 * NS)
        sell = sum(x[2] for x in tr if x[3] < 0)
        out.append(sum(x[2] for x in tr if x[3] > 0) / sell if sell else math.nan)
        out.append(len(self.trade_window(t, 3 * NS)))
        out.append(sum(x[3] * x[1] * x[2] for x in tr))
        db5, da5 = sum(s for _, s in b[:5]), sum(s for _, s in a[:5])
        out += [db5, da5, (db5 - da5) / (db5 + da5), sum(s for _, s in b), sum(s for _, s in a)]
        out += [_slope([s for _, s in b]), _slope([s for _, s in a])]
        out.append(sum(1 for c in self.churn if t - 60 * NS < c <= t) / 60)
        lo, hi = mid * (1 - 1e-3), mid * (1 + 1e-3)
        out.append(sum(s for p, s in list(self.book.bids.items()) + list(self.book.asks.items()) if lo <= p <= hi))
        out += [self.funding, math.nan, (t % (86400 * NS)) / (86400 * NS)]
        for key, x in (("spread_rel", out[2]), ("sv1m", out[16]), ("imb5", out[22])):
            self.hist[key].append(x)
            out.append(_z(x, [v for v in self.hist[key] if math.isfinite(v)]))
        self.trades = self.trade_window(t, 60 * NS)
        return out

    def _ret(self, t: int, n: int) -> float:
        then, now = self.mids.get(t - n * NS, math.nan), self.mids[t]
        return math.log(now / then) if now > 0 and then > 0 else math.nan

    def _vol(self, t: int, n: int) -> float:
        r = [v for k, v in self.rets.items() if t - n * NS < k <= t and math.isfinite(v)]
        return statistics.stdev(r) if len(r) >= 2 else math.nan


def _slope(sizes: list[float]) -> float:
    m = len(sizes)
    if m < 2:
        return math.nan
    xs = range(1, m + 1)
    xm, ym = sum(xs) / m, sum(sizes) / m
    return sum((x - xm) * (y - ym) for x, y in zip(xs, sizes, strict=True)) / sum((x - xm) ** 2 for x in xs)


def _z(x: float, hist: list[float]) -> float:
    if not math.isfinite(x) or len(hist) < 2:
        return math.nan
    sd = statistics.stdev(hist)
    return (x - statistics.fmean(hist)) / sd if sd else math.nan
