"""The shared real Bybit recordings decode completely, with the counts their README states."""

from __future__ import annotations

import bisect
from collections import Counter
from pathlib import Path

import orjson
import pytest

from engine.record import Kind, Record
from gateway_bridge.decoder import Decoder
from tests.conftest import OB1_FRAMES, SOL_DOGE_FRAMES, XRP_OB500

NS = 1_786_310_819_000_000_000


def _decode(path: Path) -> tuple[list[Record], Decoder]:
    d = Decoder(None, None)
    recs = [r for line in path.read_bytes().splitlines() for r in d.decode_frame(line, NS)]
    assert d.counters["bad_total"] == 0, d.counters["bad"]
    return recs, d


def _count(recs: list[Record]) -> Counter[tuple[int, str]]:
    return Counter((r.kind, r.symbol) for r in recs)


def test_sol_doge_counts_match_the_readme(shared_bybit: Path) -> None:
    recs, d = _decode(shared_bybit / SOL_DOGE_FRAMES)
    assert d.counters["frames"] == 1248 and d.counters["skipped"] == {"ack": 17}
    assert _count(recs) == Counter({
        (Kind.BOOK_SNAPSHOT, "SOLUSDT"): 1, (Kind.BOOK_DELTA, "SOLUSDT"): 382,
        (Kind.BOOK_SNAPSHOT, "DOGEUSDT"): 1, (Kind.BOOK_DELTA, "DOGEUSDT"): 379,
        (Kind.TICKER, "SOLUSDT"): 193, (Kind.TICKER, "DOGEUSDT"): 164,
        (Kind.TRADES, "SOLUSDT"): 57, (Kind.TRADES, "DOGEUSDT"): 17,
        (Kind.KLINE, "SOLUSDT"): 25, (Kind.KLINE, "DOGEUSDT"): 12,
    })
    ticker_types = Counter((r.symbol, r.payload["type"]) for r in recs if r.kind == Kind.TICKER)
    assert ticker_types == {("SOLUSDT", "snapshot"): 1, ("SOLUSDT", "delta"): 192,
                            ("DOGEUSDT", "snapshot"): 1, ("DOGEUSDT", "delta"): 163}
    n_trades = Counter()
    for r in recs:
        if r.kind == Kind.TRADES:
            n_trades[r.symbol] += len(r.payload["p"])
    assert n_trades == {"SOLUSDT": 165, "DOGEUSDT": 83}
    confirmed = Counter(r.symbol for r in recs if r.kind == Kind.KLINE for bar in r.payload["bars"] if bar["confirm"])
    assert confirmed == {"SOLUSDT": 1, "DOGEUSDT": 1}


def test_decoded_values_equal_the_frame_text(shared_bybit: Path) -> None:
    """Every price/size equals float() of its string; ts/cts/u/seq equal the frame's (naive re-read)."""
    lines = (shared_bybit / SOL_DOGE_FRAMES).read_bytes().splitlines()
    d = Decoder(None, None)
    for line in lines:
        obj = orjson.loads(line)
        recs = d.decode_frame(line, NS)
        if not obj.get("topic", "").startswith("orderbook"):
            continue
        (rec,) = recs
        data = obj["data"]
        assert (rec.ts, rec.cts, rec.payload["u"], rec.payload["seq"]) == (obj["ts"], obj["cts"], data["u"], data["seq"])
        assert rec.payload["b"].tolist() == [[float(p), float(s)] for p, s in data["b"]]
        assert rec.payload["a"].tolist() == [[float(p), float(s)] for p, s in data["a"]]


def test_book_u_chain_has_no_gaps(shared_bybit: Path) -> None:
    recs, _ = _decode(shared_bybit / SOL_DOGE_FRAMES)
    for sym, snap_u in (("SOLUSDT", 13783323), ("DOGEUSDT", 13178259)):
        us = [r.payload["u"] for r in recs if r.symbol == sym and r.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA)]
        assert us == list(range(snap_u, snap_u + len(us)))


