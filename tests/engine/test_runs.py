"""Delta runs: applying BOOK_DELTA records as runs gives exactly what applying them one by one gives.

The reference is the engine's own per-record path (`Engine.apply`), which the other engine tests
check against a naive book and naive features: here every run split must reproduce it bit for bit
(checkpoint bytes, vectors, counters, notices and their order, records counted).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from engine import orderbook as ob
from engine.engine import Engine
from engine.record import Kind, Record, session, tick
from engine.replay import Fold
from engine.runs import (
    DeltaRun,
    TradesRun,
    checked_run,
    checked_trades_run,
    delta_run_from_records,
    kernel_run,
    runnable,
    runs_of,
    trades_run_from_records,
    trades_runnable,
)
from engine.windows import EventTimes
from tests.conftest import SOL_DOGE_FRAMES, XRP_OB500
from tools.registry_file import default_registry

NS = 1_000_000_000
T0 = 1_786_310_800 * NS
#: Symbols of the engine; STRANGER's records are counted (unknown or filtered), never applied.
SYMBOLS = ("AUSDT", "BUSDT")
STRANGER = "ZUSDT"
#: Price grid: tick i is the exact float of 100 + i/100; bids normally below SPLIT, asks at and above.
GRID = [float(f"{100 + i / 100:.2f}") for i in range(120)]
SPLIT = 60
SIZES = [0.0, 0.0, 0.5, 1.0, 2.5, 7.0]
DEPTHS = (1, 5, 50)
REGISTRY = default_registry()


# --- the reference and the comparison ---------------------------------------------------------------

def outcome(engine: Engine, fold: Fold, items: list[Any]) -> tuple:
    """Everything observable after folding `items`: checkpoint, vectors, notices, counters, records."""
    folded = fold.batch(items)
    vectors = [(v.ts_ns, v.symbol, v.book_valid, v.values.tobytes(), v.registry_hash) for v in folded.vectors]
    return engine.checkpoint(), vectors, folded.notices, dict(engine.counters), fold.records, engine.last_seq


def per_record(records: list[Record], **kw: Any) -> tuple:
    engine = Engine(REGISTRY, SYMBOLS, **kw)
    fold = Fold(engine)
    return outcome(engine, fold, records)


def as_runs(records: list[Record], rng: random.Random, **kw: Any) -> tuple:
    engine = Engine(REGISTRY, SYMBOLS, **kw)
    fold = Fold(engine)
    return outcome(engine, fold, split_into_runs(records, rng))


def split_into_runs(records: list[Record], rng: random.Random, cut: float = 0.25) -> list[Any]:
    """Group consecutive deltas of one (symbol, depth) into runs, cutting at random points.

    Written independently of `runs_of`: a stretch is cut before a delta with probability `cut`,
    and a stretch of one is passed either as its record or as a run of one. TRADES records of one
    symbol are grouped into TradesRuns the same way.
    """
    items: list[Any] = []
    group: list[Record] = []

    def flush() -> None:
        if group:
            make = delta_run_from_records if group[0].kind == Kind.BOOK_DELTA else trades_run_from_records
            items.append(group[0] if len(group) == 1 and rng.random() < 0.5 else make(group))
            group.clear()

    def key(rec: Record) -> tuple:
        return (rec.kind, rec.symbol, rec.payload.get("depth"))

    for rec in records:
        if not (runnable(rec) or trades_runnable(rec)):
            flush()
            items.append(rec)
            continue
        if not group or key(group[0]) != key(rec) or rng.random() < cut:
            flush()
        group.append(rec)
    flush()
    return items


# --- random streams ---------------------------------------------------------------------------------

def levels(draw: st.DrawFn, bid: bool, wild: bool, max_size: int) -> np.ndarray:
    lo, hi = (0, len(GRID) - 1) if wild else ((0, SPLIT - 1) if bid else (SPLIT, len(GRID) - 1))
    rows = draw(st.lists(st.tuples(st.integers(lo, hi).map(GRID.__getitem__), st.sampled_from(SIZES)),
                         max_size=max_size))
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def wide(seed: int, bid: bool, n: int) -> np.ndarray:
    """`n` distinct inserts on one side: more than depth + SPARE_ROWS, so the book must grow."""
    r = random.Random(seed)
    base = 90.0 if bid else 102.0
    prices = sorted({base + r.randrange(0, 2000) / 256 for _ in range(n)})
    return np.array([(p if bid else p + 20.0, 1.0 + r.randrange(4)) for p in prices], dtype=np.float64)


@st.composite
def step(draw: st.DrawFn) -> tuple:
    """One raw step of a stream; `build` turns steps into numbered records."""
    kind = draw(st.sampled_from(["delta"] * 30 + ["snap"] * 3 + ["rest"] * 3 + ["tick"] * 3
                                + ["down", "up", "wide", "trades", "trades_burst", "stranger", "bad"]))
    sym = draw(st.sampled_from(SYMBOLS[:1] * 3 + SYMBOLS[1:]))
    depth = draw(st.sampled_from(DEPTHS[-1:] * 4 + DEPTHS[:-1]))
    wild = draw(st.integers(0, 12)) == 0
    bids = levels(draw, True, wild, 70 if kind in ("snap", "rest") else 6)
    asks = levels(draw, False, wild, 70 if kind in ("snap", "rest") else 6)
    # Update id relative to the stream's: mostly the next; repeats, stale, gaps, resets (u = 1).
    offset = draw(st.sampled_from([1] * 24 + [0, -2, 2, 5, None]))
    dt = draw(st.sampled_from([0, 0, 1, 1_000, 50_000_000, 300_000_000, 900_000_000]))
    return kind, sym, depth, bids, asks, offset, dt, draw(st.integers(0, 2 ** 16))


def trades_record(t: int, sym: str, seed: int) -> Record:
    """0 to 3 trades; ids repeat across messages and sometimes inside one (duplicates)."""
    k = seed % 4
    ids = [str((seed >> 2) % 40 + j * (seed % 3)) for j in range(k)]
    return Record(0, t, int(Kind.TRADES), sym, 0, 0, {
        "p": np.array([GRID[SPLIT + j] for j in range(k)]), "v": np.arange(1.0, k + 1.0),
        "side": np.array([1 - 2 * (j % 2) for j in range(k)], dtype=np.int8),
        "T": np.full(k, t // 1_000_000), "id": ids, "bt": [False] * k})


def build(steps: list[tuple]) -> list[Record]:
    """Numbered records in journal order: u per (symbol, depth) advances like an exchange stream."""
    u: dict[tuple[str, int], int] = {}
    t = T0 + NS // 3
    last_tick = T0
    recs = [session(t, "s", "linear", SYMBOLS, REGISTRY.canonical, REGISTRY.content_hash)]
    for kind, sym, depth, bids, asks, offset, dt, seed in steps:
        t += dt
        while last_tick + NS <= t and kind != "tick":  # ticks never fall behind the records
            last_tick += NS
            recs.append(tick(last_tick))
        key = (sym, depth)
        if kind == "tick":
            last_tick = t = (t // NS + 1) * NS
            recs.append(tick(t))
            continue
        if kind in ("down", "up"):
            k = Kind.GATEWAY_DOWN if kind == "down" else Kind.GATEWAY_UP
            recs.append(Record(0, t, int(k), "", 0, 0, {"reason": "test", "silent_ms": 0}))
            continue
        if kind in ("trades", "trades_burst"):  # a burst: several messages in a row
            for b in range(1 + (seed % 5 if kind == "trades_burst" else 0)):
                recs.append(trades_record(t + b * (seed % 3) * 1_000_000, sym, seed + 7 * b))
            t += 4 * 2_000_000
            continue
        prev = u.get(key, 1_000)
        nu = 1 if offset is None else max(1, prev + offset)
        if kind in ("snap", "rest"):
            # A REST snapshot lags the stream: held deltas above its u are caught up after it.
            su = max(1, prev - seed % 4) if kind == "rest" else prev
            payload = {"depth": depth, "u": su, "seq": 0, "b": bids, "a": asks}
            if kind == "rest":
                payload["src"] = "rest"
            recs.append(Record(0, t, int(Kind.BOOK_SNAPSHOT), sym, 0, 0, payload))
            u[key] = max(prev, su)
            continue
        if kind == "wide":
            bids, asks = wide(seed, True, 80 + seed % 60), wide(seed + 1, False, 70 + seed % 50)
        if kind == "bad":  # a malformed delta that got into a journal: an error notice, never a run
            bids = [[1.0, 2.0, 3.0]]  # type: ignore[assignment]
        sym = STRANGER if kind == "stranger" else sym
        recs.append(Record(0, t, int(Kind.BOOK_DELTA), sym, 0, 0, {"depth": depth, "u": nu, "seq": 0,
                                                                    "b": bids, "a": asks}))
        if offset is None or offset > 0:
            u[key] = nu
    return [r.with_seq(i + 1) for i, r in enumerate(recs)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(steps=st.lists(step(), min_size=20, max_size=150), split_seed=st.integers(0, 2 ** 32),
       only=st.sampled_from([None, ("AUSDT",)]))
def test_runs_at_random_split_points_equal_per_record_apply(steps: list[tuple], split_seed: int,
                                                            only: tuple[str, ...] | None) -> None:
    """Gaps, resets, stale, crossing, absent deletes, empty sides, growth, several depths, invalid
    periods with held deltas and REST snapshots, ticks, gateway down/up, strangers: bit-identical."""
    records = build(steps)
    kw = {"only_symbols": only} if only else {}
    want = per_record(records, **kw)
    items = split_into_runs(records, random.Random(split_seed))
    engine = Engine(REGISTRY, SYMBOLS, **kw)
    got = outcome(engine, Fold(engine), items)
    assert got[0] == want[0]  # checkpoint bytes
    assert got[1:] == want[1:]
    for key in want[3]:
        event(key)
    event("trades runs" if any(type(i) is TradesRun for i in items) else "no trades runs")
    longest = max((i.n for i in items if type(i) is DeltaRun), default=0)
    event(f"longest run {'>= 8' if longest >= 8 else '2-7' if longest >= 2 else '< 2'}")


def random_steps(rng: random.Random, n: int) -> list[tuple]:
    """`n` steps like `step` draws them, from a seeded generator: long streams with long runs."""
    kinds = ["delta"] * 60 + ["snap"] * 2 + ["rest"] * 2 + ["tick"] * 2 + ["trades"] * 8 + [
        "down", "up", "wide", "stranger", "bad"]
    out = []
    book = (SYMBOLS[0], DEPTHS[-1])
    for _ in range(n):
        kind = rng.choice(kinds)
        if kind == "trades" and rng.random() < 0.5:
            kind = "trades_burst"
        if rng.random() < 0.15:  # the stream stays on one book for a while, then moves on
            book = (rng.choice(SYMBOLS[:1] * 3 + SYMBOLS[1:]), rng.choice(DEPTHS[-1:] * 4 + DEPTHS[:-1]))
        wild = rng.random() < 0.03
        size = 70 if kind in ("snap", "rest") else 6

        def side(bid: bool, size: int = size, wild: bool = wild) -> np.ndarray:
            lo, hi = (0, len(GRID) - 1) if wild else ((0, SPLIT - 1) if bid else (SPLIT, len(GRID) - 1))
            rows = [(GRID[rng.randint(lo, hi)], rng.choice(SIZES)) for _ in range(rng.randint(0, size))]
            return np.array(rows, dtype=np.float64).reshape(-1, 2)

        offset = rng.choice([1] * 60 + [0, -2, 2, 5, None])
        dt = rng.choice([0, 0, 1, 1_000, 5_000_000, 50_000_000, 300_000_000])
        out.append((kind, *book, side(True), side(False), offset, dt, rng.randrange(2 ** 16)))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_long_random_streams_as_runs_equal_per_record_apply(seed: int) -> None:
    """Long streams (runs of tens of deltas between the troubles), three random splits each."""
    rng = random.Random(seed)
    records = build(random_steps(rng, 1_500))
    want = per_record(records)
    assert want[3].get("book_gap", 0) + want[3].get("book_stale", 0) > 0 and len(want[1]) > 10
    for split in range(3):
        items = split_into_runs(records, random.Random(1000 * seed + split), cut=0.05 * split)
        assert max(i.n for i in items if type(i) is DeltaRun) >= 8
        engine = Engine(REGISTRY, SYMBOLS)
        assert outcome(engine, Fold(engine), items) == want
    engine = Engine(REGISTRY, SYMBOLS)
    assert outcome(engine, Fold(engine), list(runs_of(records))) == want


# --- hand-made cases ----------------------------------------------------------------------------------

def snap(t: int, u: int, bids: list, asks: list, depth: int = 5, sym: str = "AUSDT", **extra: Any) -> Record:
    payload = {"depth": depth, "u": u, "seq": 0, "b": np.array(bids, dtype=np.float64).reshape(-1, 2),
               "a": np.array(asks, dtype=np.float64).reshape(-1, 2), **extra}
    return Record(0, t, int(Kind.BOOK_SNAPSHOT), sym, 0, 0, payload)


def delta(t: int, u: int, bids: list, asks: list, depth: int = 5, sym: str = "AUSDT") -> Record:
    payload = {"depth": depth, "u": u, "seq": 0, "b": np.array(bids, dtype=np.float64).reshape(-1, 2),
               "a": np.array(asks, dtype=np.float64).reshape(-1, 2)}
    return Record(0, t, int(Kind.BOOK_DELTA), sym, 0, 0, payload)


def numbered(recs: list[Record]) -> list[Record]:
    head = [session(T0, "s", "linear", SYMBOLS, REGISTRY.canonical, REGISTRY.content_hash)]
    return [r.with_seq(i + 1) for i, r in enumerate(head + recs)]


def whole_runs(records: list[Record]) -> list[Any]:
    return list(runs_of(records))


def test_a_run_moves_the_book_counts_churn_and_stops_at_a_gap_like_records_do() -> None:
    recs = numbered([
        snap(T0 + 1, 10, [[99.0, 1.0]], [[101.0, 1.0]]),
        delta(T0 + 2, 11, [[99.5, 1.0]], []),            # top moves: churn at T0 + 2
        delta(T0 + 3, 12, [[99.5, 2.0]], []),            # size only: no churn
        delta(T0 + 4, 13, [[98.0, 0.0]], [[100.5, 1.0]]),  # absent delete; ask top moves
        delta(T0 + 5, 15, [[99.6, 1.0]], []),            # gap: book invalid, held
        delta(T0 + 6, 16, [[99.7, 1.0]], []),            # no_book: held
        snap(T0 + 7, 15, [[99.0, 1.0]], [[101.0, 1.0]], src="rest"),  # catches up on 16
        tick(T0 + NS),
    ])
    items = whole_runs(recs)
    assert [type(i) is DeltaRun for i in items] == [False, False, True, False, False]
    assert items[2].n == 5
    engine = Engine(REGISTRY, SYMBOLS)
    fold = Fold(engine)
    folded = fold.batch(items)
    assert fold.records == len(recs)
    assert [(n.seq, n.event, n.resync) for n in folded.notices] == [(2, "recovered", False), (6, "gap", True),
                                                                     (8, "recovered", False)]
    assert engine.counters == {"session": 1, "book_recovered": 2, "book_gap": 1, "book_no_book": 1}
    book = engine.states["AUSDT"].book
    assert book.bids().tolist() == [[99.7, 1.0], [99.0, 1.0]] and book.last_u == 16
    churn = engine.states["AUSDT"].churn
    # T0 + 2 (bid), T0 + 4 (ask) and the held delta 16 replayed after the REST snapshot (no churn:
    # snapshots and catch-up do not count); not the size-only change at T0 + 3.
    assert churn.count(T0 + 7, NS) == 2
    want = per_record(recs)
    assert (engine.checkpoint(), folded.notices, engine.counters) == (want[0], want[2], want[3])


def test_hand_case_equals_per_record() -> None:
    recs = numbered([
        snap(T0 + 1, 10, [[99.0, 1.0]], [[101.0, 1.0]]),
        delta(T0 + 2, 11, [[99.5, 1.0]], []), delta(T0 + 3, 12, [[99.5, 2.0]], []),
        delta(T0 + 4, 12, [[99.5, 9.0]], []),                    # stale
        delta(T0 + 5, 13, [[101.0, 1.0]], []),                   # crossed
        delta(T0 + 6, 14, [], []),                               # no_book
        snap(T0 + 7, 20, [[99.0, 1.0]], [[101.0, 1.0]]),
        delta(T0 + 8, 1, [], []),                                # reset
        tick(T0 + NS),
    ])
    assert as_runs(recs, random.Random(1)) == per_record(recs)
    assert Fold(Engine(REGISTRY, SYMBOLS)).batch(whole_runs(recs)).notices == per_record(recs)[2]


def test_churn_time_going_back_is_an_error_notice_per_delta_as_with_records() -> None:
    """A receive time older than the newest churn event raises inside `apply`: same error, same seq."""
    recs = numbered([
        snap(T0 + 10, 10, [[99.0, 1.0]], [[101.0, 1.0]]),
        delta(T0 + 10, 11, [[99.5, 1.0]], []),
        delta(T0 + 5, 12, [[99.6, 1.0]], []),    # moves the top at an older time: error, book changed
        delta(T0 + 12, 13, [[99.7, 1.0]], []),
        delta(T0 + 6, 14, [[99.8, 1.0]], []),    # again
    ])
    want = per_record(recs)
    errors = [n for n in want[2] if n.event.startswith("error: book_delta: ValueError: EventTimes.add")]
    assert [n.seq for n in errors] == [4, 6] and want[3]["apply_error"] == 2
    for seed in range(8):
        assert as_runs(recs, random.Random(seed)) == want
    assert Fold(Engine(REGISTRY, SYMBOLS)).batch(whole_runs(recs)).notices == want[2]


def test_strangers_and_filtered_symbols_are_counted_per_record() -> None:
    recs = numbered([delta(T0 + i, 5 + i, [], [], sym=STRANGER) for i in range(4)]
                    + [delta(T0 + 9, 3, [], [], sym="BUSDT")])
    for kw in ({}, {"only_symbols": ["AUSDT"]}):
        want = per_record(recs, **kw)
        key = "filtered" if kw else "unknown_symbol"
        assert want[3][key] == 4 + (1 if kw else 0)
        engine = Engine(REGISTRY, SYMBOLS, **kw)
        fold = Fold(engine)
        assert outcome(engine, fold, whole_runs(recs)) == want


def test_a_bad_depth_is_an_error_notice_per_delta() -> None:
    recs = numbered([delta(T0 + i, 5 + i, [], [], depth=0) for i in range(3)])
    want = per_record(recs)
    assert len(want[2]) == 3 and want[3]["apply_error"] == 3
    run = delta_run_from_records(recs[1:])
    engine = Engine(REGISTRY, SYMBOLS)
    fold = Fold(engine)
    assert outcome(engine, fold, [recs[0], run]) == want


def test_growth_beyond_capacity_inside_a_run() -> None:
    n = 3 * ob.SPARE_ROWS
    recs = numbered([snap(T0 + 1, 10, [[50.0, 1.0]], [[200.0, 1.0]]),
                     delta(T0 + 2, 11, [[100.0 - i / 64, 1.0] for i in range(n)], []),
                     delta(T0 + 3, 12, [], [[150.0 + i / 64, 1.0] for i in range(2 * n)]),
                     delta(T0 + 4, 13, [[60.0, 1.0]], [])])
    items = whole_runs(recs)
    assert len(items) == 3 and items[2].n == 3
    engine = Engine(REGISTRY, SYMBOLS)
    fold = Fold(engine)
    assert outcome(engine, fold, items) == per_record(recs)
    assert engine.states["AUSDT"].book.bids()[:, 0].tolist() == [100.0 - i / 64 for i in range(5)]


# --- the pieces ---------------------------------------------------------------------------------------

def test_delta_run_from_records_lays_out_columns_and_rebuilds_each_record() -> None:
    recs = numbered([delta(T0 + 1, 7, [[1.0, 2.0], [0.5, 0.0]], []), delta(T0 + 2, 8, [], [[3.0, 4.0]]),
                     delta(T0 + 3, 9, [[1.5, 1.0]], [[2.5, 1.0], [2.75, 0.0]])])[1:]
    run = delta_run_from_records(recs)
    assert (run.symbol, run.depth, run.n) == ("AUSDT", 5, 3)
    assert run.seq.tolist() == [2, 3, 4] and run.recv_ns.tolist() == [T0 + 1, T0 + 2, T0 + 3]
    assert run.u.tolist() == [7, 8, 9]
    assert run.b_off.tolist() == [0, 2, 2, 3] and run.b_px.tolist() == [1.0, 0.5, 1.5]
    assert run.b_sz.tolist() == [2.0, 0.0, 1.0]
    assert run.a_off.tolist() == [0, 0, 1, 3] and run.a_px.tolist() == [3.0, 2.5, 2.75]
    assert run.a_sz.tolist() == [4.0, 1.0, 0.0]
    for i, r in enumerate(recs):
        back = run.record(i)
        assert (back.seq, back.recv_ns, back.kind, back.symbol) == (r.seq, r.recv_ns, r.kind, r.symbol)
        assert back.payload["u"] == r.payload["u"] and back.payload["depth"] == 5
        assert back.payload["b"].tobytes() == r.payload["b"].tobytes()
        assert back.payload["a"].shape == r.payload["a"].shape
    kr = kernel_run(checked_run(run))
    assert kr.index[:, ob.IX_B].tolist() == [0, 2, 2, 3] and kr.index[:3, ob.IX_U].tolist() == [7, 8, 9]
    assert kr.bids.tolist() == [[1.0, 2.0], [0.5, 0.0], [1.5, 1.0]]


def test_records_that_cannot_join_a_run_are_refused() -> None:
    a = delta(T0, 7, [], []).with_seq(1)
    with pytest.raises(ValueError, match="seq 2"):
        delta_run_from_records([a, delta(T0, 8, [], [], depth=50).with_seq(2)])
    with pytest.raises(ValueError, match="seq 3"):
        delta_run_from_records([a, delta(T0, 8, [], [], sym="BUSDT").with_seq(3)])
    with pytest.raises(ValueError, match="at least one"):
        delta_run_from_records([])
    bad = a._replace(payload={**a.payload, "b": [[1.0, 2.0]]})
    assert runnable(a) and not runnable(bad) and not runnable(a._replace(payload={**a.payload, "u": 2 ** 63}))
    assert not runnable(snap(T0, 1, [], []))
    items = list(runs_of([bad, a]))
    assert items[0] is bad and type(items[1]) is DeltaRun


def test_checked_run_refuses_offsets_outside_the_arrays() -> None:
    run = delta_run_from_records([delta(T0, 7, [[1.0, 2.0]], []).with_seq(1)])
    checked_run(run)
    for bad in (run._replace(b_off=np.array([0, 2])), run._replace(b_off=np.array([0])),
                run._replace(a_off=np.array([1, 0])), run._replace(u=np.array([1, 2])),
                run._replace(b_sz=np.array([1.0, 2.0]))):
        with pytest.raises(ValueError, match="delta run AUSDT"):
            checked_run(bad)
    with pytest.raises(ValueError):
        Engine(REGISTRY, SYMBOLS).apply_deltas(run._replace(b_off=np.array([0, 5])))


def test_runs_of_groups_consecutive_deltas_of_one_book_only() -> None:
    recs = numbered([delta(T0, 1, [], []), delta(T0, 2, [], []), delta(T0, 3, [], [], depth=50),
                     delta(T0, 4, [], [], sym="BUSDT"), tick(T0 + NS), delta(T0 + NS, 5, [], [])])[1:]
    items = list(runs_of(recs, max_len=1 << 16))
    assert [i.n if type(i) is DeltaRun else "rec" for i in items] == [2, 1, 1, "rec", 1]
    assert [i.n for i in runs_of(recs[:2], max_len=1)] == [1, 1]


def test_event_times_add_many_equals_add_of_each_and_refuses_disorder() -> None:
    a, b = EventTimes(10 * NS), EventTimes(10 * NS)
    times = np.array([5, 5, 9, 40, 41], dtype=np.int64)
    for t in times.tolist():
        a.add(t)
    b.add_many(times[:2])
    b.add_many(times[2:])
    b.add_many(times[:0])
    assert a.to_state() == b.to_state() and len(b) == 5
    for bad in (np.array([40], dtype=np.int64), np.array([50, 49], dtype=np.int64)):
        with pytest.raises(ValueError, match="out of order"):
            b.add_many(bad)
    assert b.to_state() == a.to_state()


@pytest.mark.skipif(not hasattr(ob.apply_run, "py_func"), reason="NUMBA_DISABLE_JIT: nothing compiled")
def test_run_kernel_matches_its_python_original() -> None:
    """The compiled run kernel and its `.py_func` stop at the same delta with the same storage."""
    rng = np.random.default_rng(7)
    n = 300
    u = np.arange(2, n + 2, dtype=np.int64)
    u[[50, 120]] = [999, 1]  # a gap and a reset stop the kernel
    sizes = rng.integers(0, 12, n)
    off = np.concatenate([[0], np.cumsum(sizes)])
    m = int(off[-1])
    bids = np.column_stack([100.0 - rng.integers(0, 40, m), rng.integers(0, 3, m) * 1.5])
    asks = np.column_stack([130.0 - rng.integers(0, 60, m) / 2, rng.integers(0, 3, m) * 1.5])
    index = np.zeros((n + 1, ob.IX_COLS), dtype=np.int64)
    index[:n, ob.IX_U], index[:, ob.IX_B], index[:, ob.IX_A] = u, off, off
    runs = []
    for fn in (ob.apply_run, ob.apply_run.py_func):
        levels = np.full((2, 60, 2), np.nan)
        counts = np.zeros(ob.COUNTS_SHAPE, dtype=np.int64)
        counts[ob.STATE, ob.DEPTH], counts[ob.STATE, ob.LAST_U], counts[ob.FLAGS, 0] = 16, 1, 1
        idx, i, stops = index.copy(), 0, []
        while i < n:
            r = fn(levels, counts, idx, bids, asks, i)
            stops.append(r)
            i = (r >> ob.RUN_SHIFT) + 1
            counts[ob.STATE, ob.LAST_U] = u[min(i, n - 1)] - 1  # resume after it as if resynced
        runs.append((stops, levels.tobytes(), counts.tolist(), idx.tolist()))
    assert runs[0] == runs[1]
    assert {r & ob.RUN_STATUS for r in runs[0][0]} >= {ob.RUN_REJECT, ob.RUN_DONE}


def test_the_online_path_and_a_run_give_the_same_book() -> None:
    """`apply_delta` message by message and `apply_run` over all of them: same bytes, same outcomes."""
    rng = np.random.default_rng(3)
    msgs = []
    for k in range(400):
        nb, na = int(rng.integers(0, 9)), int(rng.integers(0, 9))
        msgs.append((k + 2, np.column_stack([100.0 - rng.integers(0, 50, nb), rng.integers(0, 3, nb) * 0.5]),
                     np.column_stack([101.0 + rng.integers(0, 50, na), rng.integers(0, 3, na) * 0.5])))
    one, many = ob.OrderBook(20), ob.OrderBook(20)
    for b in (one, many):
        b.apply_snapshot(1, np.array([[100.0, 1.0]]), np.array([[101.0, 1.0]]))
    outs = [one.apply_delta(u, b, a) for u, b, a in msgs]
    recs = [delta(T0, u, b.tolist(), a.tolist(), depth=20).with_seq(i + 1) for i, (u, b, a) in enumerate(msgs)]
    kr = kernel_run(checked_run(delta_run_from_records(recs)))
    stop, got = many.apply_run(kr.index, kr.bids, kr.asks, 0)
    assert (stop, got) == (len(msgs), "applied") and set(outs) == {"applied"}
    assert one.to_state() == many.to_state() and one._levels.tobytes() == many._levels.tobytes()


# --- real captures ------------------------------------------------------------------------------------

def _capture_records(path: Path, tmp_path: Path) -> list[Record]:
    from gateway_bridge.importer import import_files
    from journal.reader import JournalReader

    j = tmp_path / path.name
    import_files(str(j), "auto", [str(path)])
    return list(JournalReader(str(j)).records())


@pytest.mark.parametrize("name", [SOL_DOGE_FRAMES, XRP_OB500])
def test_real_captures_replay_identically_as_runs(shared_bybit: Path, tmp_path: Path, name: str) -> None:
    records = _capture_records(shared_bybit / name, tmp_path)
    deltas = sum(1 for r in records if r.kind == Kind.BOOK_DELTA)
    assert deltas > 40
    results = []
    for items in (records, list(runs_of(records)), split_into_runs(records, random.Random(5)),
                  list(runs_of(records, trades=True))):
        engine = Engine(REGISTRY)
        fold = Fold(engine)
        results.append(outcome(engine, fold, items))
    assert results[1] == results[0] and results[2] == results[0] and results[3] == results[0]
    assert results[0][1]  # vectors were compared


# --- trades runs -------------------------------------------------------------------------------------

def trades_msg(t: int, *rows: tuple[float, float, int, str], sym: str = "AUSDT") -> Record:
    return Record(0, t, int(Kind.TRADES), sym, 0, 0, {
        "p": np.array([r[0] for r in rows], dtype=np.float64), "v": np.array([r[1] for r in rows], dtype=np.float64),
        "side": np.array([r[2] for r in rows], dtype=np.int8), "T": np.full(len(rows), t // 1_000_000),
        "id": [r[3] for r in rows], "bt": [False] * len(rows)})


def test_trades_run_dedupes_per_message_and_sums_like_records() -> None:
    recs = numbered([trades_msg(T0 + 1, (1.0, 2.0, 1, "a"), (1.5, 1.0, -1, "b")),
                     trades_msg(T0 + 2),                                       # no trades
                     trades_msg(T0 + 3, (2.0, 1.0, 1, "a"), (2.5, 4.0, 1, "c"), (2.5, 4.0, 1, "c")),
                     trades_msg(T0 + 2 * NS, (3.0, 1.0, -1, "d")), tick(T0 + NS)])
    run = trades_run_from_records(recs[1:5])
    assert run.off.tolist() == [0, 2, 2, 5, 6] and run.ids == ["a", "b", "a", "c", "c", "d"]
    assert run.side.dtype == np.int8 and run.recv_ns.tolist() == [T0 + 1, T0 + 2, T0 + 3, T0 + 2 * NS]
    engine = Engine(REGISTRY, SYMBOLS)
    fold = Fold(engine)
    got = outcome(engine, fold, [recs[0], run, recs[5]])
    assert got == per_record(recs)
    assert engine.counters["trade_duplicates"] == 2 and fold.records == 6
    assert len(engine.states["AUSDT"].trades) == 4  # a, b, c (once), d
    back = run.record(2)
    assert back.payload["id"] == ["a", "c", "c"] and back.payload["p"].tolist() == [2.0, 2.5, 2.5]


def test_trades_run_with_time_going_back_fails_per_message_as_records_do() -> None:
    recs = numbered([trades_msg(T0 + 10, (1.0, 1.0, 1, "a")), trades_msg(T0 + 5, (1.0, 1.0, 1, "b")),
                     trades_msg(T0 + 12, (1.0, 1.0, 1, "c")), trades_msg(T0 + 11, (1.0, 1.0, 1, "a"))])
    want = per_record(recs)
    assert want[3]["apply_error"] >= 1 and [n.seq for n in want[2]] == [3, 5]
    for cut in (0, 1, 2):
        items = [recs[0], *recs[1:1 + cut]] + [trades_run_from_records(recs[1 + cut:])]
        engine = Engine(REGISTRY, SYMBOLS)
        assert outcome(engine, Fold(engine), items) == want


def test_trades_runs_of_strangers_count_per_message() -> None:
    recs = numbered([trades_msg(T0 + i, (1.0, 1.0, 1, str(i)), sym=STRANGER) for i in range(3)])
    engine = Engine(REGISTRY, SYMBOLS)
    items = list(runs_of(recs, trades=True))
    assert type(items[1]) is TradesRun and items[1].n == 3
    assert outcome(engine, Fold(engine), items) == per_record(recs)
    assert engine.counters["unknown_symbol"] == 3


def test_checked_trades_run_refuses_inconsistent_columns() -> None:
    run = trades_run_from_records([trades_msg(T0, (1.0, 1.0, 1, "a")).with_seq(1)])
    assert checked_trades_run(run).ids == ["a"]
    for bad in (run._replace(off=np.array([0, 2])), run._replace(off=np.array([1, 1])),
                run._replace(ids=[]), run._replace(side=np.array([1, 1]))):
        with pytest.raises(ValueError, match="trades run AUSDT"):
            checked_trades_run(bad)
    odd = trades_msg(T0, (1.0, 1.0, 1, "a"))
    assert trades_runnable(odd)
    assert not trades_runnable(odd._replace(payload={**odd.payload, "id": [7]}))
    assert not trades_runnable(odd._replace(payload={**odd.payload, "side": np.array([1])}))
    with pytest.raises(ValueError, match="seq 0"):
        trades_run_from_records([odd, odd._replace(symbol="BUSDT")])
