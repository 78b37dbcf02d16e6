"""The vectorised pandas baseline computes the engine's values (else `bench offline`'s ratio means nothing)."""

from __future__ import annotations

import math

import numpy as np

from engine.engine import Engine
from engine.record import NS_PER_MS, NS_PER_S, Kind, Record
from engine.replay import Fold
from registry import load_registry_text
from tools.bench.pandas_baseline import DictBook, compute, uncovered
from tools.registry_file import default_registry
from tools.sim.synthetic_records import records

SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def _engine_columns(recs: list[Record], registry, symbols: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:  # noqa: ANN001
    vectors = Fold(Engine(registry, symbols)).batch(recs).vectors
    out = {}
    for s in symbols:
        mine = [v for v in vectors if v.symbol == s]
        out[s] = (np.array([v.ts_ns for v in mine]), np.array([v.values for v in mine]),
                  np.array([v.book_valid for v in mine]))
    return out


def _assert_same(recs: list[Record], registry, symbols: list[str]) -> int:  # noqa: ANN001
    """Every covered column equal to the engine's within 1e-9 relative (NaN where the engine has NaN)."""
    want = _engine_columns(recs, registry, symbols)
    got = compute(recs, registry, symbols)
    compared = 0
    for s in symbols:
        ts, values, valid = want[s]
        assert got[s].ts_ns.tolist() == ts.tolist()
        assert got[s].book_valid.tolist() == valid.tolist()
        for j, name in enumerate(registry.names):
            for i, (e, b) in enumerate(zip(values[:, j].tolist(), got[s].values[:, j].tolist(), strict=True)):
                assert math.isnan(e) == math.isnan(b), (s, name, i, e, b)
                if not math.isnan(e):
                    assert math.isclose(e, b, rel_tol=1e-9, abs_tol=1e-12), (s, name, i, e, b)
                    compared += 1
    return compared


def test_it_covers_every_feature_of_the_default_registry() -> None:
    assert uncovered(default_registry()) == []


def test_it_equals_the_engine_on_the_bench_stream_for_every_feature() -> None:
    registry = default_registry()
    recs = list(records(SYMBOLS, seconds=90, events_per_s=200, seed=11))
    compared = _assert_same(recs, registry, SYMBOLS)
    assert compared > 2 * 90 * 30  # nearly every column is defined at nearly every tick


def _faulted(recs: list[Record]) -> list[Record]:
    """The stream with a gap in BTCUSDT's update ids, an old snapshot later, repeated trade ids,
    funding records, an empty and a bogus funding field, and a crossed delta."""
    out: list[Record] = []
    snap = recs[0]
    deltas = 0
    for r in recs:
        if r.kind == Kind.BOOK_DELTA and r.symbol == "BTCUSDT":
            deltas += 1
            if deltas == 500:  # gap: the book is invalid until the next snapshot
                out.append(r._replace(payload={**r.payload, "u": r.payload["u"] + 5}))
                continue
            if deltas == 900:  # the old snapshot, numbered to fit: later deltas may cross it
                out.append(snap._replace(recv_ns=r.recv_ns, payload={**snap.payload, "u": r.payload["u"] - 1}))
            if deltas == 1400:
                crossed = np.array([[1e9, 1.0]])
                out.append(r._replace(payload={**r.payload, "b": crossed}))
                continue
        if r.kind == Kind.TRADES and r.symbol == "ETHUSDT" and out and out[-1].kind == Kind.TRADES:
            out.append(r._replace(payload={**r.payload, "id": list(out[-1].payload["id"][:1]) + r.payload["id"][1:]}))
            continue
        if r.kind == Kind.TICKER and r.recv_ns % (7 * NS_PER_S) < 10 * NS_PER_MS:
            fields = {"fundingRate": "", "nextFundingTime": "bogus", "fundingIntervalHour": "4"}
            out.append(r._replace(payload={"type": "delta", "fields": fields}))
            continue
        out.append(r)
        if r.kind == Kind.TICK and r.recv_ns % (11 * NS_PER_S) == 0:
            out.append(Record(0, r.recv_ns, Kind.FUNDING, "ETHUSDT", 0, 0,
                              {"rate": 2e-4, "next_ms": r.recv_ns // NS_PER_MS - 3_600_000, "interval_h": 8.0}))
    return out


def test_it_equals_the_engine_on_a_faulted_stream() -> None:
    registry = default_registry()
    recs = _faulted(list(records(SYMBOLS, seconds=60, events_per_s=100, seed=4)))
    want = _engine_columns(recs, registry, SYMBOLS)
    assert 0 in want["BTCUSDT"][2].tolist()  # the faults did make the book invalid for a while
    _assert_same(recs, registry, SYMBOLS)


REGISTRY = """
version: 1
features:
  - {name: vwap_5s, function: vwap, window: 5s, every: 2s}
  - {name: count_2s, function: trade_count, window: 2s}
  - {name: depth3, function: depth, params: {side: ask, levels: 3}}
  - {name: imb7, function: depth_imbalance, params: {levels: 7}}
  - {name: slope4, function: slope, params: {side: bid, levels: 4}}
  - {name: dens5, function: liquidity_density, params: {bps: 5}}
  - {name: churn_10s, function: churn_rate, window: 10s}
  - {name: ret_7s, function: log_return, params: {seconds: 7}}
  - {name: vol_20s, function: volatility, params: {seconds: 20}, every: 3s}
  - {name: imb7_z20, function: ref, inputs: [imb7], normalise: {method: zscore, n: 20}}
  - {name: vol_z10, function: ref, inputs: [vol_20s], normalise: {method: zscore, n: 10}, every: 2s}
"""


def test_it_follows_other_parameters_windows_and_cadences() -> None:
    registry = load_registry_text(REGISTRY, source="test")
    recs = list(records(SYMBOLS, seconds=60, events_per_s=100, seed=9))
    assert uncovered(registry) == []
    _assert_same(recs, registry, SYMBOLS)


def test_dict_book_applies_sets_deletes_and_truncates_by_hand() -> None:
    book = DictBook(3)
    book.snapshot(10, np.array([[99.0, 1.0], [98.0, 2.0], [97.0, 3.0]]), np.array([[101.0, 4.0], [102.0, 5.0]]))
    assert book.valid and book.best() == (99.0, 101.0)
    # delete the best bid, add a better one and one beyond the depth: the worst bid is truncated
    moved = book.delta(11, np.array([[99.0, 0.0], [100.0, 6.0], [96.0, 7.0], [95.0, 0.0]]), np.array([[103.0, 8.0]]))
    assert moved
    assert book.bid_px == [97.0, 98.0, 100.0] and book.bids == {100.0: 6.0, 98.0: 2.0, 97.0: 3.0}
    assert book.ask_px == [101.0, 102.0, 103.0]
    assert book.top(2) == ([6.0, 2.0], [4.0, 5.0])
    assert not book.delta(12, np.array([[98.0, 9.0]]), np.empty((0, 2)))  # a size change only: no churn
    assert not book.delta(12, np.array([[98.0, 1.0]]), np.empty((0, 2))) and book.bids[98.0] == 9.0  # stale
    assert not book.delta(14, np.empty((0, 2)), np.empty((0, 2))) and not book.valid  # gap
    # density: |p − 100.5| / 100.5 <= 0.006 keeps 100, 101 (0.5 away) and not 98/103 (2.5 away)
    book.snapshot(20, np.array([[100.0, 6.0], [98.0, 2.0]]), np.array([[101.0, 4.0], [103.0, 8.0]]))
    assert book.density(100.5, 0.006) == 10.0
