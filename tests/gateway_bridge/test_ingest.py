"""Ingest pipeline on a fake clock: ticks, the gap cap, silence, bad-frame budget, restart, live = import."""

from __future__ import annotations

import hashlib
import time

import orjson

from engine.record import MARKET_KINDS, NS_PER_MS, NS_PER_S, Kind, Record
from gateway_bridge.config import GatewayConfig, TicksConfig
from gateway_bridge.ingest import Ingest
from journal import codec

S = NS_PER_S
MS = NS_PER_MS
T0 = 1_786_310_819 * S
GW = GatewayConfig(silence_ms=1000, bad_frames_max_bytes_per_s=1200)
TOPIC = GW.topics.trades.encode()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, ns: int) -> None:
        self.ns = ns

    def __call__(self) -> int:
        return self.ns


def trade(i: int, sym: str = "SOLUSDT") -> bytes:
    return orjson.dumps({"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": 1000 + i, "data": [
        {"T": 1000 + i, "s": sym, "S": "Buy", "v": "1", "p": "77.3", "i": str(i), "BT": False}]})


def ingest(clock: FakeClock | None = None, *, last: int = 0, gw: GatewayConfig = GW, backfill: int = 60) -> Ingest:
    return Ingest(gw, TicksConfig(max_backfill_s=backfill), ["SOLUSDT"], last_recv_ns=last,
                  clock_ns=clock or FakeClock(T0))


def shape(recs: list[Record]) -> list[tuple[str, int]]:
    """Kind name and recv_ns of each record (trades as their trade time, to tell them apart)."""
    out = []
    for r in recs:
        name = Kind(r.kind).name.lower()
        out.append((f"trade{int(r.payload['T'][0]) - 1000}" if r.kind == Kind.TRADES else name, r.recv_ns))
    return out


def test_ticks_go_before_the_first_record_at_or_after_each_boundary() -> None:
    ing = ingest()
    t = [T0 + 200 * MS, T0 + 900 * MS, T0 + S, T0 + 2 * S + 5]
    recs = ing.messages([(t[0], [TOPIC, trade(0)]), (t[1], [TOPIC, trade(1)])])
    recs += ing.messages([(t[2], [TOPIC, trade(2)]), (t[3], [TOPIC, trade(3)])])
    assert shape(recs) == [("trade0", t[0]), ("trade1", t[1]), ("tick", T0 + S), ("trade2", t[2]),
                           ("tick", T0 + 2 * S), ("trade3", t[3])]
    assert ing.next_tick_ns == T0 + 3 * S
    assert shape(ing.idle(T0 + 3 * S - 1)) == []
    assert shape(ing.idle(T0 + 4 * S + 7)) == [("tick", T0 + 3 * S), ("tick", T0 + 4 * S),
                                               ("gateway_down", T0 + 4 * S + 7)]  # silent since t[3]
    c = ing.counters
    assert c["received"] == 4 and c["ticks"] == 4 and c["bad_total"] == 0


def test_no_ticks_before_the_first_record_and_acks_do_not_tick() -> None:
    ing = ingest()
    assert ing.idle(T0 + 5 * S) == [] and ing.next_tick_ns is None
    ack = b'{"success":true,"op":"subscribe"}'
    assert ing.messages([(T0 + 6 * S, [TOPIC, ack])]) == []  # the series starts at a record
    assert shape(ing.messages([(T0 + 7 * S, [TOPIC, trade(0)])])) == [("tick", T0 + 7 * S), ("trade0", T0 + 7 * S)]


def test_silence_journals_down_once_and_traffic_up_before_its_first_record() -> None:
    ing = ingest(FakeClock(T0 + 100 * MS))
    ing.watch()  # the live loop starts watching at open
    assert ing.idle(T0 + 1099 * MS) == []
    down = ing.idle(T0 + 1100 * MS)
    assert shape(down) == [("gateway_down", T0 + 1100 * MS)]
    assert down[0].payload == {"reason": "silence", "silent_ms": 1000}
    assert shape(ing.idle(T0 + 5 * S)) == [("tick", T0 + k * S) for k in range(2, 6)]  # no second down
    recs = ing.messages([(T0 + 7 * S + 3, [TOPIC, trade(0)])])
    assert shape(recs) == [("tick", T0 + 6 * S), ("tick", T0 + 7 * S), ("gateway_up", T0 + 7 * S + 3),
                           ("trade0", T0 + 7 * S + 3)]
    assert recs[2].payload == {"reason": "traffic", "silent_ms": 6900}
    assert ing.counters["gateway_down"] == 1 and ing.counters["gateway_up"] == 1


