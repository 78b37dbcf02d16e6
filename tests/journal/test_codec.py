"""Codec and scanner: exact round trips, the frame layout, framing of many records, CRC vs zlib."""

from __future__ import annotations

import math
import random
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from engine.record import Kind, Record
from journal.codec import decode, decode_body, encode, encode_batch
from journal.scan import (
    BAD_CRC,
    BAD_LENGTH,
    CRC_TABLE,
    OK,
    TRUNCATED,
    as_u8,
    crc32,
    crc32_kernel,
    scan_buffer,
    scan_kernel,
)
from tests.journal import make_records, numbered, same, same_records

NAN_WITH_PAYLOAD = struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0]


def rec(payload: dict, kind: int = Kind.TRADES, symbol: str = "SOLUSDT") -> Record:
    return Record(42, 1_786_310_800_123_456_789, kind, symbol, 1_786_310_800_123, 1_786_310_800_120, payload)


def test_frame_layout_matches_the_architecture() -> None:
    r = rec({"x": 1})
    f = encode(r)
    length, crc = struct.unpack_from("<II", f, 0)
    assert length == len(f) - 4
    assert crc == zlib.crc32(f[8:])
    assert struct.unpack_from("<QqHH", f, 8) == (42, 1_786_310_800_123_456_789, Kind.TRADES, 0)
    import msgpack

    assert msgpack.unpackb(f[28:]) == ["SOLUSDT", 1_786_310_800_123, 1_786_310_800_120, {"x": 1}]


@pytest.mark.parametrize("payload", [
    {},
    {"depth": 200, "u": 5, "seq": 9, "b": np.array([[101.5, 2.0], [101.4, 0.0]]), "a": np.empty((0, 2))},
    {"p": np.array([1.5, NAN_WITH_PAYLOAD, -0.0, math.inf, -math.inf, 5e-324]), "side": np.array([1, -1], np.int8),
     "T": np.array([2**63 - 1, -(2**63)], np.int64), "id": ["a", "b"], "bt": [True, False]},
    {"rate": NAN_WITH_PAYLOAD, "neg0": -0.0, "big": 2**64 - 1, "small": -(2**63), "s": "ünïcødé", "raw": b"\x00\xff"},
    {"bars": [{"start": 1, "open": 1.25, "confirm": True}, {"start": 2, "open": math.nan, "confirm": False}]},
    {"fields": {"z": "1", "a": "2", "m": "3"}, "nested": [[1, [2.5, b"x"]], {"k": [None]}]},
])
def test_round_trip_is_exact(payload: dict) -> None:
    r = rec(payload)
    assert same(tuple(decode(encode(r))), tuple(r))


@pytest.mark.parametrize("dtype", ["<f8", "<f4", "|i1", "<i8", "<u8", "|b1", ">f8", ">i4", "<M8[ns]", "<U3", "|S2", "<c16"])
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 3), (0, 2), (2, 1, 2)])
def test_arrays_keep_dtype_shape_and_bytes(dtype: str, shape: tuple[int, ...]) -> None:
    a = np.frombuffer(np.random.default_rng(1).bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize),
                      dtype=dtype).reshape(shape) if "U" not in dtype else np.full(shape, "ab", dtype=dtype)
    got = decode(encode(rec({"a": a}))).payload["a"]
    assert same(got, a)
    assert not got.flags.writeable


def test_non_contiguous_arrays_come_back_in_c_order() -> None:
    base = np.arange(24, dtype=np.float64).reshape(4, 6)
    for a in (base[:, ::2], base.T, np.asfortranarray(base)):
        got = decode(encode(rec({"a": a}))).payload["a"]
        assert got.shape == a.shape and np.array_equal(got, a) and got.flags.c_contiguous


def test_numpy_scalars_become_python_scalars() -> None:
    got = decode(encode(rec({"f": np.float64(1.5), "i": np.int64(-3), "b": np.bool_(True)}))).payload
    assert same(got, {"f": 1.5, "i": -3, "b": True})


@pytest.mark.parametrize("payload", [{"o": np.array([object()])}, {"s": {1, 2}},
                                     {"r": np.zeros(2, dtype=[("x", "<f8")])}])
def test_unstorable_values_raise_type_error(payload: dict) -> None:
    with pytest.raises(TypeError):
        encode(rec(payload))


