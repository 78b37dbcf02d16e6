"""The features.live wire format: exact round trip, payload layout read with plain msgpack/struct, topic checks."""

from __future__ import annotations

import struct

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.wire import TOPIC_PREFIX, decode, encode
from engine.engine import Vector

HASH = "ab" * 32
SYMBOLS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=20)
FLOATS = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0.0, -0.0, np.inf, -np.inf])
#: Any float64 bit pattern, NaN payloads and signalling NaNs included.
BITS = st.integers(min_value=0, max_value=2**64 - 1)
VALUES = st.lists(FLOATS.map(lambda x: struct.unpack("<Q", struct.pack("<d", x))[0]) | BITS, max_size=64)


def vector(ts: int, symbol: str, bits: list[int], book_valid: int = 1, h: str = HASH) -> Vector:
    """Build a Vector whose values carry exactly the float64 bit patterns `bits`."""
    return Vector(ts, symbol, book_valid, np.array(bits, dtype=np.uint64).view(np.float64), h)


@settings(max_examples=300, deadline=None)
@given(ts=st.integers(min_value=-(2**63), max_value=2**63 - 1), symbol=SYMBOLS, bits=VALUES,
       book_valid=st.sampled_from([0, 1]), h=st.text(alphabet="0123456789abcdef", min_size=1, max_size=64))
def test_round_trip_is_bit_exact(ts: int, symbol: str, bits: list[int], book_valid: int, h: str) -> None:
    v = vector(ts, symbol, bits, book_valid, h)
    parts = encode(v)
    got = decode(parts)
    assert (got.ts_ns, got.symbol, got.book_valid, got.registry_hash) == (ts, symbol, book_valid, h)
    assert got.values.dtype == np.float64
    assert got.values.view(np.uint64).tolist() == bits
    # The payload read without our code: a msgpack map, values as little-endian float64 bytes.
    assert parts[0] == b"features.live." + symbol.encode()
    m = msgpack.unpackb(parts[1], raw=False)
    assert set(m) == {"ts", "symbol", "registry_hash", "book_valid", "values"}
    assert (m["ts"], m["symbol"], m["registry_hash"], m["book_valid"]) == (ts, symbol, h, book_valid)
    assert isinstance(m["values"], bytes)
    assert list(struct.unpack(f"<{len(bits)}Q", m["values"])) == bits


def test_payload_by_hand() -> None:
    v = Vector(1_700_000_000_000_000_000, "BTCUSDT", 0, np.array([1.5, np.nan, -0.0]), HASH)
    topic, payload = encode(v)
    assert topic == b"features.live.BTCUSDT"
    m = msgpack.unpackb(payload)
    assert m["ts"] == 1_700_000_000_000_000_000 and m["book_valid"] == 0
    assert m["values"][:8] == bytes.fromhex("000000000000f83f")  # 1.5 little-endian
    assert m["values"][16:] == bytes.fromhex("0000000000000080")  # -0.0: only the sign bit


def test_big_endian_and_bool_inputs_are_normalised() -> None:
    native = Vector(1, "X", 1, np.array([1.0, 2.0]), HASH)
    big = Vector(1, "X", True, np.array([1.0, 2.0], dtype=">f8"), HASH)
    assert encode(big) == encode(native)


@pytest.mark.parametrize(("topic", "symbol", "fragment"), [
    (b"features.live.ETHUSDT", "BTCUSDT", "does not match the payload's symbol 'BTCUSDT'"),
    (b"features.live.BTCUSDTX", "BTCUSDT", "does not match"),
    (b"features.live.", "BTCUSDT", "does not match"),
    (b"features.liveBTCUSDT", "BTCUSDT", "is not a features.live topic"),
    (b"market.trades.BTCUSDT", "BTCUSDT", "is not a features.live topic"),
])
def test_wrong_topic_is_named(topic: bytes, symbol: str, fragment: str) -> None:
    payload = encode(Vector(1, symbol, 1, np.zeros(2), HASH))[1]
    with pytest.raises(ValueError, match=fragment) as e:
        decode([topic, payload])
    assert repr(topic) in str(e.value)


@pytest.mark.parametrize(("payload", "fragment"), [
    (b"\xc1", "not msgpack"),
    (msgpack.packb([1, 2]), "must be a map"),
    (msgpack.packb({"ts": 1, "symbol": "X", "registry_hash": HASH, "book_valid": 1}), "must be a map with keys"),
    (msgpack.packb({"ts": "1", "symbol": "X", "registry_hash": HASH, "book_valid": 1, "values": b""}),
     "'ts' must be int"),
    (msgpack.packb({"ts": 1, "symbol": "X", "registry_hash": HASH, "book_valid": 2, "values": b""}),
     "'book_valid' must be 0 or 1"),
    (msgpack.packb({"ts": 1, "symbol": "X", "registry_hash": HASH, "book_valid": True, "values": b""}),
     "'book_valid' must be int"),
    (msgpack.packb({"ts": 1, "symbol": "X", "registry_hash": HASH, "book_valid": 1, "values": b"1234567"}),
     "not a multiple of 8"),
])
def test_bad_payload_is_a_value_error(payload: bytes, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        decode([TOPIC_PREFIX + b"X", payload])


def test_wrong_part_count() -> None:
    with pytest.raises(ValueError, match="3 parts, expected 2"):
        decode([TOPIC_PREFIX + b"X", b"", b""])


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=200))
def test_garbage_payload_raises_only_value_error(payload: bytes) -> None:
    try:
        decode([TOPIC_PREFIX + b"X", payload])
    except ValueError:
        pass
