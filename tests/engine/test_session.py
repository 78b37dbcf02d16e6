"""What the engine takes from the journal itself: SESSION (symbols, registry), TICK_GAP, REST snapshots."""

from __future__ import annotations

import math

from engine.engine import Engine
from engine.record import Kind, Record
from engine.replay import Fold
from tests.engine.test_engine import registry
from tests.engine.test_features import SYM, delta, ns, snap, tick_at

MID = registry("{name: mid, function: mid_price}")
MID_RET = registry("{name: mid, function: mid_price}", "{name: r1, function: log_return, params: {seconds: 1}}")


def session(s: float, symbols: list[str], reg=MID) -> Record:  # noqa: ANN001
    payload = {"shard": "t", "category": "linear", "symbols": symbols, "registry": reg.canonical,
               "hash": reg.content_hash}
    return Record(0, ns(s), Kind.SESSION, "", 0, 0, payload)


def gap(from_s: int, to_s: int) -> Record:
    return Record(0, ns(from_s), Kind.TICK_GAP, "", 0, 0,
                  {"from_ns": ns(from_s), "to_ns": ns(to_s), "seconds": to_s - from_s + 1})


def rest_snap(s: float, bids: list, asks: list, u: int) -> Record:
    r = snap(s, bids, asks, u=u)
    return r._replace(payload={**r.payload, "src": "rest"})


def test_session_sets_the_symbols_at_once_and_the_registry_at_the_next_tick() -> None:
    engine = Engine(MID, ())
    engine.apply(session(0.1, ["BUSDT", "AUSDT"], MID_RET))
    v = engine.apply(tick_at(1)).vectors
    assert [x.symbol for x in v] == ["AUSDT", "BUSDT"] and {x.registry_hash for x in v} == {MID_RET.content_hash}
    assert v[0].values.shape == (2,)
    engine.apply(session(1.5, ["BUSDT", "CUSDT"], MID_RET))
    assert [x.symbol for x in engine.apply(tick_at(2)).vectors] == ["BUSDT", "CUSDT"]
    assert set(engine.registries) == {MID.content_hash, MID_RET.content_hash}


def test_a_pinned_registry_ignores_journaled_ones_and_a_symbol_filter_counts_the_rest() -> None:
    engine = Engine(MID, (), pin_registry=True, only_symbols=[SYM])
    engine.apply(session(0.1, [SYM, "OTHERUSDT"], MID_RET))
    engine.apply(snap(0.2, [(10.0, 1.0)], [(11.0, 1.0)])._replace(symbol="OTHERUSDT"))
    (v,) = engine.apply(tick_at(1)).vectors
    assert v.symbol == SYM and v.registry_hash == MID.content_hash
    assert engine.counters["filtered"] == 1 and "unknown_symbol" not in engine.counters


def test_a_tick_gap_emits_nothing_and_restarts_tick_history() -> None:
    engine = Engine(MID_RET, [SYM])
    engine.apply(snap(0.5, [(100.0, 1.0)], [(102.0, 1.0)], u=1_000))
    (v1,) = engine.apply(tick_at(1)).vectors
    assert engine.apply(gap(2, 500)).vectors == ()
    assert engine.apply(tick_at(300)).vectors == ()  # inside the gap: out of order
    (v501,) = engine.apply(tick_at(501)).vectors
    (v502,) = engine.apply(tick_at(502)).vectors
    assert v1.values[0] == v501.values[0] == 101.0
    assert math.isnan(v501.values[1])  # no tick at 500 any more: history restarted
    assert v502.values[1] == 0.0  # ln(101 / 101)
    assert engine.counters["tick_out_of_order"] == 1 and engine.counters["tick_gap"] == 1


def test_a_rest_snapshot_catches_up_on_the_deltas_held_while_the_book_was_invalid() -> None:
    engine = Engine(MID, [SYM])
    engine.apply(snap(0.1, [(100.0, 1.0)], [(102.0, 1.0)], u=10))
    (gap_notice,) = engine.apply(delta(0.2, 12, [], [])).notices
    assert (gap_notice.depth, gap_notice.event, gap_notice.resync) == (50, "gap", True)
    engine.apply(delta(0.3, 13, [(101.0, 1.0)], []))  # held: the REST answer below predates it? no: u 13 ≤ 13
    engine.apply(delta(0.4, 14, [], [(101.5, 2.0)]))  # held and newer than the snapshot: applied after it
    (recovered,) = engine.apply(rest_snap(0.5, [(100.5, 1.0)], [(102.0, 1.0)], u=13)).notices
    assert (recovered.event, recovered.resync) == ("recovered", False)
    (v,) = engine.apply(tick_at(1)).vectors
    assert v.book_valid == 1 and v.values[0] == (100.5 + 101.5) / 2
    engine.apply(delta(1.1, 15, [], []))
    assert engine.states[SYM].book.valid


def test_a_stream_snapshot_drops_held_deltas_and_a_gap_after_catch_up_asks_again() -> None:
    engine = Engine(MID, [SYM])
    engine.apply(snap(0.1, [(100.0, 1.0)], [(102.0, 1.0)], u=10))
    engine.apply(delta(0.2, 12, [], []))
    engine.apply(delta(0.3, 13, [(101.0, 1.0)], []))
    engine.apply(snap(0.4, [(100.0, 1.0)], [(102.0, 1.0)], u=20))  # from the stream: held ones are older
    assert engine.apply(tick_at(1)).vectors[0].values[0] == 101.0
    engine.apply(delta(1.2, 22, [], []))  # gap
    engine.apply(delta(1.3, 23, [], []))
    engine.apply(delta(1.4, 25, [], []))
    (notice,) = engine.apply(rest_snap(1.5, [(100.0, 1.0)], [(102.0, 1.0)], u=22)).notices
    assert (notice.event, notice.resync) == ("gap", True) and not engine.states[SYM].book.valid


def test_checkpoint_keeps_held_deltas_registries_and_options() -> None:
    records = [session(0.1, [SYM, "OTHERUSDT"], MID_RET), snap(0.2, [(100.0, 1.0)], [(102.0, 1.0)], u=10),
               tick_at(1), delta(1.1, 12, [], []), delta(1.2, 13, [], [(101.0, 1.0)]),
               rest_snap(1.3, [(100.0, 1.0)], [(102.0, 1.0)], u=12), tick_at(2), gap(3, 100), tick_at(101)]
    for cut in range(len(records) + 1):
        whole = Fold(Engine(MID, (), only_symbols=[SYM]))
        want = [(x.ts_ns, x.values.tobytes(), x.registry_hash) for x in whole.batch(records).vectors]
        first = Engine(MID, (), only_symbols=[SYM])
        got = [(x.ts_ns, x.values.tobytes(), x.registry_hash) for x in Fold(first).batch(records[:cut]).vectors]
        second = Fold(Engine.restore(first.checkpoint()))
        got += [(x.ts_ns, x.values.tobytes(), x.registry_hash) for x in second.batch(records[cut:]).vectors]
        assert got == want, cut
        assert second.engine.checkpoint() == whole.engine.checkpoint(), cut
