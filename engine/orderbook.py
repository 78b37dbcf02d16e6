"""One order book per (symbol, depth topic), kept by the snapshot/delta rules of SPEC Part D.

Storage: one float64 array `levels` of shape (2, capacity, 2): `levels[BID]` holds the bids
sorted by price descending, `levels[ASK]` the asks ascending, columns (price, size); `counts[side]`
says how many rows are in use. Rows at or beyond the count are always NaN, so the whole state is
a pure function of the records applied (bit-identical on replay) and the best price of an empty
side reads as NaN without a branch.

Levels are applied by one numba kernel per record (both sides): binary search on the exact float
price (the decoder only accepts decimals a float reproduces exactly, so equality is exact);
size > 0 replaces or inserts the level, size 0 (or any non-positive / NaN size) deletes it, and
deleting an absent price is a no-op; a level whose price is not finite is ignored. After the
batch each side is truncated to `depth` levels. A snapshot clears the book and loads its levels
through the same kernel, so duplicates and order in a snapshot are handled the same way.

Every update returns an outcome string (constants below) the caller counts and logs. An invalid
book ignores deltas (`NO_BOOK`) until a snapshot arrives. `became_invalid` is True exactly when
the last call (`apply_snapshot`, `apply_delta` or `invalidate`) moved the book from valid to
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

#: Row of `levels` / `counts` holding the bids (price descending).
BID = 0
#: Row of `levels` / `counts` holding the asks (price ascending).
ASK = 1
#: Slot of `counts` holding the book depth (so the kernels take four arguments).
DEPTH = 2
#: Spare rows per side beyond `depth`, room for a delta's inserts before truncation.
SPARE_ROWS = 64
#: Version of the `to_state` layout.
STATE_VERSION = 1
#: Kernel result: applied, book not crossed.
_OK = 0
#: Kernel result: applied, book crossed.
_CROSSED = 1
#: Kernel result: not enough capacity for the batch; nothing was changed.
_NO_ROOM = -1
#: Kernel flag ORed into _OK / _CROSSED: the best bid or best ask price differs from before the delta.
_TOP_MOVED = 2

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
def _apply_side(flat: np.ndarray, n: int, updates: np.ndarray, descending: bool) -> int:
    """Apply flat (price, size, price, size, …) `updates` to the `n` sorted levels of `flat`.

    `flat` is one side's (capacity, 2) storage seen as 1-D (row i at 2i, 2i + 1), so a shift is
    one simple loop the compiler vectorises. Returns the new count. Size > 0 sets or inserts;
    anything else deletes (an absent price: no-op).
    """
    for i in range(updates.shape[0] // 2):
        price = updates[2 * i]
        size = updates[2 * i + 1]
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
def _apply_both(levels: np.ndarray, counts: np.ndarray, bids: np.ndarray, asks: np.ndarray) -> int:
    """Apply flat bid and ask updates, truncate to `counts[DEPTH]`; return _OK or _CROSSED."""
    bid_flat = levels[BID].reshape(-1)
    ask_flat = levels[ASK].reshape(-1)
    nb = _apply_side(bid_flat, counts[BID], bids, True)
    na = _apply_side(ask_flat, counts[ASK], asks, False)
    counts[BID] = _truncate(bid_flat, nb, counts[DEPTH])
    counts[ASK] = _truncate(ask_flat, na, counts[DEPTH])
    if counts[BID] > 0 and counts[ASK] > 0 and levels[BID, 0, 0] >= levels[ASK, 0, 0]:
        return _CROSSED
    return _OK


@kernel
def _same_price(x: float, y: float) -> bool:
    """Equal prices, an empty side (NaN) equal to itself."""
    return x == y or (x != x and y != y)


@kernel
def _delta_kernel(levels: np.ndarray, counts: np.ndarray, bids: np.ndarray, asks: np.ndarray) -> int:
    """Apply one delta's (n, 2) bid and ask arrays; _NO_ROOM (nothing changed) if they might not fit."""
    b = bids.ravel()
    a = asks.ravel()
    cap = levels.shape[1]
    if counts[BID] + b.shape[0] // 2 > cap or counts[ASK] + a.shape[0] // 2 > cap:
        return _NO_ROOM
    best_bid, best_ask = levels[BID, 0, 0], levels[ASK, 0, 0]  # NaN when a side is empty
    code = _apply_both(levels, counts, b, a)
    if not (_same_price(best_bid, levels[BID, 0, 0]) and _same_price(best_ask, levels[ASK, 0, 0])):
        code |= _TOP_MOVED
    return code



@kernel
def _snapshot_kernel(levels: np.ndarray, counts: np.ndarray, bids: np.ndarray, asks: np.ndarray) -> int:
    """Clear the book and load a snapshot's (n, 2) arrays; _NO_ROOM (nothing changed) if too big."""
    b = bids.ravel()
    a = asks.ravel()
    cap = levels.shape[1]
    if b.shape[0] // 2 > cap or a.shape[0] // 2 > cap:
        return _NO_ROOM
    levels[:] = np.nan
    counts[BID] = 0
    counts[ASK] = 0
    return _apply_both(levels, counts, b, a)


def _as_levels(x: Any) -> np.ndarray:
    """Return `x` as a float64 array of shape (n, 2) (no copy when it already is one)."""
    if x is None:
        return _EMPTY
    return np.asarray(x, dtype=np.float64).reshape(-1, 2)


