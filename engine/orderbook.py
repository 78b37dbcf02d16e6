"""One order book per (symbol, depth topic), kept by the snapshot/delta rules of SPEC Part D.

Storage: one float64 array `levels` of shape (2, capacity, 2): `levels[BID]` holds the bids
sorted by price descending, `levels[ASK]` the asks ascending, columns (price, size); the int64
array `counts` holds the levels in use per side, the depth, last_u and validity (and spare rows
for the single-delta path). Rows at or beyond the count are always NaN, so the whole state is
a pure function of the records applied (bit-identical on replay) and the best price of an empty
side reads as NaN without a branch.

Deltas are applied by ONE numba kernel, `apply_run`, over a run of deltas: an int64 index (per
delta its u and the offsets of its bid and ask rows) and (m, 2) float64 level-change arrays.
Replay passes every delta of a `engine.runs.DeltaRun` (all deltas of a book between two ticks),
the online path one message's own (n, 2) arrays as a run of one, so both run the same code.
Per level: binary search on the exact float price (the decoder only accepts decimals a float
reproduces exactly, so equality is exact); size > 0 replaces or inserts the level, size 0 (or
any non-positive / NaN size) deletes it, and deleting an absent price is a no-op; a level whose
price is not finite is ignored. After each delta each side is truncated to `depth` levels. A
snapshot clears the book and loads its levels through the same level loop, so duplicates and
order in a snapshot are handled the same way.

The kernel stops at the first delta that is not a clean apply (not the next update id, u == 1, an
invalid book, a crossed book, or too little room) and `OrderBook.apply_run` finishes that one
exactly as `apply_delta` would (growing the storage and going on when it lacked room); the
caller then resumes the kernel after it.

Every update returns an outcome string (constants below) the caller counts and logs. An invalid
book ignores deltas (`NO_BOOK`) until a snapshot arrives. `became_invalid` is True exactly when
the last call (`apply_snapshot`, `apply_delta`, `apply_run` or `invalidate`) moved the book from valid to
invalid: the caller asks for one resync per such transition. Delta outcomes `GAP`, `RESET` and
`CROSSED` always are transitions (an invalid book answers `NO_BOOK` first); a `CROSSED`
snapshot is one only if the book was valid before it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from engine.jit import kernel

#: Outcome: the update was applied; the book is valid.
APPLIED = "applied"
#: Outcome: a snapshot with u == 1 (exchange restart) was applied; the book is valid. Count it.
RESET = "reset"
#: Outcome: the book is crossed (best bid >= best ask) after the update; it is now invalid.
CROSSED = "crossed"
#: Outcome: the update is older than the book (delta u <= last_u; depth-1 snapshot u < last_u).
STALE = "stale"
#: Outcome: a delta skipped update ids (u > last_u + 1); the book is invalid until a snapshot.
GAP = "gap"
#: Outcome: a delta arrived while the book is invalid; it was ignored.
NO_BOOK = "no_book"

#: Delta outcome for u == 1 without a snapshot (exchange restart): the book becomes invalid.
DELTA_RESET = RESET
#: `invalid_reason` of a book that has not seen a snapshot yet.
NO_SNAPSHOT = "no_snapshot"

#: Row of `levels` holding the bids (price descending); column of `counts[STATE]` with their count.
BID = 0
#: Row of `levels` holding the asks (price ascending); column of `counts[STATE]` with their count.
ASK = 1
#: Column of `counts[STATE]` holding the book depth.
DEPTH = 2
#: Column of `counts[STATE]` holding the update id of the last snapshot or delta applied.
LAST_U = 3
#: Row of `counts` with the level counts, depth and last_u.
STATE = 0
#: Row of `counts` whose column 0 is 1 while the book is valid, else 0.
FLAGS = 1
#: First of the two rows of `counts` holding the run index of the single-delta path (a run of one).
ONE = 2
#: Shape of a book's `counts` (int64).
COUNTS_SHAPE = (4, 4)
#: Columns of a run index (int64, n + 1 rows): delta i's u, its first bid and first ask level
#: (row n: one past the last level), and the kernel's output, 1 when delta i moved the top.
IX_U, IX_B, IX_A, IX_MOVED = 0, 1, 2, 3
#: Number of columns of a run index.
IX_COLS = 4
#: Spare rows per side beyond `depth`, room for a delta's inserts before truncation.
SPARE_ROWS = 64
#: Version of the `to_state` layout.
STATE_VERSION = 1
#: Snapshot kernel result: applied, book not crossed.
_OK = 0
#: Snapshot kernel result: applied, book crossed.
_CROSSED = 1
#: Snapshot kernel result: not enough capacity for the snapshot; nothing was changed.
_NO_ROOM = -1

#: Run kernel status (low two bits of its result; the rest is the delta index it stopped at):
#: every delta from `start` on was a clean apply (index = n).
RUN_DONE = 0
#: The delta at the index was not applied: not the next update id, u == 1, or the book is invalid.
RUN_REJECT = 1
#: The delta at the index was not applied: the book needs more rows (grow, run again from it).
RUN_NO_ROOM = 2
#: The delta at the index was applied and crossed the book.
RUN_CROSSED = 3
#: Mask of the status bits.
RUN_STATUS = 3
#: Flag bit of the run kernel result: the last delta applied moved the best bid or ask price.
RUN_TOP_MOVED = 4
#: Shift of the delta index in the run kernel result.
RUN_SHIFT = 3
#: Single-delta results of a clean apply (index 1), without and with a best-price move.
_ONE_APPLIED = 1 << RUN_SHIFT
_ONE_APPLIED_MOVED = _ONE_APPLIED | RUN_TOP_MOVED

_EMPTY = np.empty((0, 2), dtype=np.float64)


@kernel
def _find(flat: np.ndarray, n: int, price: float, descending: bool) -> int:
    """Index of the first of the `n` levels in `flat` not better than `price` (binary search)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) >> 1
        p = flat[2 * mid]
        if (p > price) if descending else (p < price):
            lo = mid + 1
        else:
            hi = mid
    return lo


