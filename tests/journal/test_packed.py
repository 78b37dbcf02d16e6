"""Compiled msgpack writers against msgpack-python itself, and the codec's use of a prepacked body."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.record import Kind, Record
from journal import codec
from journal.packed import (
    Prepacked,
    put_array_head,
    put_ext_head,
    put_levels,
    put_str,
    put_uint,
    put_vector,
)

UINT_EDGES = [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0xFFFFFFFF, 0x100000000, 2**63 - 1]


def _written(fn, *args) -> bytes:
    """Run a writer into a fresh buffer at pos 3 (not 0: offsets must be honoured); return its bytes."""
    buf = np.zeros(1 << 18, dtype=np.uint8)
    end = fn(buf, 3, *args)
    return bytes(buf[3:end])


@pytest.mark.parametrize("value", UINT_EDGES)
def test_put_uint_is_msgpacks_smallest_form(value: int) -> None:
    assert _written(put_uint, value) == msgpack.packb(value)


@given(st.integers(0, 2**63 - 1))
@settings(max_examples=300, deadline=None)
def test_put_uint_any_value(value: int) -> None:
    assert _written(put_uint, value) == msgpack.packb(value)


@pytest.mark.parametrize("n", [0, 1, 31, 32, 255, 256, 65535, 65536])
def test_put_str_header_forms(n: int) -> None:
    text = ("S" * n).encode()
    src = np.frombuffer(b"xx" + text + b"yy", dtype=np.uint8)
    assert _written(put_str, src, 2, 2 + n) == msgpack.packb("S" * n, use_bin_type=True)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 16, 17, 255, 256, 65535, 65536])
def test_put_ext_head_forms(n: int) -> None:
    data = bytes(range(256)) * (n // 256 + 1)
    head = _written(put_ext_head, 7, n)
    assert head + data[:n] == msgpack.packb(msgpack.ExtType(7, data[:n]))


@pytest.mark.parametrize("rows", [0, 1, 2, 9, 1000])
def test_put_levels_is_the_codecs_array_ext(rows: int) -> None:
    rng = np.random.default_rng(rows)
    values = rng.random((rows + 5, 2)) * 1e5
    want = codec._packer.pack(values[2:2 + rows])  # the codec's own ext for an (n, 2) float64 array
    assert _written(put_levels, codec.EXT_NDARRAY, values, 2, rows) == want


def _book(payload: dict) -> Record:
    return Record(0, 10, Kind.BOOK_DELTA, "BTCUSDT", 5, 6, payload)


def test_codec_uses_a_prepacked_body_only_while_its_key_matches() -> None:
    b, a = np.array([[1.5, 2.0]]), np.empty((0, 2))
    plain = {"depth": 50, "u": 1, "seq": 2, "b": b, "a": a}
    pre = Prepacked(plain)
    pre.body, pre.key = b"\x94MARK", ("BTCUSDT", 5, 6)
    assert codec.encode(_book(pre)).endswith(b"\x94MARK")  # used as is: the writer trusts the decoder
    moved = _book(pre)._replace(symbol="ETHUSDT")  # the body no longer describes the record: packed again
    assert codec.encode(moved) == codec.encode(_book(plain)._replace(symbol="ETHUSDT"))
    assert codec.decode(codec.encode(moved)).payload["b"].tolist() == [[1.5, 2.0]]


@pytest.mark.parametrize("n", [0, 1, 15, 16, 65535, 65536])
def test_put_array_head_forms(n: int) -> None:
    assert _written(put_array_head, n) + b"\xc0" * n == msgpack.packb([None] * n)


@pytest.mark.parametrize("dtype", ["<f8", "<i8", "|i1"])
@pytest.mark.parametrize("n", [0, 1, 3, 200])
def test_put_vector_is_the_codecs_array_ext(dtype: str, n: int) -> None:
    values = (np.arange(n + 4) * 7 - 9).astype(dtype)
    want = codec._packer.pack(values[2:2 + n])
    descr = np.frombuffer(dtype.encode(), dtype=np.uint8)
    assert _written(put_vector, codec.EXT_NDARRAY, descr, values.view(np.uint8), 2, n) == want
