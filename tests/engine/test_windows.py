"""engine/windows.py against naive references written here: Python loops over the raw events."""

from __future__ import annotations

import math
import struct
from typing import Any

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import windows
from engine.windows import (
    N_STATS,
    STAT_BUY_V,
    STAT_COUNT,
    STAT_SELL_V,
    STAT_SIGNED_PV,
    STAT_SIGNED_V,
    STAT_SUM_PV,
    STAT_SUM_V,
    EventTimes,
    TickSeries,
    TradeIdFilter,
    TradeWindow,
    rolling_zscore,
    sample_std,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

Trade = tuple[int, float, float, int]

# --- strategies ----------------------------------------------------------------------------------
# Times are small integers so that events land exactly on t and on t − W often.

prices = st.floats(0.01, 1e5, allow_nan=False, allow_infinity=False)
sizes = st.floats(1e-6, 1e4, allow_nan=False, allow_infinity=False)
trades = st.tuples(prices, sizes, st.sampled_from([1, -1]))
message = st.tuples(st.just("trades"), st.integers(0, 3), st.lists(trades, min_size=0, max_size=6))
tick = st.tuples(st.just("tick"), st.integers(0, 3), st.just([]))
ops = st.lists(st.one_of(message, tick), min_size=1, max_size=80)
horizons = st.integers(1, 12)


def window_set(horizon: int) -> st.SearchStrategy[list[int]]:
    """Windows of 1..horizon (duplicates allowed, unsorted) for one stream."""
    return st.lists(st.integers(1, horizon), min_size=1, max_size=4)


def msgpack_round_trip(d: dict[str, Any]) -> dict[str, Any]:
    """The state as the engine checkpoint would carry it."""
    return msgpack.unpackb(msgpack.packb(d, use_bin_type=True), raw=False, strict_map_key=False)


def py(fn: Any) -> Any:
    """The Python original of a kernel (the function itself under NUMBA_DISABLE_JIT=1)."""
    return getattr(fn, "py_func", fn)


def bits(x: float) -> bytes:
    """The IEEE bits of x (NaN == NaN, 0.0 != -0.0)."""
    return struct.pack("<d", x)


# --- naive references ------------------------------------------------------------------------------


def naive_stats(events: list[Trade], t: int, w: int) -> np.ndarray:
    """Stats row over events in (t − w, t], summed in arrival order with plain Python floats."""
    sum_v = sum_pv = buy_v = sell_v = buy_pv = sell_pv = 0.0
    count = 0
    for ns, p, v, side in events:
        if t - w < ns <= t:
            pv = p * v
            sum_v += v
            sum_pv += pv
            count += 1
            if side > 0:
                buy_v += v
                buy_pv += pv
            else:
                sell_v += v
                sell_pv += pv
    row = [0.0] * N_STATS
    row[STAT_SUM_V], row[STAT_SUM_PV], row[STAT_COUNT] = sum_v, sum_pv, float(count)
    row[STAT_BUY_V], row[STAT_SELL_V] = buy_v, sell_v
    row[STAT_SIGNED_V], row[STAT_SIGNED_PV] = buy_v - sell_v, buy_pv - sell_pv
    return np.array(row)


def add_message(w: TradeWindow, events: list[Trade], now: int, batch: list[tuple[float, float, int]]) -> None:
    """Add one message to the window and to the raw event list."""
    w.add(now, np.array([b[0] for b in batch], dtype=np.float64), np.array([b[1] for b in batch], dtype=np.float64),
          np.array([b[2] for b in batch], dtype=np.int8))
    events.extend((now, p, v, s) for p, v, s in batch)


def run_stream(w: TradeWindow, stream: list, wins: list[int], now: int, events: list[Trade]) -> list[bytes]:
    """Feed ops to w (evicting on ticks); return every tick's stats_multi bytes."""
    out = []
    for kind, dt, batch in stream:
        now += dt
        if kind == "trades":
            add_message(w, events, now, batch)
        else:
            out.append(w.stats_multi(now, np.array(wins, dtype=np.int64)).tobytes())
            w.evict(now)
    return out


# --- TradeWindow -------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data(), stream=ops, horizon=horizons)
def test_trade_stats_equal_naive_sums_bit_for_bit(data: st.DataObject, stream: list, horizon: int) -> None:
    wins = data.draw(window_set(horizon))
    w, events, now = TradeWindow(horizon), [], 0
    for kind, dt, batch in stream:
        now += dt
        if kind == "trades":
            add_message(w, events, now, batch)
            continue
        multi = w.stats_multi(now, np.array(wins, dtype=np.int64))
        assert multi.shape == (len(wins), N_STATS)
        for j, win in enumerate(wins):
            expected = naive_stats(events, now, win)
            assert multi[j].tobytes() == expected.tobytes()
            assert w.stats(now, win).tobytes() == expected.tobytes()
        w.evict(now)
        held = np.frombuffer(w.to_state()["ns"], dtype="<i8").tolist()
        assert held == [e[0] for e in events if e[0] > now - horizon]


@SETTINGS
@given(data=st.data(), stream=st.lists(message, min_size=1, max_size=40))
def test_trade_stats_at_any_time_without_eviction(data: st.DataObject, stream: list) -> None:
    w, events, now = TradeWindow(100), [], 0
    for _, dt, batch in stream:
        now += dt
        add_message(w, events, now, batch)
    for _ in range(10):
        t = data.draw(st.integers(-2, now + 2))
        win = data.draw(st.integers(-1, now + 4))
        assert w.stats(t, win).tobytes() == naive_stats(events, t, win).tobytes()


def test_trade_stats_hand_example() -> None:
    w = TradeWindow(10)
    w.add(1, np.array([100.0, 101.0]), np.array([2.0, 1.0]), np.array([1, -1], dtype=np.int8))
    w.add(5, np.array([102.0]), np.array([3.0]), np.array([-1], dtype=np.int8))
    # (5 − 4, 5] excludes the trades at exactly t − W = 1.
    assert w.stats(5, 4).tolist() == [3.0, 306.0, 0.0, 3.0, -3.0, -306.0, 1.0]
    assert w.stats(5, 5).tolist() == [6.0, 607.0, 2.0, 4.0, -2.0, 200.0 - 101.0 - 306.0, 3.0]
    assert w.stats(0, 5).tolist() == [0.0] * N_STATS
    assert w.stats_multi(5, np.array([], dtype=np.int64)).shape == (0, N_STATS)


def test_trade_window_rejects_bad_input() -> None:
    w = TradeWindow(10)
    w.add(5, np.array([1.0]), np.array([1.0]), np.array([1], dtype=np.int8))
    with pytest.raises(ValueError, match="older"):
        w.add(4, np.array([1.0]), np.array([1.0]), np.array([1], dtype=np.int8))
    with pytest.raises(ValueError, match="length"):
        w.add(6, np.array([1.0, 2.0]), np.array([1.0]), np.array([1], dtype=np.int8))
    w.add(3, np.array([]), np.array([]), np.array([], dtype=np.int8))  # empty message: nothing to order
    assert len(w) == 1


def test_trade_window_storage_stays_bounded_over_a_long_run() -> None:
    w = TradeWindow(1_000)
    p, v, s = np.ones(3), np.ones(3), np.array([1, -1, 1], dtype=np.int8)
    for i in range(20_000):
        w.add(i * 10, p, v, s)
        w.evict(i * 10)
    assert len(w) == 300
    assert w._cols.cols[0].shape[0] <= 4 * 300 + windows.MIN_CAPACITY
    assert w.stats(199_990, 1_000)[STAT_COUNT] == 300.0


@SETTINGS
@given(data=st.data(), stream=ops, horizon=horizons)
def test_trade_window_restore_continues_identically(data: st.DataObject, stream: list, horizon: int) -> None:
    wins = data.draw(window_set(horizon))
    split = data.draw(st.integers(0, len(stream)))
    w = TradeWindow(horizon)
    run_stream(w, stream[:split], wins, 0, [])
    now = sum(op[1] for op in stream[:split])
    state = w.to_state()
    restored = TradeWindow.from_state(msgpack_round_trip(state))
    assert restored.to_state() == state
    assert run_stream(restored, stream[split:], wins, now, []) == run_stream(w, stream[split:], wins, now, [])
    assert restored.to_state() == w.to_state()


# --- TradeIdFilter -----------------------------------------------------------------------------------

id_messages = st.lists(st.tuples(st.integers(0, 3), st.lists(st.sampled_from("abcdefg"), max_size=5)),
                       min_size=1, max_size=60)


def naive_fresh(accepted: dict[str, int], now: int, ids: list[str], horizon: int) -> list[bool]:
    """Fresh unless accepted at a time > now − horizon; accepting records the time."""
    mask = []
    for i in ids:
        ok = not (i in accepted and accepted[i] > now - horizon)
        if ok:
            accepted[i] = now
        mask.append(ok)
    return mask


@SETTINGS
@given(msgs=id_messages, horizon=horizons, data=st.data())
def test_trade_id_filter_matches_naive_and_restores(msgs: list, horizon: int, data: st.DataObject) -> None:
    split = data.draw(st.integers(0, len(msgs)))
    f, accepted, now = TradeIdFilter(horizon), {}, 0
    for k, (dt, ids) in enumerate(msgs):
        if k == split:
            state = f.to_state()
            f = TradeIdFilter.from_state(msgpack_round_trip(state))
            assert f.to_state() == state
        now += dt
        got = f.fresh(now, ids)
        assert got.dtype == np.bool_
        assert got.tolist() == naive_fresh(accepted, now, ids, horizon)
        assert len(f) == sum(1 for t in accepted.values() if t > now - horizon)


def test_trade_id_filter_evicts_in_insertion_order() -> None:
    f = TradeIdFilter(10)
    assert f.fresh(0, ["b", "a", "b"]).tolist() == [True, True, False]
    assert f.fresh(5, ["c", "a"]).tolist() == [True, False]
    assert f.fresh(10, ["a", "b", "c"]).tolist() == [True, True, False]
    assert f.to_state()["batches"] == [[5, ["c"]], [10, ["a", "b"]]]
    with pytest.raises(ValueError, match="older"):
        f.fresh(9, ["z"])


# --- TickSeries --------------------------------------------------------------------------------------

tick_values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.just(math.nan))
tick_pushes = st.lists(st.tuples(st.integers(1, 3), tick_values), min_size=1, max_size=50)


