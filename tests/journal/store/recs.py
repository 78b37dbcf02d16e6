"""Test helpers for the store: a strict record comparison and a faulted synthetic run built by hand."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.record import NS_PER_MS, NS_PER_S, Kind, Record

T0 = 1_786_310_800 * NS_PER_S  # 2026-08-09T21:26:40Z


def same_value(a: Any, b: Any, where: str) -> None:
    """Assert a == b strictly: same types, dict key order, numpy dtype/shape/bytes, float bits."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{where}: array bytes differ"
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            same_value(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same_value(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def same_records(got: list[Record], want: list[Record]) -> None:
    """Assert two record lists are equal record by record (see `same_value`)."""
    assert len(got) == len(want), f"{len(got)} records, expected {len(want)}"
    for g, w in zip(got, want, strict=True):
        assert tuple(g[:6]) == tuple(w[:6]), f"header {tuple(g[:6])} != {tuple(w[:6])}"
        same_value(g.payload, w.payload, f"seq {w.seq} payload")


def _lv(rows: list[tuple[float, float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def faulted_run() -> list[Record]:
    """Unnumbered records of a faulted run: every kind, gaps, resyncs, gateway down/up, odd payloads."""
    t = T0
    ms = t // NS_PER_MS
    bad = {"reason": "bad_json", "topic": "orderbook.200", "raw": b"{\x00\xffbad", "raw_len": 7, "sha256": "ab" * 32}
    recs = [
        Record(0, t, Kind.SESSION, "", 0, 0, {"shard": "s1", "category": "linear", "symbols": ["DOGEUSDT", "SOLUSDT"],
                                             "registry": "features: []\n", "hash": "h1", "configured": "h1"}),
        Record(0, t + 1, Kind.BOOK_SNAPSHOT, "SOLUSDT", ms, ms - 3, {"depth": 50, "u": 10, "seq": 700,
                                                                     "b": _lv([(77.5, 1.0), (77.4, 2.5)]),
                                                                     "a": _lv([(77.6, 0.125)])}),
        Record(0, t + 2, Kind.BOOK_DELTA, "SOLUSDT", ms + 1, ms, {"depth": 50, "u": 11, "seq": 701,
                                                                   "b": _lv([(77.5, 0.0)]), "a": _lv([])}),
        Record(0, t + 3, Kind.BOOK_DELTA, "SOLUSDT", ms + 2, ms + 1, {"depth": 50, "u": 13, "seq": 705,
                                                                       "b": _lv([]), "a": _lv([(77.7, 3.0)])}),
        Record(0, t + 4, Kind.RESYNC_REQUEST, "SOLUSDT", 0, 0, {"topic": "orderbook.50.SOLUSDT", "depth": 50,
                                                                "reason": "gap", "via": "http"}),
        Record(0, t + 5, Kind.BOOK_SNAPSHOT, "SOLUSDT", ms + 3, ms + 3, {"depth": 50, "u": 20, "seq": 800,
                                                                          "b": _lv([(77.1, 4.0)]),
                                                                          "a": _lv([(77.9, 5.0)]), "src": "rest"}),
        Record(0, t + 6, Kind.BAD_FRAME, "", 0, 0, bad),
        Record(0, t + 7, Kind.TRADES, "SOLUSDT", ms + 4, 0, {
            "p": np.array([77.55, 77.6]), "v": np.array([0.1, 2.0]), "side": np.array([1, -1], np.int8),
            "T": np.array([ms + 3, ms + 4], np.int64), "id": ["a1", "a2"], "bt": [False, True]}),
        Record(0, t + 8, Kind.TRADES, "DOGEUSDT", ms + 4, 0, {
            "p": np.empty(0), "v": np.empty(0), "side": np.empty(0, np.int8), "T": np.empty(0, np.int64),
            "id": [], "bt": []}),
        Record(0, t + 9, Kind.KLINE, "SOLUSDT", ms + 5, 0, {"interval": "1", "bars": [
            {"start": ms, "end": ms + 59_999, "timestamp": ms + 5, "open": 77.5, "high": 77.9, "low": 77.1,
             "close": 77.6, "volume": 12.5, "turnover": 970.0, "confirm": False}]}),
        Record(0, t + 10, Kind.KLINE, "SOLUSDT", ms + 5, 0, {"interval": "1s", "bars": []}),
        Record(0, t + 11, Kind.TICKER, "SOLUSDT", ms + 6, 0, {"type": "snapshot", "fields": {
            "symbol": "SOLUSDT", "lastPrice": "77.6", "markPrice": "77.61", "fundingRate": "-0.0001",
            "nextFundingTime": "1786320000000", "openInterest": ""}}),
        Record(0, t + 12, Kind.TICKER, "SOLUSDT", ms + 7, 0, {"type": "delta", "fields": {"symbol": "SOLUSDT"}}),
        Record(0, t + 13, Kind.FUNDING, "SOLUSDT", ms + 8, 0, {"rate": -0.000125, "next_ms": 1_786_320_000_000,
                                                               "interval_h": 8.0}),
        Record(0, t + 14, Kind.EXECUTION, "SOLUSDT", ms + 9, 0, {"fills": [
            {"symbol": "SOLUSDT", "execId": "e1", "orderId": "o1", "execPrice": "77.6", "execQty": "1",
             "side": "Buy", "execTime": str(ms), "isMaker": True, "seq": 42, "execFee": 0.5}]}),
        Record(0, t + 15, Kind.GATEWAY_DOWN, "", 0, 0, {"reason": "silent", "silent_ms": 5000}),
        Record(0, t + 16, Kind.GATEWAY_UP, "", 0, 0, {"reason": "frames", "silent_ms": 0}),
        Record(0, T0 + NS_PER_S, Kind.TICK, "", 0, 0, {}),
        Record(0, T0 + 2 * NS_PER_S, Kind.TICK_GAP, "", 0, 0, {"from_ns": T0 + 2 * NS_PER_S,
                                                               "to_ns": T0 + 9 * NS_PER_S, "seconds": 8}),
        Record(0, T0 + 10 * NS_PER_S, Kind.REGISTRY_CHANGED, "", 0, 0, {"hash": "h2", "content": "features: []\n"}),
        Record(0, T0 + 10 * NS_PER_S, Kind.BAD_FRAME_SUMMARY, "", 0, 0, {"counts": {"bad_json": 3}, "bytes": 99,
                                                                         "from_ns": T0, "to_ns": T0 + 5}),
        # payloads that do not fit their tables: kept whole in control
        Record(0, T0 + 11 * NS_PER_S, Kind.BOOK_DELTA, "SOLUSDT", 0, 0, {"depth": 50, "u": 30, "seq": 1.5,
                                                                          "b": _lv([]), "a": _lv([])}),
        Record(0, T0 + 11 * NS_PER_S, Kind.TRADES, "SOLUSDT", 0, 0, {"p": [1.0], "v": [2.0]}),
        Record(0, T0 + 11 * NS_PER_S, Kind.TICKER, "SOLUSDT", 0, 0, {"type": "delta", "fields": {"x": 1}}),
        Record(0, T0 + 11 * NS_PER_S, Kind.EXECUTION, "SOLUSDT", 0, 0, {"fills": [{"raw": b"\x01"}]}),
        Record(0, T0 + 11 * NS_PER_S, Kind.BOOK_DELTA, "SOLUSDT", 1, 2, {"depth": 50, "u": 31, "seq": 9,
                                                                          "b": _lv([(1.0, 2.0)]), "a": _lv([]),
                                                                          "src": "rest", "note": "extra key"}),
        Record(0, T0 + 11 * NS_PER_S, 999, "", 0, 0, {"future": [1, 2, 3]}),  # a kind this version does not know
        Record(0, T0 + 12 * NS_PER_S, Kind.TICK, "", 0, 0, {}),
    ]
    return recs


def numbered(recs: list[Record], first: int = 1) -> list[Record]:
    """The records numbered as the journal numbers them."""
    return [r.with_seq(first + i) for i, r in enumerate(recs)]
