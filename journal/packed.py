"""Journal bodies written ahead of the writer: compiled msgpack pieces and the payload that carries them.

A decoder that has a frame's values in compiled code can write the record's journal body there too
(`journal.codec` layout: msgpack ``[symbol, ts, cts, payload]``, numpy arrays as `EXT_NDARRAY`),
instead of the writer packing the payload again through msgpack's Python callbacks. The bytes
must equal ``codec.encode_body(...)`` exactly — the writer cannot tell the two apart, and the tests
compare them. `Prepacked` is the payload dict that carries such a body; the codec uses the body
only while the record's ``(symbol, ts, cts)`` still equal the `key` it was written for.

The writers follow msgpack-python's choices: the smallest uint form, str8 for 32..255-byte
strings (``use_bin_type``), fixmap/fixarray headers, ext8/16/32 by length.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.jit import kernel

#: Bytes of an (n, 2) float64 array's ext data before its values: ndim, len(dtype), "<f8", shape.
LEVELS_HEAD = 2 + 3 + 16
#: Bytes of a 1-d array's ext data before its items: ndim, len(dtype), the dtype str, shape.
VECTOR_HEAD = 2 + 3 + 8
#: Most bytes `put_uint` writes.
UINT_MAX_BYTES = 9


class Prepacked(dict):
    """A payload dict with its record's journal body already written (see the module docstring)."""

    __slots__ = ("body", "key")

    body: Any
    key: tuple[str, int, int]


@kernel
def put_be(buf: np.ndarray, pos: int, value: int, nbytes: int) -> int:
    """Write `value` big-endian in `nbytes` bytes at `pos`; return the next pos."""
    for k in range(nbytes):
        buf[pos + k] = (value >> (8 * (nbytes - 1 - k))) & 0xFF
    return pos + nbytes


@kernel
def put_uint(buf: np.ndarray, pos: int, value: int) -> int:
    """Write a non-negative int (< 2**63) in msgpack's smallest form; return the next pos."""
    if value < 0x80:
        buf[pos] = value
        return pos + 1
    if value <= 0xFF:
        buf[pos] = 0xCC
        return put_be(buf, pos + 1, value, 1)
    if value <= 0xFFFF:
        buf[pos] = 0xCD
        return put_be(buf, pos + 1, value, 2)
    if value <= 0xFFFFFFFF:
        buf[pos] = 0xCE
        return put_be(buf, pos + 1, value, 4)
    buf[pos] = 0xCF
    return put_be(buf, pos + 1, value, 8)


@kernel
def put_str(buf: np.ndarray, pos: int, src: np.ndarray, start: int, end: int) -> int:
    """Write the UTF-8 bytes ``src[start:end]`` as a msgpack str; return the next pos."""
    n = end - start
    if n < 32:
        buf[pos] = 0xA0 | n
        pos += 1
    elif n <= 0xFF:
        buf[pos] = 0xD9
        pos = put_be(buf, pos + 1, n, 1)
    elif n <= 0xFFFF:
        buf[pos] = 0xDA
        pos = put_be(buf, pos + 1, n, 2)
    else:
        buf[pos] = 0xDB
        pos = put_be(buf, pos + 1, n, 4)
    buf[pos:pos + n] = src[start:end]
    return pos + n


@kernel
def put_ext_head(buf: np.ndarray, pos: int, code: int, n: int) -> int:
    """Write the header of a msgpack ext of `n` data bytes; return the next pos."""
    if n == 1 or n == 2 or n == 4 or n == 8 or n == 16:
        buf[pos] = 0xD4 + (0 if n == 1 else 1 if n == 2 else 2 if n == 4 else 3 if n == 8 else 4)
        pos += 1
    elif n <= 0xFF:
        buf[pos] = 0xC7
        pos = put_be(buf, pos + 1, n, 1)
    elif n <= 0xFFFF:
        buf[pos] = 0xC8
        pos = put_be(buf, pos + 1, n, 2)
    else:
        buf[pos] = 0xC9
        pos = put_be(buf, pos + 1, n, 4)
    buf[pos] = code
    return pos + 1


@kernel
def put_levels(buf: np.ndarray, pos: int, code: int, values: np.ndarray, row: int, rows: int) -> int:
    """Write rows ``row:row+rows`` of a C-contiguous (n, 2) float64 array as the codec's array ext."""
    nbytes = 16 * rows
    pos = put_ext_head(buf, pos, code, LEVELS_HEAD + nbytes)
    buf[pos] = 2
    buf[pos + 1] = 3
    buf[pos + 2] = 60  # "<f8"
    buf[pos + 3] = 102
    buf[pos + 4] = 56
    pos += 5
    for k in range(8):  # int64 little-endian shape (rows, 2)
        buf[pos + k] = (rows >> (8 * k)) & 0xFF
        buf[pos + 8 + k] = 2 if k == 0 else 0
    pos += 16
    raw = values.reshape(-1).view(np.uint8)
    buf[pos:pos + nbytes] = raw[16 * row:16 * row + nbytes]
    return pos + nbytes


@kernel
def put_array_head(buf: np.ndarray, pos: int, n: int) -> int:
    """Write a msgpack array header for `n` items; return the next pos."""
    if n < 16:
        buf[pos] = 0x90 | n
        return pos + 1
    if n <= 0xFFFF:
        buf[pos] = 0xDC
        return put_be(buf, pos + 1, n, 2)
    buf[pos] = 0xDD
    return put_be(buf, pos + 1, n, 4)


@kernel
def put_vector(buf: np.ndarray, pos: int, code: int, descr: np.ndarray, raw: np.ndarray, start: int,
               n: int) -> int:
    """Write `n` items of a 1-d array as the codec's array ext: its ``dtype.str`` bytes `descr` and the
    little-endian item bytes ``raw[start*size:(start+n)*size]`` (`raw`: the array viewed as uint8)."""
    size = int(descr[2]) - 48  # "<f8", "<i8", "|i1": the item size is the last digit
    nbytes = n * size
    pos = put_ext_head(buf, pos, code, VECTOR_HEAD + nbytes)
    buf[pos] = 1
    buf[pos + 1] = 3
    buf[pos + 2:pos + 5] = descr
    pos += 5
    for k in range(8):  # int64 little-endian shape (n,)
        buf[pos + k] = (n >> (8 * k)) & 0xFF
    pos += 8
    buf[pos:pos + nbytes] = raw[start * size:start * size + nbytes]
    return pos + nbytes
