"""Decoder: one hand-built frame per kind and per rejection reason; exact number parsing."""

from __future__ import annotations

import hashlib
import logging
from decimal import Decimal
from typing import Any

import msgpack
import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.record import Kind, Record
from gateway_bridge.config import TopicsConfig
from gateway_bridge.decoder import _PLAIN_DECIMAL, TICKER_NUMBERS, Decoder
from gateway_bridge.numbers import (
    NumberError,
    levels_kernel,
    parse_decimal,
    parse_levels,
    parse_positive_column,
)
from gateway_bridge.ratelog import RateLog
from journal import codec

T = TopicsConfig()
NS = 1_786_310_819_123_456_789


def book(typ: str = "delta", b: Any = (("77.31", "1.5"),), a: Any = (), sym: str = "SOLUSDT", depth: int = 200,
         **extra: Any) -> dict[str, Any]:
    data = {"s": sym, "b": [list(x) for x in b], "a": [list(x) for x in a], "u": 11, "seq": 99}
    return {"topic": f"orderbook.{depth}.{sym}", "type": typ, "ts": 1000, "data": data, "cts": 998, **extra}


def trade(p: str = "77.3", v: str = "2", side: str = "Buy", sym: str = "SOLUSDT", **extra: Any) -> dict[str, Any]:
    return {"T": 1001, "s": sym, "S": side, "v": v, "p": p, "L": "PlusTick", "i": "id-1", "BT": False, **extra}


def trades(*items: dict[str, Any], sym: str = "SOLUSDT") -> dict[str, Any]:
    return {"topic": f"publicTrade.{sym}", "type": "snapshot", "ts": 1002, "data": list(items)}


def dec(**kw: Any) -> Decoder:
    return Decoder(["SOLUSDT", "DOGEUSDT"], T, **kw)


def one(frame: Any, topic: str | None = None, d: Decoder | None = None) -> Record:
    d = d or dec()
    payload = frame if isinstance(frame, bytes) else orjson.dumps(frame)
    recs = d.decode_frame(payload, NS) if topic is None else d.decode(topic, payload, NS)
    assert len(recs) == 1, recs
    return recs[0]


def reason(frame: Any, topic: str | None = None) -> str:
    rec = one(frame, topic)
    assert rec.kind == Kind.BAD_FRAME, rec
    return rec.payload["reason"]


# --- good frames ----------------------------------------------------------------------------------

def test_book_delta_record() -> None:
    rec = one(book(b=[("77.31", "1.5"), ("77.30", "0")], a=[("77.32", "10")]), T.orderbook_delta)
    assert rec[:6] == (0, NS, Kind.BOOK_DELTA, "SOLUSDT", 1000, 998)
    p = rec.payload
    assert (p["depth"], p["u"], p["seq"]) == (200, 11, 99)
    assert p["b"].dtype == np.float64 and p["b"].tolist() == [[77.31, 1.5], [77.30, 0.0]]
    assert p["a"].shape == (1, 2) and p["a"].tolist() == [[77.32, 10.0]]


def test_book_snapshot_on_either_orderbook_topic_and_empty_sides() -> None:
    for topic in (T.orderbook_snapshot, T.orderbook_delta):
        rec = one(book("snapshot", b=[], a=[("1", "2")]), topic)
        assert rec.kind == Kind.BOOK_SNAPSHOT and rec.payload["b"].shape == (0, 2)
    assert one(book("delta", b=[], a=[]), T.orderbook_snapshot).kind == Kind.BOOK_DELTA


def test_book_without_seq_or_cts() -> None:
    f = book()
    del f["data"]["seq"], f["cts"]
    rec = one(f)
    assert rec.payload["seq"] == 0 and rec.cts == 0


def test_trades_record_columns() -> None:
    rec = one(trades(trade(), trade("77.25", "0.1", "Sell", i="id-2", BT=True, T=1005)), T.trades)
    p = rec.payload
    assert rec[:6] == (0, NS, Kind.TRADES, "SOLUSDT", 1002, 0)
    assert p["p"].tolist() == [77.3, 77.25] and p["v"].tolist() == [2.0, 0.1]
    assert p["side"].dtype == np.int8 and p["side"].tolist() == [1, -1]
    assert p["T"].dtype == np.int64 and p["T"].tolist() == [1001, 1005]
    assert p["id"] == ["id-1", "id-2"] and p["bt"] == [False, True]