class OrderBook:
    """The book of one depth topic: sorted numpy levels, update ids, validity."""

    __slots__ = ("_depth", "_levels", "_counts", "_valid", "_last_u", "_reason", "_became_invalid", "_top_moved",
                 "_ro")

    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError(f"book depth must be >= 1, got {depth}")
        self._depth = int(depth)
        #: Levels in use per side (BID, ASK) and the depth (DEPTH), read by the kernels.
        self._counts = np.array([0, 0, self._depth], dtype=np.int64)
        self._valid = False
        self._last_u = 0
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
        old, n = self._levels, self._counts
        self._allocate(max(rows, 2 * old.shape[1]))
        self._levels[BID, :n[BID]] = old[BID, :n[BID]]
        self._levels[ASK, :n[ASK]] = old[ASK, :n[ASK]]

    def _fail(self, reason: str) -> str:
        """Mark the book invalid for `reason`, noting whether this is a transition; return it."""
        self._became_invalid = self._valid
        self._valid = False
        self._reason = reason
        return reason

    # --- updates -------------------------------------------------------------------------------

    def apply_snapshot(self, u: int, bids: Any, asks: Any) -> str:
        """Replace the book with a snapshot; return APPLIED, RESET, CROSSED or STALE (depth 1)."""
        if self._depth == 1 and self._valid and u < self._last_u and u != 1:
            self._became_invalid = False
            return STALE
        bids, asks = _as_levels(bids), _as_levels(asks)
        code = _snapshot_kernel(self._levels, self._counts, bids, asks)
        if code == _NO_ROOM:
            self._grow(max(len(bids), len(asks)))
            code = _snapshot_kernel(self._levels, self._counts, bids, asks)
        self._last_u = int(u)
        if code == _CROSSED:
            return self._fail(CROSSED)
        self._valid, self._reason, self._became_invalid = True, "", False
        return RESET if u == 1 else APPLIED

    def apply_delta(self, u: int, bids: Any, asks: Any) -> str:
        """Apply a delta; return APPLIED, CROSSED, STALE, GAP, RESET or NO_BOOK.

        `bids` / `asks` are float64 (n, 2) arrays as in the record (anything array-like works,
        slower). This is the hot path: one kernel call, a few attribute reads.
        """
        if u != self._last_u + 1 or u == 1 or not self._valid:
            return self._reject(u)
        try:
            code = _delta_kernel(self._levels, self._counts, bids, asks)
        except Exception:  # not arrays (e.g. nested lists): numba rejected the types before running
            bids, asks = _as_levels(bids), _as_levels(asks)
            code = _delta_kernel(self._levels, self._counts, bids, asks)
        if code == _OK or code == _TOP_MOVED:
            self._last_u = u
            self._became_invalid = False
            self._top_moved = code == _TOP_MOVED
            return APPLIED
        return self._delta_slow(code, u, bids, asks)

    def _delta_slow(self, code: int, u: int, bids: Any, asks: Any) -> str:
        """Finish a delta the kernel could not take (no room: grow, retry) or that crossed the book."""
        if code == _NO_ROOM:
            bids, asks = _as_levels(bids), _as_levels(asks)
            self._grow(int(max(self._counts[BID], self._counts[ASK])) + max(len(bids), len(asks)))
            code = _delta_kernel(self._levels, self._counts, bids, asks)
        self._last_u = u
        self._top_moved = bool(code & _TOP_MOVED)
        if code & _CROSSED:
            return self._fail(CROSSED)
        self._became_invalid = False
        return APPLIED

    def _reject(self, u: int) -> str:
        """Outcome of a delta that cannot be applied: no book, reset (u == 1), stale or gap."""
        if not self._valid:
            self._became_invalid = False
            return NO_BOOK
        if u == 1:
            return self._fail(DELTA_RESET)
        if u <= self._last_u:
            self._became_invalid = False
            return STALE
        return self._fail(GAP)

    def invalidate(self, reason: str) -> bool:
        """Mark the book invalid (e.g. "gateway_down"); return True if it was valid (a transition)."""
        was = self._valid
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
        return self._valid

    @property
    def last_u(self) -> int:
        """Update id of the last snapshot or delta applied (0 before the first snapshot)."""
        return int(self._last_u)

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
        return int(self._counts[BID])

    @property
    def n_asks(self) -> int:
        """Number of ask levels."""
        return int(self._counts[ASK])

    def best_bid(self) -> float:
        """Highest bid price; NaN when there are no bids."""
        return self._levels.item(0)

    def best_ask(self) -> float:
        """Lowest ask price; NaN when there are no asks."""
        return self._levels.item(ASK, 0, 0)

    def bids(self) -> np.ndarray:
        """Read-only (n_bids, 2) view of the bids (price, size), best first."""
        return self._ro[BID, :self._counts[BID]]

    def asks(self) -> np.ndarray:
        """Read-only (n_asks, 2) view of the asks (price, size), best first."""
        return self._ro[ASK, :self._counts[ASK]]

    # --- checkpoint ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Return a msgpack-friendly snapshot (levels as little-endian float64 bytes)."""
        return {
            "v": STATE_VERSION,
            "depth": self._depth,
            "valid": int(self._valid),
            "last_u": int(self._last_u),
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
        book._counts[BID], book._counts[ASK] = len(bids), len(asks)
        book._valid = bool(d["valid"])
        book._last_u = int(d["last_u"])
        book._reason = str(d["reason"])
        book._became_invalid = bool(d["became_invalid"])
        return book