def test_kind_outside_u16_raises() -> None:
    with pytest.raises(ValueError):
        encode(rec({}, kind=70_000))


def test_decode_rejects_a_damaged_frame() -> None:
    f = bytearray(encode(rec({"x": 1.0})))
    f[-1] ^= 0x01
    with pytest.raises(ValueError, match="CRC"):
        decode(bytes(f))


# -- hypothesis: random payloads ------------------------------------------------------------

_DTYPES = st.sampled_from(["<f8", "<f4", "|i1", "<i2", "<i8", "<u4", "|b1", ">f8"])
_ARRAYS = _DTYPES.flatmap(lambda dt: hnp.arrays(np.dtype(dt), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
_SCALARS = (st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8)
            | st.binary(max_size=8) | st.booleans() | _ARRAYS)
_VALUES = st.recursive(_SCALARS, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=5), kids, max_size=4),
                       max_leaves=12)
_PAYLOADS = st.dictionaries(st.text(max_size=6), _VALUES, max_size=6)
_RECORDS = st.builds(Record, st.integers(0, 2**63 - 1), st.integers(-(2**63), 2**63 - 1), st.integers(0, 0xFFFF),
                     st.text(max_size=40), st.integers(-(2**63), 2**63 - 1), st.integers(-(2**63), 2**63 - 1), _PAYLOADS)


@settings(max_examples=200, deadline=None)
@given(_RECORDS)
def test_random_records_round_trip(r: Record) -> None:
    assert same(tuple(decode(encode(r))), tuple(r))


@settings(max_examples=60, deadline=None)
@given(st.lists(_RECORDS, max_size=12), st.integers(0, 10_000))
def test_concatenated_frames_scan_back(records: list[Record], cut: int) -> None:
    frames = [encode(r) for r in records]
    buf = b"".join(frames)
    ends = np.cumsum([len(f) for f in frames], dtype=np.int64)
    got = scan_buffer(buf)
    assert (got.status, got.stop) == (OK, len(buf))
    assert got.offset.tolist() == [0, *ends[:-1].tolist()][: len(records)]
    assert got.seq.tolist() == [r.seq for r in records]
    assert got.recv_ns.tolist() == [r.recv_ns for r in records]
    assert got.kind.tolist() == [r.kind for r in records]
    for r, o, n in zip(records, got.offset.tolist(), got.length.tolist(), strict=True):
        symbol, ts, cts, payload = decode_body(buf[o + 28 : o + n])
        assert same((symbol, ts, cts, payload), (r.symbol, r.ts, r.cts, r.payload))
    # A cut anywhere keeps exactly the whole frames before it.
    cut = min(cut, len(buf))
    part = scan_buffer(buf[:cut])
    whole = int(np.searchsorted(ends, cut, side="right"))
    assert len(part.seq) == whole
    assert part.stop == (ends[whole - 1] if whole else 0)
    assert part.status == (OK if part.stop == cut else TRUNCATED)


def test_scan_reports_bad_crc_and_bad_length_where_they_start() -> None:
    records = numbered(make_records(20, seed=3))
    frames = [encode(r) for r in records]
    buf = bytearray(b"".join(frames))
    start7 = sum(len(f) for f in frames[:7])
    buf[start7 + 40] ^= 0x10
    got = scan_buffer(bytes(buf))
    assert (len(got.seq), got.stop, got.status) == (7, start7, BAD_CRC)
    buf[start7 + 40] ^= 0x10
    buf[start7 : start7 + 4] = b"\x00\x00\x00\x00"
    got = scan_buffer(bytes(buf))
    assert (len(got.seq), got.stop, got.status) == (7, start7, BAD_LENGTH)


def test_scan_respects_start_end_and_base() -> None:
    records = numbered(make_records(5, seed=4))
    body = b"".join(encode(r) for r in records)
    buf = b"HEADER--" + body + b"junk"
    got = scan_buffer(buf, start=8, end=8 + len(body), base=1000)
    assert got.status == OK and got.stop == 1008 + len(body) and got.offset[0] == 1008


