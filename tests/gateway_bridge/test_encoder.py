"""Encoder: every market record of the shared recordings encodes to a frame the decoder turns back into it."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.record import MARKET_KINDS, Kind, Record
from gateway_bridge.decoder import Decoder
from gateway_bridge.encoder import decimal_text, record_to_frame, record_to_object
from gateway_bridge.importer import import_records
from tests.conftest import OB1_FRAMES, SOL_DOGE_ENVELOPE, SOL_DOGE_FRAMES, XRP_OB500

NS = 1_786_310_819_123_456_789


def same(a: Any, b: Any, where: str = "payload") -> None:
    """Naive deep equality: dict keys in the same order, arrays of the same dtype/shape and values, floats equal."""
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tolist() == b.tolist(), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (where, list(a), list(b))
        for k in a:
            same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def round_trip(rec: Record) -> Record:
    frame = record_to_frame(rec)
    assert frame is not None
    out = Decoder().decode_frame(frame, rec.recv_ns)
    assert len(out) == 1 and out[0].kind != Kind.BAD_FRAME, (out, frame[:300])
    return out[0]


def check(rec: Record) -> None:
    back = round_trip(rec)
    assert (back.recv_ns, back.kind, back.symbol, back.ts, back.cts) == (rec.recv_ns, rec.kind, rec.symbol,
                                                                         rec.ts, rec.cts)
    same(rec.payload, back.payload)


@pytest.mark.parametrize("name,fmt", [(SOL_DOGE_FRAMES, "frames"), (SOL_DOGE_ENVELOPE, "cryptofeed"),
                                      (OB1_FRAMES, "frames"), (XRP_OB500, "frames")])
def test_every_market_record_of_a_recording_round_trips(shared_bybit: Path, name: str, fmt: str) -> None:
    records = [r for r in import_records(fmt, [str(shared_bybit / name)]) if r.kind in MARKET_KINDS]
    assert len(records) > 40
    for rec in records:
        check(rec)
    if name == SOL_DOGE_FRAMES:
        kinds = {Kind(r.kind).name for r in records}
        assert kinds == {"BOOK_SNAPSHOT", "BOOK_DELTA", "TICKER", "TRADES", "KLINE"}


def test_recorded_frames_encode_to_the_recorded_numbers(shared_bybit: Path) -> None:
    """A recorded book delta and trade come back with the same numbers (Bybit's trailing zeros aside)."""
    lines = (shared_bybit / SOL_DOGE_FRAMES).read_bytes().splitlines()
    delta = next(orjson.loads(ln) for ln in lines if b'"type":"delta"' in ln and b"orderbook" in ln)
    rec = Decoder().decode_frame(orjson.dumps(delta), NS)[0]
    out = orjson.loads(record_to_frame(rec))
    assert out["topic"] == delta["topic"] and out["type"] == "delta" and out["ts"] == delta["ts"]
    assert out["cts"] == delta["cts"] and out["data"]["u"] == delta["data"]["u"]
    for side in "ba":
        assert [[Decimal(p), Decimal(s)] for p, s in out["data"][side]] == \
               [[Decimal(p), Decimal(s)] for p, s in delta["data"][side]]


def test_control_kinds_and_rest_snapshots_have_no_frame() -> None:
    assert record_to_frame(Record(1, NS, Kind.TICK, "", 0, 0, {})) is None
    assert record_to_frame(Record(1, NS, Kind.GATEWAY_DOWN, "", 0, 0, {"reason": "x", "silent_ms": 5})) is None
    rest = Record(0, NS, Kind.BOOK_SNAPSHOT, "SOLUSDT", 1, 2, {"depth": 50, "u": 1, "seq": 2,
                                                             "b": np.array([[1.5, 2.0]]), "a": np.zeros((0, 2)),
                                                             "src": "rest"})
    assert record_to_object(rest) is None


def test_hand_built_records_of_every_kind() -> None:
    b = np.array([[77.3, 1347.2], [0.00001, 0.0]])
    a = np.zeros((0, 2))
    recs = [
        Record(0, NS, Kind.BOOK_DELTA, "SOLUSDT", 1000, 998, {"depth": 200, "u": 11, "seq": 99, "b": b, "a": a}),
        Record(0, NS, Kind.TRADES, "SOLUSDT", 1002, 0, {
            "p": np.array([77.3, 1e-7]), "v": np.array([2.0, 1e15 - 1]), "side": np.array([1, -1], dtype=np.int8),
            "T": np.array([1001, 1002], dtype=np.int64), "id": ["a", "b"], "bt": [False, True]}),
        Record(0, NS, Kind.TRADES, "SOLUSDT", 5, 0, {
            "p": np.zeros(0), "v": np.zeros(0), "side": np.zeros(0, dtype=np.int8), "T": np.zeros(0, dtype=np.int64),
            "id": [], "bt": []}),
        Record(0, NS, Kind.TICKER, "DOGEUSDT", 7, 3, {"type": "delta", "fields": {"symbol": "DOGEUSDT",
                                                                               "ask1Price": "0.07054"}}),
        Record(0, NS, Kind.KLINE, "SOLUSDT", 9, 0, {"interval": "1s", "bars": [
            {"start": 1, "end": 999, "timestamp": 9, "open": 1.5, "high": 2.0, "low": 1e-5, "close": 1.75,
             "volume": 0.0, "turnover": 12345678901234.5, "confirm": True}]}),
        Record(0, NS, Kind.FUNDING, "SOLUSDT", 11, 0, {"rate": -0.00000876, "next_ms": 1786320000000,
                                                      "interval_h": 8.0}),
        Record(0, NS, Kind.FUNDING, "SOLUSDT", 11, 0, {"rate": 0.0001, "next_ms": 1, "interval_h": 0.0}),
        Record(0, NS, Kind.EXECUTION, "SOLUSDT", 12, 0, {"fills": [
            {"symbol": "SOLUSDT", "execId": "e1", "execPrice": "77.3", "execQty": "1", "side": "Buy",
             "execTime": "12", "isMaker": False, "seq": 5}]}),
    ]
    for rec in recs:
        check(rec)
    frame = orjson.loads(record_to_frame(recs[0]))
    assert frame["data"]["b"] == [["77.3", "1347.2"], ["0.00001", "0"]]  # no exponent, shortest text


@given(st.floats(allow_nan=False, allow_infinity=False))
@settings(max_examples=500, deadline=None)
def test_decimal_text_is_fixed_point_shortest_and_exact(x: float) -> None:
    text = decimal_text(x)
    assert "e" not in text.lower() and float(text) == x
    # as short as Python's shortest repr (naive count of significant digits)
    digits = lambda s: len(format(Decimal(s).normalize(), "f").replace("-", "").replace(".", "").strip("0"))  # noqa: E731
    assert digits(text) <= max(1, digits(repr(x)))


# -- random payloads: values that are exact 15-digit decimals, as the decoder accepts them --------

def _exact(lo_exp: int, hi_exp: int, nonzero: bool = True) -> st.SearchStrategy[float]:
    mant = st.integers(1 if nonzero else 0, 10**15 - 1)
    return st.builds(lambda m, e: float(Decimal(m).scaleb(e)), mant, st.integers(lo_exp, hi_exp)).filter(
        lambda v: (v >= 1e-300 or (v == 0 and not nonzero)) and Decimal(repr(v)).adjusted() < 15)


prices = _exact(-20, 0)
sizes = _exact(-12, 0, nonzero=False)
symbols = st.sampled_from(["SOLUSDT", "DOGEUSDT", "BTCUSDT", "1000PEPEUSDT"])
ms = st.integers(0, 2**62)


@st.composite
def book_records(draw: st.DrawFn) -> Record:
    snap = draw(st.booleans())
    size = _exact(-12, 0) if snap else sizes

    def side() -> np.ndarray:
        rows = draw(st.lists(st.tuples(prices, size), max_size=6))
        return np.array(rows, dtype=np.float64).reshape(len(rows), 2)

    payload = {"depth": draw(st.sampled_from([1, 50, 200, 500, 1000])), "u": draw(ms), "seq": draw(ms),
               "b": side(), "a": side()}
    kind = Kind.BOOK_SNAPSHOT if snap else Kind.BOOK_DELTA
    return Record(0, NS, kind, draw(symbols), draw(ms), draw(ms), payload)


@st.composite
def trade_records(draw: st.DrawFn) -> Record:
    n = draw(st.integers(0, 5))
    col = lambda s: draw(st.lists(s, min_size=n, max_size=n))  # noqa: E731
    payload = {"p": np.array(col(prices), dtype=np.float64), "v": np.array(col(_exact(-10, 3)), dtype=np.float64),
               "side": np.array(col(st.sampled_from([1, -1])), dtype=np.int8),
               "T": np.array(col(ms), dtype=np.int64), "id": col(st.text(max_size=10)), "bt": col(st.booleans())}
    return Record(0, NS, Kind.TRADES, draw(symbols), draw(ms), draw(ms), payload)


@st.composite
def other_records(draw: st.DrawFn) -> Record:
    sym = draw(symbols)
    which = draw(st.sampled_from(["kline", "funding", "ticker"]))
    if which == "kline":
        interval = draw(st.sampled_from(["1", "5", "D", "1s"]))
        bar = {"start": draw(ms), "end": draw(ms), "timestamp": draw(ms), "open": draw(prices), "high": draw(prices),
               "low": draw(prices), "close": draw(prices), "volume": draw(sizes), "turnover": draw(sizes),
               "confirm": draw(st.booleans())}
        return Record(0, NS, Kind.KLINE, sym, draw(ms), draw(ms), {"interval": interval, "bars": [bar]})
    if which == "funding":
        rate = draw(_exact(-12, -2)) * draw(st.sampled_from([1, -1]))
        payload = {"rate": rate, "next_ms": draw(ms), "interval_h": float(draw(st.sampled_from([0, 1, 4, 8])))}
        return Record(0, NS, Kind.FUNDING, sym, draw(ms), draw(ms), payload)
    fields = {"symbol": sym, "lastPrice": decimal_text(draw(prices)),
              "tickDirection": draw(st.sampled_from(["PlusTick", "ZeroMinusTick"]))}
    return Record(0, NS, Kind.TICKER, sym, draw(ms), draw(ms),
                  {"type": draw(st.sampled_from(["snapshot", "delta"])), "fields": fields})


@given(st.one_of(book_records(), trade_records(), other_records()))
@settings(max_examples=300, deadline=None)
def test_random_records_round_trip(rec: Record) -> None:
    check(rec)