@kernel
def _apply_side(flat: np.ndarray, n: int, changes: np.ndarray, lo: int, hi: int, descending: bool) -> int:
    """Apply the (price, size) rows ``changes[lo:hi]`` to the `n` sorted levels of `flat`.

    `flat` is one side's (capacity, 2) storage seen as 1-D (row i at 2i, 2i + 1), so a shift is
    one simple loop the compiler vectorises. Returns the new count. Size > 0 sets or inserts;
    anything else deletes (an absent price: no-op); a price that is not finite is ignored.
    """
    for i in range(lo, hi):
        price = changes[i, 0]
        size = changes[i, 1]
        if not math.isfinite(price):
            continue
        pos = _find(flat, n, price, descending)
        found = pos < n and flat[2 * pos] == price
        if size > 0.0:
            if not found:
                for j in range(2 * n + 1, 2 * pos + 1, -1):
                    flat[j] = flat[j - 2]
                flat[2 * pos] = price
                n += 1
            flat[2 * pos + 1] = size
        elif found:
            n -= 1
            for j in range(2 * pos, 2 * n):
                flat[j] = flat[j + 2]
            flat[2 * n] = np.nan
            flat[2 * n + 1] = np.nan
    return n


@kernel
def _truncate(flat: np.ndarray, n: int, depth: int) -> int:
    """Drop the levels beyond `depth` (fill them with NaN); return the new count."""
    if n <= depth:
        return n
    flat[2 * depth:2 * n] = np.nan
    return depth


@kernel
def _same_price(x: float, y: float) -> bool:
    """Equal prices, an empty side (NaN) equal to itself."""
    return x == y or (x != x and y != y)