def _live(times_and_frames: list[tuple[int, bytes]], wakes: list[int]) -> list[Record]:
    """What a live loop journals: idle at each wake time, each message when it arrives."""
    ing = ingest()
    events = sorted([(t, 0, f) for t, f in times_and_frames] + [(w, 1, b"") for w in wakes])
    out: list[Record] = []
    for t, is_wake, f in events:
        out += ing.idle(t) if is_wake else ing.messages([(t, [TOPIC, f])])
    return out


def test_live_and_import_journal_the_same_records_across_silences() -> None:
    frames = [(T0 + 100 * MS, trade(0)), (T0 + 600 * MS, trade(1)), (T0 + 3 * S + 50 * MS, trade(2)),
              (T0 + 3 * S + 900 * MS, trade(3)), (T0 + 4 * S + 850 * MS, trade(4)), (T0 + 9 * S, trade(5)),
              (T0 + 9 * S + 1, b'{"op":"pong"}'), (T0 + 12 * S, trade(6))]
    # The live loop wakes on every boundary and exactly when the silence deadline passes.
    silences = [frames[1][0] + S, frames[4][0] + S, frames[6][0] + S]
    live = _live(frames, [T0 + k * S for k in range(1, 13)] + silences)
    ing = ingest()
    imported = [r for t, f in frames for r in ing.frame(t, f)]
    _records_equal(live, imported)
    kinds = [r.kind for r in imported]
    assert kinds.count(Kind.GATEWAY_DOWN) == 3 and kinds.count(Kind.GATEWAY_UP) == 3
    down = [r for r in imported if r.kind == Kind.GATEWAY_DOWN]
    assert [r.recv_ns for r in down] == silences and all(r.payload["silent_ms"] == 1000 for r in down)
    assert [r.recv_ns for r in imported if r.kind == Kind.TICK] == [T0 + k * S for k in range(1, 13)]


def _records_equal(a: list[Record], b: list[Record]) -> None:
    """Assert `a` equals `b` record for record (numpy payloads compared through their encoding)."""
    assert [x[:6] for x in a] == [y[:6] for y in b]
    assert [codec.encode(x) for x in a] == [codec.encode(y) for y in b]


def test_restart_journals_down_at_the_last_record_and_caps_the_backfill() -> None:
    last = T0 + 400 * MS
    clock = FakeClock(last + 30 * 86_400 * S)  # a month down
    ing = ingest(clock, last=last, backfill=5)
    restart = ing.restart()
    assert shape(restart) == [("gateway_down", last)]
    assert restart[0].payload == {"reason": "shard_restart", "silent_ms": 30 * 86_400 * 1000}
    t = time.perf_counter()
    recs = ing.messages([(clock.ns, [TOPIC, trade(0)])])
    assert time.perf_counter() - t < 0.05
    assert [r.kind for r in recs] == [Kind.TICK] * 5 + [Kind.TICK_GAP, Kind.TICK, Kind.GATEWAY_UP, Kind.TRADES]
    month = T0 + 30 * 86_400 * S
    assert recs[0].recv_ns == T0 + S and recs[5].payload == {"from_ns": T0 + 6 * S, "to_ns": month - S,
                                                             "seconds": 30 * 86_400 - 6}
    assert recs[6].recv_ns == month and ing.counters["tick_gaps"] == 1


def test_fresh_journal_restart_is_nothing() -> None:
    assert ingest().restart() == []


def test_import_two_frames_a_year_apart_in_milliseconds() -> None:
    ing = ingest()
    t = time.perf_counter()
    recs = ing.frame(T0, trade(0)) + ing.frame(T0 + 365 * 86_400 * S, trade(1))
    assert time.perf_counter() - t < 0.1
    kinds = [r.kind for r in recs]
    assert kinds == [Kind.TICK, Kind.TRADES, Kind.TICK, Kind.GATEWAY_DOWN] + [Kind.TICK] * 60 + [
        Kind.TICK_GAP, Kind.TICK, Kind.GATEWAY_UP, Kind.TRADES]
    assert recs[3].recv_ns == T0 + S  # down when the silence deadline passed, as a live idle poll would
    assert recs[4].recv_ns == T0 + 2 * S and recs[-1].recv_ns == T0 + 365 * 86_400 * S