@SETTINGS
@given(pushes=tick_pushes, capacity=st.integers(1, 8), data=st.data())
def test_tick_series_matches_naive(pushes: list, capacity: int, data: st.DataObject) -> None:
    s, held, now = TickSeries(capacity), [], 0
    for dt, value in pushes:
        now += dt
        s.push(now, value)
        held = (held + [(now, value)])[-capacity:]
        q = data.draw(st.integers(now - 3 * capacity - 3, now + 1))
        assert bits(s.at(q)) == bits(dict(held).get(q, math.nan))
        span = data.draw(st.integers(-1, 3 * capacity + 3))
        expected = [v for t, v in held if q - span < t <= q]
        assert s.window_values(q, span).tobytes() == np.array(expected, dtype=np.float64).tobytes()
        n = data.draw(st.integers(0, capacity + 2))
        expected = [v for _, v in held][len(held) - min(n, len(held)):]
        assert s.last_n(n).tobytes() == np.array(expected, dtype=np.float64).tobytes()
        assert len(s) == len(held)


@SETTINGS
@given(pushes=tick_pushes, capacity=st.integers(1, 8), data=st.data())
def test_tick_series_restore_continues_identically(pushes: list, capacity: int, data: st.DataObject) -> None:
    split = data.draw(st.integers(0, len(pushes)))
    s, now = TickSeries(capacity), 0
    for dt, value in pushes[:split]:
        now += dt
        s.push(now, value)
    state = s.to_state()
    r = TickSeries.from_state(msgpack_round_trip(state))
    assert r.to_state() == state
    for dt, value in pushes[split:]:
        now += dt
        s.push(now, value)
        r.push(now, value)
        assert r.last_n(capacity).tobytes() == s.last_n(capacity).tobytes()
        assert bits(r.at(now - 1)) == bits(s.at(now - 1))
    assert r.to_state() == s.to_state()


