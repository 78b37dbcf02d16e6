"""The simulator's HTTP snapshot endpoint: Bybit's REST orderbook shape, u aligned with the stream."""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson
import pytest
import zmq

from gateway_bridge.config import TopicsConfig
from tests.tools.sim_client import subscribe_all
from tools.sim.gateway.config import FaultsConfig, FaultSpec, SimConfig, SyntheticConfig
from tools.sim.gateway.server import GatewaySim

TOPICS = TopicsConfig()
BOOK_TOPICS = (TOPICS.orderbook_snapshot.encode(), TOPICS.orderbook_delta.encode())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cfg(tmp_path: Path, faults: FaultsConfig | None = None, rate_hz: float = 2000.0) -> SimConfig:
    return SimConfig(endpoint=f"ipc://{tmp_path}/pub", control_endpoint=f"ipc://{tmp_path}/ctl",
                     http_endpoint=f"127.0.0.1:{_free_port()}", linger_ms=0, faults=faults or FaultsConfig(),
                     synthetic=SyntheticConfig(symbols=("SOLUSDT", "BTCUSDT"), depth=50, rate_hz=rate_hz))


def _get(cfg: SimConfig, query: str, timeout: float = 5.0, path: str = "/v5/market/orderbook") -> dict:
    url = f"http://{cfg.http_endpoint}{path}?{query}"
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/json"
        return orjson.loads(resp.read())


class Book:
    """Naive book of one symbol from decimal strings: price string -> size string."""

    def __init__(self, result: dict) -> None:
        self.b = {p: v for p, v in result["b"]}
        self.a = {p: v for p, v in result["a"]}

    def apply(self, data: dict) -> None:
        for side, levels in ((self.b, data["b"]), (self.a, data["a"])):
            for p, v in levels:
                if float(v) == 0:
                    side.pop(p, None)
                else:
                    side[p] = v

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        """Return (bids descending, asks ascending) as REST lists."""
        b = sorted(self.b.items(), key=lambda kv: -float(kv[0]))
        a = sorted(self.a.items(), key=lambda kv: float(kv[0]))
        return [list(x) for x in b], [list(x) for x in a]


def _deltas(sub: zmq.Socket, symbol: str):
    """Yield the data of `symbol`'s book frames (snapshots and deltas) from the stream."""
    while True:
        topic, payload = sub.recv_multipart()
        if topic in BOOK_TOPICS:
            obj = orjson.loads(payload)
            if obj["data"]["s"] == symbol:
                yield obj["type"], obj["data"]