def test_hostile_messages_never_cost_good_ones_and_every_record_encodes() -> None:
    big = b"\x00" * (70 * 1024 * 1024)
    ing = ingest(gw=GatewayConfig(silence_ms=1000))
    msgs = [(T0 + 1, [TOPIC, trade(0)]), (T0 + 2, [TOPIC, big[:1000], big, b"x"]),
            (T0 + 3, [TOPIC, trade(1)]), (T0 + 4, [TOPIC + b"X", trade(9)]), (T0 + 5, [TOPIC]),
            (T0 + 6, [TOPIC, b"[1,2,3]"]), (T0 + 7, [TOPIC, trade(2)])]
    recs = ing.messages(msgs)
    assert [r.kind for r in recs] == [Kind.TRADES, Kind.BAD_FRAME, Kind.TRADES, Kind.BAD_FRAME,
                                      Kind.BAD_FRAME, Kind.BAD_FRAME, Kind.TRADES]
    bad = [r.payload for r in recs if r.kind == Kind.BAD_FRAME]
    assert [p["reason"] for p in bad] == ["bad_multipart", "unknown_topic", "bad_multipart", "not_an_object"]
    whole = big[:1000] + big + b"x"
    assert bad[0]["raw"] == whole[:65536] and bad[0]["raw_len"] == len(whole)
    assert bad[0]["sha256"] == hashlib.sha256(whole).hexdigest() and bad[0]["topic"] == GW.topics.trades
    assert bad[1]["topic"] == GW.topics.trades + "X" and bad[1]["raw"] == trade(9)
    for r in recs:
        assert len(codec.encode(r)) < 100_000
    assert ing.counters["bad"] == {"bad_multipart": 2, "unknown_topic": 1, "not_an_object": 1}


def test_bad_frames_past_the_byte_budget_are_summarised_once_per_second() -> None:
    ing = ingest()  # budget: 1200 bytes a second of raw + topic + 160 per record
    junk = b"{" + b"j" * 399  # 400 raw + len("market.trades") + 160 = 573 bytes each: two fit
    msgs = [(T0 + k * MS, [TOPIC, junk]) for k in range(1, 6)] + [(T0 + 10 * MS, [TOPIC, trade(0)])]
    msgs += [(T0 + 20 * MS, [TOPIC + b"?", junk])]
    recs = ing.messages(msgs)
    assert shape(recs) == [("bad_frame", T0 + MS), ("bad_frame", T0 + 2 * MS),
                           ("trade0", T0 + 10 * MS)]
    assert ing.idle(T0 + S - 1) == []  # the second is not over yet
    later = ing.messages([(T0 + S + 5, [TOPIC, trade(1)])])
    assert shape(later) == [("bad_frame_summary", T0 + 20 * MS), ("tick", T0 + S), ("trade1", T0 + S + 5)]
    assert later[0].payload == {"counts": {"bad_json": 3, "unknown_topic": 1}, "bytes": 1600,
                                "from_ns": T0 + 3 * MS, "to_ns": T0 + 20 * MS}
    # A new second has a new budget; an idle loop flushes a pending summary at the second's end.
    recs = ing.messages([(T0 + S + k, [TOPIC, junk]) for k in range(10, 14)])
    assert [r.kind for r in recs] == [Kind.BAD_FRAME, Kind.BAD_FRAME]
    assert shape(ing.idle(T0 + 2 * S)) == [("bad_frame_summary", T0 + S + 13), ("tick", T0 + 2 * S)]
    c = ing.counters
    assert c["bad_total"] == 10 and c["bad_summarised"] == 6 and c["bad_bytes_dropped"] == 2400
    assert c["bad_summaries"] == 2


def test_zero_budget_summarises_every_bad_frame() -> None:
    ing = ingest(gw=GatewayConfig(silence_ms=1000, bad_frames_max_bytes_per_s=0))
    recs = ing.frame(T0 + 5, b"{") + ing.frame(T0 + 6, b"") + ing.frame(T0 + S, trade(0))
    assert [r.kind for r in recs] == [Kind.BAD_FRAME_SUMMARY, Kind.TICK, Kind.TRADES]
    assert recs[0].payload == {"counts": {"bad_json": 1, "empty": 1}, "bytes": 1, "from_ns": T0 + 5, "to_ns": T0 + 6}