def test_tick_series_rejects_repeated_tick_and_bad_capacity() -> None:
    s = TickSeries(2)
    s.push(10, 1.0)
    with pytest.raises(ValueError, match="not after"):
        s.push(10, 2.0)
    with pytest.raises(ValueError, match="capacity"):
        TickSeries(0)
    assert TickSeries.from_state(s.to_state(), capacity=5).capacity == 5


# --- EventTimes --------------------------------------------------------------------------------------

event_ops = st.lists(st.tuples(st.sampled_from(["add", "tick"]), st.integers(0, 3)), min_size=1, max_size=80)


@SETTINGS
@given(stream=event_ops, horizon=horizons, data=st.data())
def test_event_times_count_evict_restore(stream: list, horizon: int, data: st.DataObject) -> None:
    wins = data.draw(window_set(horizon))
    split = data.draw(st.integers(0, len(stream)))
    e, seen, now = EventTimes(horizon), [], 0
    for k, (kind, dt) in enumerate(stream):
        if k == split:
            state = e.to_state()
            e = EventTimes.from_state(msgpack_round_trip(state))
            assert e.to_state() == state
        now += dt
        if kind == "add":
            e.add(now)
            seen.append(now)
            continue
        for win in wins:
            assert e.count(now, win) == sum(1 for x in seen if now - win < x <= now)
        e.evict(now)
        assert np.frombuffer(e.to_state()["ns"], dtype="<i8").tolist() == [x for x in seen if x > now - horizon]


