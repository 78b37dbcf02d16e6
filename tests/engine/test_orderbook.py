"""OrderBook: SPEC Part D rules against a plain dict reference book, kernels, checkpoint round trip."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import orderbook as ob
from engine.orderbook import OrderBook

#: Price grid of the property test: tick i is the exact float of the decimal 100 + i/100.
GRID = [float(f"{100 + i / 100:.2f}") for i in range(120)]
#: Grid ticks below this are where bids normally live; asks live at and above it.
SPLIT = 60
#: Sizes drawn for levels; 0.0 deletes.
SIZES = [0.0, 0.5, 1.0, 2.5, 7.0]


class RefBook:
    """Independent reference: dicts price → size, sorted on demand, the SPEC Part D rules spelled out."""

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.valid = False
        self.last_u = 0
        self.reason = "no_snapshot"

    def sorted_bids(self) -> list[tuple[float, float]]:
        return sorted(self.bids.items(), reverse=True)

    def sorted_asks(self) -> list[tuple[float, float]]:
        return sorted(self.asks.items())

    def top(self) -> tuple[float | None, float | None]:
        return (max(self.bids) if self.bids else None, min(self.asks) if self.asks else None)

    def _apply(self, bids: list, asks: list) -> None:
        for side, levels in ((self.bids, bids), (self.asks, asks)):
            for p, s in levels:
                if s > 0:
                    side[p] = s
                else:
                    side.pop(p, None)
        self.bids = dict(self.sorted_bids()[: self.depth])
        self.asks = dict(self.sorted_asks()[: self.depth])

    def _crossed(self) -> bool:
        return bool(self.bids) and bool(self.asks) and max(self.bids) >= min(self.asks)

    def _invalid(self, reason: str) -> str:
        self.valid, self.reason = False, reason
        return reason

    def snapshot(self, u: int, bids: list, asks: list) -> str:
        if self.depth == 1 and self.valid and u < self.last_u and u != 1:
            return "stale"
        self.bids, self.asks = {}, {}
        self._apply(bids, asks)
        self.last_u = u
        if self._crossed():
            return self._invalid("crossed")
        self.valid, self.reason = True, ""
        return "reset" if u == 1 else "applied"

    def delta(self, u: int, bids: list, asks: list) -> str:
        if not self.valid:
            return "no_book"
        if u == 1:
            return self._invalid("reset")
        if u <= self.last_u:
            return "stale"
        if u > self.last_u + 1:
            return self._invalid("gap")
        self._apply(bids, asks)
        self.last_u = u
        return self._invalid("crossed") if self._crossed() else "applied"

    def invalidate(self, reason: str) -> bool:
        if not self.valid:
            return False
        self._invalid(reason)
        return True


def assert_same(book: OrderBook, ref: RefBook) -> None:
    """Every level of both sides, counts, best prices, validity, last_u and reason agree."""
    for got, want, n in ((book.bids(), ref.sorted_bids(), book.n_bids),
                         (book.asks(), ref.sorted_asks(), book.n_asks)):
        assert got.shape == (len(want), 2) and n == len(want)
        assert got.tolist() == [list(lv) for lv in want]
    assert _same_float(book.best_bid(), ref.sorted_bids()[0][0] if ref.bids else math.nan)
    assert _same_float(book.best_ask(), ref.sorted_asks()[0][0] if ref.asks else math.nan)
    assert (book.valid, book.last_u, book.invalid_reason) == (ref.valid, ref.last_u, ref.reason)
    # Rows beyond the count are NaN: the storage is a pure function of the records applied.
    assert np.isnan(book._levels[ob.BID, book.n_bids:]).all()
    assert np.isnan(book._levels[ob.ASK, book.n_asks:]).all()


def _same_float(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def levels_strategy(wild: bool, bid: bool, max_size: int) -> st.SearchStrategy:
    """Random (price, size) levels from the grid: on the side's half, or anywhere when `wild`."""
    lo, hi = (0, len(GRID) - 1) if wild else ((0, SPLIT - 1) if bid else (SPLIT, len(GRID) - 1))
    level = st.tuples(st.integers(lo, hi).map(GRID.__getitem__), st.sampled_from(SIZES))
    return st.lists(level, max_size=max_size)