def test_decoded_records_equal_written_records() -> None:
    records = numbered(make_records(300, seed=5))
    buf = b"".join(encode(r) for r in records)
    got = scan_buffer(buf)
    out = [Record(s, t, k, *decode_body(buf[o + 28 : o + n]))
           for s, t, k, o, n in zip(got.seq.tolist(), got.recv_ns.tolist(), got.kind.tolist(),
                                    got.offset.tolist(), got.length.tolist(), strict=True)]
    assert same_records(out, records)


# -- CRC-32 ---------------------------------------------------------------------------------

def test_crc_kernel_equals_zlib_on_random_data() -> None:
    rng = random.Random(11)
    for _ in range(300):
        data = rng.randbytes(rng.choice([0, 1, 7, 8, 9, 15, 16, 17, rng.randrange(2000)]))
        seed = rng.randrange(2**32)
        assert crc32(data) == zlib.crc32(data)
        assert crc32(data, seed) == zlib.crc32(data, seed)
    big = rng.randbytes(3_000_001)
    assert crc32(big) == zlib.crc32(big)


def test_crc_kernel_on_unaligned_slices() -> None:
    rng = random.Random(12)
    data = rng.randbytes(5000)
    buf = as_u8(data)
    for _ in range(200):
        a = rng.randrange(len(data))
        b = rng.randrange(a, len(data) + 1)
        assert crc32_kernel(buf, a, b, 0, CRC_TABLE) == zlib.crc32(data[a:b])


def test_python_originals_agree_with_compiled_kernels() -> None:
    records = numbered(make_records(6, seed=6))
    data = b"".join(encode(r) for r in records)[:-3]
    buf = as_u8(data)
    py_crc = getattr(crc32_kernel, "py_func", crc32_kernel)  # plain functions under NUMBA_DISABLE_JIT=1
    py_scan = getattr(scan_kernel, "py_func", scan_kernel)
    assert py_crc(buf, 0, 100, 7, CRC_TABLE) == zlib.crc32(data[:100], 7)
    py = py_scan(buf, 0, len(buf), CRC_TABLE, 25, 1 << 26)
    jit = scan_kernel(buf, 0, len(buf), CRC_TABLE, 25, 1 << 26)
    for p, j in zip(py[:3], jit[:3], strict=True):
        assert np.array_equal(p, j)
    assert (py[3], py[4]) == (jit[3], jit[4]) and jit[4] == TRUNCATED


def _naive_frame(r: Record) -> bytes:
    """Independent frame builder: struct + msgpack with hand-made ExtType 1 (the pre-batch format)."""
    import msgpack

    def ext(a: np.ndarray) -> msgpack.ExtType:
        descr = a.dtype.str.encode()
        head = struct.pack("<BB", a.ndim, len(descr)) + descr + struct.pack(f"<{a.ndim}q", *a.shape)
        return msgpack.ExtType(1, head + np.ascontiguousarray(a).tobytes())

    body = msgpack.packb([r.symbol, r.ts, r.cts, r.payload], use_bin_type=True,
                         default=lambda o: ext(o) if isinstance(o, np.ndarray) else o.item())
    fixed = struct.pack("<QqHH", r.seq, r.recv_ns, r.kind, 0)
    return struct.pack("<II", 4 + len(fixed) + len(body), zlib.crc32(fixed + body)) + fixed + body


def test_encode_batch_numbers_and_frames_like_a_naive_encoder() -> None:
    records = make_records(300, seed=7)
    data, got = encode_batch(records, 1000)
    want = [r._replace(seq=1000 + i) for i, r in enumerate(records)]
    assert data == b"".join(_naive_frame(r) for r in want)
    assert data == b"".join(encode(r) for r in want)
    assert [type(r) for r in got] == [Record] * len(want) and same_records(got, want)
    assert same_records([decode(_naive_frame(r)) for r in want], want)  # frames of the old encoder read back


@pytest.mark.parametrize("bad, error", [
    (Record(0, 1, 70_000, "S", 0, 0, {}), ValueError),
    (Record(0, 1, Kind.TICK, b"S", 0, 0, {}), TypeError),
    (Record(0, 1, Kind.TICK, "S", 0, 0, {"x": object()}), TypeError),
])
def test_encode_batch_rejects_like_encode(bad: Record, error: type[Exception]) -> None:
    ok = make_records(3)
    with pytest.raises(error):
        encode(bad)
    with pytest.raises(error):
        encode_batch([*ok, bad, *ok], 1)
