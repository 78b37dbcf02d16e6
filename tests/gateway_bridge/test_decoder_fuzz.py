"""Decoder fuzzing: whatever the bytes, decode returns a list and never raises or hits internal_error."""

from __future__ import annotations

from pathlib import Path

import msgpack
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.record import Kind, Record
from gateway_bridge.config import TopicsConfig
from gateway_bridge.decoder import Decoder
from tests.conftest import SOL_DOGE_FRAMES, XRP_OB500

T = TopicsConfig()
NS = 1_786_310_819_000_000_000
SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bybit" / SOL_DOGE_FRAMES
XRP = SAMPLE.parent / XRP_OB500
FALLBACK = [orjson.dumps({"topic": "orderbook.50.SOLUSDT", "type": "delta", "ts": 1,
                          "data": {"s": "SOLUSDT", "b": [["77.3", "1"]], "a": [], "u": 2, "seq": 3}})]


def _real_frames() -> list[bytes]:
    """A spread of real frames (all kinds) from the shared recording, or a built one if absent."""
    if not SAMPLE.is_file():
        return FALLBACK
    lines = SAMPLE.read_bytes().splitlines()
    return [line for line in lines[::10] if b"SOLUSDT" in line or b"DOGEUSDT" in line]


REAL = _real_frames()
GATEWAY_TOPICS = st.sampled_from([*T.names(), "market.unknown", ""])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=25)
FIELDS = ["topic", "type", "ts", "cts", "data", "s", "b", "a", "u", "seq", "T", "S", "p", "v", "i", "BT", "symbol",
          "interval", "confirm", "start", "fundingRate", "nextFundingTime", "execId", "side", "op", "success"]


def _check(recs: object) -> list[Record]:
    assert isinstance(recs, list)
    for r in recs:
        assert isinstance(r, Record)
        if r.kind == Kind.BAD_FRAME:
            assert r.payload["reason"] != "internal_error"
            assert isinstance(r.payload["raw"], bytes)
    return recs  # type: ignore[return-value]


def _replace_in(obj: object, key: str, value: object) -> object:
    """Return `obj` with every dict entry named `key` (at any depth) set to `value`."""
    if isinstance(obj, dict):
        return {k: (value if k == key else _replace_in(v, key, value)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_replace_in(v, key, value) for v in obj]
    return obj


@given(st.binary(max_size=300), GATEWAY_TOPICS)
def test_random_bytes(payload: bytes, topic: str) -> None:
    d = Decoder(["SOLUSDT"], T)
    _check(d.decode(topic, payload, NS))
    _check(d.decode_frame(payload, NS))


@given(st.sampled_from(REAL), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=6))
def test_mutated_real_frames(frame: bytes, edits: list[tuple[int, int]]) -> None:
    buf = bytearray(frame)
    for pos, byte in edits:
        buf[pos % len(buf)] = byte
    _check(Decoder(["SOLUSDT", "DOGEUSDT"], T).decode_frame(bytes(buf), NS))


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(REAL), st.sampled_from(FIELDS), json_values, st.booleans())
def test_real_frames_with_a_field_replaced(frame: bytes, key: str, value: object, as_msgpack: bool) -> None:
    obj = _replace_in(orjson.loads(frame), key, value)
    try:
        payload = msgpack.packb(obj) if as_msgpack else orjson.dumps(obj)
    except (TypeError, OverflowError, ValueError):
        return  # not representable in that encoding
    _check(Decoder(["SOLUSDT", "DOGEUSDT"], T).decode_frame(payload, NS))


@given(json_values, GATEWAY_TOPICS)
def test_random_json(value: object, topic: str) -> None:
    try:
        payload = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except (TypeError, orjson.JSONEncodeError):
        return
    _check(Decoder(None, T).decode(topic, payload, NS))


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(REAL), st.binary(max_size=40)), max_size=30))
def test_good_frames_between_bad_ones_all_come_through_in_order(stream: list[tuple[bool, bytes, bytes]]) -> None:
    ref = Decoder(None, None)
    expected = [(r.kind, r.symbol, r.ts) for good, frame, _ in stream if good for r in ref.decode_frame(frame, NS)]
    d = Decoder(None, None)
    got = []
    for good, frame, junk in stream:
        recs = _check(d.decode_frame(frame if good else b"\xc1" + junk, NS))
        if not good:
            assert [r.kind for r in recs] == [Kind.BAD_FRAME]
        got += [(r.kind, r.symbol, r.ts) for r in recs if r.kind != Kind.BAD_FRAME]
    assert got == expected


@pytest.mark.parametrize("path", [SAMPLE, XRP], ids=["sol_doge", "xrp"])
def test_every_truncation_of_a_real_frame(path: Path) -> None:
    if not path.is_file():
        pytest.skip("shared recordings absent")
    d = Decoder(None, None)
    frame = path.read_bytes().splitlines()[-1]
    for n in range(len(frame)):
        recs = _check(d.decode_frame(frame[:n], NS))
        assert [r.kind for r in recs] == [Kind.BAD_FRAME]