@st.composite
def update(draw: st.DrawFn) -> tuple:
    """One step: a snapshot, a delta or an invalidate, with a u relative to the book's last_u."""
    kind = draw(st.sampled_from(["snap"] * 3 + ["delta"] * 16 + ["invalidate"]))
    if kind == "invalidate":
        return ("invalidate", 0, [], [], False)
    wild = draw(st.integers(0, 4 if kind == "snap" else 14)) == 0
    size = 70 if kind == "snap" else 12
    bids = draw(levels_strategy(wild, True, size))
    asks = draw(levels_strategy(wild, False, size))
    # Offset from last_u: mostly the next id; also repeats, stale, gaps; None means u = 1.
    offset = draw(st.sampled_from([1] * 14 + [0, -1, -3, 2, 5, None]))
    as_list = draw(st.integers(0, 7)) == 0
    return (kind, offset, bids, asks, as_list)


def _arr(levels: list, as_list: bool) -> np.ndarray | list:
    return [list(lv) for lv in levels] if as_list else np.array(levels, dtype=np.float64).reshape(-1, 2)


def run_step(book: OrderBook, ref: RefBook, step: tuple) -> None:
    """Apply one step to both books and compare outcome, transition flag and the whole state."""
    kind, offset, bids, asks, as_list = step
    was_valid = ref.valid
    if kind == "invalidate":
        assert book.invalidate("gateway_down") == ref.invalidate("gateway_down")
    else:
        u = 1 if offset is None else max(1, ref.last_u + offset)
        if kind == "snap":
            got, want = book.apply_snapshot(u, _arr(bids, as_list), _arr(asks, as_list)), ref.snapshot(u, bids, asks)
        else:
            top_before = ref.top()
            got, want = book.apply_delta(u, _arr(bids, as_list), _arr(asks, as_list)), ref.delta(u, bids, asks)
            if got == "applied":  # the churn signal: best bid or ask price differs from before
                assert book.top_moved == (ref.top() != top_before), (top_before, ref.top())
        assert got == want, (kind, u, bids, asks)
        event(f"{kind} {got}")
    assert book.became_invalid == (was_valid and not ref.valid)
    assert_same(book, ref)
    if max(book.n_bids, book.n_asks) == book.depth:
        event("a side is full (truncation in play)")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(depth=st.sampled_from([1, 5, 50]), first_u=st.integers(1, 1_000),
       first=levels_strategy(False, True, 70), steps=st.lists(update(), min_size=1, max_size=40))
def test_matches_reference_book_after_every_step(depth: int, first_u: int, first: list,
                                                 steps: list[tuple]) -> None:
    """Random snapshot/delta/stale/gap/reset/crossed sequences: same state as the dict book after each."""
    book, ref = OrderBook(depth), RefBook(depth)
    assert_same(book, ref)
    asks = [(GRID[-1 - GRID.index(p)], s) for p, s in first]
    run_step(book, ref, ("snap", first_u, first, asks, False))
    for step in steps:
        run_step(book, ref, step)


@settings(max_examples=60, deadline=None)
@given(depth=st.sampled_from([1, 5, 50]), before=st.lists(update(), max_size=25),
       after=st.lists(update(), max_size=10))
def test_checkpoint_round_trip_is_bit_identical(depth: int, before: list, after: list) -> None:
    """to_state → msgpack → from_state gives the same state bytes, and the same future."""
    book, ref = OrderBook(depth), RefBook(depth)
    for step in before:
        run_step(book, ref, step)
    state = book.to_state()
    restored = OrderBook.from_state(msgpack.unpackb(msgpack.packb(state)))
    assert restored.to_state() == state
    assert restored.bids().tobytes() == book.bids().tobytes()
    assert restored.asks().tobytes() == book.asks().tobytes()
    twin = RefBook(depth)
    twin.__dict__.update({k: (dict(v) if isinstance(v, dict) else v) for k, v in ref.__dict__.items()})
    for step in after:
        run_step(book, ref, step)
        run_step(restored, twin, step)
        assert restored.to_state() == book.to_state()


def _snap(book: OrderBook, u: int, bids: list, asks: list) -> str:
    return book.apply_snapshot(u, np.array(bids, dtype=np.float64).reshape(-1, 2),
                               np.array(asks, dtype=np.float64).reshape(-1, 2))


def _delta(book: OrderBook, u: int, bids: list, asks: list) -> str:
    return book.apply_delta(u, np.array(bids, dtype=np.float64).reshape(-1, 2),
                            np.array(asks, dtype=np.float64).reshape(-1, 2))


def test_fresh_book_is_invalid_and_empty() -> None:
    book = OrderBook(50)
    assert (book.valid, book.last_u, book.invalid_reason, book.depth) == (False, 0, "no_snapshot", 50)
    assert math.isnan(book.best_bid()) and math.isnan(book.best_ask())
    assert book.bids().shape == (0, 2) and book.asks().shape == (0, 2)
    assert _delta(book, 1, [[1.0, 1.0]], []) == "no_book" and not book.became_invalid


