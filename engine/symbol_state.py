"""Everything the engine knows about one symbol: its books, trade windows, funding and tick history."""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from engine.funding import FundingState
from engine.orderbook import APPLIED, NO_BOOK, NO_SNAPSHOT, OrderBook
from engine.runs import DeltaRun, KernelRun, TradesRun
from engine.windows import EventTimes, TickSeries, TradeIdFilter, TradeWindow

NAN = math.nan
NS = 1_000_000_000

#: Outcomes of a book update that leave the book invalid and call for a resync.
INVALIDATING = frozenset({"gap", "crossed", "reset", NO_SNAPSHOT})
#: Deltas kept per book while it waits for a snapshot, for a REST snapshot to catch up from.
MAX_HELD_DELTAS = 2048
#: Outcome of a snapshot that made an invalid book valid again.
RECOVERED = "recovered"


class Horizons:
    """How much history the registry needs: the longest trade and churn windows, tick spans."""

    __slots__ = ("trades_ns", "churn_ns", "ticks")

    def __init__(self, trades_ns: int, churn_ns: int, ticks: int) -> None:
        self.trades_ns = max(trades_ns, NS)
        self.churn_ns = max(churn_ns, NS)
        self.ticks = max(ticks, 2)


class BookEvent:
    """What one book record did: the outcome, whether the book just became invalid, its depth."""

    __slots__ = ("outcome", "became_invalid", "depth")

    def __init__(self, outcome: str, became_invalid: bool, depth: int) -> None:
        self.outcome, self.became_invalid, self.depth = outcome, became_invalid, depth


#: The outcome of every successfully applied delta (shared: the hot path allocates nothing).
BOOK_APPLIED = BookEvent(APPLIED, False, 0)


