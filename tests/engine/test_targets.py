"""Targets (SPEC C.7) against a per-row loop written here: ln(mid[t+H]/mid[t]) and labels at ±θ bps."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.targets import forward_targets

NS = 1_000_000_000


def _naive(ts: list[int], mid: list[float], valid: list[bool], h: int, bps: float) -> list[tuple[float, int] | None]:
    at = {t: i for i, t in enumerate(ts)}
    out: list[tuple[float, int] | None] = []
    for i, t in enumerate(ts):
        j = at.get(t + h)
        ok = j is not None and valid[i] and valid[j] and all(math.isfinite(mid[k]) and mid[k] > 0 for k in (i, j))
        if not ok:
            out.append(None)
            continue
        r = math.log(mid[j] / mid[i])
        out.append((r, 1 if r > bps * 1e-4 else -1 if r < -bps * 1e-4 else 0))
    return out


def test_hand_computed_returns_and_labels() -> None:
    ts = np.arange(5) * NS
    got = forward_targets(ts, np.array([100.0, 100.03, 99.0, 99.0, 100.0]), np.array([1, 1, 1, 0, 1]), NS, 2.0)
    assert got.defined.tolist() == [True, True, False, False, False]
    assert got.ret[0] == math.log(100.03 / 100.0) and got.label[0] == 1  # +3 bps > 2 bps
    assert got.ret[1] == math.log(99.0 / 100.03) and got.label[1] == -1
    assert np.isnan(got.ret[2:]).all()  # invalid book at t+H, at t, and no tick at t+H


def test_a_missing_tick_at_t_plus_h_leaves_the_target_undefined() -> None:
    ts = np.array([0, 1, 3, 4]) * NS  # no tick at 2 s
    got = forward_targets(ts, np.full(4, 10.0), np.ones(4), NS, 0.0)
    assert got.defined.tolist() == [True, False, True, False]
    assert got.label[0] == 0  # exactly 0 return is flat even at θ = 0


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 3), st.floats(0.5, 2.0) | st.just(math.nan), st.booleans()),
                min_size=0, max_size=40), st.integers(1, 4), st.sampled_from([0.0, 2.0, 50.0]))
def test_matches_a_per_row_loop(rows: list[tuple[int, float, bool]], h_s: int, bps: float) -> None:
    ts = list(np.cumsum([r[0] for r in rows]) * NS) if rows else []
    mid, valid = [r[1] for r in rows], [r[2] for r in rows]
    got = forward_targets(np.array(ts, np.int64), np.array(mid, np.float64), np.array(valid, bool), h_s * NS, bps)
    want = _naive([int(t) for t in ts], mid, valid, h_s * NS, bps)
    assert got.defined.tolist() == [w is not None for w in want]
    for i, w in enumerate(want):
        if w is not None:
            assert got.ret[i] == w[0] and got.label[i] == w[1]
