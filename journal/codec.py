"""Frame codec: one `Record` <-> one length-prefixed, CRC-checked frame (layout in ARCHITECTURE.md).

Frame, little-endian::

    u32 length     bytes after this field (crc + fixed header + body)
    u32 crc32      zlib CRC-32 of the bytes after this field
    u64 seq | i64 recv_ns | u16 kind | u16 reserved      (the fixed header a scanner reads)
    msgpack body   [symbol, ts, cts, payload]

Numpy arrays in the payload travel as msgpack ExtType `EXT_NDARRAY` holding ndim, dtype, shape
and the raw C-order bytes; they come back as read-only arrays over those bytes (same dtype and
shape, like `np.frombuffer`).
`bytes` stay `bytes`, `str` stays `str`, floats are float64 bit for bit (NaN payloads too), dict
key order is kept. Tuples come back as lists and numpy scalars as Python scalars. A `Prepacked`
payload brings its body already written (`journal.packed`); it is used as is.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import Any

import msgpack
import numpy as np

from engine.record import Record
from journal.packed import Prepacked

#: msgpack ExtType code of a numpy array.
EXT_NDARRAY = 1
#: u32 length + u32 crc32.
LEN_CRC = struct.Struct("<II")
#: seq, recv_ns, kind, reserved: the part of the header a scanner extracts without decoding.
FIXED = struct.Struct("<QqHH")
#: crc + fixed header: the part of `length` before the body.
FIXED_PLUS_CRC = 4 + FIXED.size
#: Bytes before the body: length, crc, fixed header.
FRAME_HEAD_SIZE = LEN_CRC.size + FIXED.size
#: Smallest legal `length` field: crc + fixed header + a one-byte body.
MIN_LENGTH = 4 + FIXED.size + 1
#: Largest legal `length` field; a bigger one is corruption, not a frame still being written.
MAX_LENGTH = 64 * 1024 * 1024

_KIND_MAX = 0xFFFF
_HEAD2 = struct.Struct("<BB")
#: Decoded array headers (shape, dtype, header size) keyed by their bytes; bounded, cleared when full.
_ARRAY_HEADS: dict[bytes, tuple[tuple[int, ...], np.dtype, int]] = {}
_ARRAY_HEADS_MAX = 4096
#: Encoded array headers keyed by (dtype, shape); bounded like `_ARRAY_HEADS`.
_PACK_HEADS: dict[tuple[np.dtype, tuple[int, ...]], bytes] = {}
_ExtType = msgpack.ExtType
_new_tuple = tuple.__new__
_ndarray = np.ndarray


def _pack_ndarray(a: np.ndarray) -> msgpack.ExtType:
    """Return `a` as an ExtType: u8 ndim, u8 len(dtype), dtype str, int64 shape, C-order bytes."""
    head = _PACK_HEADS.get((a.dtype, a.shape)) or _pack_head(a.dtype, a.shape)
    # tuple.__new__ skips ExtType.__new__'s Python-level argument checks (~300 ns of a ~700 ns
    # array): the code is our constant and the data is bytes. tobytes() is C order for any layout.
    return _new_tuple(_ExtType, (EXT_NDARRAY, head + a.tobytes()))


def _pack_head(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """Build (and cache) the header of arrays of this dtype and shape; refuse object/record dtypes."""
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise TypeError(f"journal cannot store numpy arrays of dtype {dtype}")
    descr = dtype.str.encode("ascii")
    head = _HEAD2.pack(len(shape), len(descr)) + descr + struct.pack(f"<{len(shape)}q", *shape)
    if len(_PACK_HEADS) >= _ARRAY_HEADS_MAX:
        _PACK_HEADS.clear()
    _PACK_HEADS[(dtype, shape)] = head
    return head


def _default(obj: Any) -> Any:
    """Map what msgpack cannot pack natively: numpy arrays and numpy scalars."""
    if type(obj) is _ndarray:  # the hot case, inlined: one Python call per array, not two
        head = _PACK_HEADS.get((obj.dtype, obj.shape)) or _pack_head(obj.dtype, obj.shape)
        return _new_tuple(_ExtType, (EXT_NDARRAY, head + obj.tobytes()))
    if isinstance(obj, np.ndarray):
        return _pack_ndarray(obj)
    if isinstance(obj, np.generic) and not isinstance(obj, np.void):
        return obj.item()
    raise TypeError(f"journal cannot store values of type {type(obj).__name__}")


def _array_head(key: bytes) -> tuple[tuple[int, ...], np.dtype, int]:
    """Parse an array header (see `_pack_ndarray`) into shape, dtype and its size."""
    ndim, dlen = key[0], key[1]
    shape = struct.unpack_from(f"<{ndim}q", key, 2 + dlen)
    if len(_ARRAY_HEADS) >= _ARRAY_HEADS_MAX:
        _ARRAY_HEADS.clear()
    head = _ARRAY_HEADS[key] = (shape, np.dtype(key[2 : 2 + dlen].decode("ascii")), len(key))
    return head


def _ext_hook(code: int, data: bytes) -> Any:
    """Restore a numpy array packed by `_pack_ndarray` as a read-only view of `data`."""
    if code != EXT_NDARRAY:
        return msgpack.ExtType(code, data)
    key = data[: 2 + data[1] + 8 * data[0]]
    shape, dtype, offset = _ARRAY_HEADS.get(key) or _array_head(key)
    return np.ndarray(shape, dtype, data, offset)


_packer = msgpack.Packer(default=_default, use_bin_type=True, autoreset=True)
_pack = _packer.pack
_pack_fixed = FIXED.pack
_pack_len_crc = LEN_CRC.pack
_crc32 = zlib.crc32


def encode_body(symbol: str, ts: int, cts: int, payload: dict[str, Any]) -> bytes:
    """Return the msgpack body of a record."""
    return _packer.pack([symbol, ts, cts, payload])


def decode_body(body: bytes | memoryview) -> list[Any]:
    """Return [symbol, ts, cts, payload] from a frame body."""
    return msgpack.unpackb(body, ext_hook=_ext_hook, raw=False)


def encode(rec: Record) -> bytes:
    """Return `rec` as one frame. Raises TypeError/ValueError for what the journal cannot store."""
    parts: list[bytes] = []
    _encode_into(parts, rec.seq, rec.recv_ns, rec.kind, rec.symbol, rec.ts, rec.cts, rec.payload)
    return b"".join(parts)


def encode_batch(records: Iterable[Record], first_seq: int) -> tuple[bytes, list[Record]]:
    """Number `records` from `first_seq`; return their frames joined and the numbered records.

    The bytes equal ``b"".join(encode(r.with_seq(s)) ...)``; one pass and one join per batch
    instead of a `_replace` and three concatenations per record (the journal writer's hot path).
    """
    parts: list[bytes] = []
    numbered: list[Record] = []
    add, extend = numbered.append, parts.extend
    seq = first_seq
    for _, recv_ns, kind, symbol, ts, cts, payload in records:
        if type(payload) is Prepacked and payload.key == (symbol, ts, cts):
            # The decoder's record: body written, fields checked - frame it here, no call per record.
            body = payload.body
            fixed = _pack_fixed(seq, recv_ns, kind, 0)
            length = FIXED_PLUS_CRC + len(body)
            if length > MAX_LENGTH:
                raise ValueError(f"record of {length} bytes exceeds the journal frame limit {MAX_LENGTH}")
            extend((_pack_len_crc(length, _crc32(body, _crc32(fixed))), fixed, body))
        else:
            _encode_into(parts, seq, recv_ns, kind, symbol, ts, cts, payload)
        add(_new_tuple(Record, (seq, recv_ns, kind, symbol, ts, cts, payload)))  # Record(...) minus kwargs handling
        seq += 1
    return b"".join(parts), numbered


def _encode_into(parts: list[bytes], seq: int, recv_ns: int, kind: int, symbol: str, ts: int, cts: int,
                 payload: dict[str, Any]) -> None:
    """Append the three pieces of one frame (length + crc, fixed header, body) to `parts`."""
    if not 0 <= kind <= _KIND_MAX:
        raise ValueError(f"record kind {kind} outside u16")
    if not isinstance(symbol, str):
        raise TypeError(f"record symbol must be str, not {type(symbol).__name__}")
    if type(payload) is Prepacked and payload.key == (symbol, ts, cts):
        body = payload.body  # written by the decoder's compiled pass, byte for byte what _pack gives
    else:
        body = _pack([symbol, ts, cts, payload])
    fixed = _pack_fixed(seq, recv_ns, kind, 0)
    length = FIXED_PLUS_CRC + len(body)
    if length > MAX_LENGTH:
        raise ValueError(f"record of {length} bytes exceeds the journal frame limit {MAX_LENGTH}")
    parts += (_pack_len_crc(length, _crc32(body, _crc32(fixed))), fixed, body)


def decode(frame: bytes | memoryview) -> Record:
    """Return the Record of one whole frame, checking length and CRC (slow path; readers use scan)."""
    length, crc = LEN_CRC.unpack_from(frame, 0)
    if length < MIN_LENGTH or len(frame) != 4 + length:
        raise ValueError(f"frame length field {length} does not match {len(frame)} bytes")
    if zlib.crc32(memoryview(frame)[LEN_CRC.size :]) != crc:
        raise ValueError("frame CRC mismatch")
    seq, recv_ns, kind, _ = FIXED.unpack_from(frame, LEN_CRC.size)
    symbol, ts, cts, payload = decode_body(memoryview(frame)[FRAME_HEAD_SIZE:])
    return Record(seq, recv_ns, kind, symbol, ts, cts, payload)