# --- sample_std and rolling_zscore ---------------------------------------------------------------------

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
with_gaps = st.lists(st.one_of(finite, st.sampled_from([math.nan, math.inf, -math.inf])), max_size=40)
# Multiples of 1/8 keep sums exact, so a z-score is well conditioned whenever std > 0.
grid = st.integers(-8000, 8000).map(lambda k: k / 8)
grid_with_gaps = st.lists(st.one_of(grid, st.just(math.nan)), min_size=1, max_size=40)


@SETTINGS
@given(values=with_gaps, n=st.integers(1, 45))
def test_sample_std_matches_numpy_over_last_n(values: list[float], n: int) -> None:
    last = np.array(values[-n:], dtype=np.float64)
    good = last[np.isfinite(last)]
    got = sample_std(last)
    if good.size < 2:
        assert math.isnan(got)
        return
    scale = max(1.0, float(np.abs(good).max()))
    assert got == pytest.approx(float(np.std(good, ddof=1)), rel=1e-9, abs=1e-9 * scale)


@SETTINGS
@given(values=grid_with_gaps, n=st.integers(1, 45))
def test_rolling_zscore_matches_numpy_over_last_n(values: list[float], n: int) -> None:
    s = TickSeries(n)
    for t, x in enumerate(values):
        s.push(t, x)
    hist = s.last_n(n)
    x_t = values[-1]
    good = hist[np.isfinite(hist)]
    got = rolling_zscore(x_t, hist)
    if not math.isfinite(x_t) or good.size < 2 or float(np.std(good, ddof=1)) == 0.0:
        assert math.isnan(got)
        return
    expected = (x_t - float(np.mean(good))) / float(np.std(good, ddof=1))
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_flat_series_has_zero_std_and_nan_zscore() -> None:
    flat = [0.1] * 7 + [math.nan]
    assert sample_std(flat) == 0.0
    assert math.isnan(rolling_zscore(0.1, flat))
    assert sample_std([1.0, 2.0, 4.0]) == pytest.approx(1.5275252316519465, rel=1e-15)
    assert math.isnan(sample_std([1.0, math.inf]))
    assert math.isnan(rolling_zscore(math.nan, [1.0, 2.0]))


# --- compiled kernels against their Python originals -----------------------------------------------------


@SETTINGS
@given(stream=st.lists(message, min_size=1, max_size=30), t=st.integers(-2, 60),
       wins=st.lists(st.integers(-1, 60), max_size=5))
