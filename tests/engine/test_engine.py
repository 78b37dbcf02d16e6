"""Engine behaviour around the features: vector layout, `every:` cadence, checkpoint round trip, determinism."""

from __future__ import annotations

import math

import numpy as np

from engine.engine import Engine
from engine.record import Kind, Record
from registry import Registry, load_registry_text
from tests.engine.test_features import NS, SYMBOLS, T0, delta, ns, scenario, snap, tick_at, trades
from tools.registry_file import default_registry

VectorKey = tuple[int, str, int, bytes, str]


def run(engine: Engine, records: list[Record]) -> list[VectorKey]:
    """Apply `records`; every vector as comparable bytes (ts, symbol, book flag, float64 bytes, hash)."""
    return [(v.ts_ns, v.symbol, v.book_valid, v.values.tobytes(), v.registry_hash)
            for r in records for v in engine.apply(r).vectors]


def registry(*features: str) -> Registry:
    """A registry of `features` (YAML flow mappings), in this order."""
    return load_registry_text("version: 1\nfeatures:\n" + "".join(f"  - {f}\n" for f in features), source="test")


# --- layout ----------------------------------------------------------------------------------------

def test_a_tick_gives_one_vector_per_symbol_sorted_with_columns_in_file_order() -> None:
    reg = registry("{name: tod, function: time_of_day}", "{name: mid, function: mid_price}",
                   "{name: zz, function: ref, inputs: [tod]}")
    engine = Engine(reg, ["ZUSDT", "AUSDT", "ZUSDT"])
    assert not engine.apply(snap(0.5, [(10.0, 1.0)], [(11.0, 1.0)])._replace(symbol="ZUSDT")).vectors
    vectors = engine.apply(tick_at(1)).vectors
    assert [v.symbol for v in vectors] == ["AUSDT", "ZUSDT"]
    tod = ((ns(1) % (86_400 * NS)) / (86_400 * NS))
    a, z = vectors
    assert a.ts_ns == z.ts_ns == ns(1) and a.registry_hash == z.registry_hash == reg.content_hash
    assert (a.book_valid, z.book_valid) == (0, 1)
    assert a.values[0] == tod and math.isnan(a.values[1]) and a.values[2] == tod
    assert z.values.tolist() == [tod, 10.5, tod]
    assert a.values.dtype == np.float64 and a.values.shape == (3,)


def test_vectors_are_copies_not_views_of_engine_state() -> None:
    engine = Engine(registry("{name: mid, function: mid_price}"), ["XUSDT"])
    first = engine.apply(tick_at(1)).vectors[0].values
    engine.apply(snap(1.5, [(10.0, 1.0)], [(11.0, 1.0)]))
    engine.apply(tick_at(2))
    assert math.isnan(first[0])


# --- every: cadence --------------------------------------------------------------------------------

def test_every_3s_recomputes_on_3s_boundaries_and_holds_in_between() -> None:
    reg = registry("{name: count, function: trade_count, window: 3s, every: 3s}",
                   "{name: count_1s, function: trade_count, window: 3s}",
                   "{name: tod, function: time_of_day, every: 3s}")
    assert ns(0) % (3 * NS) == 0  # tick 3 s, 6 s, 9 s are the boundaries
    engine = Engine(reg, ["XUSDT"])
    records = [tick_at(1), tick_at(2), trades(2.5, (1.0, 1.0, 1, "a")), tick_at(3), tick_at(4),
               trades(4.5, (1.0, 1.0, 1, "b")), tick_at(5), tick_at(6), tick_at(7), tick_at(8), tick_at(9)]
    rows = [v.values.tolist() for r in records for v in engine.apply(r).vectors]
    count, count_1s, tod = zip(*rows, strict=True)
    assert count_1s == (0, 0, 1, 1, 2, 1, 1, 0, 0)
    nan = math.nan
    want = (nan, nan, 1, 1, 1, 1, 1, 1, 0)  # at 6 s: (3, 6] holds "b" only; before 3 s: never computed
    assert all((math.isnan(g) and math.isnan(w)) or g == w for g, w in zip(count, want, strict=True)), count
    day = 86_400 * NS
    held = [(ns(s) % day) / day for s in (3, 3, 3, 6, 6, 6, 9)]
    assert math.isnan(tod[0]) and math.isnan(tod[1]) and list(tod[2:]) == held


# --- checkpoint round trip -------------------------------------------------------------------------

