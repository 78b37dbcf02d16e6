"""Store tables: schemas, records -> rows by hand-checked values, rows -> records exactly, fallbacks."""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.record import NS_PER_S, Kind, Record
from journal.codec import decode, encode
from journal.store.tables import SCHEMAS, records_to_tables, table_to_records
from tests.journal.store.recs import T0, faulted_run, numbered, same_records

COMMON = ["seq", "recv_ns", "recv_time", "ts", "cts"]


def _round_trip(recs: list[Record]) -> list[Record]:
    out: list[Record] = []
    for (table, _, symbol), t in records_to_tables(recs).items():
        assert t.schema == SCHEMAS[table]
        out += table_to_records(table, t, symbol)
    return sorted(out, key=lambda r: r.seq)


def test_schemas_lead_with_the_common_columns_and_name_every_table() -> None:
    assert sorted(SCHEMAS) == sorted(["raw_orderbook_snapshots", "raw_orderbook_deltas", "raw_trades", "raw_kline",
                                      "raw_ticker", "raw_funding", "raw_executions", "control"])
    for s in SCHEMAS.values():
        assert s.names[:5] == COMMON
        assert s.field("recv_time").type == pa.timestamp("ns", tz="UTC")
    assert SCHEMAS["raw_orderbook_deltas"].field("bid_price").type == pa.list_(pa.float64())
    assert SCHEMAS["control"].field("kind").type == pa.int16()


def test_delta_row_holds_the_levels_as_lists() -> None:
    rec = Record(7, T0 + 5, Kind.BOOK_DELTA, "SOLUSDT", 1000, 999, {
        "depth": 200, "u": 11, "seq": 99, "b": np.array([[77.5, 0.0], [77.4, 2.5]]), "a": np.empty((0, 2))})
    tabs = records_to_tables([rec])
    assert list(tabs) == [("raw_orderbook_deltas", "2026-08-09", "SOLUSDT")]
    row = tabs[("raw_orderbook_deltas", "2026-08-09", "SOLUSDT")].to_pylist()[0]
    assert row["seq"] == 7 and row["recv_ns"] == T0 + 5 and row["ts"] == 1000 and row["cts"] == 999
    assert row["depth"] == 200 and row["u"] == 11 and row["cross_seq"] == 99
    assert row["bid_price"] == [77.5, 77.4] and row["bid_size"] == [0.0, 2.5]
    assert row["ask_price"] == [] and row["src"] == "" and row["extra"] is None


def test_trades_rows_one_per_trade_and_an_empty_message_keeps_a_row() -> None:
    recs = numbered([r for r in faulted_run() if r.kind == Kind.TRADES][:2])
    tabs = records_to_tables(recs)
    sol = tabs[("raw_trades", "2026-08-09", "SOLUSDT")].to_pylist()
    assert [(r["seq"], r["index"], r["price"], r["size"], r["side"], r["trade_id"], r["block_trade"]) for r in sol] == [
        (1, 0, 77.55, 0.1, 1, "a1", False), (1, 1, 77.6, 2.0, -1, "a2", True)]
    doge = tabs[("raw_trades", "2026-08-09", "DOGEUSDT")].to_pylist()
    assert [(r["seq"], r["index"], r["price"], r["trade_id"]) for r in doge] == [(2, -1, None, None)]


def test_ticker_map_keeps_field_order_and_derives_numbers() -> None:
    rec = numbered([r for r in faulted_run() if r.kind == Kind.TICKER][:1])
    row = next(iter(records_to_tables(rec).values())).to_pylist()[0]
    assert [k for k, _ in row["fields"]] == ["symbol", "lastPrice", "markPrice", "fundingRate", "nextFundingTime",
                                            "openInterest"]
    assert row["last_price"] == 77.6 and row["funding_rate"] == -0.0001 and row["open_interest"] is None
    assert row["next_funding_time"] == 1786320000000 and row["index_price"] is None


def test_faulted_run_round_trips_exactly_through_codec_records() -> None:
    recs = [decode(encode(r)) for r in numbered(faulted_run())]  # as the journal reader gives them
    same_records(_round_trip(recs), recs)