def test_depth_must_be_positive() -> None:
    with pytest.raises(ValueError, match="depth"):
        OrderBook(0)


def test_contiguous_deltas_set_insert_delete_and_ignore_absent_delete() -> None:
    book = OrderBook(5)
    assert _snap(book, 10, [[99.0, 1.0], [98.0, 2.0]], [[101.0, 3.0]]) == "applied"
    assert _delta(book, 11, [[98.0, 5.0], [98.5, 1.5], [97.0, 0.0]], [[101.0, 0.0], [102.0, 4.0]]) == "applied"
    assert book.bids().tolist() == [[99.0, 1.0], [98.5, 1.5], [98.0, 5.0]]
    assert book.asks().tolist() == [[102.0, 4.0]]
    assert (book.best_bid(), book.best_ask(), book.last_u) == (99.0, 102.0, 11)


def test_truncates_each_side_to_depth_after_the_whole_delta() -> None:
    book = OrderBook(2)
    _snap(book, 5, [[99.0, 1.0], [98.0, 1.0]], [[101.0, 1.0]])
    # 97 is inserted beyond depth, then 99 is deleted: 97 comes back into the top 2.
    assert _delta(book, 6, [[97.0, 3.0], [99.0, 0.0]], []) == "applied"
    assert book.bids().tolist() == [[98.0, 1.0], [97.0, 3.0]]
    assert _delta(book, 7, [[100.0, 2.0]], []) == "applied"
    assert book.bids().tolist() == [[100.0, 2.0], [98.0, 1.0]]


def test_stale_gap_and_delta_reset() -> None:
    book = OrderBook(50)
    _snap(book, 100, [[99.0, 1.0]], [[101.0, 1.0]])
    assert _delta(book, 100, [[99.0, 9.0]], []) == "stale" and book.valid
    assert book.bids().tolist() == [[99.0, 1.0]]
    assert _delta(book, 102, [], []) == "gap" and book.became_invalid and book.invalid_reason == "gap"
    assert _delta(book, 101, [], []) == "no_book" and not book.became_invalid
    _snap(book, 200, [[99.0, 1.0]], [[101.0, 1.0]])
    assert _delta(book, 1, [], []) == "reset" and book.became_invalid and not book.valid


def test_snapshot_with_u_1_is_a_normal_reset() -> None:
    book = OrderBook(50)
    _snap(book, 500, [[99.0, 1.0]], [[101.0, 1.0]])
    assert _snap(book, 1, [[98.0, 1.0]], [[100.0, 1.0]]) == "reset"
    assert book.valid and book.last_u == 1 and not book.became_invalid
    assert _delta(book, 2, [[98.0, 2.0]], []) == "applied"


def test_depth_1_repeats_and_stale_snapshots() -> None:
    book = OrderBook(1)
    assert _snap(book, 7, [[99.0, 1.0]], [[101.0, 1.0]]) == "applied"
    assert _snap(book, 7, [[99.5, 2.0]], [[101.0, 1.0]]) == "applied"
    assert book.bids().tolist() == [[99.5, 2.0]]
    assert _snap(book, 6, [[50.0, 1.0]], [[101.0, 1.0]]) == "stale"
    assert book.bids().tolist() == [[99.5, 2.0]] and book.last_u == 7
    book.invalidate("gateway_down")
    assert _snap(book, 6, [[50.0, 1.0]], [[101.0, 1.0]]) == "applied" and book.valid


def test_older_snapshot_replaces_a_deeper_book() -> None:
    book = OrderBook(50)
    _snap(book, 9, [[99.0, 1.0]], [[101.0, 1.0]])
    assert _snap(book, 4, [[98.0, 1.0]], [[102.0, 1.0]]) == "applied" and book.last_u == 4


def test_crossed_snapshot_and_delta_invalidate() -> None:
    book = OrderBook(50)
    assert _snap(book, 3, [[101.0, 1.0]], [[101.0, 1.0]]) == "crossed"
    assert not book.valid and not book.became_invalid  # it was never valid: no transition
    assert _snap(book, 4, [[99.0, 1.0]], [[101.0, 1.0]]) == "applied"
    assert _snap(book, 5, [[102.0, 1.0]], [[101.0, 1.0]]) == "crossed" and book.became_invalid
    _snap(book, 6, [[99.0, 1.0]], [[101.0, 1.0]])
    assert _delta(book, 7, [[101.5, 1.0]], []) == "crossed" and book.became_invalid
    assert book.last_u == 7 and book.invalid_reason == "crossed"