def cut_points(records: list[Record]) -> list[int]:
    """Indices to checkpoint before: the start, right after a tick, inside a gap, a crossed book,
    the gateway outage, mid-window, and just before the last record."""
    def after_tick(seconds: int) -> int:
        return next(i for i, r in enumerate(records) if r.kind == Kind.TICK and r.recv_ns == T0 + seconds * NS) + 1

    def first_at_or_after(seconds: float) -> int:
        return next(i for i, r in enumerate(records) if r.recv_ns >= T0 + round(seconds * 1e9))

    return [0, after_tick(1), first_at_or_after(33.3), first_at_or_after(102.0), first_at_or_after(150.5),
            first_at_or_after(202.0), after_tick(320), len(records) - 1]


def test_checkpoint_restore_continues_bit_identically_from_any_cut() -> None:
    records = scenario()
    straight = Engine(default_registry(), SYMBOLS)
    vectors: list[list[VectorKey]] = [run(straight, [r]) for r in records]  # per record
    final = straight.checkpoint()
    for cut in cut_points(records):
        engine = Engine(default_registry(), SYMBOLS)
        before = run(engine, records[:cut])
        data = engine.checkpoint()
        restored = Engine.restore(data)
        assert restored.checkpoint() == data, f"restore → checkpoint changes the bytes at cut {cut}"
        after_original, after_restored = run(engine, records[cut:]), run(restored, records[cut:])
        assert after_restored == after_original, f"vectors differ after a restore at record {cut}"
        assert before + after_restored == [v for per in vectors for v in per]
        assert restored.checkpoint() == engine.checkpoint() == final, f"final state differs (cut {cut})"


def test_restore_of_a_restore_mid_run_keeps_the_vectors() -> None:
    records = scenario()
    expected = run(Engine(default_registry(), SYMBOLS), records)
    engine, got = Engine(default_registry(), SYMBOLS), []
    for start in range(0, len(records), 997):  # restart every 997 records
        got += run(engine, records[start:start + 997])
        engine = Engine.restore(Engine.restore(engine.checkpoint()).checkpoint())
    assert got == expected


# --- determinism -----------------------------------------------------------------------------------

def test_two_runs_over_the_same_records_give_identical_bytes() -> None:
    a, b = Engine(default_registry(), SYMBOLS), Engine(default_registry(), list(reversed(SYMBOLS)))
    run_a, run_b = run(a, scenario()), run(b, scenario())
    assert len(run_a) == 400 * len(SYMBOLS)
    assert run_a == run_b
    assert a.checkpoint() == b.checkpoint()
    assert any(not np.isnan(np.frombuffer(v[3])).any() for v in run_a)  # fully defined vectors occur


# --- notices ---------------------------------------------------------------------------------------

def test_book_trouble_gives_one_notice_per_transition_and_resyncs_per_spec() -> None:
    """SPEC C.5: gap and crossed ask for a snapshot once; u = 1 is a counted reset; gateway up resyncs all."""
    engine = Engine(registry("{name: mid, function: mid_price}"), ["XUSDT"])
    bids, asks = [(100.0, 1.0)], [(100.5, 1.0)]
    down = Record(0, ns(1.4), Kind.GATEWAY_DOWN, "", 0, 0, {"reason": "silence", "silent_ms": 3000})
    up = Record(0, ns(1.5), Kind.GATEWAY_UP, "", 0, 0, {"reason": "traffic", "silent_ms": 0})
    steps = [
        (snap(0.5, bids, asks, u=10), [(50, "recovered", False)]),
        (delta(0.6, 10, [], []), []),  # stale
        (delta(0.7, 12, [], []), [(50, "gap", True)]),
        (delta(0.8, 13, [], []), []),  # already invalid: no second request
        (snap(1.0, bids, asks, u=20), [(50, "recovered", False)]),
        (delta(1.1, 21, [(101.0, 1.0)], []), [(50, "crossed", True)]),
        (snap(1.2, bids, asks, u=1), [(50, "reset", False)]),
        (snap(1.3, bids, asks, u=30, depth=1), [(1, "recovered", False)]),
        (down, [(1, "gateway_down", False), (50, "gateway_down", False)]),
        (up, [(1, "gateway_down", True), (50, "gateway_down", True)]),
    ]
    for record, want in steps:
        got = [(n.depth, n.event, n.resync) for n in engine.apply(record).notices]
        assert got == want, record
    assert {k: engine.counters[k] for k in ("book_gap", "book_crossed", "book_reset", "book_stale")} == {
        "book_gap": 1, "book_crossed": 1, "book_reset": 1, "book_stale": 1}