def test_trade_without_bt_defaults_to_false() -> None:
    t = trade()
    del t["BT"]
    assert one(trades(t)).payload["bt"] == [False]


def test_ticker_passes_fields_through() -> None:
    fields = {"symbol": "DOGEUSDT", "bid1Price": "0.07053", "fundingRate": "-0.0001", "preOpenPrice": ""}
    rec = one({"topic": "tickers.DOGEUSDT", "type": "delta", "data": fields, "cs": 5, "ts": 7}, T.ticker)
    assert rec.kind == Kind.TICKER and rec.payload == {"type": "delta", "fields": fields} and rec.ts == 7


def test_kline_bars_converted() -> None:
    bar = {"start": 60000, "end": 119999, "interval": "1", "open": "77.1", "close": "77.2", "high": "77.3",
           "low": "77.0", "volume": "10.5", "turnover": "810.3", "confirm": False, "timestamp": 61000}
    rec = one({"topic": "kline.1.SOLUSDT", "data": [bar], "ts": 61001, "type": "snapshot"}, T.kline_1m)
    assert rec.kind == Kind.KLINE and rec.payload["interval"] == "1"
    assert rec.payload["bars"] == [{"start": 60000, "end": 119999, "timestamp": 61000, "open": 77.1, "high": 77.3,
                                    "low": 77.0, "close": 77.2, "volume": 10.5, "turnover": 810.3, "confirm": False}]
    one_s = {**bar, "interval": "1s"}
    assert one({"topic": "kline.1s.SOLUSDT", "data": [one_s], "ts": 1}, T.kline_1s).kind == Kind.KLINE


def test_funding_frame() -> None:
    f = {"topic": "funding.SOLUSDT", "ts": 5, "data": {"symbol": "SOLUSDT", "fundingRate": "-0.00000876",
                                                       "nextFundingTime": "1786320000000", "fundingIntervalHour": "4"}}
    rec = one(f, T.funding)
    assert rec.kind == Kind.FUNDING and rec.ts == 5
    assert rec.payload == {"rate": -0.00000876, "next_ms": 1786320000000, "interval_h": 4.0}
    del f["data"]["fundingIntervalHour"]
    f["data"]["nextFundingTime"] = 1786320000000
    assert one(f).payload["interval_h"] == 0.0


def _fill(sym: str, eid: str) -> dict[str, Any]:
    return {"symbol": sym, "execId": eid, "execPrice": "77.3", "execQty": "1", "side": "Sell",
            "execTime": "1786310819000", "isMaker": False, "seq": 5}


def test_executions_split_per_symbol_and_foreign_fills_dropped() -> None:
    d = dec()
    frame = {"topic": "execution", "id": "x", "creationTime": 1786310819001,
             "data": [_fill("SOLUSDT", "1"), _fill("BTCUSDT", "2"), _fill("DOGEUSDT", "3"), _fill("SOLUSDT", "4")]}
    recs = d.decode(T.executions, orjson.dumps(frame), NS)
    assert [(r.kind, r.symbol, r.ts) for r in recs] == [(Kind.EXECUTION, "SOLUSDT", 1786310819001),
                                                        (Kind.EXECUTION, "DOGEUSDT", 1786310819001)]
    assert recs[0].payload["fills"] == [_fill("SOLUSDT", "1"), _fill("SOLUSDT", "4")]
    assert d.counters["skipped"] == {"foreign_fills": 1}


def test_msgpack_payload_decodes_like_json() -> None:
    f = book(b=[("77.31", "1.5")], a=[("77.32", "3")])
    a, b = one(orjson.dumps(f)), one(msgpack.packb(f))
    assert a[:6] == b[:6] and a.payload["b"].tolist() == b.payload["b"].tolist()


@pytest.mark.parametrize("frame", [
    {"success": True, "ret_msg": "", "conn_id": "c", "req_id": "", "op": "subscribe"},
    {"success": True, "ret_msg": "pong", "conn_id": "c", "op": "ping"},
    {"op": "pong", "args": ["1"], "conn_id": "c"},
])
def test_acks_and_pongs_are_skipped(frame: dict[str, Any]) -> None:
    d = dec()
    assert d.decode(T.trades, orjson.dumps(frame), NS) == []
    assert d.counters["skipped"] == {"ack": 1} and d.counters["bad_total"] == 0