@kernel
def apply_run(levels: np.ndarray, counts: np.ndarray, index: np.ndarray, bids: np.ndarray, asks: np.ndarray,
              start: int) -> int:
    """Apply deltas ``start, start + 1, …`` of a run to a book until one is not a clean apply.

    THE book kernel: the online path runs it on one message (a run of one), replay on every delta
    between two ticks, so both are the same code. `index` is the run's (n + 1, IX_COLS) int64
    index; delta i changes the (price, size) rows ``bids[index[i, IX_B]:index[i + 1, IX_B]]`` and
    the asks likewise. It is applied only when the book is valid, ``u == last_u + 1`` and
    ``u != 1``; then each side is truncated to depth and ``index[i, IX_MOVED]`` set to 1 when the
    best bid or ask price changed. Returns ``stop << RUN_SHIFT | status``: RUN_DONE (stop = n), or
    the delta it stopped at with RUN_REJECT / RUN_NO_ROOM (nothing changed) or RUN_CROSSED (it was
    applied), ORed with RUN_TOP_MOVED when the last delta applied moved the top.
    """
    n = index.shape[0] - 1
    state = counts[STATE]
    if counts[FLAGS, 0] == 0 and start < n:
        return (start << RUN_SHIFT) | RUN_REJECT
    bid_flat = levels[BID].reshape(-1)
    ask_flat = levels[ASK].reshape(-1)
    cap = levels.shape[1]
    depth = state[DEPTH]
    last = state[LAST_U]
    top = 0
    for i in range(start, n):
        u = index[i, IX_U]
        if u != last + 1 or u == 1:
            return (i << RUN_SHIFT) | RUN_REJECT | top
        b0, b1, a0, a1 = index[i, IX_B], index[i + 1, IX_B], index[i, IX_A], index[i + 1, IX_A]
        if state[BID] + (b1 - b0) > cap or state[ASK] + (a1 - a0) > cap:
            return (i << RUN_SHIFT) | RUN_NO_ROOM | top
        best_bid, best_ask = bid_flat[0], ask_flat[0]  # NaN when a side is empty
        nb = _truncate(bid_flat, _apply_side(bid_flat, state[BID], bids, b0, b1, True), depth)
        na = _truncate(ask_flat, _apply_side(ask_flat, state[ASK], asks, a0, a1, False), depth)
        state[BID], state[ASK], state[LAST_U] = nb, na, u
        last = u
        top = 0 if _same_price(best_bid, bid_flat[0]) and _same_price(best_ask, ask_flat[0]) else RUN_TOP_MOVED
        index[i, IX_MOVED] = 1 if top else 0
        if nb > 0 and na > 0 and bid_flat[0] >= ask_flat[0]:
            return (i << RUN_SHIFT) | RUN_CROSSED | top
    return (n << RUN_SHIFT) | RUN_DONE | top


@kernel
def _delta_kernel(levels: np.ndarray, counts: np.ndarray, u: int, bids: np.ndarray, asks: np.ndarray) -> int:
    """Run `apply_run` on one message's (n, 2) bid and ask arrays: a run of one delta.

    Its index lives in the rows ONE, ONE + 1 of `counts`, so this allocates and copies nothing.
    """
    one = counts[ONE:ONE + 2]
    one[0, IX_U] = u
    if one[0, IX_U] != u:  # not a whole number (a malformed record): the caller rejects it
        return RUN_REJECT
    one[0, IX_B] = 0
    one[0, IX_A] = 0
    one[1, IX_B] = bids.shape[0]
    one[1, IX_A] = asks.shape[0]
    return apply_run(levels, counts, one, bids, asks, 0)


@kernel
def _snapshot_kernel(levels: np.ndarray, counts: np.ndarray, bids: np.ndarray, asks: np.ndarray) -> int:
    """Clear the book and load a snapshot's (n, 2) arrays; return _OK, _CROSSED or _NO_ROOM (nothing changed)."""
    nb, na = bids.shape[0], asks.shape[0]
    if nb > levels.shape[1] or na > levels.shape[1]:
        return _NO_ROOM
    levels[:] = np.nan
    state = counts[STATE]
    bid_flat = levels[BID].reshape(-1)
    ask_flat = levels[ASK].reshape(-1)
    state[BID] = _truncate(bid_flat, _apply_side(bid_flat, 0, bids, 0, nb, True), state[DEPTH])
    state[ASK] = _truncate(ask_flat, _apply_side(ask_flat, 0, asks, 0, na, False), state[DEPTH])
    if state[BID] > 0 and state[ASK] > 0 and bid_flat[0] >= ask_flat[0]:
        return _CROSSED
    return _OK


def _as_levels(x: Any) -> np.ndarray:
    """Return `x` as a float64 array of shape (n, 2) (no copy when it already is one)."""
    if x is None:
        return _EMPTY
    return np.asarray(x, dtype=np.float64).reshape(-1, 2)