def test_invalidate_reports_transitions_only() -> None:
    book = OrderBook(5)
    assert book.invalidate("gateway_down") is False
    _snap(book, 2, [[99.0, 1.0]], [[101.0, 1.0]])
    assert book.invalidate("gateway_down") is True and book.became_invalid
    assert book.invalid_reason == "gateway_down"
    assert book.invalidate("gateway_up") is False and not book.became_invalid
    assert book.invalid_reason == "gateway_down"


def test_views_are_read_only() -> None:
    book = OrderBook(5)
    _snap(book, 2, [[99.0, 1.0]], [[101.0, 1.0]])
    with pytest.raises(ValueError):
        book.bids()[0, 1] = 5.0


def test_grows_beyond_the_spare_rows() -> None:
    """A snapshot or delta with more levels than depth + SPARE_ROWS still applies and truncates."""
    n = 3 * ob.SPARE_ROWS
    book = OrderBook(5)
    bids = [[100.0 - i, 1.0 + i] for i in range(n)]
    asks = [[200.0 + i, 1.0] for i in range(n)]
    assert _snap(book, 1_000, bids, asks) == "applied"
    assert book.bids().tolist() == bids[:5] and book.n_asks == 5
    assert _delta(book, 1_001, [[100.5 + i / 1_000, 1.0] for i in range(n)], []) == "applied"
    assert book.bids()[:, 0].tolist() == [100.5 + i / 1_000 for i in range(n - 1, n - 6, -1)]


def test_non_finite_prices_are_ignored_and_empty_sides_accepted() -> None:
    book = OrderBook(5)
    _snap(book, 2, [[99.0, 1.0], [math.nan, 1.0]], [[101.0, 1.0], [math.inf, 2.0]])
    assert book.bids().tolist() == [[99.0, 1.0]] and book.asks().tolist() == [[101.0, 1.0]]
    assert book.apply_delta(3, np.array([], dtype=np.float64), None) == "applied"
    assert book.apply_delta(4, [[98.0, 1.0]], [[102.0, 1.0]]) == "applied"
    assert book.n_bids == 2 and book.n_asks == 2


def test_from_state_rejects_unknown_version() -> None:
    state = OrderBook(5).to_state()
    state["v"] = 99
    with pytest.raises(ValueError, match="version"):
        OrderBook.from_state(state)


def test_same_records_give_bit_identical_storage() -> None:
    """Two books fed the same records hold byte-identical arrays (NaN fill included)."""
    rng = np.random.default_rng(11)
    books = [OrderBook(20), OrderBook(20)]
    snap = (np.array([[100.0 - i, 1.0] for i in range(20)]), np.array([[101.0 + i, 1.0] for i in range(20)]))
    for b in books:
        b.apply_snapshot(1, *snap)
    for u in range(2, 300):
        bids = np.column_stack([100.0 - rng.integers(0, 40, 5), rng.integers(0, 3, 5) * 0.5])
        asks = np.column_stack([101.0 + rng.integers(0, 40, 5), rng.integers(0, 3, 5) * 0.5])
        outs = {b.apply_delta(u, bids, asks) for b in books}
        assert outs == {"applied"}
    assert books[0]._levels.tobytes() == books[1]._levels.tobytes()


@pytest.mark.skipif(not hasattr(ob._delta_kernel, "py_func"), reason="NUMBA_DISABLE_JIT: nothing compiled")
def test_delta_kernel_matches_its_python_original() -> None:
    """The compiled level kernel and its `.py_func` give the same storage on random deltas."""
    rng = np.random.default_rng(5)
    levels = np.full((2, 40, 2), np.nan)
    counts = np.zeros(ob.COUNTS_SHAPE, dtype=np.int64)
    counts[ob.STATE, ob.DEPTH], counts[ob.STATE, ob.LAST_U], counts[ob.FLAGS, 0] = 16, 1, 1
    twin_levels, twin_counts = levels.copy(), counts.copy()
    for u in range(1, 201):
        bids = np.column_stack([100.0 - rng.integers(0, 30, 8), rng.integers(0, 3, 8) * 1.5])
        asks = np.column_stack([130.0 - rng.integers(0, 60, 8), rng.integers(0, 3, 8) * 1.5])
        a = ob._delta_kernel(levels, counts, u + 1, bids, asks)
        b = ob._delta_kernel.py_func(twin_levels, twin_counts, u + 1, bids, asks)
        assert a == b and a & ob.RUN_STATUS != ob.RUN_REJECT
        assert levels.tobytes() == twin_levels.tobytes() and counts.tolist() == twin_counts.tolist()