def test_trade_kernels_equal_py_func(stream: list, t: int, wins: list[int]) -> None:
    w, now = TradeWindow(1_000), 0
    for _, dt, batch in stream:
        now += dt
        add_message(w, [], now, batch)
    ns, p, v, side = w._cols.cols
    head, tail = w._cols.head, w._cols.tail
    arr = np.array(wins, dtype=np.int64)
    compiled = windows._trade_stats(ns, p, v, side, head, tail, t, arr)
    assert compiled.tobytes() == py(windows._trade_stats)(ns, p, v, side, head, tail, t, arr).tobytes()
    row_c, row_py = np.zeros(windows._B_WIDTH), np.zeros(windows._B_WIDTH)
    windows._bucket_row(p, v, side, head, tail, row_c)
    py(windows._bucket_row)(p, v, side, head, tail, row_py)
    assert row_c.tobytes() == row_py.tobytes()
    for x in (t, t - 1, t + 1):
        assert windows._first_after(ns, head, tail, x) == py(windows._first_after)(ns, head, tail, x)
        assert windows._first_after(ns, head, tail, x) == head + int(np.searchsorted(ns[head:tail], x, "right"))
        assert windows._span(ns, head, tail, x, 5) == py(windows._span)(ns, head, tail, x, 5)


@SETTINGS
@given(values=with_gaps, x_t=st.one_of(finite, st.just(math.nan)))
def test_moment_kernels_equal_py_func(values: list[float], x_t: float) -> None:
    arr = np.array(values, dtype=np.float64)
    n_c, mean_c, ss_c = windows._finite_moments(arr)
    n_py, mean_py, ss_py = py(windows._finite_moments)(arr)
    assert (n_c, bits(mean_c), bits(ss_c)) == (n_py, bits(mean_py), bits(ss_py))
    assert bits(windows._sample_std(arr)) == bits(py(windows._sample_std)(arr))
    assert bits(windows._zscore(x_t, arr)) == bits(py(windows._zscore)(x_t, arr))


# --- bucketed sums at whole-second ticks ---------------------------------------------------------------

S = 1_000_000_000


