"""Rolling windows on engine time: trade sums, trade-id dedupe, per-tick series, event counters.

Engine time is ``recv_ns`` (int64 ns). A window ``W`` at tick time ``t`` covers the events with
``recv_ns`` in the half-open interval ``(t − W, t]``. Events arrive in non-decreasing ``recv_ns``
order (the journal guarantees it); appending out of order raises ``ValueError``.

Storage is plain numpy columns with a live range ``[head, tail)``: eviction only moves ``head``
(a binary search), and the columns are relocated, compacted and resized now and then, which keeps
appends amortised O(1). Sums run in numba kernels in a fixed order — per 1 s bucket in arrival
order, buckets oldest first, for the whole-second windows of engine ticks; trade by trade in
arrival order otherwise — so results are a pure function of the events and bit-identical across
runs, restores and ``NUMBA_DISABLE_JIT=1``.

Every class has ``to_state() -> dict`` (msgpack-friendly: ints, str, bytes, lists) and
``from_state(d)``; arrays travel as little-endian bytes, so NaN payloads survive bit for bit.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

import numpy as np

from engine.jit import kernel

# --- layout of one row of `TradeWindow.stats` / `stats_multi` -----------------------------------

#: Σ v over the window (base units).
STAT_SUM_V = 0
#: Σ p·v over the window (quote notional).
STAT_SUM_PV = 1
#: Σ v of taker-Buy trades (side > 0).
STAT_BUY_V = 2
#: Σ v of taker-Sell trades (side < 0).
STAT_SELL_V = 3
#: buy_v − sell_v (one subtraction of the two sums above).
STAT_SIGNED_V = 4
#: buy notional − sell notional (Σ p·v of buys minus Σ p·v of sells).
STAT_SIGNED_PV = 5
#: Number of trades (not messages), as a float.
STAT_COUNT = 6
#: Width of a stats row.
N_STATS = 7

#: Smallest capacity a column buffer is allocated with (rows).
MIN_CAPACITY = 64

#: Little-endian dtypes the columns are stored and serialised with.
NS_DTYPE = np.dtype("<i8")
F64_DTYPE = np.dtype("<f8")
SIDE_DTYPE = np.dtype("i1")

NAN = math.nan


# --- kernels --------------------------------------------------------------------------------------


@kernel
def _first_after(ns: np.ndarray, lo: int, hi: int, x: int) -> int:
    """Index of the first element of sorted ``ns[lo:hi]`` greater than x (searchsorted side='right')."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if ns[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _span(ns: np.ndarray, lo: int, hi: int, t: int, window: int) -> tuple[int, int]:
    """Index range ``[start, end)`` of sorted ``ns[lo:hi]`` with values in ``(t − window, t]``."""
    end = _first_after(ns, lo, hi, t)
    return _first_after(ns, lo, end, t - window), end


# Raw sums of a run of trades (one bucket, or one whole window): the columns of a sums row.
_B_V, _B_PV, _B_BUY_V, _B_BUY_PV, _B_SELL_V, _B_SELL_PV, _B_COUNT = range(7)
_B_WIDTH = 7


@kernel
def _bucket_row(p: np.ndarray, v: np.ndarray, side: np.ndarray, start: int, end: int, out: np.ndarray) -> None:
    """Sums of trades ``[start, end)`` into one sums row (layout _B_*), sequentially in arrival order."""
    s_v = s_pv = b_v = b_pv = x_v = x_pv = 0.0
    for i in range(start, end):
        vi = v[i]
        pvi = p[i] * vi
        # Branch-free side split: sides are random, so a branch mispredicts about half the time.
        # Adding an exact 0.0 leaves a sum unchanged, so the result equals the branchy loop's.
        is_buy = 1.0 if side[i] > 0 else 0.0
        is_sell = 1.0 if side[i] < 0 else 0.0
        s_v += vi
        s_pv += pvi
        b_v += vi * is_buy
        b_pv += pvi * is_buy
        x_v += vi * is_sell
        x_pv += pvi * is_sell
    out[_B_V] = s_v
    out[_B_PV] = s_pv
    out[_B_BUY_V] = b_v
    out[_B_BUY_PV] = b_pv
    out[_B_SELL_V] = x_v
    out[_B_SELL_PV] = x_pv
    out[_B_COUNT] = float(end - start)