def test_a_book_first_seen_through_a_delta_asks_for_a_snapshot_once() -> None:
    """After a restart without state, deltas arrive for a book with no snapshot: one resync, then quiet."""
    engine = Engine(registry("{name: mid, function: mid_price}"), ["XUSDT"])
    got = [[(n.depth, n.event, n.resync) for n in engine.apply(r).notices]
           for r in (delta(0.5, 40, [(100.0, 1.0)], []), delta(0.6, 41, [], []))]
    assert got == [[(50, "no_snapshot", True)], []]
    engine.apply(snap(0.7, [(100.0, 1.0)], [(100.5, 2.0)], u=50))
    (vector,) = engine.apply(tick_at(1)).vectors
    assert vector.book_valid == 1 and vector.values[0] == 100.25


def test_a_journaled_registry_change_takes_effect_at_the_next_tick_and_a_bad_one_is_refused() -> None:
    """SPEC C.9: the switch happens at a tick boundary; vectors carry the new hash from then on."""
    old = registry("{name: mid, function: mid_price}")
    new = registry("{name: mid, function: mid_price}", "{name: spread, function: spread_abs}")
    engine = Engine(old, ["XUSDT"])
    engine.apply(snap(0.5, [(100.0, 1.0)], [(100.5, 2.0)], u=10))
    change = Record(0, ns(1.2), Kind.REGISTRY_CHANGED, "", 0, 0, {"hash": new.content_hash, "content": new.canonical})
    bad = Record(0, ns(1.3), Kind.REGISTRY_CHANGED, "", 0, 0, {"hash": "x", "content": "features: [{name: 1}]"})
    (v1,) = engine.apply(tick_at(1)).vectors
    assert engine.apply(change).notices == ()
    (rejected,) = engine.apply(bad).notices
    assert rejected.event.startswith("registry rejected:") and not rejected.resync
    (v2,) = engine.apply(tick_at(2)).vectors
    assert v1.registry_hash == old.content_hash and v1.values.tolist() == [100.25]
    assert v2.registry_hash == new.content_hash and v2.values.tolist() == [100.25, 0.5]


def test_a_malformed_record_is_an_error_notice_and_the_engine_keeps_going() -> None:
    engine = Engine(registry("{name: mid, function: mid_price}"), ["XUSDT"])
    engine.apply(snap(0.5, [(100.0, 1.0)], [(100.5, 2.0)], u=10))
    broken = Record(7, ns(0.6), Kind.BOOK_DELTA, "XUSDT", 0, 0, {"depth": 50, "b": [], "a": []})  # no "u"
    (notice,) = engine.apply(broken).notices
    assert notice.seq == 7 and notice.event.startswith("error: book_delta: KeyError") and not notice.resync
    assert engine.counters["apply_error"] == 1
    (vector,) = engine.apply(tick_at(1)).vectors
    assert vector.book_valid == 1 and vector.values[0] == 100.25


def test_checkpoint_bytes_do_not_depend_on_the_order_counters_were_first_seen() -> None:
    """Independent records of two symbols in either order (a stale delta, a duplicate trade): same bytes."""
    reg = registry("{name: mid, function: mid_price}")
    head = [snap(0.1, [(100.0, 1.0)], [(100.5, 2.0)], u=10)._replace(seq=1, symbol="AUSDT"),
            trades(0.2, (1.0, 1.0, 1, "t"))._replace(seq=2, symbol="BUSDT")]
    stale = delta(0.3, 10, [(100.0, 5.0)], [])._replace(seq=3, symbol="AUSDT")
    dup = trades(0.4, (1.0, 1.0, 1, "t"))._replace(seq=4, symbol="BUSDT")
    last = tick_at(1)._replace(seq=5)
    engines = [Engine(reg, ["AUSDT", "BUSDT"]) for _ in range(2)]
    for engine, order in zip(engines, ([stale, dup], [dup, stale]), strict=True):
        for r in [*head, *order, last]:
            engine.apply(r)
    assert list(engines[0].counters) != list(engines[1].counters)  # first seen in different orders
    assert engines[0].counters == engines[1].counters == {"book_recovered": 1, "book_stale": 1,
                                                          "trade_duplicates": 1}
    assert engines[0].checkpoint() == engines[1].checkpoint()
