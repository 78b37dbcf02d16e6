"""A deliberately naive feature calculator: the independent oracle for the engine's features.

Written straight from SPEC C.2, C.3, C.6 and Part D with plain dicts, lists and `math`; it shares
no code with `engine/` (only the `Record` layout it reads and the registry's parsed definitions).
Books are ``{price: size}`` dicts per depth topic, trades a list deduplicated on id, mids a dict
keyed by tick time. Slow on purpose: every tick recomputes every window from scratch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from engine.record import Kind, Record

NAN = math.nan
NS = 1_000_000_000
DAY_NS = 86_400 * NS


@dataclass(frozen=True)
class FeatureDef:
    """One feature as the reference understands it (taken from a parsed registry)."""

    name: str
    function: str
    params: dict[str, Any]
    window_ns: int = 0
    every_ns: int = NS
    input: str = ""
    zscore_n: int = 0


def defs_from_registry(registry: Any) -> list[FeatureDef]:
    """The registry's features, in file order, as `FeatureDef`s."""
    out = []
    for f in registry.features:
        inputs = list(f.inputs)
        assert len(inputs) <= 1, f"{f.name}: the reference handles at most one input"
        out.append(FeatureDef(
            name=f.name, function=f.function, params=dict(f.params), window_ns=int(f.window_ns or 0),
            every_ns=int(f.every_ns), input=inputs[0] if inputs else "",
            zscore_n=int(f.normalise.n) if f.normalise is not None else 0,
        ))
    return out


# --- order books (SPEC Part D) -----------------------------------------------------------------

