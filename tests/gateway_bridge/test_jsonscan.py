"""The compiled JSON token readers against orjson: what they accept they read exactly, the rest they refuse."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_bridge.jsonscan import skip_scalar, string_end, uint


def _u8(text: bytes) -> np.ndarray:
    return np.frombuffer(text, dtype=np.uint8)


@pytest.mark.parametrize("token", [b'"abc"', b'""', b"true", b"false", b"null", b"0", b"-12.5", b"7", b"-0"])
def test_skip_scalar_skips_a_plain_scalar_whole(token: bytes) -> None:
    orjson.loads(token)  # a real JSON scalar
    assert skip_scalar(_u8(token + b",1"), 0) == len(token)


@pytest.mark.parametrize("token", [b"{}", b"[1]", b'"a\\"b"', b"tru", b"nul", b"-", b"", b'"open', b"01", b"1.",
                                   b".5", b"1e", b"1e+", b"--1", b"+1", '"é"'.encode(),
                                   b"1e5", b"1e400", b"1" * 19])
def test_skip_scalar_refuses_containers_escapes_and_broken_tokens(token: bytes) -> None:
    assert skip_scalar(_u8(token), 0) == -1


@pytest.mark.parametrize("text, end", [(b'"ab"x', 3), (b'"a\\nb"', -1), (b'"a\x01"', -1), (b'"abc', -1), (b"abc", -1)])
def test_string_end_finds_the_closing_quote_of_a_plain_string(text: bytes, end: int) -> None:
    assert string_end(_u8(text), 0) == end


@given(st.integers(0, 10**18 - 1))
@settings(max_examples=300, deadline=None)
def test_uint_reads_what_orjson_reads(value: int) -> None:
    out = np.zeros(1, dtype=np.int64)
    text = str(value).encode() + b","
    assert uint(_u8(text), 0, out, 0) == len(text) - 1
    assert out[0] == orjson.loads(text[:-1])


@pytest.mark.parametrize("text", [b"01,", b"1.0,", b"1e5,", b"-1,", b"1234567890123456789,", b",", b"12"])
def test_uint_refuses_what_is_not_a_plain_small_int(text: bytes) -> None:
    assert uint(_u8(text), 0, np.zeros(1, dtype=np.int64), 0) == -1