class OrderBook:
    """The book of one depth topic: sorted numpy levels, update ids, validity."""

    __slots__ = ("_depth", "_levels", "_counts", "_reason", "_became_invalid", "_top_moved", "_ro")

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"book depth must be >= 1, got {depth}")
        self._depth = int(depth)
        #: Levels in use per side, depth, last_u, validity and the one-delta run: read by the kernels.
        self._counts = np.zeros(COUNTS_SHAPE, dtype=np.int64)
        self._counts[STATE, DEPTH] = self._depth
        self._reason = NO_SNAPSHOT
        self._became_invalid = False
        self._top_moved = False
        self._allocate(self._depth + SPARE_ROWS)

    def _allocate(self, capacity: int) -> None:
        """Replace the level storage with an all-NaN one of `capacity` rows per side (counts kept)."""
        self._levels = np.full((2, capacity, 2), np.nan, dtype=np.float64)
        self._ro = self._levels.view()
        self._ro.flags.writeable = False

    def _grow(self, rows: int) -> None:
        """Make room for at least `rows` rows per side, keeping the levels in use."""
        old, n = self._levels, self._counts[STATE]
        self._allocate(max(rows, 2 * old.shape[1]))
        self._levels[BID, :n[BID]] = old[BID, :n[BID]]
        self._levels[ASK, :n[ASK]] = old[ASK, :n[ASK]]

    def _grow_for(self, n_bids: int, n_asks: int) -> None:
        """Make room for a delta of `n_bids` / `n_asks` level changes on top of the levels in use."""
        self._grow(int(max(self._counts[STATE, BID], self._counts[STATE, ASK])) + max(n_bids, n_asks))

    def _fail(self, reason: str) -> str:
        """Mark the book invalid for `reason`, noting whether this is a transition; return it."""
        self._became_invalid = self.valid
        self._counts[FLAGS, 0] = 0
        self._reason = reason
        return reason

    # --- updates -------------------------------------------------------------------------------

    def apply_snapshot(self, u: int, bids: Any, asks: Any) -> str:
        """Replace the book with a snapshot; return APPLIED, RESET, CROSSED or STALE (depth 1)."""
        if self._depth == 1 and self.valid and u < self.last_u and u != 1:
            self._became_invalid = False
            return STALE
        bids, asks = _as_levels(bids), _as_levels(asks)
        code = _snapshot_kernel(self._levels, self._counts, bids, asks)
        if code == _NO_ROOM:
            self._grow(max(len(bids), len(asks)))
            code = _snapshot_kernel(self._levels, self._counts, bids, asks)
        self._counts[STATE, LAST_U] = int(u)
        if code == _CROSSED:
            return self._fail(CROSSED)
        self._counts[FLAGS, 0] = 1
        self._reason, self._became_invalid = "", False
        return RESET if u == 1 else APPLIED

    def apply_delta(self, u: int, bids: Any, asks: Any) -> str:
        """Apply a delta; return APPLIED, CROSSED, STALE, GAP, RESET or NO_BOOK.

        `bids` / `asks` are float64 (n, 2) arrays as in the record (anything array-like works,
        slower). This is the hot path: one call of the run kernel on a run of one delta.
        """
        try:
            r = _delta_kernel(self._levels, self._counts, u, bids, asks)
        except Exception:  # not arrays (e.g. nested lists): numba rejected the types before running
            bids, asks = _as_levels(bids), _as_levels(asks)
            r = _delta_kernel(self._levels, self._counts, u, bids, asks)
        if r == _ONE_APPLIED or r == _ONE_APPLIED_MOVED:
            self._became_invalid = False
            self._top_moved = r == _ONE_APPLIED_MOVED
            return APPLIED
        return self._delta_slow(r, u, bids, asks)

    def _delta_slow(self, r: int, u: int, bids: Any, asks: Any) -> str:
        """Finish a delta the kernel did not take cleanly: rejected, no room (grow, retry) or crossed."""
        status = r & RUN_STATUS
        if status == RUN_REJECT:
            return self._reject(u)
        if status == RUN_NO_ROOM:
            bids, asks = _as_levels(bids), _as_levels(asks)
            self._grow_for(len(bids), len(asks))
            r = _delta_kernel(self._levels, self._counts, u, bids, asks)
            status = r & RUN_STATUS
        self._top_moved = bool(r & RUN_TOP_MOVED)
        if status == RUN_CROSSED:
            return self._fail(CROSSED)
        self._became_invalid = False
        return APPLIED

    def apply_run(self, index: np.ndarray, bids: np.ndarray, asks: np.ndarray, start: int) -> tuple[int, str]:
        """Apply deltas ``start, …`` of a run (`index`, `bids`, `asks` as the kernel `apply_run` takes
        them) until one is not a clean apply, that one included.

        Returns ``(stop, outcome)``: deltas ``start … stop - 1`` were handled, each exactly as
        `apply_delta` would have; all but the last were clean applies (``index[i, IX_MOVED]``: it
        moved the top); `outcome` is the last one's (APPLIED when all were clean).
        """
        n = index.shape[0] - 1
        i = start
        while True:
            r = apply_run(self._levels, self._counts, index, bids, asks, i)
            stop, status = r >> RUN_SHIFT, r & RUN_STATUS
            if status == RUN_NO_ROOM:
                self._grow_for(int(index[stop + 1, IX_B] - index[stop, IX_B]),
                               int(index[stop + 1, IX_A] - index[stop, IX_A]))
                i = stop
                continue
            if stop > i or status == RUN_CROSSED:
                self._top_moved = bool(r & RUN_TOP_MOVED)
                self._became_invalid = False
            if status == RUN_DONE:
                return n, APPLIED
            if status == RUN_CROSSED:
                return stop + 1, self._fail(CROSSED)
            return stop + 1, self._reject(int(index[stop, IX_U]))

    def _reject(self, u: int) -> str:
        """Outcome of a delta that cannot be applied: no book, reset (u == 1), stale or gap."""
        if not self.valid:
            self._became_invalid = False
            return NO_BOOK
        if u == 1:
            return self._fail(DELTA_RESET)
        if u <= self.last_u:
            self._became_invalid = False
            return STALE
        return self._fail(GAP)

    def invalidate(self, reason: str) -> bool:
        """Mark the book invalid (e.g. "gateway_down"); return True if it was valid (a transition)."""
        was = self.valid
        if was:
            self._fail(reason)
        else:
            self._became_invalid = False
        return was

    # --- reading -------------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Depth of the topic: levels kept per side."""
        return self._depth

    @property
    def valid(self) -> bool:
        """True when the book follows the stream (a snapshot and contiguous deltas since)."""
        return self._counts.item(FLAGS, 0) != 0

    @property
    def last_u(self) -> int:
        """Update id of the last snapshot or delta applied (0 before the first snapshot)."""
        return self._counts.item(STATE, LAST_U)

    @property
    def invalid_reason(self) -> str:
        """Why the book is invalid ("no_snapshot", "gap", "crossed", "reset", …); "" when valid."""
        return self._reason

    @property
    def became_invalid(self) -> bool:
        """True when the last update or `invalidate` call turned a valid book invalid."""
        return self._became_invalid

    @property
    def top_moved(self) -> bool:
        """True when the last applied delta changed the best bid or best ask price (churn)."""
        return self._top_moved

    @property
    def n_bids(self) -> int:
        """Number of bid levels."""
        return self._counts.item(STATE, BID)

    @property
    def n_asks(self) -> int:
        """Number of ask levels."""
        return self._counts.item(STATE, ASK)

    def best_bid(self) -> float:
        """Highest bid price; NaN when there are no bids."""
        return self._levels.item(0)

    def best_ask(self) -> float:
        """Lowest ask price; NaN when there are no asks."""
        return self._levels.item(ASK, 0, 0)

    def bids(self) -> np.ndarray:
        """Read-only (n_bids, 2) view of the bids (price, size), best first."""
        return self._ro[BID, :self._counts.item(STATE, BID)]

    def asks(self) -> np.ndarray:
        """Read-only (n_asks, 2) view of the asks (price, size), best first."""
        return self._ro[ASK, :self._counts.item(STATE, ASK)]

    # --- checkpoint ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Return a msgpack-friendly snapshot (levels as little-endian float64 bytes)."""
        return {
            "v": STATE_VERSION,
            "depth": self._depth,
            "valid": int(self.valid),
            "last_u": self.last_u,
            "reason": self._reason,
            "became_invalid": int(self._became_invalid),
            "bids": self.bids().astype("<f8").tobytes(),
            "asks": self.asks().astype("<f8").tobytes(),
        }

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> OrderBook:
        """Rebuild a book from `to_state` output."""
        if d.get("v") != STATE_VERSION:
            raise ValueError(f"unsupported order book state version {d.get('v')!r}")
        book = cls(int(d["depth"]))
        bids = np.frombuffer(d["bids"], dtype="<f8").reshape(-1, 2)
        asks = np.frombuffer(d["asks"], dtype="<f8").reshape(-1, 2)
        if max(len(bids), len(asks)) > book._levels.shape[1]:
            book._allocate(max(len(bids), len(asks)))
        book._levels[BID, :len(bids)] = bids
        book._levels[ASK, :len(asks)] = asks
        book._counts[STATE, BID], book._counts[STATE, ASK] = len(bids), len(asks)
        book._counts[FLAGS, 0] = 1 if d["valid"] else 0
        book._counts[STATE, LAST_U] = int(d["last_u"])
        book._reason = str(d["reason"])
        book._became_invalid = bool(d["became_invalid"])
        return book