def naive_bucketed(events: list[Trade], t: int, w: int) -> np.ndarray:
    """The documented bucketed sum: each 1 s bucket summed in arrival order, buckets added oldest first."""
    buckets: dict[int, list[float]] = {}
    for ns, p, v, side in events:
        if t - w < ns <= t:
            end = -(-ns // S) * S
            acc = buckets.setdefault(end, [0.0] * 7)
            pv = p * v
            acc[0] += v
            acc[1] += pv
            acc[2] += v if side > 0 else 0.0
            acc[3] += pv if side > 0 else 0.0
            acc[4] += v if side < 0 else 0.0
            acc[5] += pv if side < 0 else 0.0
            acc[6] += 1.0
    total = [0.0] * 7
    for end in sorted(buckets):
        total = [a + b for a, b in zip(total, buckets[end], strict=True)]
    row = [0.0] * N_STATS
    row[STAT_SUM_V], row[STAT_SUM_PV], row[STAT_COUNT] = total[0], total[1], total[6]
    row[STAT_BUY_V], row[STAT_SELL_V] = total[2], total[4]
    row[STAT_SIGNED_V], row[STAT_SIGNED_PV] = total[2] - total[4], total[3] - total[5]
    return np.array(row)


# Offsets within a second, edges included: trades exactly on a boundary belong to the bucket ending there.
sub_second = st.sampled_from([0, 1, S // 3, S // 2, S - 1])
second_trades = st.lists(st.tuples(st.integers(0, 2), sub_second,
                                   st.lists(st.tuples(st.floats(0.5, 200.0), st.floats(0.001, 50.0),
                                                      st.sampled_from([1, -1])), min_size=1, max_size=3)),
                         min_size=1, max_size=60)


@SETTINGS
@given(stream=second_trades, wins=st.lists(st.integers(1, 8), min_size=1, max_size=3, unique=True),
       restore_at=st.integers(0, 60))
def test_whole_second_windows_sum_per_bucket_and_survive_restore(stream: list, wins: list[int],
                                                                  restore_at: int) -> None:
    """Ticks journaled before same-second trades, as the journal orders them; restore mid-way changes nothing."""
    windows_ns = np.array(sorted(w * S for w in wins), dtype=np.int64)
    horizon = int(windows_ns[-1])
    w, events, sec, step, last = TradeWindow(horizon), [], 10, 0, 0
    for gap, offset, batch in stream:
        for _ in range(gap):  # whole seconds pass: tick at each boundary before the next trade
            sec += 1
            got = w.stats_multi(sec * S, windows_ns)
            for j, win in enumerate(windows_ns.tolist()):
                assert got[j].tobytes() == naive_bucketed(events, sec * S, win).tobytes()
                assert got[j] == pytest.approx(naive_stats(events, sec * S, win), rel=1e-12, abs=1e-9)
            w.evict(sec * S)
            step += 1
            if step == restore_at:
                w = TradeWindow.from_state(msgpack.unpackb(msgpack.packb(w.to_state())))
        last = max(last, sec * S + offset)  # receive times never go backwards
        add_message(w, events, last, batch)


def test_a_trade_into_an_already_summed_second_reopens_that_bucket() -> None:
    """Out of journal order (only through the API): the closed bucket is recomputed, never stale."""
    w, events = TradeWindow(5 * S), []
    add_message(w, events, 10 * S + 5, [(100.0, 1.0, 1)])
    w.stats_multi(12 * S, np.array([3 * S], dtype=np.int64))  # closes the buckets ending 11 s
    add_message(w, events, 11 * S, [(101.0, 2.0, -1)])  # lands in (10 s, 11 s], already closed
    got = w.stats_multi(12 * S, np.array([3 * S], dtype=np.int64))[0]
    assert got.tobytes() == naive_bucketed(events, 12 * S, 3 * S).tobytes()
    assert got[STAT_COUNT] == 2.0 and got[STAT_SIGNED_V] == -1.0


@SETTINGS
@given(values=st.lists(st.one_of(st.integers(-10**5, 10**5).map(lambda i: i / 100), st.just(math.nan)),
                       min_size=1, max_size=40),
       capacity=st.integers(1, 30), n=st.integers(2, 30), span=st.integers(1, 40))
def test_tick_series_std_and_zscore_without_copies_match_numpy(values: list[float], capacity: int, n: int,
                                                               span: int) -> None:
    ts = TickSeries(capacity)
    for i, x in enumerate(values):
        ts.push(i + 1, x)
    t = len(values)
    held = values[-capacity:]
    times = list(range(t - len(held) + 1, t + 1))
    in_span = [x for x, when in zip(held, times, strict=True) if t - span < when and math.isfinite(x)]
    want_std = float(np.std(in_span, ddof=1)) if len(in_span) >= 2 else math.nan
    got_std = ts.std_over(t, span)
    assert (math.isnan(got_std) and math.isnan(want_std)) or got_std == pytest.approx(want_std, rel=1e-9, abs=1e-12)
    last = [x for x in held[-n:] if math.isfinite(x)]
    x_t = held[-1]
    if not math.isfinite(x_t) or len(last) < 2 or max(last) == min(last):
        assert math.isnan(ts.zscore_of_newest(n))
    else:
        want = (x_t - float(np.mean(last))) / float(np.std(last, ddof=1))
        assert ts.zscore_of_newest(n) == pytest.approx(want, rel=1e-9, abs=1e-9)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=st.lists(st.tuples(st.integers(0, 5), st.lists(st.integers(0, 40), max_size=4)), max_size=6),
       run=st.lists(st.tuples(st.integers(0, 5), st.lists(st.integers(0, 40), max_size=4)), min_size=1, max_size=8),
       horizon=st.integers(1, 12))
def test_fresh_run_equals_fresh_of_each_message(before: list, run: list, horizon: int) -> None:
    """A run taken at once leaves the state `fresh` of each message leaves, or is refused untouched."""
    one, many = TradeIdFilter(horizon), TradeIdFilter(horizon)
    now = 0
    for gap, ids in before:
        now += gap
        for f in (one, many):
            f.fresh(now, [f"t{i}" for i in ids])
    times, off, flat = [], [0], []
    for gap, ids in run:
        now += gap
        times.append(now)
        flat += [f"t{i}" for i in ids]
        off.append(len(flat))
    masks = [one.fresh(t, flat[a:b]) for t, a, b in zip(times, off[:-1], off[1:], strict=True)]
    state_before = many.to_state()
    taken = many.fresh_run(times, off, flat)
    earlier = {f"t{i}" for _, ids in before for i in ids}
    if earlier.isdisjoint(flat) and len(set(flat)) == len(flat):
        assert taken  # nothing to collide with: always taken at once
    if taken:
        assert all(m.all() for m in masks) and many.to_state() == one.to_state()
    else:  # refused: only evicted up to the run's first time, nothing taken
        kept = [b for b in state_before["batches"] if b[0] > times[0] - horizon]
        assert many.to_state()["batches"] == kept