class NaiveBook:
    """One depth topic's book: snapshot replaces, deltas need u = last + 1, crossed means invalid."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.u = 0
        self.valid = False

    def snapshot(self, u: int, bids: Any, asks: Any) -> None:
        self.bids = {float(p): float(s) for p, s in bids if s > 0}
        self.asks = {float(p): float(s) for p, s in asks if s > 0}
        self._truncate()
        self.u = u
        self.valid = not self.crossed()

    def delta(self, u: int, bids: Any, asks: Any) -> bool:
        """Apply a delta; True when it was applied and left the book valid."""
        if not self.valid or u <= self.u:
            return False  # waiting for a snapshot, or stale
        if u > self.u + 1:
            self.valid = False  # gap
            return False
        for levels, side in ((bids, self.bids), (asks, self.asks)):
            for p, s in levels:
                if s == 0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(s)
        self._truncate()
        self.u = u
        self.valid = not self.crossed()
        return self.valid

    def _truncate(self) -> None:
        self.bids = dict(sorted(self.bids.items(), reverse=True)[: self.depth])
        self.asks = dict(sorted(self.asks.items())[: self.depth])

    def crossed(self) -> bool:
        return bool(self.bids) and bool(self.asks) and max(self.bids) >= min(self.asks)

    def best(self) -> tuple[float, float]:
        return (max(self.bids) if self.bids else NAN, min(self.asks) if self.asks else NAN)

    def sizes(self, side: str) -> list[float]:
        """Sizes from the best level outwards."""
        levels = sorted(self.bids.items(), reverse=True) if side == "bid" else sorted(self.asks.items())
        return [s for _, s in levels]


# --- pure feature formulas -----------------------------------------------------------------------

def ols_slope(sizes: list[float], levels: int) -> float:
    """Exact OLS slope of size against index 1..m, m = min(len(sizes), levels); NaN when m < 2."""
    ys = [Fraction(s) for s in sizes[:levels]]
    m = len(ys)
    if m < 2:
        return NAN
    x_mean = Fraction(m + 1, 2)
    y_mean = sum(ys, Fraction(0)) / m
    num = sum(((i + 1 - x_mean) * (y - y_mean) for i, y in enumerate(ys)), Fraction(0))
    den = sum(((i + 1 - x_mean) ** 2 for i in range(m)), Fraction(0))
    return float(num / den)


def sample_std(xs: list[float]) -> float:
    """Two-pass sample standard deviation (ddof=1) with exactly rounded sums; NaN below 2 values.

    Equal values have std exactly 0 (a rounded mean would leave a spurious ~1e−17).
    """
    if len(xs) < 2:
        return NAN
    if min(xs) == max(xs):
        return 0.0
    mean = math.fsum(xs) / len(xs)
    return math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (len(xs) - 1))


def zscore(history: list[float], n: int) -> float:
    """(x − mean)/std over the finite values among the last n (x = the last); NaN per SPEC C.6."""
    x = history[-1]
    finite = [v for v in history[-n:] if math.isfinite(v)]
    if not math.isfinite(x) or len(finite) < 2:
        return NAN
    std = sample_std(finite)
    if std == 0:
        return NAN
    return (x - math.fsum(finite) / len(finite)) / std


def log_ratio(now: float, then: float | None) -> float:
    if then is None or not (math.isfinite(now) and math.isfinite(then) and now > 0 and then > 0):
        return NAN
    return math.log(now / then)


# --- per-symbol state ----------------------------------------------------------------------------

@dataclass
class NaiveSymbol:
    """Everything the reference keeps for one symbol."""

    books: dict[int, NaiveBook] = field(default_factory=dict)
    feature_depth: int = 0
    trades: list[tuple[int, float, float, int]] = field(default_factory=list)  # recv_ns, p, v, side
    seen_ids: set[str] = field(default_factory=set)
    churn: list[int] = field(default_factory=list)  # recv_ns of best-price-changing deltas
    ticker: dict[str, str] = field(default_factory=dict)
    funding_rate: float = NAN
    next_funding_ms: int = 0
    funding_interval_h: float = 0.0
    mids: dict[int, float] = field(default_factory=dict)
    returns: dict[int, float] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)

    @property
    def book(self) -> NaiveBook | None:
        b = self.books.get(self.feature_depth)
        return b if b is not None and b.valid else None


class NaiveReference:
    """Apply records in order like the engine; `tick(t)` returns ``{symbol: (book_valid, {name: value})}``."""

    def __init__(self, defs: list[FeatureDef], symbols: list[str]) -> None:
        self.defs = defs
        self.syms = {s: NaiveSymbol() for s in sorted(symbols)}

    def apply(self, rec: Record) -> dict[str, tuple[int, dict[str, float]]] | None:
        """Apply one record; a tick returns the expected vectors, anything else None."""
        if rec.kind == Kind.TICK:
            return self.tick(rec.recv_ns)
        if rec.kind in (Kind.GATEWAY_DOWN, Kind.GATEWAY_UP):
            for st in self.syms.values():
                for b in st.books.values():
                    b.valid = False
        elif rec.symbol in self.syms:
            st, p = self.syms[rec.symbol], rec.payload
            if rec.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA):
                self._book(st, rec.recv_ns, rec.kind == Kind.BOOK_SNAPSHOT, p)
            elif rec.kind == Kind.TRADES:
                self._trades(st, rec.recv_ns, p)
            elif rec.kind == Kind.TICKER:
                self._ticker(st, p["type"], p["fields"])
            elif rec.kind == Kind.FUNDING:
                st.funding_rate, st.next_funding_ms = float(p["rate"]), int(p["next_ms"])
                st.funding_interval_h = float(p.get("interval_h") or st.funding_interval_h)
        return None

    @staticmethod
    def _trades(st: NaiveSymbol, recv_ns: int, p: dict[str, Any]) -> None:
        for i, tid in enumerate(p["id"]):
            if tid not in st.seen_ids:
                st.seen_ids.add(tid)
                st.trades.append((recv_ns, float(p["p"][i]), float(p["v"][i]), int(p["side"][i])))

    @staticmethod
    def _ticker(st: NaiveSymbol, kind: str, fields: dict[str, str]) -> None:
        st.ticker = dict(fields) if kind == "snapshot" else {**st.ticker, **fields}
        if fields.get("fundingRate"):  # "" in a real frame: nothing known, keep the last value
            st.funding_rate = float(fields["fundingRate"])
        if fields.get("nextFundingTime"):
            st.next_funding_ms = int(fields["nextFundingTime"])
        if fields.get("fundingIntervalHour"):
            st.funding_interval_h = float(fields["fundingIntervalHour"])

    @staticmethod
    def _book(st: NaiveSymbol, recv_ns: int, snapshot: bool, p: dict[str, Any]) -> None:
        depth = int(p["depth"])
        book = st.books.setdefault(depth, NaiveBook(depth))
        st.feature_depth = max(st.feature_depth, depth)
        if snapshot:
            book.snapshot(int(p["u"]), p["b"], p["a"])
            return
        before = book.best()
        if book.delta(int(p["u"]), p["b"], p["a"]) and depth == st.feature_depth and book.best() != before:
            st.churn.append(recv_ns)

    # --- ticks ---------------------------------------------------------------------------------

    def tick(self, t: int) -> dict[str, tuple[int, dict[str, float]]]:
        out = {}
        for sym, st in self.syms.items():
            book = st.book
            mid = NAN if book is None else (book.best()[0] + book.best()[1]) / 2
            st.returns[t] = log_ratio(mid, st.mids.get(t - NS))
            st.mids[t] = mid
            ordered = [d for d in self.defs if not d.input] + [d for d in self.defs if d.input]
            for d in ordered:
                if t % d.every_ns:
                    continue
                x = self._raw(d, st, t, mid)
                if d.zscore_n:
                    st.history.setdefault(d.name, []).append(x)
                    x = zscore(st.history[d.name], d.zscore_n)
                st.values[d.name] = x
            out[sym] = (int(book is not None), {d.name: st.values.get(d.name, NAN) for d in self.defs})
        return out

    def _raw(self, d: FeatureDef, st: NaiveSymbol, t: int, mid: float) -> float:
        f = d.function
        if f == "ref":
            return st.values.get(d.input, NAN)
        if f in TRADE_FUNCTIONS:
            window = [(p, v, s) for ns, p, v, s in st.trades if t - d.window_ns < ns <= t]
            return TRADE_FUNCTIONS[f](window)
        if f == "churn_rate":
            return sum(1 for ns in st.churn if t - d.window_ns < ns <= t) / (d.window_ns / NS)
        if f == "log_return":
            return log_ratio(mid, st.mids.get(t - d.params["seconds"] * NS))
        if f == "volatility":
            span = d.params["seconds"] * NS
            rs = [r for ts, r in st.returns.items() if t - span < ts <= t and math.isfinite(r)]
            return sample_std(rs)
        if f == "funding_rate":
            return st.funding_rate
        if f == "time_to_funding":
            return _time_to_funding(st, t)
        if f == "time_of_day":
            return (t % DAY_NS) / DAY_NS
        return book_feature(f, d.params, st.book, mid)


def _vwap(w: list[tuple[float, float, int]]) -> float:
    vol = math.fsum(v for _, v, _ in w)
    return math.fsum(p * v for p, v, _ in w) / vol if vol > 0 else NAN


def _ratio(w: list[tuple[float, float, int]]) -> float:
    sell = math.fsum(v for _, v, s in w if s < 0)
    return math.fsum(v for _, v, s in w if s > 0) / sell if sell > 0 else NAN


TRADE_FUNCTIONS = {
    "vwap": _vwap,
    "volume": lambda w: math.fsum(v for _, v, _ in w),
    "signed_volume": lambda w: math.fsum(s * v for _, v, s in w),
    "buy_sell_ratio": _ratio,
    "trade_count": lambda w: float(len(w)),
    "net_aggressor_pressure": lambda w: math.fsum(s * p * v for p, v, s in w),
}


def book_feature(f: str, params: dict[str, Any], book: NaiveBook | None, mid: float) -> float:
    """Book features of SPEC C.6 from a valid book (None: invalid → NaN)."""
    if book is None:
        return NAN
    bid, ask = book.best()
    if f == "mid_price":
        return mid
    if f == "spread_abs":
        return ask - bid
    if f == "spread_rel":
        return (ask - bid) / mid
    if f == "depth":
        return math.fsum(book.sizes(params["side"])[: params["levels"]])
    if f == "depth_imbalance":
        b = math.fsum(book.sizes("bid")[: params["levels"]])
        a = math.fsum(book.sizes("ask")[: params["levels"]])
        return (b - a) / (b + a) if b + a > 0 else NAN
    if f == "slope":
        return ols_slope(book.sizes(params["side"]), params["levels"])
    if f == "liquidity_density":
        limit = params["bps"] * 1e-4
        levels = list(book.bids.items()) + list(book.asks.items())
        return math.fsum(s for p, s in levels if abs(p - mid) / mid <= limit)
    raise AssertionError(f"the reference does not know function {f!r}")


def _time_to_funding(st: NaiveSymbol, t: int) -> float:
    """Minutes to the first settlement at or after t on the funding grid, stepping hour by hour."""
    if not st.next_funding_ms:
        return NAN
    nxt = Fraction(st.next_funding_ms, 1000)  # seconds, exact
    if nxt * NS < t:
        if not st.funding_interval_h:
            return NAN
        while nxt * NS <= t:  # naive: walk the grid one interval at a time
            nxt += Fraction(st.funding_interval_h).limit_denominator() * 3600
    return float((nxt * NS - t) / (60 * NS))
