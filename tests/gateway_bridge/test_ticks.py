"""TickClock: hand-worked examples and a property over random receive times."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.record import NS_PER_S, Kind
from gateway_bridge.ticks import TickClock, ceil_second

S = NS_PER_S


def _interleave(times: list[int], clock: TickClock | None = None) -> list[tuple[str, int]]:
    """Return the journal order: ('tick', b) / ('rec', t) for records at `times`."""
    clock = clock or TickClock()
    out: list[tuple[str, int]] = []
    for t in times:
        for rec in clock.before(t):
            assert rec.kind == Kind.TICK and rec.symbol == "" and rec.payload == {}
            out.append(("tick", rec.recv_ns))
        out.append(("rec", t))
    return out


def test_hand_example() -> None:
    times = [int(1.2 * S), int(1.9 * S), 4 * S, int(4.5 * S)]
    assert _interleave(times) == [("rec", times[0]), ("rec", times[1]), ("tick", 2 * S), ("tick", 3 * S),
                                  ("tick", 4 * S), ("rec", 4 * S), ("rec", times[3])]


def test_first_record_on_a_boundary_gets_its_tick_first() -> None:
    assert _interleave([7 * S, 7 * S + 1]) == [("tick", 7 * S), ("rec", 7 * S), ("rec", 7 * S + 1)]


def test_until_ticks_while_idle_and_never_before_the_first_record() -> None:
    clock = TickClock()
    assert clock.until(10 * S) == []
    assert clock.before(10 * S + 5) == []
    assert [r.recv_ns for r in clock.until(int(12.5 * S))] == [11 * S, 12 * S]
    assert clock.until(int(12.9 * S)) == []
    assert [r.recv_ns for r in clock.before(13 * S)] == [13 * S]
    assert clock.next_boundary_ns == 14 * S


def test_restart_continues_from_the_saved_boundary() -> None:
    first = TickClock()
    first.before(int(1.5 * S))
    first.before(int(3.2 * S))
    resumed = TickClock(first.next_boundary_ns)
    assert [r.recv_ns for r in resumed.before(int(5.1 * S))] == [4 * S, 5 * S]


def test_ceil_second() -> None:
    assert [ceil_second(x) for x in (0, 1, S - 1, S, S + 1)] == [0, S, S, S, 2 * S]


@given(st.integers(10**18, 10**18 + 10**9).flatmap(
    lambda t0: st.lists(st.integers(0, 3 * S), min_size=1, max_size=60).map(
        lambda steps: [t0 + sum(steps[: i + 1]) for i in range(len(steps))])))
def test_ticks_cover_every_second_each_before_its_first_record(times: list[int]) -> None:
    order = _interleave(times)
    ticks = [b for what, b in order if what == "tick"]
    first = -(-times[0] // S) * S  # naive ceil
    assert ticks == list(range(first, times[-1] // S * S + 1, S))
    for i, (what, b) in enumerate(order):
        if what == "tick":
            later = [t for w, t in order[i + 1:] if w == "rec"]
            assert later and later[0] >= b
            assert all(t < b for w, t in order[:i] if w == "rec")


def _kinds(recs: list) -> list[tuple[str, int]]:
    return [("tick" if r.kind == Kind.TICK else "gap", r.recv_ns) for r in recs]


def test_long_gap_is_capped_to_backfill_then_one_gap_record_then_the_current_second() -> None:
    clock = TickClock(10 * S, max_backfill_s=3)
    recs = clock.before(int(20.5 * S))  # boundaries 10 … 20: 11 seconds
    assert _kinds(recs) == [("tick", 10 * S), ("tick", 11 * S), ("tick", 12 * S), ("gap", 13 * S), ("tick", 20 * S)]
    assert recs[3].payload == {"from_ns": 13 * S, "to_ns": 19 * S, "seconds": 7}
    assert clock.next_boundary_ns == 21 * S
    assert (clock.ticks, clock.gaps, clock.gap_seconds) == (4, 1, 7)


def test_gap_at_the_cap_is_ticked_in_full_and_one_more_second_is_a_gap() -> None:
    assert _kinds(TickClock(0, max_backfill_s=2).until(2 * S)) == [("tick", 0), ("tick", S), ("tick", 2 * S)]
    recs = TickClock(0, max_backfill_s=2).until(3 * S)
    assert _kinds(recs) == [("tick", 0), ("tick", S), ("gap", 2 * S), ("tick", 3 * S)]
    assert recs[2].payload["seconds"] == 1


def test_zero_backfill_gives_only_the_gap_and_the_current_tick() -> None:
    recs = TickClock(5 * S, max_backfill_s=0).before(9 * S)
    assert _kinds(recs) == [("gap", 5 * S), ("tick", 9 * S)] and recs[0].payload["seconds"] == 4


def test_a_thirty_day_gap_costs_no_time_or_memory() -> None:
    import time

    clock = TickClock(10**18, max_backfill_s=60)
    t = time.perf_counter()
    recs = clock.before(10**18 + 30 * 86_400 * S)
    assert time.perf_counter() - t < 0.05
    assert len(recs) == 62 and recs[60].payload["seconds"] == 30 * 86_400 - 60


@given(st.integers(0, 5), st.lists(st.integers(0, 12 * S), min_size=1, max_size=30))
def test_capped_series_accounts_for_every_second_once(keep: int, steps: list[int]) -> None:
    times = [10**18 + sum(steps[: i + 1]) for i in range(len(steps))]
    clock = TickClock(max_backfill_s=keep)
    covered: list[int] = []
    for t in times:
        for r in clock.before(t):
            if r.kind == Kind.TICK:
                covered.append(r.recv_ns)
            else:
                assert r.kind == Kind.TICK_GAP and r.recv_ns == r.payload["from_ns"] and r.payload["seconds"] > 0
                covered.extend(range(r.payload["from_ns"], r.payload["to_ns"] + 1, S))
    first = -(-times[0] // S) * S
    assert covered == list(range(first, times[-1] // S * S + 1, S))