def test_failed_ack_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "gateway_bridge.decoder"):
        dec().decode_frame(b'{"success":false,"ret_msg":"bad topic","op":"subscribe"}', NS)
    assert "bad topic" in caplog.text


# --- rejections -----------------------------------------------------------------------------------

@pytest.mark.parametrize("payload,expected", [
    (b"", "empty"),
    (b'{"topic": ', "bad_json"),
    (b"\xc1", "bad_msgpack"),
    (b"  [1, 2]", "not_an_object"),
    (b"[1,2,3]", "not_an_object"),  # valid JSON, not an object: not "bad_msgpack"
    (b'"text"', "not_an_object"),
    (b"\x93\x01\x02\x03", "not_an_object"),  # msgpack [1, 2, 3]
    (b'{"data": {}}', "missing_topic"),
    (b'{"topic": "orderbook.25.SOLUSDT"}', "unknown_topic"),
    (b'{"topic": "liquidation.SOLUSDT"}', "unknown_topic"),
    (b'{"topic": 5}', "bad_field"),
    (b'{"topic": ["x"]}', "bad_field"),
])
def test_unparseable_frames(payload: bytes, expected: str) -> None:
    assert reason(payload) == expected


def test_topic_mismatch_and_unknown_gateway_topic() -> None:
    assert reason(book(), T.trades) == "topic_mismatch"
    assert reason(trades(trade()), T.orderbook_delta) == "topic_mismatch"
    k = {"topic": "kline.5.SOLUSDT", "data": [], "ts": 1}
    assert reason(k, T.kline_1m) == "topic_mismatch"
    rec = one(book(), "market.nope")
    raw = orjson.dumps(book())
    assert rec.payload == {"reason": "unknown_topic", "topic": "market.nope", "raw": raw, "raw_len": len(raw),
                           "sha256": hashlib.sha256(raw).hexdigest()}


def test_symbols() -> None:
    assert reason(book(sym="BTCUSDT")) == "unknown_symbol"
    assert dec(skip_unknown_symbols=True).decode_frame(orjson.dumps(book(sym="BTCUSDT")), NS) == []
    assert one(book(sym="BTCUSDT"), d=Decoder(None, None)).kind == Kind.BOOK_DELTA
    f = book()
    f["data"]["s"] = "DOGEUSDT"
    assert reason(f) == "symbol_mismatch"
    assert reason(trades(trade(), trade(sym="DOGEUSDT"))) == "symbol_mismatch"


@pytest.mark.parametrize("levels,typ,expected", [
    ([("77.31", "1.1234567890123456")], "delta", "precision"),
    ([("0.1234567890123456", "1")], "delta", "precision"),
    ([("77.31", "-1")], "delta", "negative"),
    ([("-77.31", "1")], "delta", "negative"),
    ([("0", "1")], "delta", "zero"),
    ([("0.000", "1")], "delta", "zero"),
    ([("77.31", "0")], "snapshot", "zero"),
    ([("NaN", "1")], "delta", "non_finite"),
    ([("77.31", "inf")], "delta", "non_finite"),
    ([("1e3", "1")], "delta", "not_a_number"),
    ([("77.31", "")], "delta", "not_a_number"),
    ([("77.31", 1)], "delta", "not_a_number"),
    ([("٣", "1")], "delta", "not_a_number"),
    ([("77.31", "1", "2")], "delta", "bad_level"),
    ([("77.31",)], "delta", "bad_level"),
])
def test_bad_book_numbers(levels: list[tuple[Any, ...]], typ: str, expected: str) -> None:
    assert reason(book(typ, b=levels)) == expected


def test_bad_book_fields() -> None:
    assert reason({**book(), "type": "partial"}) == "bad_field"
    assert reason({k: v for k, v in book().items() if k != "type"}) == "missing_field"
    assert reason({**book(), "ts": "1000"}) == "bad_field"
    assert reason({**book(), "ts": -1}) == "bad_field"
    f = book()
    f["data"]["u"] = True
    assert reason(f) == "bad_field"
    del f["data"]["u"]
    assert reason(f) == "missing_field"
    f = book()
    f["data"]["b"] = {"77": "1"}
    assert reason(f) == "bad_level"
    del f["data"]["a"]
    assert reason(f) == "missing_field"