def test_resync_request_and_rest_snapshot_are_stamped_with_ticks_due_first() -> None:
    clock = FakeClock(T0 + 500 * MS)
    ing = ingest(clock)
    ing.messages([(T0 + 400 * MS, [TOPIC, trade(0)])])
    clock.ns = T0 + S + 7
    req = ing.resync_request("SOLUSDT", 200, "gap", "http")
    assert shape(req) == [("tick", T0 + S), ("resync_request", T0 + S + 7)]
    assert req[1].symbol == "SOLUSDT" and req[1].payload == {"topic": "orderbook.200.SOLUSDT", "depth": 200,
                                                             "reason": "gap", "via": "http"}
    body = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "s": "SOLUSDT", "b": [["77.3", "4"]], "a": [["77.31", "0.5"]], "ts": 1786310820001, "u": 77, "seq": 5,
        "cts": 1786310820000}})
    clock.ns = T0 + S + 9
    snap = ing.rest_snapshot("SOLUSDT", 200, body)
    assert [(r.kind, r.recv_ns, r.symbol) for r in snap] == [(Kind.BOOK_SNAPSHOT, T0 + S + 9, "SOLUSDT")]
    p = snap[0].payload
    assert (p["src"], p["depth"], p["u"], p["seq"], p["b"].tolist(), p["a"].tolist()) == (
        "rest", 200, 77, 5, [[77.3, 4.0]], [[77.31, 0.5]])
    bad = ing.rest_snapshot("SOLUSDT", 200, body.replace(b'"SOLUSDT"', b'"BTCUSDT"'))
    assert [r.payload["reason"] for r in bad] == ["bad_rest_snapshot"]
    assert ing.counters["resync_requests"] == 1 and ing.counters["rest_snapshots"] == 1


def test_control_records_and_import_head_take_the_stamp_and_follow_due_ticks() -> None:
    ing = ingest()
    session = Record(0, 0, Kind.SESSION, "", 0, 0, {"shard": "s"})
    recs = ing.frame(T0 + 3 * S, trade(0), head=[session])
    assert shape(recs) == [("tick", T0 + 3 * S), ("session", T0 + 3 * S), ("trade0", T0 + 3 * S)]
    assert shape(ing.control([session], T0 + 4 * S + 1)) == [("tick", T0 + 4 * S), ("session", T0 + 4 * S + 1)]


def test_market_records_keep_their_receive_order_over_a_long_batch() -> None:
    from tools.sim.gateway.config import SyntheticConfig
    from tools.sim.gateway.synthetic import generate

    frames = generate(SyntheticConfig(symbols=("SOLUSDT",), depth=50, seed=3), GW.topics, 3000, T0 // MS)
    ing = ingest()
    msgs = [(T0 + i * MS, [f.topic, f.payload]) for i, f in enumerate(frames)]
    recs = ing.messages(msgs)
    market = [r for r in recs if r.kind in MARKET_KINDS]
    assert len(market) == 3000 and [r.recv_ns for r in market] == [t for t, _ in msgs]
    assert [r.recv_ns for r in recs if r.kind == Kind.TICK] == [T0 + k * S for k in range(3)]
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False))


def test_a_drained_batch_shares_one_stamp_keeps_order_and_puts_due_ticks_first() -> None:
    ack = orjson.dumps({"op": "pong", "success": True})
    book = orjson.dumps({"topic": "orderbook.50.SOLUSDT", "type": "snapshot", "ts": 5, "data": {
        "s": "SOLUSDT", "b": [["77.1", "2"]], "a": [["77.2", "3"]], "u": 1, "seq": 9}})
    msgs = [[TOPIC, ack], [TOPIC, trade(0)], [b"no.such.topic", trade(1)], [GW.topics.orderbook_snapshot.encode(), book],
            [TOPIC, trade(2)], [TOPIC], [TOPIC, trade(3)]]
    t = T0 + 2 * S + 7
    batched = ingest(last=T0).batch(t, msgs)
    one_by_one = ingest(last=T0).messages([(t, parts) for parts in msgs])  # the same, grouped back into one batch
    assert [codec.encode(r) for r in batched] == [codec.encode(r) for r in one_by_one]
    kinds = [Kind(r.kind).name for r in batched]
    # Ticks of the seconds passed come first, then every record in message order; the bad ones in place.
    assert kinds == ["TICK", "TICK", "TRADES", "BAD_FRAME", "BOOK_SNAPSHOT", "TRADES", "BAD_FRAME", "TRADES"]
    assert [r.payload["reason"] for r in batched if r.kind == Kind.BAD_FRAME] == ["unknown_topic", "bad_multipart"]
    assert {r.recv_ns for r in batched if r.kind != Kind.TICK} == {t}
    assert [r.recv_ns for r in batched if r.kind == Kind.TICK] == [T0 + S, T0 + 2 * S]