def test_ill_fitting_and_unknown_kinds_go_to_control_whole() -> None:
    recs = numbered(faulted_run())
    tabs = records_to_tables(recs)
    control = tabs[("control", "2026-08-09", "")].to_pylist()
    kinds = [(r["kind"] & 0xFFFF, r["symbol"]) for r in control]
    assert (int(Kind.BOOK_DELTA), "SOLUSDT") in kinds and (int(Kind.TRADES), "SOLUSDT") in kinds
    assert (int(Kind.TICKER), "SOLUSDT") in kinds and (int(Kind.EXECUTION), "SOLUSDT") in kinds
    assert (999, "") in kinds
    bad = next(r for r in control if r["kind_name"] == "bad_frame")
    assert bad["raw"] == b"{\x00\xffbad" and bad["reason"] == "bad_json" and bad["topic"] == "orderbook.200"
    assert '"$bytes_b64"' in bad["payload_json"]
    # the extra-key delta stays in its table, the extra key in `extra`
    deltas = tabs[("raw_orderbook_deltas", "2026-08-09", "SOLUSDT")].to_pylist()
    odd = [r for r in deltas if r["extra"] is not None]
    assert len(odd) == 1 and odd[0]["src"] == "rest"
    total = sum(len(list(table_to_records(t, tab, s))) for (t, _, s), tab in tabs.items())
    assert total == len(recs)


def test_date_partition_is_the_utc_date_of_recv_ns() -> None:
    day = 86_400 * NS_PER_S
    midnight = (T0 // day + 1) * day
    recs = numbered([Record(0, midnight - 1, Kind.TICK, "", 0, 0, {}), Record(0, midnight, Kind.TICK, "", 0, 0, {})])
    assert sorted(k[1] for k in records_to_tables(recs)) == ["2026-08-09", "2026-08-10"]


def _delta(i: int, n: int) -> Record:
    lv = np.arange(2 * n, dtype=np.float64).reshape(n, 2) + i
    return Record(i + 1, T0 + i, Kind.BOOK_DELTA, "SOLUSDT", i, i, {"depth": 200, "u": i, "seq": i, "b": lv, "a": lv})


def test_deltas_build_vectorised() -> None:
    recs = [_delta(i, 3) for i in range(200_000)]
    t0 = time.perf_counter()
    tabs = records_to_tables(recs)
    took = time.perf_counter() - t0
    t = tabs[("raw_orderbook_deltas", "2026-08-09", "SOLUSDT")]
    assert t.num_rows == 200_000 and t.column("bid_price").combine_chunks().values.to_numpy()[:3].tolist() == [0, 2, 4]
    assert took < 2.0, f"200 000 deltas took {took:.2f} s to tabulate"  # ~0.3 s here; generous for a shared box


# -- property: random records of every kind come back exactly -------------------------------------

_f64 = st.floats(allow_nan=True, allow_infinity=True, width=64)
_i64 = st.integers(-(2**63), 2**63 - 1)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=8)
_sym = st.sampled_from(["SOLUSDT", "DOGEUSDT", "BTC-PERP"])


def _levels(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(0, 4))
    return np.array(draw(st.lists(st.tuples(_f64, _f64), min_size=n, max_size=n)), dtype=np.float64).reshape(-1, 2)