def test_bad_trades() -> None:
    assert reason(trades(trade(p="0"))) == "zero"
    assert reason(trades(trade(v="-1"))) == "negative"
    assert reason(trades(trade(side="buy"))) == "bad_field"
    assert reason(trades(trade(T="1001"))) == "bad_field"
    assert reason(trades(trade(BT="false"))) == "bad_field"
    assert reason({"topic": "publicTrade.SOLUSDT", "data": {}}) == "bad_field"


def test_bad_ticker_funding_execution() -> None:
    tk = {"topic": "tickers.SOLUSDT", "type": "delta", "data": {"symbol": "SOLUSDT", "bid1Price": 77.3}}
    assert reason(tk) == "bad_field"
    tk["data"]["bid1Price"] = "-1"
    assert reason(tk) == "negative"
    fund = {"topic": "funding.SOLUSDT", "ts": 5, "data": {"symbol": "SOLUSDT", "fundingRate": "x", "nextFundingTime": 1}}
    assert reason(fund) == "not_a_number"
    ex = {"topic": "execution", "creationTime": 1, "data": [{**_fill("SOLUSDT", "1"), "side": "Long"}]}
    assert reason(ex) == "bad_field"


def test_counters_and_raw_bytes() -> None:
    d = dec()
    d.decode(T.orderbook_delta, orjson.dumps(book()), NS)
    bad = d.decode(T.orderbook_delta, b"{oops", NS)[0]
    assert bad.payload == {"reason": "bad_json", "topic": T.orderbook_delta, "raw": b"{oops", "raw_len": 5,
                           "sha256": hashlib.sha256(b"{oops").hexdigest()}
    c = d.counters
    assert c["frames"] == 2 and c["records"] == {"book_delta": 1} and c["bad"] == {"bad_json": 1} and c["bad_total"] == 1


def test_bad_frames_logged_once_per_reason(caplog: pytest.LogCaptureFixture) -> None:
    d = dec()
    with caplog.at_level(logging.WARNING, "gateway_bridge.decoder"):
        for _ in range(50):
            d.decode_frame(b"{oops", NS)
            d.decode_frame(b"", NS)
    assert len(caplog.records) == 2 and d.counters["bad"] == {"bad_json": 50, "empty": 50}