class SymbolState:
    """Books per depth topic, trades, best-price churn, funding, and per-tick mid / 1 s return series."""

    def __init__(self, symbol: str, horizons: Horizons) -> None:
        self.symbol = symbol
        self.books: dict[int, OrderBook] = {}
        self.primary_depth = 0
        self.trades = TradeWindow(horizons.trades_ns)
        self.trade_ids = TradeIdFilter(horizons.trades_ns)
        self.churn = EventTimes(horizons.churn_ns)
        self.funding = FundingState()
        self.mids = TickSeries(horizons.ticks + 1)
        self.returns_1s = TickSeries(horizons.ticks + 1)
        #: Deltas journaled while a book was invalid, per depth: (u, bids, asks), oldest first.
        self.held: dict[int, deque[tuple[int, np.ndarray, np.ndarray]]] = {}

    @property
    def book(self) -> OrderBook | None:
        """The book features are computed from: the deepest depth topic seen for this symbol."""
        return self.books.get(self.primary_depth)

    def book_valid(self) -> bool:
        """True when the feature book exists and is valid."""
        b = self.book
        return b is not None and b.valid

    def apply_book(self, recv_ns: int, snapshot: bool, p: dict[str, Any]) -> BookEvent:
        """Apply one orderbook record; count a best-price change of the feature book as churn."""
        depth = int(p["depth"])
        book = self.books.get(depth)
        if book is None:
            book = self.books[depth] = OrderBook(depth)
            self.primary_depth = max(self.primary_depth, depth)
            if not snapshot:
                # First sight of this book is a delta (e.g. after a restart): ask for a snapshot once.
                self._hold(depth, p)
                return BookEvent(NO_SNAPSHOT, True, depth)
        if snapshot:
            return self._snapshot(book, p)
        outcome = book.apply_delta(p["u"], p["b"], p["a"])
        if outcome == APPLIED:
            if book.top_moved and depth == self.primary_depth:
                self.churn.add(recv_ns)
            return BOOK_APPLIED
        if outcome == NO_BOOK:
            self._hold(depth, p)
        return BookEvent(outcome, book.became_invalid, depth)

    def apply_run(self, run: DeltaRun, kr: KernelRun, start: int) -> tuple[int, BookEvent]:
        """Apply deltas ``start, …`` of `run` (laid out as `kr`) to its existing book until one is not
        a clean apply, that one included.

        Returns ``(stop, event)``: deltas ``start … stop - 1`` were handled as `apply_book` would,
        all but the last clean (`kr.moved` says which moved the top); `event` is the last one's
        (BOOK_APPLIED when all were clean). Churn is the caller's: it adds the moved times.
        """
        book = self.books[run.depth]
        stop, outcome = book.apply_run(kr.index, kr.bids, kr.asks, start)
        if outcome == APPLIED:
            return stop, BOOK_APPLIED
        if outcome == NO_BOOK:
            bids, asks = run.levels(stop - 1)
            self._hold(run.depth, {"u": int(run.u[stop - 1]), "b": bids, "a": asks})
        return stop, BookEvent(outcome, book.became_invalid, run.depth)

    def _snapshot(self, book: OrderBook, p: dict[str, Any]) -> BookEvent:
        """Apply a snapshot; a REST one (``src: rest``) then catches up on the deltas held since the
        book went invalid (the stream runs ahead of a fetched snapshot: Clone pattern)."""
        was_valid = book.valid
        held = self.held.pop(book.depth, ())
        outcome = book.apply_snapshot(p["u"], p["b"], p["a"])
        if book.valid and p.get("src") == "rest":
            for u, b, a in held:
                if u > book.last_u:
                    outcome = book.apply_delta(u, b, a)  # a gap here invalidates again: resync
                    if not book.valid:
                        return BookEvent(outcome, True, book.depth)
        if outcome == APPLIED and book.valid and not was_valid:
            outcome = RECOVERED
        return BookEvent(outcome, book.became_invalid, book.depth)

    def _hold(self, depth: int, p: dict[str, Any]) -> None:
        """Keep a delta that arrived while its book was invalid (bounded; oldest dropped)."""
        held = self.held.get(depth)
        if held is None:
            held = self.held[depth] = deque(maxlen=MAX_HELD_DELTAS)
        held.append((int(p["u"]), p["b"], p["a"]))

    def apply_trades(self, recv_ns: int, p: dict[str, Any]) -> int:
        """Add the trades not seen before (dedupe on trade id); return how many were duplicates."""
        fresh = self.trade_ids.fresh(recv_ns, p["id"])
        if fresh.all():
            self.trades.add(recv_ns, p["p"], p["v"], p["side"])
            return 0
        if fresh.any():
            self.trades.add(recv_ns, p["p"][fresh], p["v"][fresh], p["side"][fresh])
        return int((~fresh).sum())

    def trades_in_order(self, run: TradesRun) -> bool:
        """True when `run`'s receive times are non-decreasing and none is older than the trades or
        trade ids held: then `apply_trades_run` can raise no ordering error anywhere in it."""
        t = run.recv_ns
        first = int(t[0])
        for last in (self.trades.last_time(), self.trade_ids.last_time()):
            if last is not None and first < last:
                return False
        return not bool((t[1:] < t[:-1]).any())

    def apply_trades_run(self, run: TradesRun) -> int:
        """`apply_trades` of each message of a (checked, in order) run, the window appended once;
        return how many trades were duplicates."""
        off, ids, recv_ns = run.off.tolist(), run.ids, run.recv_ns.tolist()
        if self.trade_ids.fresh_run(recv_ns, off, ids):  # the common case: no duplicate anywhere
            self.trades.add_many(np.repeat(run.recv_ns, np.diff(run.off)), run.p, run.v, run.side)
            return 0
        fresh = np.empty(run.p.shape[0], dtype=bool)
        for i in range(run.n):
            a, b = off[i], off[i + 1]
            fresh[a:b] = self.trade_ids.fresh(recv_ns[i], ids[a:b])  # evicts at each message's time
        times = np.repeat(run.recv_ns, np.diff(run.off))
        if fresh.all():
            self.trades.add_many(times, run.p, run.v, run.side)
            return 0
        self.trades.add_many(times[fresh], run.p[fresh], run.v[fresh], run.side[fresh])
        return int((~fresh).sum())

    def invalidate_books(self, reason: str) -> list[int]:
        """Mark every valid book invalid (gateway down/up); return the depths that just went invalid."""
        return [d for d in sorted(self.books) if self.books[d].invalidate(reason)]

    def invalid_depths(self) -> list[int]:
        """Depths of the books currently invalid (they need a snapshot)."""
        return [d for d in sorted(self.books) if not self.books[d].valid]

    def restart_tick_history(self) -> None:
        """Forget per-tick mids and returns (a TICK_GAP: the seconds in between have no ticks)."""
        self.mids = TickSeries(self.mids.capacity)
        self.returns_1s = TickSeries(self.returns_1s.capacity)

    def record_tick(self, t: int, mid: float) -> None:
        """Keep the mid and the 1 s log return at tick `t` for returns and volatility."""
        prev = self.mids.at(t - NS)
        self.mids.push(t, mid)
        self.returns_1s.push(t, log_ratio(mid, prev))

    def evict(self, t: int) -> None:
        """Drop trades and churn events older than any window can see."""
        self.trades.evict(t)
        self.trade_ids.evict(t)
        self.churn.evict(t)

    def to_state(self) -> dict[str, Any]:
        """Return a msgpack-friendly snapshot of the whole symbol state."""
        return {
            "books": {str(d): b.to_state() for d, b in sorted(self.books.items())},
            "primary_depth": self.primary_depth,
            "trades": self.trades.to_state(),
            "trade_ids": self.trade_ids.to_state(),
            "churn": self.churn.to_state(),
            "funding": self.funding.to_state(),
            "mids": self.mids.to_state(),
            "returns_1s": self.returns_1s.to_state(),
            "held": {str(d): [[u, np.asarray(b, "<f8").tobytes(), np.asarray(a, "<f8").tobytes()] for u, b, a in h]
                     for d, h in sorted(self.held.items())},
        }

    @classmethod
    def from_state(cls, symbol: str, horizons: Horizons, d: dict[str, Any]) -> SymbolState:
        """Rebuild from `to_state` output."""
        s = cls(symbol, horizons)
        s.books = {int(k): OrderBook.from_state(v) for k, v in d["books"].items()}
        s.primary_depth = int(d["primary_depth"])
        # Horizons come from the registry in force, so a registry switch can lengthen windows.
        s.trades = TradeWindow.from_state(d["trades"], horizon_ns=horizons.trades_ns)
        s.trade_ids = TradeIdFilter.from_state(d["trade_ids"], horizon_ns=horizons.trades_ns)
        s.churn = EventTimes.from_state(d["churn"], horizon_ns=horizons.churn_ns)
        s.funding = FundingState.from_state(d["funding"])
        s.mids = TickSeries.from_state(d["mids"], capacity=horizons.ticks + 1)
        s.returns_1s = TickSeries.from_state(d["returns_1s"], capacity=horizons.ticks + 1)
        s.held = {int(k): deque(((int(u), _levels(b), _levels(a)) for u, b, a in h), maxlen=MAX_HELD_DELTAS)
                  for k, h in d.get("held", {}).items()}
        return s


def _levels(raw: bytes) -> np.ndarray:
    """Rebuild an (n, 2) float64 level array from its little-endian bytes."""
    return np.frombuffer(raw, dtype="<f8").reshape(-1, 2).copy()


def log_ratio(now: float, then: float) -> float:
    """ln(now / then), NaN unless both are finite and positive."""
    if now > 0.0 and then > 0.0 and math.isfinite(now) and math.isfinite(then):
        return math.log(now / then)
    return NAN