@kernel
def _stats_row(acc: np.ndarray, row: np.ndarray) -> None:
    """Fill one stats row (layout STAT_*) from a sums row (layout _B_*)."""
    row[STAT_SUM_V] = acc[_B_V]
    row[STAT_SUM_PV] = acc[_B_PV]
    row[STAT_BUY_V] = acc[_B_BUY_V]
    row[STAT_SELL_V] = acc[_B_SELL_V]
    row[STAT_SIGNED_V] = acc[_B_BUY_V] - acc[_B_SELL_V]
    row[STAT_SIGNED_PV] = acc[_B_BUY_PV] - acc[_B_SELL_PV]
    row[STAT_COUNT] = acc[_B_COUNT]


@kernel
def _trade_stats(ns: np.ndarray, p: np.ndarray, v: np.ndarray, side: np.ndarray, lo: int, hi: int,
                 t: int, windows: np.ndarray) -> np.ndarray:
    """Stats rows (k × N_STATS) of trades in ``(t − W, t]`` for each window W, trade by trade."""
    out = np.zeros((windows.shape[0], N_STATS))
    acc = np.zeros(_B_WIDTH)
    end = _first_after(ns, lo, hi, t)
    for j in range(windows.shape[0]):
        _bucket_row(p, v, side, _first_after(ns, lo, end, t - windows[j]), end, acc)
        _stats_row(acc, out[j])
    return out


