"""Book statistics: hand-calculated values, empty sides, and compiled kernels against `.py_func`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine import bookstats as bs
from engine.orderbook import OrderBook

#: A hand-checkable book around mid 1000: bids 999, 998, 990; asks 1001, 1003.
BIDS = np.array([[999.0, 1.0], [998.0, 2.0], [990.0, 4.0]])
ASKS = np.array([[1001.0, 3.0], [1003.0, 5.0]])


def _bits(x: float | np.ndarray) -> bytes:
    return np.asarray(x, dtype=np.float64).tobytes()


def test_top_depth_sums_the_best_k_levels() -> None:
    sizes = np.array([3.0, 2.0, 1.0, math.nan])  # the NaN row is beyond n: never read
    assert bs.top_depth(sizes, 3, 2) == 5.0
    assert bs.top_depth(sizes, 3, 10) == 6.0  # fewer levels than k: sum of those present
    assert bs.top_depth(sizes, 0, 5) == 0.0


def test_depth_imbalance() -> None:
    assert bs.depth_imbalance(3.0, 1.0) == 0.5
    assert bs.depth_imbalance(0.0, 2.0) == -1.0
    assert math.isnan(bs.depth_imbalance(0.0, 0.0))


@pytest.mark.parametrize(("sizes", "n", "k", "want"), [
    ([3.0, 2.0, 1.0], 3, 10, -1.0),         # x̄ = 2: (−1·3 + 0·2 + 1·1) / 2
    ([1.0, 3.0, 2.0], 3, 10, 0.5),          # (−1·1 + 1·2) / 2
    ([1.0, 2.0, 3.0, 4.0], 4, 10, 1.0),     # (−1.5 − 1 + 1.5 + 6) / 5
    ([3.0, 2.0, 1.0, 100.0], 4, 3, -1.0),   # only the best k = 3 levels
    ([2.0, 4.0, 9.0], 2, 10, 2.0),          # only the n = 2 levels in use
])
def test_ols_slope_by_hand(sizes: list, n: int, k: int, want: float) -> None:
    assert bs.ols_slope(np.array(sizes), n, k) == want


def test_ols_slope_needs_two_levels() -> None:
    assert math.isnan(bs.ols_slope(np.array([5.0]), 1, 10))
    assert math.isnan(bs.ols_slope(np.array([5.0, 6.0]), 2, 1))
    assert math.isnan(bs.ols_slope(np.empty(0), 0, 10))


@pytest.mark.parametrize(("bps", "want"), [
    (15.0, 1.0 + 3.0),              # |p − 1000| <= 1.5: 999 and 1001
    (25.0, 1.0 + 2.0 + 3.0),        # <= 2.5: adds 998
    (35.0, 1.0 + 2.0 + 3.0 + 5.0),  # <= 3.5: adds 1003
    (150.0, 15.0),                  # <= 15: every level
    (5.0, 0.0),                     # <= 0.5: none
])
def test_liquidity_density_by_hand(bps: float, want: float) -> None:
    assert bs.liquidity_density(BIDS, 3, ASKS, 2, 1000.0, bps) == want


def test_liquidity_density_undefined_mid_and_levels_beyond_n() -> None:
    assert math.isnan(bs.liquidity_density(BIDS, 3, ASKS, 2, math.nan, 10.0))
    assert math.isnan(bs.liquidity_density(BIDS, 3, ASKS, 2, 0.0, 10.0))
    assert bs.liquidity_density(BIDS, 1, ASKS, 0, 1000.0, 100.0) == 1.0


def test_liquidity_density_counts_a_bid_above_mid() -> None:
    """Levels on the far side of mid are still tested (the early stop only applies past mid)."""
    bids = np.array([[1000.5, 7.0], [999.0, 1.0], [998.0, 2.0]])
    assert bs.liquidity_density(bids, 3, ASKS, 2, 1000.0, 15.0) == 7.0 + 1.0 + 3.0


def test_book_stats_by_hand() -> None:
    sizes_b = [5.0, 4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 9.0]
    bids = np.array([[100.0 - i, s] for i, s in enumerate(sizes_b)])  # 100, 99, …, 90
    asks = np.array([[102.0, 1.0], [103.0, 2.0], [104.0, 3.0]])
    out = bs.book_stats(bids, len(bids), asks, len(asks), bps=150.0)
    assert out.shape == (bs.N_STATS,)
    assert out[bs.MID] == 101.0 and out[bs.SPREAD] == 2.0
    assert out[bs.DEPTH_BID_5] == 15.0 and out[bs.DEPTH_ASK_5] == 6.0
    assert out[bs.DEPTH_BID_10] == 20.0 and out[bs.DEPTH_ASK_10] == 6.0
    assert out[bs.IMBALANCE_5] == 9.0 / 21.0 and out[bs.IMBALANCE_10] == 14.0 / 26.0
    # Bids 1..10: x̄ = 5.5, Σ(x − x̄)·y = −4.5·5 − 3.5·4 − 2.5·3 − 1.5·2 − 0.5 + 0.5 + 1.5 + 2.5 + 3.5 + 4.5
    # = −35; Σ(x − x̄)² = 82.5. Asks 1..3: slope 1.
    assert out[bs.SLOPE_BID] == -35.0 / 82.5 and out[bs.SLOPE_ASK] == 1.0
    # Band 1.5 % of 101 = 1.515: bids 100 (5), asks 102 (1).
    assert out[bs.DENSITY] == 6.0


def test_book_stats_with_an_empty_side() -> None:
    out = bs.book_stats(BIDS, 3, np.empty((0, 2)), 0)
    assert math.isnan(out[bs.MID]) and math.isnan(out[bs.SPREAD]) and math.isnan(out[bs.DENSITY])
    assert out[bs.DEPTH_BID_5] == 7.0 and out[bs.DEPTH_ASK_5] == 0.0 and out[bs.DEPTH_ASK_10] == 0.0
    assert out[bs.IMBALANCE_5] == 1.0 and out[bs.SLOPE_BID] == 1.5 and math.isnan(out[bs.SLOPE_ASK])
    empty = bs.book_stats(np.empty((0, 2)), 0, np.empty((0, 2)), 0)
    assert math.isnan(empty[bs.IMBALANCE_10]) and empty[bs.DEPTH_BID_10] == 0.0


def _random_book(rng: np.random.Generator) -> OrderBook:
    """A random valid book of up to 30 levels a side on a 0.01 grid."""
    book = OrderBook(50)
    nb, na = int(rng.integers(0, 30)), int(rng.integers(0, 30))
    bid_ticks = np.sort(rng.choice(np.arange(1, 200), nb, replace=False))[::-1]
    ask_ticks = np.sort(rng.choice(np.arange(201, 400), na, replace=False))
    sizes = rng.integers(1, 10_000, nb + na) / 1_000.0
    bids = np.column_stack([(10_000 + bid_ticks) / 100.0, sizes[:nb]])
    asks = np.column_stack([(10_000 + ask_ticks) / 100.0, sizes[nb:]])
    assert book.apply_snapshot(5, bids, asks) == "applied"
    return book


@pytest.mark.skipif(not hasattr(bs._book_stats, "py_func"), reason="NUMBA_DISABLE_JIT: nothing compiled")
def test_compiled_kernels_match_their_python_originals() -> None:
    """Every kernel, compiled and `.py_func`, on random books (read-only views, strided columns)."""
    rng = np.random.default_rng(2024)
    for _ in range(200):
        book = _random_book(rng)
        b, a, nb, na = book.bids(), book.asks(), book.n_bids, book.n_asks
        k = int(rng.integers(1, 25))
        bps = float(rng.choice([1.0, 5.0, 10.0, 50.0, 400.0]))
        mid = (book.best_bid() + book.best_ask()) / 2.0
        for fn, args in ((bs._top_depth, (b[:, 1], nb, k)), (bs._top_depth, (a[:, 1], na, k)),
                         (bs._ols_slope, (b[:, 1], nb, k)), (bs._ols_slope, (a[:, 1], na, k)),
                         (bs._depth_imbalance, (bs.top_depth(b[:, 1], nb, k), bs.top_depth(a[:, 1], na, k))),
                         (bs._liquidity_density, (b, nb, a, na, mid, bps))):
            assert _bits(fn(*args)) == _bits(fn.py_func(*args)), fn
        out, twin = np.empty(bs.N_STATS), np.empty(bs.N_STATS)
        bs._book_stats(b, nb, a, na, bps, out)
        bs._book_stats.py_func(b, nb, a, na, bps, twin)
        assert out.tobytes() == twin.tobytes()


def test_book_stats_agrees_with_the_single_statistics() -> None:
    rng = np.random.default_rng(7)
    for _ in range(50):
        book = _random_book(rng)
        b, a, nb, na = book.bids(), book.asks(), book.n_bids, book.n_asks
        out = bs.book_stats(b, nb, a, na, 10.0)
        mid = (book.best_bid() + book.best_ask()) / 2.0
        want = [mid, book.best_ask() - book.best_bid(),
                bs.top_depth(b[:, 1], nb, 5), bs.top_depth(a[:, 1], na, 5),
                bs.top_depth(b[:, 1], nb, 10), bs.top_depth(a[:, 1], na, 10),
                bs.depth_imbalance(bs.top_depth(b[:, 1], nb, 5), bs.top_depth(a[:, 1], na, 5)),
                bs.depth_imbalance(bs.top_depth(b[:, 1], nb, 10), bs.top_depth(a[:, 1], na, 10)),
                bs.ols_slope(b[:, 1], nb, 10), bs.ols_slope(a[:, 1], na, 10),
                bs.liquidity_density(b, nb, a, na, mid, 10.0)]
        assert out.tobytes() == np.array(want).tobytes()


def test_density_matches_a_naive_scan() -> None:
    """The early-stopping scan equals the spec formula applied to every level."""
    rng = np.random.default_rng(3)
    for _ in range(100):
        book = _random_book(rng)
        mid = (book.best_bid() + book.best_ask()) / 2.0
        for bps in (1.0, 10.0, 30.0, 200.0):
            got = bs.liquidity_density(book.bids(), book.n_bids, book.asks(), book.n_asks, mid, bps)
            if math.isnan(mid):
                assert math.isnan(got)
                continue
            near = [sum(s for p, s in side.tolist() if abs(p - mid) / mid <= bps * 1e-4)
                    for side in (book.bids(), book.asks())]
            assert _bits(got) == _bits(near[0] + near[1])
