"""Gateway simulator: Bybit-shaped frames, fault injection, XPUB publishing and the control REP."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest
import zmq

from gateway_bridge.config import TopicsConfig
from tests.tools.sim_client import subscribe_all
from tools.sim.gateway.config import (
    FaultsConfig,
    FaultSpec,
    SimConfig,
    SyntheticConfig,
    load_sim_config,
)
from tools.sim.gateway.faults import FaultInjector
from tools.sim.gateway.playback import playback, read_capture
from tools.sim.gateway.server import GatewaySim
from tools.sim.gateway.synthetic import SyntheticMarket, generate
from tools.typedconfig import ConfigError

T0_MS = 1_786_310_819_000
TOPICS = TopicsConfig()
#: Key sets of real Bybit v5 linear frames (see ../shared/data/bybit recordings).
BOOK_KEYS = {"topic", "type", "ts", "data", "cts"}
BOOK_DATA_KEYS = {"s", "b", "a", "u", "seq"}
TRADE_KEYS = {"T", "s", "S", "v", "p", "L", "i", "BT", "RPI", "seq"}
KLINE_KEYS = {"start", "end", "interval", "open", "close", "high", "low", "volume", "turnover", "confirm", "timestamp"}


def _frames(n: int = 4000, symbols: tuple[str, ...] = ("SOLUSDT", "DOGEUSDT"), depth: int = 50, seed: int = 3):
    return generate(SyntheticConfig(symbols=symbols, depth=depth, seed=seed), TOPICS, n, T0_MS)


class NaiveBook:
    """Independent reference book: dict price -> size, snapshot replaces, size 0 deletes."""

    def __init__(self) -> None:
        self.b: dict[float, float] = {}
        self.a: dict[float, float] = {}

    def apply(self, data: dict, snapshot: bool) -> None:
        if snapshot:
            self.b, self.a = {}, {}
        for side, levels in ((self.b, data["b"]), (self.a, data["a"])):
            for p, v in levels:
                assert isinstance(p, str) and isinstance(v, str)
                if float(v) == 0:
                    side.pop(float(p), None)
                else:
                    side[float(p)] = float(v)


def test_frames_are_shaped_like_bybit_and_books_stay_valid() -> None:
    books: dict[str, NaiveBook] = {}
    last_u: dict[str, int] = {}
    trade_ids: set[str] = set()
    for f in _frames():
        obj = orjson.loads(f.payload)
        topic = obj["topic"]
        if topic.startswith("orderbook."):
            assert set(obj) == BOOK_KEYS and set(obj["data"]) == BOOK_DATA_KEYS
            snap = obj["type"] == "snapshot"
            assert f.topic == (TOPICS.orderbook_snapshot if snap else TOPICS.orderbook_delta).encode()
            u = obj["data"]["u"]
            assert snap or u == last_u[topic] + 1, "u must step by one per topic"
            last_u[topic] = u
            book = books.setdefault(topic, NaiveBook())
            book.apply(obj["data"], snap)
            assert max(book.b) < min(book.a), "book crossed"
            assert 25 <= len(book.b) <= 50 and 25 <= len(book.a) <= 50, "depth/2 .. depth levels per side"
        elif topic.startswith("publicTrade."):
            assert f.topic == TOPICS.trades.encode() and obj["type"] == "snapshot"
            for t in obj["data"]:
                assert set(t) == TRADE_KEYS and t["S"] in ("Buy", "Sell") and t["i"] not in trade_ids
                trade_ids.add(t["i"])
        elif topic.startswith("tickers."):
            assert f.topic == TOPICS.ticker.encode() and set(obj) == {"topic", "type", "data", "cs", "ts"}
            assert all(isinstance(v, str) for v in obj["data"].values())
            if obj["type"] == "snapshot":
                assert {"fundingRate", "nextFundingTime", "fundingIntervalHour"} <= set(obj["data"])
        else:
            assert topic.startswith("kline.1.") and f.topic == TOPICS.kline_1m.encode()
            assert set(obj["data"][0]) == KLINE_KEYS
    assert len(books) == 2 and len(trade_ids) > 100


def test_same_seed_same_bytes() -> None:
    assert [f.payload for f in _frames(500)] == [f.payload for f in _frames(500)]
    assert [f.payload for f in _frames(500)] != [f.payload for f in _frames(500, seed=4)]


def test_message_mix_is_mostly_book_deltas() -> None:
    kinds = Counter(f.kind for f in _frames(5000))
    assert kinds["delta"] > 0.6 * 5000 and kinds["trades"] > 0.1 * 5000 and kinds["ticker"] > 0.05 * 5000
    assert kinds["kline"] > 0


def test_frames_decode_with_the_bridge_decoder() -> None:
    decoder_mod = pytest.importorskip("gateway_bridge.decoder")
    from engine.record import Kind

    decoder = decoder_mod.Decoder(["SOLUSDT", "DOGEUSDT"], TOPICS)
    kinds: Counter[int] = Counter()
    for i, f in enumerate(_frames(2000)):
        for rec in decoder.decode(f.topic.decode(), f.payload, T0_MS * 1_000_000 + i):
            kinds[rec.kind] += 1
    assert kinds[Kind.BAD_FRAME] == 0
    assert kinds[Kind.BOOK_DELTA] > 0 and kinds[Kind.TRADES] > 0 and kinds[Kind.TICKER] > 0


def _inject(faults: FaultsConfig, n: int = 2000) -> list:
    market = SyntheticMarket(SyntheticConfig(symbols=("SOLUSDT",), depth=50, seed=5), TOPICS, T0_MS)
    inj = FaultInjector(faults, market, 50)
    out = []
    for i in range(n):
        out.extend(inj.apply(market.next(T0_MS + i), T0_MS + i))
    return out + inj.flush()


def _book_us(frames: list) -> list[tuple[str, int]]:
    out = []
    for f in frames:
        if f.kind in ("snapshot", "delta"):
            obj = orjson.loads(f.payload)
            out.append((obj["type"], obj["data"]["u"]))
    return out


def test_dropped_delta_leaves_a_u_gap() -> None:
    us = _book_us(_inject(FaultsConfig(drop_delta=FaultSpec(every=100))))
    gaps = [(a, b) for (_, a), (t, b) in zip(us, us[1:], strict=False) if t == "delta" and b != a + 1]
    assert gaps and all(b == a + 2 for a, b in gaps)


def test_restart_sends_u1_snapshot_then_continues_from_1() -> None:
    us = _book_us(_inject(FaultsConfig(restart=FaultSpec(every=500))))
    i = us.index(("snapshot", 1))
    assert us[i + 1] == ("delta", 2) and us[i + 2] == ("delta", 3)


def test_corrupt_frames_do_not_parse() -> None:
    frames = _inject(FaultsConfig(corrupt=FaultSpec(every=50)))
    bad = [f for f in frames if f.kind == "corrupt"]
    assert len(bad) == 40
    for f in bad:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(f.payload)


def test_duplicate_and_reorder() -> None:
    dup = _inject(FaultsConfig(duplicate=FaultSpec(every=10)), n=100)
    assert len(dup) == 110 and sum(a == b for a, b in zip(dup, dup[1:], strict=False)) == 10
    plain = _inject(FaultsConfig(), n=100)
    reordered = _inject(FaultsConfig(reorder=FaultSpec(every=10)), n=100)
    assert sorted(reordered) == sorted(plain) and reordered != plain


def test_config_errors_name_the_dotted_key(tmp_path: Path) -> None:
    bad = tmp_path / "sim.yaml"
    bad.write_text("synthetic:\n  depht: 50\n")
    with pytest.raises(ConfigError, match=r"synthetic\.depht"):
        load_sim_config(bad)
    bad.write_text("faults:\n  corrupt:\n    prob: 2\n")
    with pytest.raises(ConfigError, match=r"faults\.corrupt\.prob"):
        load_sim_config(bad)
    bad.write_text("endpoint: tcp://0.0.0.0:5556\n")
    with pytest.raises(ConfigError, match="endpoint"):
        load_sim_config(bad)


def _sim_cfg(tmp_path: Path, **synthetic) -> SimConfig:
    syn = {"symbols": ("SOLUSDT",), "depth": 50, "rate_hz": 2000.0, "messages": 0, **synthetic}
    return SimConfig(endpoint=f"ipc://{tmp_path}/pub", control_endpoint=f"ipc://{tmp_path}/ctl",
                     synthetic=SyntheticConfig(**syn), linger_ms=0)


@pytest.mark.timeout(30)
def test_publishes_after_subscribe_and_answers_control(tmp_path: Path) -> None:
    cfg = _sim_cfg(tmp_path)
    sim = GatewaySim(cfg).start()
    ctx = zmq.Context()
    sub = subscribe_all(ctx, cfg.endpoint)
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.connect(cfg.control_endpoint)
    try:
        first = sub.recv_multipart()
        assert first[0] == TOPICS.orderbook_snapshot.encode(), "the stream opens with a book snapshot"
        last_u = orjson.loads(first[1])["data"]["u"]
        req.send(b"ping")
        assert req.recv() == b"pong"
        req.send(b"resubscribe SOLUSDT 50")
        assert req.recv() == b"ok"
        while True:  # deltas keep u contiguous until the fresh snapshot, which continues it
            topic, payload = sub.recv_multipart()
            if topic in (TOPICS.orderbook_snapshot.encode(), TOPICS.orderbook_delta.encode()):
                obj = orjson.loads(payload)
                assert obj["data"]["u"] == last_u + 1
                last_u = obj["data"]["u"]
                if obj["type"] == "snapshot":
                    assert len(obj["data"]["b"]) == 50
                    break
        req.send(b"resubscribe NOPEUSDT 50")
        assert req.recv().startswith(b"error")
    finally:
        sub.close()
        req.close()
        ctx.term()
        sim.stop()
    assert sim.status == "stopped" and sim.counters["resubscribe"] == 1


@pytest.mark.timeout(30)
def test_fixed_count_at_max_speed_is_all_delivered(tmp_path: Path) -> None:
    # Linger: the blast queues everything and closes its socket at once; queued frames must flush.
    cfg = dataclasses.replace(_sim_cfg(tmp_path, rate_hz=0.0, messages=5000, pregenerate=True), linger_ms=5000)
    sim = GatewaySim(cfg)
    expected = [f.payload for f in sim._frames]
    ctx = zmq.Context()
    sub = subscribe_all(ctx, cfg.endpoint)
    sim.start()
    try:
        got = [sub.recv_multipart()[1] for _ in range(5000)]
    finally:
        sub.close()
        ctx.term()
        sim.stop()
    assert got == expected and sim.status == "done"


@pytest.mark.timeout(30)
def test_playback_of_a_recording_routes_every_market_frame(shared_bybit: Path) -> None:
    path = shared_bybit / "bybit_v5_linear_SOLUSDT_DOGEUSDT_20260809T2126Z.frames.jsonl"
    from tools.sim.gateway.config import RecordingConfig

    rec = RecordingConfig(files=(str(path),), speed=0.0)
    frames = [f for _, f in playback(rec, TOPICS, read_capture("frames", path))]
    kinds = Counter(f.kind for f in frames)
    assert kinds == {"snapshot": 2, "delta": 761, "ticker": 357, "trades": 74, "kline": 37}


def test_stop_while_waiting_for_subscriber(tmp_path: Path) -> None:
    sim = GatewaySim(_sim_cfg(tmp_path))
    stop = threading.Event()
    stop.set()
    assert sim.run(stop) == "stopped"


def test_route_sends_funding_and_1s_klines_to_their_topics() -> None:
    from tools.sim.gateway.playback import route

    funding = b'{"topic":"funding.SOLUSDT","ts":1,"data":{"symbol":"SOLUSDT","fundingRate":"0.0001","nextFundingTime":2}}'
    kline_1s = b'{"topic":"kline.1s.SOLUSDT","ts":1,"data":[]}'
    kline_1m = b'{"topic":"kline.1.SOLUSDT","ts":1,"data":[]}'
    assert route(funding, TOPICS) == (TOPICS.funding.encode(), "funding", "SOLUSDT")
    assert route(kline_1s, TOPICS) == (TOPICS.kline_1s.encode(), "kline", "SOLUSDT")
    assert route(kline_1m, TOPICS) == (TOPICS.kline_1m.encode(), "kline", "SOLUSDT")