def test_rebuilt_top_of_book_agrees_with_the_tickers(shared_bybit: Path) -> None:
    """Naive dict books from the decoded records vs the merged ticker bid1/ask1 at each ticker's ts."""
    recs, _ = _decode(shared_bybit / SOL_DOGE_FRAMES)
    books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    tops: dict[str, list[tuple[int, float, float]]] = {}
    for r in recs:
        if r.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA):
            bids, asks = books.setdefault(r.symbol, ({}, {}))
            if r.kind == Kind.BOOK_SNAPSHOT:
                bids.clear()
                asks.clear()
            for side, levels in ((bids, r.payload["b"]), (asks, r.payload["a"])):
                for price, size in levels.tolist():
                    if size == 0:
                        side.pop(price, None)
                    else:
                        side[price] = size
            assert len(bids) <= 200 and len(asks) <= 200 and max(bids) < min(asks)
            tops.setdefault(r.symbol, []).append((r.ts, max(bids), min(asks)))
    merged: dict[str, dict[str, str]] = {}
    agree = compared = 0
    for r in recs:
        if r.kind != Kind.TICKER:
            continue
        fields = merged.setdefault(r.symbol, {})
        if r.payload["type"] == "snapshot":
            fields.clear()
        fields.update(r.payload["fields"])
        series = tops[r.symbol]
        i = bisect.bisect_right([t for t, _, _ in series], r.ts) - 1
        if i >= 0:
            compared += 1
            agree += series[i][1:] == (float(fields["bid1Price"]), float(fields["ask1Price"]))
    assert compared >= 300 and compared - agree <= 4  # README: 4 timing misses


def test_orderbook1_and_xrp_archive(shared_bybit: Path) -> None:
    recs, d = _decode(shared_bybit / OB1_FRAMES)
    assert d.counters["skipped"] == {"ack": 4}
    assert _count(recs) == Counter({(Kind.BOOK_SNAPSHOT, "SNTUSDT"): 107, (Kind.BOOK_SNAPSHOT, "BANDUSDT"): 45,
                                    (Kind.BOOK_SNAPSHOT, "AIOZUSDT"): 28, (Kind.BOOK_SNAPSHOT, "RADUSDT"): 18})
    assert {r.payload["depth"] for r in recs} == {1}
    recs, _ = _decode(shared_bybit / XRP_OB500)
    assert [r.kind for r in recs] == [Kind.BOOK_SNAPSHOT] + [Kind.BOOK_DELTA] * 49
    assert recs[0].payload["u"] == 20254869 and recs[0].payload["b"].shape == (500, 2) == recs[0].payload["a"].shape
    assert [r.payload["u"] for r in recs] == list(range(20254869, 20254869 + 50))


def test_real_frames_on_their_gateway_topics(shared_bybit: Path) -> None:
    from gateway_bridge.config import TopicsConfig

    t = TopicsConfig()
    by_prefix = {"orderbook": t.orderbook_delta, "publicTrade": t.trades, "tickers": t.ticker, "kline": t.kline_1m}
    d = Decoder(["SOLUSDT", "DOGEUSDT"], t)
    for line in (shared_bybit / SOL_DOGE_FRAMES).read_bytes().splitlines():
        topic = orjson.loads(line).get("topic")
        if topic:
            d.decode(by_prefix[topic.split(".")[0]], line, NS)
    assert d.counters["bad_total"] == 0 and sum(d.counters["records"].values()) == 1248 - 17


@pytest.mark.parametrize("name", [SOL_DOGE_FRAMES, XRP_OB500])
def test_decode_cost(shared_bybit: Path, name: str) -> None:
    """Smoke bound (generous, shared CI machines): a real frame decodes in well under 100 µs."""
    import os
    import time

    if os.environ.get("NUMBA_DISABLE_JIT") == "1":
        pytest.skip("timing is meaningless with the JIT disabled")

    lines = (shared_bybit / name).read_bytes().splitlines()
    d = Decoder(None, None)
    t0 = time.perf_counter()
    for line in lines:
        d.decode_frame(line, NS)
    assert (time.perf_counter() - t0) / len(lines) < 100e-6