@st.composite
def _payload(draw: st.DrawFn, kind: int) -> dict:
    if kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA):
        p = {"depth": draw(st.integers(-(2**31), 2**31 - 1)), "u": draw(_i64), "seq": draw(_i64),
             "b": _levels(draw), "a": _levels(draw)}
        if draw(st.booleans()):
            p["src"] = draw(st.sampled_from(["rest", "x"]))
        if draw(st.booleans()):
            p["more"] = draw(st.one_of(_text, st.binary(max_size=4), st.lists(st.integers(0, 9), max_size=3)))
        return p
    if kind == Kind.TRADES:
        n = draw(st.integers(0, 4))
        return {"p": np.array(draw(st.lists(_f64, min_size=n, max_size=n)), dtype=np.float64),
                "v": np.array(draw(st.lists(_f64, min_size=n, max_size=n)), dtype=np.float64),
                "side": np.array(draw(st.lists(st.sampled_from([1, -1]), min_size=n, max_size=n)), dtype=np.int8),
                "T": np.array(draw(st.lists(_i64, min_size=n, max_size=n)), dtype=np.int64),
                "id": draw(st.lists(_text, min_size=n, max_size=n)),
                "bt": draw(st.lists(st.booleans(), min_size=n, max_size=n))}
    if kind == Kind.KLINE:
        bar = st.fixed_dictionaries({"start": _i64, "end": _i64, "timestamp": _i64, "open": _f64, "high": _f64,
                                     "low": _f64, "close": _f64, "volume": _f64, "turnover": _f64,
                                     "confirm": st.booleans()})
        return {"interval": draw(_text), "bars": draw(st.lists(bar, max_size=3))}
    if kind == Kind.TICKER:
        return {"type": draw(st.sampled_from(["snapshot", "delta"])),
                "fields": draw(st.dictionaries(_text, _text, max_size=4))}
    if kind == Kind.FUNDING:
        return {"rate": draw(_f64), "next_ms": draw(_i64), "interval_h": draw(_f64)}
    if kind == Kind.EXECUTION:
        json_scalar = st.one_of(_text, st.booleans(), st.integers(-(2**63), 2**63 - 1), st.none(),
                                st.floats(allow_nan=False, allow_infinity=False), st.binary(max_size=2))
        return {"fills": draw(st.lists(st.dictionaries(_text, json_scalar, max_size=4), max_size=3))}
    return draw(st.dictionaries(_text, st.one_of(_text, st.integers(-(2**63), 2**64 - 1), _f64, st.binary(max_size=4),
                                                 st.booleans(), st.none()), max_size=4))


@st.composite
def _records(draw: st.DrawFn) -> list[Record]:
    kinds = [int(k) for k in Kind] + [77, 40000]
    out = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(kinds))
        sym = draw(_sym) if kind < 32 else draw(st.sampled_from(["", "SOLUSDT"]))
        recv = T0 + draw(st.integers(-5, 5)) * 86_400 * NS_PER_S + i
        out.append(Record(i + 1, recv, kind, sym, draw(_i64), draw(_i64), draw(_payload(kind))))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records())
def test_random_records_of_every_kind_come_back_exactly(recs: list[Record]) -> None:
    recs = [decode(encode(r)) for r in recs]  # what the journal would hand back
    same_records(_round_trip(recs), recs)


# -- the fast verification encoders give exactly the codec's frames -------------------------------

@st.composite
def _market(draw: st.DrawFn, kind: int) -> list[Record]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        p = draw(_payload(kind))
        if kind == Kind.TRADES and draw(st.booleans()):  # long messages: array16/str8 headers
            n = draw(st.sampled_from([3, 16, 40]))
            p = {"p": np.arange(n, dtype=np.float64), "v": np.ones(n), "side": np.ones(n, np.int8),
                 "T": np.arange(n, dtype=np.int64) - 5, "id": ["x" * (i * 13 % 300)] * n, "bt": [True] * n}
        out.append(Record(i + 1, T0 + i, kind, "SOLUSDT", draw(_i64), draw(_i64), p))
    return [decode(encode(r)) for r in out]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_market(Kind.TRADES), _market(Kind.BOOK_DELTA))
def test_fast_frame_encoders_match_the_codec(trades: list[Record], books: list[Record]) -> None:
    from journal.store.fastbook import book_frames
    from journal.store.fasttrades import trade_frames

    for recs, check in ((trades, lambda t: trade_frames(t, "SOLUSDT")),
                        (books, lambda t: b"".join(book_frames(t, int(Kind.BOOK_DELTA), "SOLUSDT")))):
        for (table, _, _), t in records_to_tables(recs).items():
            if table == "control":
                continue
            mine = [r for r in recs if r.seq in set(t.column("seq").to_pylist())]
            assert check(t) == b"".join(encode(r) for r in mine)