def test_ratelog_reports_suppressed_count() -> None:
    now = [0.0]
    lines: list[str] = []

    class H(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    logger = logging.getLogger("test.ratelog")
    logger.addHandler(H())
    rl = RateLog(logger, 10.0, clock=lambda: now[0])
    assert rl.warning("a", "x") and not rl.warning("a", "x") and rl.warning("b", "y")
    now[0] = 11.0
    assert rl.warning("a", "x")
    assert lines == ["x", "y", "x (1 more since last report)"]


# --- exact numbers ---------------------------------------------------------------------------------

def _naive_significant(text: str) -> int:
    return len(text.lstrip("-").replace(".", "").strip("0"))


decimals = st.builds(lambda i, f: f"{i}.{f}" if f else str(i), st.integers(0, 10**12),
                     st.text("0123456789", max_size=8))


@given(decimals)
def test_parse_decimal_matches_float_and_the_digit_rule(text: str) -> None:
    if _naive_significant(text) > 15:
        with pytest.raises(NumberError):
            parse_decimal(text)
    else:
        assert parse_decimal(text) == float(text)
        assert float(Decimal(format(parse_decimal(text), ".15g"))) == float(text)  # round trip


@given(st.lists(st.tuples(decimals, decimals), max_size=12), st.lists(st.tuples(decimals, decimals), max_size=12),
       st.booleans())
def test_level_kernel_matches_naive_parsing(b: list[tuple[str, str]], a: list[tuple[str, str]], snapshot: bool) -> None:
    def naive(levels: list[tuple[str, str]]) -> list[list[float]] | str:
        out = []
        for p, s in levels:
            if _naive_significant(p) > 15 or _naive_significant(s) > 15:
                return "precision"
            if float(p) == 0 or (snapshot and float(s) == 0):
                return "zero"
            out.append([float(p), float(s)])
        return out

    bl, al = [list(x) for x in b], [list(x) for x in a]
    expected_b, expected_a = naive(b), naive(a)
    if isinstance(expected_b, str) or isinstance(expected_a, str):
        with pytest.raises(NumberError):
            parse_levels(bl, al, snapshot=snapshot)
        return
    got_b, got_a = parse_levels(bl, al, snapshot=snapshot)
    assert got_b.tolist() == expected_b and got_a.tolist() == expected_a


def test_rare_exact_forms_take_the_slow_path() -> None:
    got_b, _ = parse_levels([["0.0000000000000123", "77.31000000000000000"]], [], snapshot=False)
    assert got_b.tolist() == [[1.23e-14, 77.31]]
    assert parse_positive_column(["0.0000000000000123", "5"]).tolist() == [1.23e-14, 5.0]
    assert parse_decimal("1000000000000000000000") == 1e21


@settings(deadline=None)  # with a cold numba cache the first example compiles the uint8 and bytes signatures
@given(st.lists(st.tuples(decimals, decimals), max_size=6), st.lists(st.tuples(decimals, decimals), max_size=6),
       st.booleans())
def test_compiled_level_kernel_equals_its_python(b: list[tuple[str, str]], a: list[tuple[str, str]],
                                                 snapshot: bool) -> None:
    text = np.frombuffer(orjson.dumps(([list(x) for x in b], [list(x) for x in a])), dtype=np.uint8)
    out_jit, out_py = np.zeros((len(b) + len(a), 2)), np.zeros((len(b) + len(a), 2))
    status = levels_kernel(text, out_jit, len(b), snapshot)
    py_func = getattr(levels_kernel, "py_func", levels_kernel)  # NUMBA_DISABLE_JIT=1: plain function
    assert status == py_func(text, out_py, len(b), snapshot)
    if status == 0:
        assert out_jit.tolist() == out_py.tolist()
    # parse_levels hands the kernel the bytes themselves: same status and values as the uint8 view
    raw = text.tobytes()
    out_bytes, out_py_bytes = np.zeros_like(out_jit), np.zeros_like(out_jit)
    assert levels_kernel(raw, out_bytes, len(b), snapshot) == status == py_func(raw, out_py_bytes, len(b), snapshot)
    if status == 0:
        assert out_bytes.tolist() == out_jit.tolist() == out_py_bytes.tolist()


_number_like = st.text(alphabet="-0123456789.", max_size=20) | st.sampled_from(
    ["0", "-0", "0.000", "1234567890123456", "123456789012345", "0.00000000000001", "12345678901234.5", "1.", ".5",
     "00.5", "-1.5", "0.0001", "999999999999999", "1234567890123456.0"])


@given(_number_like, st.booleans(), st.booleans())
def test_plain_decimal_regex_accepts_only_what_parse_decimal_accepts(text: str, signed: bool, nonzero: bool) -> None:
    # The ticker fast check may skip parse_decimal only where parse_decimal would accept the value.
    if _PLAIN_DECIMAL[signed, nonzero](text) is not None:
        parse_decimal(text, signed=signed, nonzero=nonzero)


@given(st.dictionaries(st.sampled_from(["lastPrice", "fundingRate", "bid1Size", "openInterest", "markPrice"]),
                       _number_like, max_size=5))
def test_ticker_fast_check_rejects_like_parse_decimal(values: dict[str, str]) -> None:
    fields = {"symbol": "SOLUSDT", **values}
    frame = orjson.dumps({"topic": "tickers.SOLUSDT", "type": "delta", "ts": 5, "data": fields})
    recs = Decoder(["SOLUSDT"], TopicsConfig()).decode("market.ticker", frame, 1)
    want = None  # naive: the first non-empty field (in TICKER_NUMBERS order) parse_decimal rejects
    for key, (signed, nonzero) in TICKER_NUMBERS.items():
        if fields.get(key) and want is None:
            try:
                parse_decimal(fields[key], signed=signed, nonzero=nonzero)
            except NumberError as e:
                want = e.reason
    if want is None:
        assert recs[0].kind == Kind.TICKER and recs[0].payload == {"type": "delta", "fields": fields}
    else:
        assert recs[0].kind == Kind.BAD_FRAME and recs[0].payload["reason"] == want


@pytest.mark.parametrize("p,v", [("1234567890123456", "1"), ("77.3", "1234567890123456")])
def test_sixteen_digit_integers_are_rejected_for_precision_on_every_path(p: str, v: str) -> None:
    """A 16-digit integer needs 16 significant digits: trades (fast column path) and books must refuse it."""
    assert reason(trades(trade(p=p, v=v))) == "precision"
    assert reason(book(b=((p, v),))) == "precision"
    assert one(trades(trade(p=p[:15] if len(p) == 16 else p, v=v[:15]))).kind == Kind.TRADES


def test_bad_frame_raw_and_topic_are_capped() -> None:
    payload = b"{" + bytes(range(256)) * 400  # 102 401 bytes of broken JSON
    rec = dec().decode("t" * 1000, payload, NS)[0]
    p = rec.payload
    assert p["reason"] == "unknown_topic" and p["topic"] == "t" * 256
    assert p["raw"] == payload[:65536] and p["raw_len"] == 102_401
    assert p["sha256"] == hashlib.sha256(payload).hexdigest()


# --- REST orderbook answers (resync over HTTP) --------------------------------------------------

def rest(**result: Any) -> bytes:
    body = {"s": "SOLUSDT", "b": [["77.31", "10"], ["77.3", "2.5"]], "a": [["77.32", "1"]],
            "ts": 1786310819123, "u": 4242, "seq": 99, "cts": 1786310819100}
    body.update(result)
    return orjson.dumps({"retCode": 0, "retMsg": "OK", "result": body, "retExtInfo": {}, "time": 1786310819130})


def test_rest_orderbook_becomes_a_rest_snapshot() -> None:
    rec = dec().decode_rest_orderbook(rest(), NS, 200, "SOLUSDT")
    assert (rec.kind, rec.recv_ns, rec.symbol, rec.ts, rec.cts) == (Kind.BOOK_SNAPSHOT, NS, "SOLUSDT",
                                                                     1786310819123, 1786310819100)
    p = rec.payload
    assert (p["depth"], p["u"], p["seq"], p["src"]) == (200, 4242, 99, "rest")
    assert p["b"].tolist() == [[77.31, 10.0], [77.3, 2.5]] and p["a"].tolist() == [[77.32, 1.0]]


@pytest.mark.parametrize("body", [
    orjson.dumps({"retCode": 10001, "retMsg": "params error", "result": {}}),
    orjson.dumps({"retCode": "0", "result": {}}),
    b"<html>502</html>",
    b"",
    orjson.dumps([1, 2]),
    rest(s="BTCUSDT"),
    rest(s=None),
    rest(u="7"),
    rest(b=[["77.31", "0"]]),  # a snapshot level of size 0
    rest(a=[["1e5", "1"]]),
])
def test_bad_rest_answers_are_bad_frames(body: bytes) -> None:
    rec = dec().decode_rest_orderbook(body, NS, 50, "SOLUSDT")
    assert rec.kind == Kind.BAD_FRAME and rec.payload["reason"] == "bad_rest_snapshot"
    assert rec.payload["topic"] == "orderbook.50.SOLUSDT" and rec.payload["raw_len"] == len(body)


def test_a_failing_fast_scanner_costs_no_frame_the_batch_goes_the_general_way() -> None:
    """A bug in a compiled scanner must not raise out of decode_many nor lose a frame: counted, logged."""
    frame = orjson.dumps({"topic": "orderbook.50.SOLUSDT", "type": "snapshot", "ts": 5, "data": {
        "s": "SOLUSDT", "b": [["77.1", "2"]], "a": [["77.2", "3"]], "u": 1, "seq": 9}})
    dec = Decoder(["SOLUSDT"], TopicsConfig())

    def broken(payloads: list[bytes]) -> None:
        raise ValueError("scanner bug")

    dec._fast_paths = ((broken, dec._fast_book), *dec._fast_paths[1:])
    name = TopicsConfig().orderbook_snapshot
    recs = dec.decode_many([name, name], [frame, frame], 7)
    want = Decoder(["SOLUSDT"], TopicsConfig(), fast=False).decode(name, frame, 7)
    assert [codec.encode(r) for r in recs] == [codec.encode(r) for r in want] * 2
    assert dec.counters["fast_path_errors"] == 1