@pytest.mark.timeout(60)
def test_rest_snapshot_is_bybit_shaped_and_later_deltas_continue_it(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    ctx = zmq.Context()
    sub = subscribe_all(ctx, cfg.endpoint)
    sim = GatewaySim(cfg).start()
    try:
        sub.recv_multipart()  # the stream runs
        body = _get(cfg, "category=linear&symbol=SOLUSDT&limit=50")
        assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
        assert (body["retCode"], body["retMsg"], body["retExtInfo"]) == (0, "OK", {})
        res = body["result"]
        assert set(res) == {"s", "a", "b", "ts", "u", "seq", "cts"} and res["s"] == "SOLUSDT"
        for side, desc in ((res["b"], True), (res["a"], False)):
            assert 25 <= len(side) <= 50
            assert all(isinstance(p, str) and isinstance(v, str) and float(v) > 0 for p, v in side)
            prices = [float(p) for p, _ in side]
            assert prices == sorted(prices, reverse=desc) and len(set(prices)) == len(prices)
        assert float(res["b"][0][0]) < float(res["a"][0][0])
        assert abs(body["time"] - time.time() * 1000) < 5000 and res["cts"] <= res["ts"] <= body["time"]

        book, u = Book(res), res["u"]
        stream = _deltas(sub, "SOLUSDT")
        for kind, data in stream:  # frames published before the answer are at or below its u
            if data["u"] > u:
                assert (kind, data["u"]) == ("delta", u + 1), "the stream continues the snapshot at u+1"
                book.apply(data)
                u = data["u"]
                break
        time.sleep(0.2)  # let the book move on
        later = _get(cfg, "category=linear&symbol=SOLUSDT&limit=50")["result"]
        assert later["u"] > u and later["seq"] > res["seq"]
        while u < later["u"]:
            kind, data = next(stream)
            assert kind == "delta" and data["u"] == u + 1
            book.apply(data)
            u = data["u"]
        assert book.levels() == (later["b"], later["a"]), "snapshot + deltas == the later snapshot"
    finally:
        sub.close()
        ctx.term()
        sim.stop()
    assert sim.status == "stopped"


@pytest.mark.timeout(30)
def test_limit_truncates_and_defaults_to_25(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    cfg = SimConfig(**{**cfg.__dict__, "wait_for_subscriber": False})
    sim = GatewaySim(cfg).start()
    try:
        one = _get(cfg, "category=linear&symbol=BTCUSDT&limit=1")["result"]
        assert len(one["b"]) == len(one["a"]) == 1
        default = _get(cfg, "category=linear&symbol=BTCUSDT")["result"]
        assert len(default["b"]) == len(default["a"]) == 25
        deep = _get(cfg, "category=linear&symbol=BTCUSDT&limit=500")["result"]
        assert 25 <= len(deep["b"]) <= 50  # at most what the depth-50 book holds
    finally:
        sim.stop()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("query, words", [
    ("category=linear&symbol=NOPEUSDT", "NOPEUSDT"),
    ("category=linear", "symbol"),
    ("symbol=SOLUSDT", "category"),
    ("category=spot&symbol=SOLUSDT", "spot"),
    ("category=linear&symbol=SOLUSDT&limit=0", "limit"),
    ("category=linear&symbol=SOLUSDT&limit=501", "limit"),
    ("category=linear&symbol=SOLUSDT&limit=ten", "limit"),
])
def test_bad_requests_answer_retcode_10001(tmp_path: Path, query: str, words: str) -> None:
    cfg = SimConfig(**{**_cfg(tmp_path).__dict__, "wait_for_subscriber": False})
    sim = GatewaySim(cfg).start()
    try:
        body = _get(cfg, query)
        assert body["retCode"] == 10001 and words in body["retMsg"] and body["result"] == {}
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(cfg, "category=linear&symbol=SOLUSDT", path="/v5/market/tickers")
        e.value.close()
        assert e.value.code == 404
        assert _get(cfg, "category=linear&symbol=SOLUSDT")["retCode"] == 0, "still serving after errors"
    finally:
        sim.stop()


@pytest.mark.timeout(30)
def test_http_stall_answers_late_or_never_and_can_be_changed_at_run_time(tmp_path: Path) -> None:
    faults = FaultsConfig(http_stall_ms=400, http_stall_every=2)
    cfg = SimConfig(**{**_cfg(tmp_path, faults).__dict__, "wait_for_subscriber": False})
    sim = GatewaySim(cfg).start()
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.setsockopt(zmq.LINGER, 0)
    req.setsockopt(zmq.RCVTIMEO, 5000)
    req.connect(cfg.control_endpoint)
    q = "category=linear&symbol=SOLUSDT"
    try:
        times = []
        for _ in range(4):
            t0 = time.monotonic()
            assert _get(cfg, q)["retCode"] == 0
            times.append(time.monotonic() - t0)
        assert times[1] >= 0.4 and times[3] >= 0.4, times  # every 2nd request is late
        assert times[0] < 0.3 and times[2] < 0.3, times
        req.send(b"http_stall -1")
        assert req.recv() == b"ok"
        t0 = time.monotonic()
        with pytest.raises((TimeoutError, urllib.error.URLError)):
            _get(cfg, q, timeout=0.5)
        assert time.monotonic() - t0 < 2
        req.send(b"http_stall 0")
        assert req.recv() == b"ok"
        assert _get(cfg, q, timeout=2)["retCode"] == 0
        req.send(b"http_stall nope")
        assert req.recv().startswith(b"error")
        req.send(b"stats")
        stats = dict(kv.split("=") for kv in req.recv().decode().split())
        assert int(stats["http_stalled"]) == 3 and int(stats["http_ok"]) == 5
    finally:
        req.close()
        ctx.term()
        t0 = time.monotonic()
        sim.stop()
    assert time.monotonic() - t0 < 3, "a request held by the stall fault does not block stop"


@pytest.mark.timeout(60)
def test_rest_snapshot_after_an_injected_gap_repairs_the_book(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, FaultsConfig(drop_delta=FaultSpec(every=40)))
    ctx = zmq.Context()
    sub = subscribe_all(ctx, cfg.endpoint)
    sim = GatewaySim(cfg).start()
    try:
        stream = _deltas(sub, "SOLUSDT")
        _, first = next(stream)
        u = first["u"]
        for _, data in stream:
            if data["u"] != u + 1:
                break  # the gap
            u = data["u"]
        snap = _get(cfg, "category=linear&symbol=SOLUSDT&limit=50")["result"]
        assert snap["u"] > u + 1
        book, u = Book(snap), snap["u"]
        applied = 0
        for _, data in stream:
            if data["u"] <= u:
                continue
            if data["u"] != u + 1:
                break  # the next injected gap
            book.apply(data)
            u = data["u"]
            applied += 1
        assert applied > 0
        assert 25 <= len(book.b) <= 50 and 25 <= len(book.a) <= 50
        assert max(map(float, book.b)) < min(map(float, book.a)), "snapshot + deltas is a valid book"
    finally:
        sub.close()
        ctx.term()
        sim.stop()
