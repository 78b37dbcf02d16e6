"""Book statistics over the sorted side arrays of `engine.orderbook` (SPEC Part C.6).

Each statistic is a numba kernel (`_name`) with a typed Python wrapper (`name`) that documents
the contract. Inputs are one side's (n, 2) levels (price, size; best first) or its size column,
plus the number of levels `n` in use. Sums run best level first, so results are bit-identical
wherever they are computed. Undefined results are NaN; an empty side has depth 0, so a book
with an empty side has NaN mid, spread, slope and density (see `book_stats`).

`book_stats` computes all of them in one call (the engine's per-tick path); its output is a
float64 vector indexed by the constants below.
"""

from __future__ import annotations

import math

import numpy as np

from engine.jit import kernel

#: Levels of the smaller top-K depth in `book_stats`.
DEPTH_K_SMALL = 5
#: Levels of the larger top-K depth in `book_stats`.
DEPTH_K_LARGE = 10
#: Levels of the OLS slope in `book_stats` (SPEC C.6: best K = 10 levels).
SLOPE_K = 10
#: Default half-width of the liquidity band around mid, in basis points (SPEC C.6: X = 10).
DENSITY_BPS = 10.0
#: One basis point as a fraction.
BPS = 1e-4

#: `book_stats` slot: mid price (best_bid + best_ask) / 2.
MID = 0
#: `book_stats` slot: best_ask − best_bid.
SPREAD = 1
#: `book_stats` slot: Σ size of the best DEPTH_K_SMALL bids.
DEPTH_BID_5 = 2
#: `book_stats` slot: Σ size of the best DEPTH_K_SMALL asks.
DEPTH_ASK_5 = 3
#: `book_stats` slot: Σ size of the best DEPTH_K_LARGE bids.
DEPTH_BID_10 = 4
#: `book_stats` slot: Σ size of the best DEPTH_K_LARGE asks.
DEPTH_ASK_10 = 5
#: `book_stats` slot: depth imbalance of the top DEPTH_K_SMALL levels.
IMBALANCE_5 = 6
#: `book_stats` slot: depth imbalance of the top DEPTH_K_LARGE levels.
IMBALANCE_10 = 7
#: `book_stats` slot: OLS slope of bid size against level index over the best SLOPE_K bids.
SLOPE_BID = 8
#: `book_stats` slot: OLS slope of ask size against level index over the best SLOPE_K asks.
SLOPE_ASK = 9
#: `book_stats` slot: total size both sides within `bps` of mid.
DENSITY = 10
#: Length of the `book_stats` vector.
N_STATS = 11


@kernel
def _top_depth(sizes: np.ndarray, n: int, k: int) -> float:
    """Σ of the first min(n, k) sizes, best first."""
    total = 0.0
    for i in range(min(n, k)):
        total += sizes[i]
    return total


@kernel
def _depth_imbalance(bid_depth: float, ask_depth: float) -> float:
    """(bid − ask) / (bid + ask); NaN when the total is 0."""
    total = bid_depth + ask_depth
    if total == 0.0:
        return np.nan
    return (bid_depth - ask_depth) / total


@kernel
def _ols_slope(sizes: np.ndarray, n: int, k: int) -> float:
    """OLS slope of sizes[0..m) against x = 1..m, m = min(n, k); NaN when m < 2."""
    m = min(n, k)
    if m < 2:
        return np.nan
    x_mean = (m + 1) / 2.0
    sxy = 0.0
    sxx = 0.0
    for i in range(m):
        dx = (i + 1) - x_mean
        sxy += dx * sizes[i]
        sxx += dx * dx
    return sxy / sxx


@kernel
def _side_density(levels: np.ndarray, n: int, mid: float, band: float, descending: bool) -> float:
    """Σ size of the `n` levels with |price − mid| / mid <= band, stopping past the band."""
    total = 0.0
    for i in range(n):
        price = levels[i, 0]
        if abs(price - mid) / mid <= band:
            total += levels[i, 1]
        elif (price <= mid) if descending else (price >= mid):
            break  # sorted away from mid: every further level is outside too
    return total


@kernel
def _liquidity_density(bids: np.ndarray, nb: int, asks: np.ndarray, na: int, mid: float,
                       bps: float) -> float:
    """Total size both sides within `bps` basis points of `mid`; NaN unless mid is finite > 0."""
    if not (math.isfinite(mid) and mid > 0.0):
        return np.nan
    band = bps * BPS
    return _side_density(bids, nb, mid, band, True) + _side_density(asks, na, mid, band, False)


@kernel
def _book_stats(bids: np.ndarray, nb: int, asks: np.ndarray, na: int, bps: float,
                out: np.ndarray) -> None:
    """Fill `out` (length N_STATS) with every statistic of one book (slots above)."""
    best_bid = bids[0, 0] if nb > 0 else np.nan
    best_ask = asks[0, 0] if na > 0 else np.nan
    mid = (best_bid + best_ask) / 2.0
    out[MID] = mid
    out[SPREAD] = best_ask - best_bid
    out[DEPTH_BID_5] = _top_depth(bids[:, 1], nb, DEPTH_K_SMALL)
    out[DEPTH_ASK_5] = _top_depth(asks[:, 1], na, DEPTH_K_SMALL)
    out[DEPTH_BID_10] = _top_depth(bids[:, 1], nb, DEPTH_K_LARGE)
    out[DEPTH_ASK_10] = _top_depth(asks[:, 1], na, DEPTH_K_LARGE)
    out[IMBALANCE_5] = _depth_imbalance(out[DEPTH_BID_5], out[DEPTH_ASK_5])
    out[IMBALANCE_10] = _depth_imbalance(out[DEPTH_BID_10], out[DEPTH_ASK_10])
    out[SLOPE_BID] = _ols_slope(bids[:, 1], nb, SLOPE_K)
    out[SLOPE_ASK] = _ols_slope(asks[:, 1], na, SLOPE_K)
    out[DENSITY] = _liquidity_density(bids, nb, asks, na, mid, bps)


def top_depth(sizes: np.ndarray, n: int, k: int) -> float:
    """Σ size of the best `k` levels (all `n` present when fewer); 0.0 for an empty side."""
    return _top_depth(sizes, int(n), int(k))


def depth_imbalance(bid_depth: float, ask_depth: float) -> float:
    """(bid − ask) / (bid + ask) of two depths; NaN when both are 0."""
    return _depth_imbalance(float(bid_depth), float(ask_depth))


def ols_slope(sizes: np.ndarray, n: int, k: int) -> float:
    """OLS slope of size against level index 1..m, m = min(n, k); NaN when m < 2."""
    return _ols_slope(sizes, int(n), int(k))


def liquidity_density(bids: np.ndarray, nb: int, asks: np.ndarray, na: int, mid: float,
                      bps: float) -> float:
    """Total size, both sides, at levels with |price − mid| / mid <= bps·1e−4; NaN if mid is not finite."""
    return _liquidity_density(bids, int(nb), asks, int(na), float(mid), float(bps))


def book_stats(bids: np.ndarray, nb: int, asks: np.ndarray, na: int,
               bps: float = DENSITY_BPS) -> np.ndarray:
    """Every book statistic in one kernel call: a float64[N_STATS] vector indexed by MID … DENSITY.

    An empty side gives NaN mid, spread and density, depth 0 on that side and NaN slope there.
    """
    out = np.empty(N_STATS, dtype=np.float64)
    _book_stats(bids, int(nb), asks, int(na), float(bps), out)
    return out