@kernel
def _close_buckets(ns: np.ndarray, p: np.ndarray, v: np.ndarray, side: np.ndarray, head: int, tail: int,
                   through: int, upto: int, bucket: int, ends: np.ndarray, rows: np.ndarray, n: int) -> int:
    """Append one row per non-empty bucket ``(b − bucket, b]`` with through < b ≤ upto; return the new count."""
    i = _first_after(ns, head, tail, through)
    stop = _first_after(ns, i, tail, upto)
    while i < stop:
        b = -((-ns[i]) // bucket) * bucket  # the bucket's end: ceil to a whole bucket
        j = _first_after(ns, i, stop, b)
        ends[n] = b
        _bucket_row(p, v, side, i, j, rows[n])
        n += 1
        i = j
    return n


@kernel
def _bucketed_stats(ends: np.ndarray, rows: np.ndarray, bhead: int, bn: int, ns: np.ndarray, p: np.ndarray,
                    v: np.ndarray, side: np.ndarray, head: int, tail: int, t: int, bucket: int,
                    windows: np.ndarray) -> np.ndarray:
    """Stats rows for whole-bucket windows ending at t: closed bucket rows oldest first, then the open one."""
    out = np.zeros((windows.shape[0], N_STATS))
    last = np.zeros(_B_WIDTH)
    _bucket_row(p, v, side, _first_after(ns, head, tail, t - bucket), _first_after(ns, head, tail, t), last)
    for j in range(windows.shape[0]):
        acc = np.zeros(_B_WIDTH)
        k = _first_after(ends, bhead, bn, t - windows[j])  # first bucket ending after t − W
        while k < bn and ends[k] <= t - bucket:
            for c in range(_B_WIDTH):
                acc[c] += rows[k, c]
            k += 1
        for c in range(_B_WIDTH):
            acc[c] += last[c]
        _stats_row(acc, out[j])
    return out


@kernel
def _finite_moments(x: np.ndarray) -> tuple[int, float, float]:
    """(n, mean, Σ (x − mean)²) over the finite values of x, in two sequential passes.

    A constant series gives exactly 0 for the squares (its rounded mean would not), so a flat
    feature has std 0 and z-score NaN rather than noise.
    """
    n = 0
    total = 0.0
    lo = math.inf
    hi = -math.inf
    for i in range(x.shape[0]):
        if math.isfinite(x[i]):
            n += 1
            total += x[i]
            lo = min(lo, x[i])
            hi = max(hi, x[i])
    if n == 0:
        return 0, NAN, NAN
    if lo == hi:
        return n, lo, 0.0
    mean = total / n
    ss = 0.0
    for i in range(x.shape[0]):
        if math.isfinite(x[i]):
            d = x[i] - mean
            ss += d * d
    return n, mean, ss


@kernel
def _sample_std(x: np.ndarray) -> float:
    """Sample standard deviation (ddof=1) of the finite values; NaN with fewer than 2."""
    n, _, ss = _finite_moments(x)
    if n < 2:
        return NAN
    return math.sqrt(ss / (n - 1))


@kernel
def _zscore(x_t: float, history: np.ndarray) -> float:
    """(x_t − mean) / std (ddof=1) over the finite history; NaN if undefined or std is 0."""
    if not math.isfinite(x_t):
        return NAN
    n, mean, ss = _finite_moments(history)
    if n < 2:
        return NAN
    std = math.sqrt(ss / (n - 1))
    if std == 0.0:
        return NAN
    return (x_t - mean) / std


# --- readable wrappers ------------------------------------------------------------------------------


def sample_std(values: Sequence[float] | np.ndarray) -> float:
    """Sample std (ddof=1) of the finite values (volatility of 1 s returns); NaN with fewer than 2."""
    return float(_sample_std(np.ascontiguousarray(values, dtype=np.float64)))


def rolling_zscore(x_t: float, history: Sequence[float] | np.ndarray) -> float:
    """Z-score of x_t against the last N tick values (x_t included); NaN when undefined."""
    return float(_zscore(float(x_t), np.ascontiguousarray(history, dtype=np.float64)))


# --- storage ----------------------------------------------------------------------------------------


def _capacity_for(rows: int) -> int:
    """Buffer size for `rows` live rows: a power of two with at least as much free room again."""
    return max(MIN_CAPACITY, 1 << max(2 * rows - 1, 1).bit_length())


class _Columns:
    """Aligned numpy columns holding live rows ``[head, tail)``; column 0 is the sorted time."""

    __slots__ = ("cols", "head", "tail")

    def __init__(self, dtypes: Sequence[np.dtype], rows: int = 0) -> None:
        cap = _capacity_for(rows)
        self.cols = [np.zeros(cap, dtype=dt) for dt in dtypes]
        self.head = 0
        self.tail = 0

    def __len__(self) -> int:
        return self.tail - self.head

    @property
    def times(self) -> np.ndarray:
        """The time column (whole buffer; only ``[head, tail)`` is live)."""
        return self.cols[0]

    def last_time(self) -> int | None:
        """Time of the newest live row, None when empty."""
        return int(self.cols[0][self.tail - 1]) if self.tail > self.head else None

    def append(self, n: int, values: Sequence[Any]) -> None:
        """Append n rows; each value is a scalar (broadcast) or an array of n, one per column."""
        self._make_room(n)
        tail = self.tail
        for col, val in zip(self.cols, values, strict=True):
            col[tail:tail + n] = val
        self.tail = tail + n

    def drop_through(self, cutoff: int) -> None:
        """Drop the rows with time ≤ cutoff (binary search; no copying)."""
        self.head = _first_after(self.cols[0], self.head, self.tail, cutoff)

    def keep_last(self, n: int) -> None:
        """Drop all but the newest n rows."""
        self.head = max(self.head, self.tail - n)

    def live(self, i: int) -> np.ndarray:
        """View of the live rows of column i."""
        return self.cols[i][self.head:self.tail]

    def _make_room(self, n: int) -> None:
        """Ensure n free rows after tail: relocate the live rows into a right-sized buffer if needed."""
        if self.tail + n <= self.cols[0].shape[0]:
            return
        live = self.tail - self.head
        cap = _capacity_for(live + n)
        new = []
        for col in self.cols:
            buf = np.zeros(cap, dtype=col.dtype)
            buf[:live] = col[self.head:self.tail]
            new.append(buf)
        self.cols, self.head, self.tail = new, 0, live

    def to_state(self) -> list[bytes]:
        """Live rows of each column as little-endian bytes."""
        return [self.live(i).tobytes() for i in range(len(self.cols))]

    @classmethod
    def from_state(cls, dtypes: Sequence[np.dtype], blobs: Sequence[bytes]) -> _Columns:
        """Rebuild from `to_state` output; every column must hold the same number of rows."""
        arrays = [np.frombuffer(b, dtype=dt) for dt, b in zip(dtypes, blobs, strict=True)]
        rows = arrays[0].shape[0]
        if any(a.shape[0] != rows for a in arrays):
            raise ValueError(f"column lengths differ: {[a.shape[0] for a in arrays]}")
        c = cls(dtypes, rows)
        c.append(rows, arrays)
        return c


def _check_order(cols: _Columns, t: int, what: str) -> None:
    """Raise ValueError when t is older than the newest stored time (order is the journal's promise)."""
    last = cols.last_time()
    if last is not None and t < last:
        raise ValueError(f"{what}: time {t} is older than the last one stored ({last})")


# --- trades -----------------------------------------------------------------------------------------

_TRADE_DTYPES = (NS_DTYPE, F64_DTYPE, F64_DTYPE, SIDE_DTYPE)
_TRADE_KEYS = ("ns", "p", "v", "side")


class TradeWindow:
    """The trades of one symbol over the last `horizon_ns` of engine time, with window sums.

    Windows that are whole multiples of `bucket_ns` and end on a bucket boundary (every engine
    tick: whole seconds) are summed per bucket: each closed bucket ``(b − bucket, b]`` is summed
    once, sequentially in arrival order, and cached; a window adds its closed buckets oldest first
    and then the still-open bucket ``(t − bucket, t]``. Tick cost is then O(window in buckets)
    instead of O(trades). Other windows and times are summed trade by trade in arrival order. The
    cache is derived state: a restore rebuilds it from the held trades with identical sums.
    """

    __slots__ = ("horizon_ns", "bucket_ns", "_cols", "_ends", "_rows", "_bhead", "_bn", "_through", "_aligned")

    def __init__(self, horizon_ns: int, bucket_ns: int = 1_000_000_000) -> None:
        self.horizon_ns = int(horizon_ns)
        self.bucket_ns = int(bucket_ns)
        self._cols = _Columns(_TRADE_DTYPES)
        self._aligned: tuple[Any, bool] = (None, False)
        self._reset_buckets()

    def _reset_buckets(self) -> None:
        self._ends = np.zeros(MIN_CAPACITY, dtype=NS_DTYPE)
        self._rows = np.zeros((MIN_CAPACITY, _B_WIDTH), dtype=F64_DTYPE)
        self._bhead = self._bn = 0
        self._through = -(1 << 62)  # every bucket ending at or before this is closed and cached

    def __len__(self) -> int:
        """Number of trades held."""
        return len(self._cols)

    def add(self, recv_ns: int, p: np.ndarray, v: np.ndarray, side: np.ndarray) -> None:
        """Append one message's trades (price, size, side ±1), all received at `recv_ns`."""
        n = len(p)
        if len(v) != n or len(side) != n:
            raise ValueError(f"trade arrays differ in length: p {n}, v {len(v)}, side {len(side)}")
        if n:
            _check_order(self._cols, recv_ns, "TradeWindow.add")
            if recv_ns <= self._through:
                self._reopen(recv_ns)
            self._cols.append(n, (recv_ns, p, v, side))

    def add_many(self, recv_ns: np.ndarray, p: np.ndarray, v: np.ndarray, side: np.ndarray) -> None:
        """Append trades received at the non-decreasing int64 times `recv_ns`, one row each, in one go:
        the same as `add` of each message in order (the caller checks the order beforehand)."""
        n = recv_ns.shape[0]
        if len(p) != n or len(v) != n or len(side) != n:
            raise ValueError(f"trade arrays differ in length: ns {n}, p {len(p)}, v {len(v)}, side {len(side)}")
        if n:
            first = int(recv_ns[0])
            _check_order(self._cols, first, "TradeWindow.add_many")
            if first <= self._through:
                self._reopen(first)  # later times lie beyond the reopened bucket: one reopen is all
            self._cols.append(n, (recv_ns, p, v, side))

    def last_time(self) -> int | None:
        """Receive time of the newest trade held, None when empty."""
        return self._cols.last_time()

    def _reopen(self, recv_ns: int) -> None:
        """A trade landed in a closed bucket (never in journal order): forget that bucket and later ones."""
        b = self.bucket_ns
        self._through = -(-recv_ns // b) * b - b
        self._bn = _first_after(self._ends, self._bhead, self._bn, self._through)

    def evict(self, t: int) -> None:
        """Drop trades with recv_ns ≤ t − horizon: no window ending at t or later can see them."""
        cutoff = t - self.horizon_ns
        self._cols.drop_through(cutoff)
        self._bhead = _first_after(self._ends, self._bhead, self._bn, cutoff)

    def stats(self, t: int, window_ns: int) -> np.ndarray:
        """One stats row (N_STATS, layout STAT_*) over trades in ``(t − window_ns, t]``."""
        return self.stats_multi(t, np.array([window_ns], dtype=np.int64))[0]

    def stats_multi(self, t: int, windows_ns: np.ndarray) -> np.ndarray:
        """Stats rows (len(windows_ns) × N_STATS) for several windows ending at t, in one kernel call."""
        c = self._cols
        ns, p, v, side = c.cols
        windows = np.asarray(windows_ns, dtype=np.int64)
        if t % self.bucket_ns == 0 and self._whole_buckets(windows):
            self._close(t - self.bucket_ns)
            return _bucketed_stats(self._ends, self._rows, self._bhead, self._bn, ns, p, v, side, c.head, c.tail,
                                   t, self.bucket_ns, windows)
        return _trade_stats(ns, p, v, side, c.head, c.tail, t, windows)

    def _whole_buckets(self, windows: np.ndarray) -> bool:
        """True when every window is a positive whole number of buckets (remembered per array object)."""
        if self._aligned[0] is not windows:
            b = self.bucket_ns
            self._aligned = (windows, all(w >= b and w % b == 0 for w in windows.tolist()))
        return self._aligned[1]

    def _close(self, upto: int) -> None:
        """Sum and cache every bucket ending in (through, upto]."""
        if upto <= self._through:
            return
        c = self._cols
        self._make_bucket_room(c.tail - c.head)
        ns, p, v, side = c.cols
        self._bn = _close_buckets(ns, p, v, side, c.head, c.tail, self._through, upto, self.bucket_ns,
                                  self._ends, self._rows, self._bn)
        self._through = upto

    def _make_bucket_room(self, n: int) -> None:
        """Ensure room for n more bucket rows: move the live rows to the front, growing if needed."""
        if self._bn + n <= self._ends.shape[0]:
            return
        live = self._bn - self._bhead
        cap = _capacity_for(live + n)
        ends, rows = np.zeros(cap, dtype=NS_DTYPE), np.zeros((cap, _B_WIDTH), dtype=F64_DTYPE)
        ends[:live] = self._ends[self._bhead:self._bn]
        rows[:live] = self._rows[self._bhead:self._bn]
        self._ends, self._rows, self._bhead, self._bn = ends, rows, 0, live

    def to_state(self) -> dict[str, Any]:
        """Horizon and the held trades as little-endian bytes columns."""
        return {"horizon_ns": self.horizon_ns, **dict(zip(_TRADE_KEYS, self._cols.to_state(), strict=True))}

    @classmethod
    def from_state(cls, d: dict[str, Any], horizon_ns: int | None = None) -> TradeWindow:
        """Rebuild from `to_state` output; `horizon_ns` overrides the saved horizon (registry change)."""
        w = cls(d["horizon_ns"] if horizon_ns is None else horizon_ns)
        w._cols = _Columns.from_state(_TRADE_DTYPES, [d[k] for k in _TRADE_KEYS])
        return w


class TradeIdFilter:
    """Trade-id dedupe: an id is fresh unless accepted within the last `horizon_ns` (first sighting)."""

    __slots__ = ("horizon_ns", "_seen", "_batches")

    def __init__(self, horizon_ns: int) -> None:
        self.horizon_ns = int(horizon_ns)
        self._seen: set[str] = set()
        self._batches: deque[tuple[int, list[str]]] = deque()

    def __len__(self) -> int:
        """Number of ids remembered."""
        return len(self._seen)

    def fresh(self, recv_ns: int, ids: Sequence[str]) -> np.ndarray:
        """Mask of the ids not seen within the horizon (nor earlier in `ids`); remember the fresh ones."""
        if self._batches and recv_ns < self._batches[-1][0]:
            raise ValueError(f"TradeIdFilter.fresh: time {recv_ns} is older than {self._batches[-1][0]}")
        self.evict(recv_ns)
        if self._seen.isdisjoint(ids) and len(set(ids)) == len(ids):
            mask, new = np.ones(len(ids), dtype=bool), list(ids)
        else:
            mask, new = self._split(ids)
        if new:
            self._seen.update(new)
            self._batches.append((int(recv_ns), new))
        return mask

    def last_time(self) -> int | None:
        """Receive time of the newest message remembered, None when none is."""
        return self._batches[-1][0] if self._batches else None

    def fresh_run(self, recv_ns: list[int], off: list[int], ids: list[str]) -> bool:
        """Take a run of messages (message i: ``ids[off[i]:off[i + 1]]`` at ``recv_ns[i]``, times in
        order) when every id in it is fresh; return False, changing nothing, otherwise.

        The state after is that of `fresh` of each message in turn: ids that collide with nothing
        remembered even before any eviction, and not with each other, are fresh whatever the
        eviction times, and the same batches are kept once evicted at the last message's time.
        """
        self.evict(recv_ns[0])
        if not ids:
            self.evict(recv_ns[-1])
            return True
        if not self._seen.isdisjoint(ids) or len(set(ids)) != len(ids):
            return False
        batches = self._batches
        for i in range(len(recv_ns)):
            a, b = off[i], off[i + 1]
            if b > a:
                batches.append((int(recv_ns[i]), ids[a:b]))
        self._seen.update(ids)
        self.evict(recv_ns[-1])
        return True

    def _split(self, ids: Sequence[str]) -> tuple[np.ndarray, list[str]]:
        """Slow path with duplicates: the mask and the fresh ids in message order."""
        mask = np.zeros(len(ids), dtype=bool)
        new: list[str] = []
        taken: set[str] = set()
        for i, tid in enumerate(ids):
            if tid not in self._seen and tid not in taken:
                mask[i] = True
                taken.add(tid)
                new.append(tid)
        return mask, new

    def evict(self, t: int) -> None:
        """Forget ids accepted at recv_ns ≤ t − horizon, oldest message first (insertion order)."""
        cutoff = t - self.horizon_ns
        while self._batches and self._batches[0][0] <= cutoff:
            self._seen.difference_update(self._batches.popleft()[1])

    def to_state(self) -> dict[str, Any]:
        """Horizon and the remembered ids as [recv_ns, [ids…]] per message, oldest first."""
        return {"horizon_ns": self.horizon_ns, "batches": [[ns, list(ids)] for ns, ids in self._batches]}

    @classmethod
    def from_state(cls, d: dict[str, Any], horizon_ns: int | None = None) -> TradeIdFilter:
        """Rebuild from `to_state` output; `horizon_ns` overrides the saved horizon (registry change)."""
        f = cls(d["horizon_ns"] if horizon_ns is None else horizon_ns)
        for ns, ids in d["batches"]:
            batch = [str(i) for i in ids]
            f._batches.append((int(ns), batch))
            f._seen.update(batch)
        return f


# --- ticks and event times ----------------------------------------------------------------------------

_TICK_DTYPES = (NS_DTYPE, F64_DTYPE)


class TickSeries:
    """The value of something at each tick (mid, a feature), keeping the last `capacity` ticks."""

    __slots__ = ("capacity", "_cols")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"TickSeries capacity must be ≥ 1, got {capacity}")
        self.capacity = int(capacity)
        self._cols = _Columns(_TICK_DTYPES)

    def __len__(self) -> int:
        """Number of ticks held (at most `capacity`)."""
        return len(self._cols)

    def push(self, t: int, value: float) -> None:
        """Record `value` at tick time t (strictly after the previous tick); drop the oldest beyond capacity."""
        c = self._cols
        times, tail = c.cols[0], c.tail
        if tail > c.head and t <= times.item(tail - 1):
            raise ValueError(f"TickSeries.push: tick {t} is not after the last one ({times.item(tail - 1)})")
        if tail == times.shape[0]:
            c.append(1, (t, value))  # full buffer: the generic path relocates the live rows
        else:  # scalar fast path (several pushes per tick and symbol)
            times[tail] = t
            c.cols[1][tail] = value
            c.tail = tail + 1
        c.keep_last(self.capacity)

    def at(self, t: int) -> float:
        """The value recorded at exactly tick time t; NaN if that tick is missing or too old."""
        c = self._cols
        i = _first_after(c.times, c.head, c.tail, t) - 1
        if i >= c.head and c.times[i] == t:
            return float(c.cols[1][i])
        return NAN

    def window_values(self, t: int, span_ns: int) -> np.ndarray:
        """Copy of the values of the held ticks with time in ``(t − span_ns, t]``, oldest first."""
        c = self._cols
        start, end = _span(c.times, c.head, c.tail, t, span_ns)
        return c.cols[1][start:end].copy()

    def std_over(self, t: int, span_ns: int) -> float:
        """Sample std (ddof=1) of the finite values of ticks in ``(t − span_ns, t]`` (no copy)."""
        c = self._cols
        start, end = _span(c.times, c.head, c.tail, t, span_ns)
        return float(_sample_std(c.cols[1][start:end]))

    def zscore_of_newest(self, n: int) -> float:
        """Rolling z-score of the newest value against the newest n values, itself included (no copy)."""
        c = self._cols
        if c.tail == c.head:
            return NAN
        values = c.cols[1]
        return float(_zscore(values.item(c.tail - 1), values[max(c.head, c.tail - n):c.tail]))

    def last_n(self, n: int) -> np.ndarray:
        """Copy of the values of the newest n held ticks (fewer if not held), oldest first."""
        c = self._cols
        return c.cols[1][max(c.head, c.tail - max(n, 0)):c.tail].copy()

    def to_state(self) -> dict[str, Any]:
        """Capacity and the held ticks as little-endian bytes columns."""
        ns, values = self._cols.to_state()
        return {"capacity": self.capacity, "ns": ns, "values": values}

    @classmethod
    def from_state(cls, d: dict[str, Any], capacity: int | None = None) -> TickSeries:
        """Rebuild from `to_state` output; `capacity` overrides the saved one (keeps the newest ticks)."""
        s = cls(d["capacity"] if capacity is None else capacity)
        s._cols = _Columns.from_state(_TICK_DTYPES, [d["ns"], d["values"]])
        s._cols.keep_last(s.capacity)
        return s


class EventTimes:
    """Times of events (best-price changes) over the last `horizon_ns`, counted per window."""

    __slots__ = ("horizon_ns", "_cols")

    def __init__(self, horizon_ns: int) -> None:
        self.horizon_ns = int(horizon_ns)
        self._cols = _Columns((NS_DTYPE,))

    def __len__(self) -> int:
        """Number of event times held."""
        return len(self._cols)

    def add(self, t_ns: int) -> None:
        """Record one event at engine time t_ns (non-decreasing)."""
        c = self._cols
        times, tail = c.cols[0], c.tail
        # Scalar fast path (called on most book deltas): no generic column loop.
        if tail == times.shape[0]:
            _check_order(c, t_ns, "EventTimes.add")
            c.append(1, (t_ns,))
            return
        if tail > c.head and times.item(tail - 1) > t_ns:
            _check_order(c, t_ns, "EventTimes.add")
        times[tail] = t_ns
        c.tail = tail + 1

    def add_many(self, times: np.ndarray, ordered: bool = False) -> None:
        """Record events at int64 `times` in one append: the same as `add` of each, in order.

        Raises ValueError, adding none of them, unless `times` is non-decreasing (`ordered`: the
        caller knows it is) and starts no earlier than the newest time held (the caller then adds
        them one by one to see which fails).
        """
        k = times.shape[0]
        if k == 0:
            return
        c = self._cols
        last = c.last_time()
        if (last is not None and times[0] < last) or (not ordered and k > 1 and bool((times[1:] < times[:-1]).any())):
            raise ValueError(f"EventTimes.add_many: times out of order (newest held: {last})")
        c.append(k, (times,))

    def count(self, t: int, window_ns: int) -> int:
        """Number of events with time in ``(t − window_ns, t]``."""
        c = self._cols
        start, end = _span(c.times, c.head, c.tail, t, window_ns)
        return end - start

    def evict(self, t: int) -> None:
        """Drop events with time ≤ t − horizon: no window ending at t or later can see them."""
        self._cols.drop_through(t - self.horizon_ns)

    def to_state(self) -> dict[str, Any]:
        """Horizon and the held times as little-endian int64 bytes."""
        return {"horizon_ns": self.horizon_ns, "ns": self._cols.to_state()[0]}

    @classmethod
    def from_state(cls, d: dict[str, Any], horizon_ns: int | None = None) -> EventTimes:
        """Rebuild from `to_state` output; `horizon_ns` overrides the saved horizon (registry change)."""
        e = cls(d["horizon_ns"] if horizon_ns is None else horizon_ns)
        e._cols = _Columns.from_state((NS_DTYPE,), [d["ns"]])
        return e
