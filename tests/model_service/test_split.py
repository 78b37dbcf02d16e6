"""`time_split`: train < validation < test by time with the gaps left out, on random and hand-made timestamps;
and the SplitError cases (too few ticks, bad fractions, a part too small, named in the message)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_service.split import Split, SplitError, time_split


@st.composite
def _timestamps(draw: st.DrawFn) -> np.ndarray:
    """Sorted int64 ns timestamps: 3..60 distinct ticks, each repeated 1..4 times (several symbols per tick)."""
    n = draw(st.integers(3, 60))
    steps = draw(st.lists(st.integers(1, 5_000_000_000), min_size=n - 1, max_size=n - 1))
    start = draw(st.integers(0, 2**62))
    ticks = start + np.concatenate([[0], np.cumsum(steps)]).astype(np.int64)
    reps = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    return np.repeat(ticks, reps).astype(np.int64)


_fractions = st.tuples(st.floats(0.01, 0.6), st.floats(0.01, 0.6)).filter(lambda vt: vt[0] + vt[1] < 0.99)


@given(ts=_timestamps(), gap=st.integers(0, 30_000_000_000), vt=_fractions)
@settings(max_examples=300, deadline=None)
def test_parts_are_ordered_by_time_with_gaps(ts: np.ndarray, gap: int, vt: tuple[float, float]) -> None:
    validation, test = vt
    s = time_split(ts, gap, validation, test, min_rows=0)
    assert isinstance(s, Split)
    tr, va, te = ts[s.train], ts[s.validation], ts[s.test]
    # order between the parts (vacuous for an empty part, so each pair is checked on its own)
    if len(tr) and len(va):
        assert tr.max() < va.min()
    if len(va) and len(te):
        assert va.max() < te.min()
    if len(tr) and len(te):
        assert tr.max() < te.min()
    # the gaps
    assert not (tr >= s.validation_from_ns - gap).any()
    assert not (va >= s.test_from_ns - gap).any()
    assert (va >= s.validation_from_ns).all()
    assert (te >= s.test_from_ns).all()
    assert s.gap_ns == gap
    # the boundaries are ticks of the input, validation before test
    ticks = set(ts.tolist())
    assert s.validation_from_ns in ticks and s.test_from_ns in ticks
    assert s.validation_from_ns <= s.test_from_ns
    # disjoint index sets into the input, each sorted, no index twice
    all_idx = np.concatenate([s.train, s.validation, s.test])
    assert len(set(all_idx.tolist())) == len(all_idx)
    assert ((all_idx >= 0) & (all_idx < len(ts))).all()
    for part in (s.train, s.validation, s.test):
        assert (np.diff(part) > 0).all()
    # rows left out are exactly those in [t1 - gap, t1) and [t2 - gap, t2) (a naive re-derivation)
    t1, t2 = s.validation_from_ns, s.test_from_ns
    expect_train = [i for i, t in enumerate(ts.tolist()) if t < t1 - gap]
    expect_val = [i for i, t in enumerate(ts.tolist()) if t1 <= t < t2 - gap]
    expect_test = [i for i, t in enumerate(ts.tolist()) if t >= t2]
    assert s.train.tolist() == expect_train
    assert s.validation.tolist() == expect_val
    assert s.test.tolist() == expect_test
    sizes = s.sizes(len(ts))
    assert sizes["left_out_in_gaps"] == len(ts) - len(all_idx) >= 0


@given(ts=_timestamps(), gap=st.integers(0, 10_000_000_000), vt=_fractions, min_rows=st.integers(1, 30))
@settings(max_examples=200, deadline=None)
def test_min_rows_is_enforced(ts: np.ndarray, gap: int, vt: tuple[float, float], min_rows: int) -> None:
    loose = time_split(ts, gap, *vt, min_rows=0)
    sizes = [len(loose.train), len(loose.validation), len(loose.test)]
    if min(sizes) >= min_rows:
        s = time_split(ts, gap, *vt, min_rows=min_rows)
        assert [len(s.train), len(s.validation), len(s.test)] == sizes
    else:
        first_small = ("train", "validation", "test")[next(i for i, n in enumerate(sizes) if n < min_rows)]
        # an empty validation part because its fraction is under one tick is named as such
        why = f"the {first_small} part has" + ("|less than one tick" if first_small == "validation" else "")
        with pytest.raises(SplitError, match=why):
            time_split(ts, gap, *vt, min_rows=min_rows)


@given(ts=_timestamps(), vt=_fractions)
@settings(max_examples=100, deadline=None)
def test_no_tick_is_split_across_parts(ts: np.ndarray, vt: tuple[float, float]) -> None:
    s = time_split(ts, 0, *vt, min_rows=0)
    part_of = np.full(len(ts), -1)
    for k, part in enumerate((s.train, s.validation, s.test)):
        part_of[part] = k
    for t in np.unique(ts):
        assert len(set(part_of[ts == t].tolist())) == 1
    # with no gap, every row is in a part
    assert (part_of >= 0).all()


# 10 ticks x 2 symbols: rows 2k, 2k+1 at tick (k + 1) * 100 ns.
_TS = np.repeat(np.arange(1, 11, dtype=np.int64) * 100, 2)


def test_hand_example_with_one_tick_gap() -> None:
    # validation 0.2, test 0.2 of 10 ticks: t1 = ticks[int(10 * 0.6)] = ticks[6] = 700,
    # t2 = ticks[int(10 * 0.8)] = ticks[8] = 900. gap 100: train ts < 600, validation 700 <= ts < 800.
    s = time_split(_TS, 100, 0.2, 0.2, min_rows=2)
    assert s.validation_from_ns == 700
    assert s.test_from_ns == 900
    np.testing.assert_array_equal(s.train, np.arange(0, 10))  # ticks 100..500
    np.testing.assert_array_equal(s.validation, [12, 13])  # tick 700
    np.testing.assert_array_equal(s.test, [16, 17, 18, 19])  # ticks 900, 1000
    assert s.sizes(20) == {"train": 10, "validation": 2, "test": 4, "left_out_in_gaps": 4}


def test_hand_example_without_gap() -> None:
    s = time_split(_TS, 0, 0.2, 0.2, min_rows=2)
    np.testing.assert_array_equal(s.train, np.arange(0, 12))  # ticks 100..600
    np.testing.assert_array_equal(s.validation, [12, 13, 14, 15])  # ticks 700, 800
    np.testing.assert_array_equal(s.test, [16, 17, 18, 19])
    assert s.sizes(20)["left_out_in_gaps"] == 0


def test_hand_example_other_fractions() -> None:
    # validation 0.3, test 0.1: t1 = ticks[int(10 * 0.6)] = ticks[6] = 700, t2 = ticks[int(10 * 0.9)] = 1000
    s = time_split(_TS, 0, 0.3, 0.1, min_rows=1)
    assert (s.validation_from_ns, s.test_from_ns) == (700, 1000)
    np.testing.assert_array_equal(s.train, np.arange(0, 12))
    np.testing.assert_array_equal(s.validation, np.arange(12, 18))
    np.testing.assert_array_equal(s.test, [18, 19])


def test_boundaries_never_leave_a_part_without_a_tick() -> None:
    # 3 ticks with fractions that round to 0 ticks for validation and test: t1, t2 clamp to ticks 1 and 2
    s = time_split(np.array([10, 20, 30], dtype=np.int64), 0, 0.05, 0.05, min_rows=1)
    assert (s.validation_from_ns, s.test_from_ns) == (20, 30)
    assert (s.train.tolist(), s.validation.tolist(), s.test.tolist()) == ([0], [1], [2])


def test_too_few_ticks() -> None:
    with pytest.raises(SplitError, match="2 distinct ticks"):
        time_split(np.array([5, 5, 6, 6], dtype=np.int64), 0, min_rows=0)
    with pytest.raises(SplitError, match="0 distinct ticks"):
        time_split(np.array([], dtype=np.int64), 0, min_rows=0)


@pytest.mark.parametrize(("validation", "test"), [(0, 0.2), (0.2, 0), (1, 0.2), (0.5, 0.5), (0.7, 0.4),
                                                  (-0.1, 0.2), (0.2, 1.5)])
def test_bad_fractions(validation: float, test: float) -> None:
    with pytest.raises(SplitError, match="must be fractions"):
        time_split(_TS, 0, validation, test, min_rows=0)


def test_negative_gap() -> None:
    with pytest.raises(SplitError, match="gap must be >= 0"):
        time_split(_TS, -1, min_rows=0)


def test_train_part_too_small_is_named() -> None:
    # gap 600: train ts < 700 - 600 = 100, none
    with pytest.raises(SplitError, match=r"the train part has 0 rows \(< 1\)"):
        time_split(_TS, 600, 0.2, 0.2, min_rows=1)


def test_validation_part_too_small_is_named() -> None:
    # gap 200: train ts < 500 (8 rows), validation 700 <= ts < 700: none
    with pytest.raises(SplitError, match=r"the validation part has 0 rows \(< 2\)"):
        time_split(_TS, 200, 0.2, 0.2, min_rows=2)


def test_test_part_too_small_is_named() -> None:
    # ticks 0..7 five rows each, ticks 8 and 9 one row each: train 30, validation 10, test 2 rows
    ts = np.concatenate([np.repeat(np.arange(8, dtype=np.int64), 5), np.array([8, 9], dtype=np.int64)])
    with pytest.raises(SplitError, match=r"the test part has 2 rows \(< 5\)"):
        time_split(ts, 0, 0.2, 0.2, min_rows=5)
    s = time_split(ts, 0, 0.2, 0.2, min_rows=2)
    assert (len(s.train), len(s.validation), len(s.test)) == (30, 10, 2)


def test_default_min_rows_is_ten() -> None:
    with pytest.raises(SplitError, match=r"\(< 10\)"):
        time_split(_TS, 0)


def test_a_validation_fraction_under_one_tick_is_named_not_the_horizon() -> None:
    ts = np.repeat(np.arange(10, dtype=np.int64) * 1_000_000_000, 2)
    with pytest.raises(SplitError, match="less than one tick"):
        time_split(ts, 0, validation=0.001, test=0.25, min_rows=1)
