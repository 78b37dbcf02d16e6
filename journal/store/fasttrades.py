"""Trade rows read back from Parquet -> their journal frames, byte for byte, without records (verification).

The inverse of the trades table for messages whose rows have the decoder's layout: rebuilds
``[symbol, ts, cts, {p, v, side, T, id, bt}]`` as `journal.codec.encode` packs it (numpy arrays as
ExtType, ids as msgpack strings, block flags as booleans), CRC included, so compaction checksums
trade files at numba speed. `journal.store.fastbook` does the same for book rows.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from engine.jit import kernel
from journal.codec import FRAME_HEAD_SIZE
from journal.scan import crc32_kernel
from journal.store.fastbook import (
    ChunkBooks,
    _int,
    _int_size,
    _put_be,
    _put_int,
    fast_partitions,
    put_ext_head,
)

#: Map keys in payload order, each as its msgpack fixstr, one after another.
KEYS = np.frombuffer(b"\xa1p\xa1v\xa4side\xa1T\xa2id\xa2bt", dtype=np.uint8)
DTYPES = np.frombuffer(b"<f8|i1<i8", dtype=np.uint8)


@kernel
def _ext_size(length: int) -> int:
    if length == 1 or length == 2 or length == 4 or length == 8 or length == 16:
        return 2
    return 3 if length < 256 else 4 if length < 65536 else 6


@kernel
def _count_size(n: int, small: int) -> int:
    """Header bytes of a msgpack array (small=16) or str (small=32) of n items/bytes."""
    if n < small:
        return 1
    if small == 32 and n < 256:
        return 2
    return 3 if n < 65536 else 5


@kernel
def _put_array(out: np.ndarray, q: int, data: np.ndarray, lo: int, n: int, isz: int, dt: int) -> int:
    """An ExtType numpy array (1-D, dtype DTYPES[dt:dt+3]) of data bytes [lo*isz, (lo+n)*isz)."""
    q = put_ext_head(out, q, 13 + n * isz)
    out[q], out[q + 1], out[q + 2] = 1, 1, 3
    out[q + 3], out[q + 4], out[q + 5] = DTYPES[dt], DTYPES[dt + 1], DTYPES[dt + 2]
    q += 6
    for i in range(8):
        out[q + i] = (n >> (8 * i)) & 0xFF
    q += 8
    m = n * isz
    for i in range(m):
        out[q + i] = data[lo * isz + i]
    return q + m


@kernel
def _put_count(out: np.ndarray, q: int, n: int, small: int, fix: int, b8: int, b16: int, b32: int) -> int:
    if n < small:
        out[q] = fix + n
        return q + 1
    if b8 != 0 and n < 256:
        out[q], out[q + 1] = b8, n
        return q + 2
    if n < 65536:
        out[q] = b16
        _put_be(out, q + 1, n, 2)
        return q + 3
    out[q] = b32
    _put_be(out, q + 1, n, 4)
    return q + 5


@kernel
def _body_size(sn: int, ts: int, cts: int, n: int, id_off: np.ndarray, lo: int) -> int:
    size = 1 + (1 if sn < 32 else 2) + sn + _int_size(ts) + _int_size(cts) + 1 + 17
    size += 3 * _ext_size(13 + 8 * n) + 3 * 13 + 24 * n + _ext_size(13 + n) + 13 + n
    size += 2 * _count_size(n, 16) + n
    for r in range(lo, lo + n):
        ln = id_off[r + 1] - id_off[r]
        size += _count_size(ln, 32) + ln
    return size


@kernel
def encode_trades(seq: np.ndarray, recv: np.ndarray, ts: np.ndarray, cts: np.ndarray, lo: np.ndarray,
                  n: np.ndarray, price: np.ndarray, size: np.ndarray, side: np.ndarray, t: np.ndarray,
                  id_off: np.ndarray, id_data: np.ndarray, bt: np.ndarray, sym: np.ndarray,
                  crc_table: np.ndarray) -> np.ndarray:
    """The journal frames of trade messages (message i = rows lo[i]..lo[i]+n[i]), one after another."""
    sn = len(sym)
    total = 0
    for i in range(len(seq)):
        total += FRAME_HEAD_SIZE + _body_size(sn, ts[i], cts[i], n[i], id_off, lo[i])
    out = np.empty(total, dtype=np.uint8)
    pb, vb, sb, tb = price.view(np.uint8), size.view(np.uint8), side.view(np.uint8), t.view(np.uint8)
    q = 0
    for i in range(len(seq)):
        start, k, a = q, n[i], lo[i]
        p = q + FRAME_HEAD_SIZE
        out[p] = 0x94
        p = _put_count(out, p + 1, sn, 32, 0xA0, 0xD9, 0xDA, 0xDB)
        out[p:p + sn] = sym
        p = _put_int(out, p + sn, ts[i])
        p = _put_int(out, p, cts[i])
        out[p] = 0x86
        p += 1
        out[p:p + 2] = KEYS[0:2]
        p = _put_array(out, p + 2, pb, a, k, 8, 0)
        out[p:p + 2] = KEYS[2:4]
        p = _put_array(out, p + 2, vb, a, k, 8, 0)
        out[p:p + 5] = KEYS[4:9]
        p = _put_array(out, p + 5, sb, a, k, 1, 3)
        out[p:p + 2] = KEYS[9:11]
        p = _put_array(out, p + 2, tb, a, k, 8, 6)
        out[p:p + 3] = KEYS[11:14]
        p = _put_count(out, p + 3, k, 16, 0x90, 0, 0xDC, 0xDD)
        for r in range(a, a + k):
            ln = id_off[r + 1] - id_off[r]
            p = _put_count(out, p, ln, 32, 0xA0, 0xD9, 0xDA, 0xDB)
            out[p:p + ln] = id_data[id_off[r]:id_off[r] + ln]
            p += ln
        out[p:p + 3] = KEYS[14:17]
        p = _put_count(out, p + 3, k, 16, 0x90, 0, 0xDC, 0xDD)
        for r in range(a, a + k):
            out[p] = 0xC3 if bt[r] else 0xC2
            p += 1
        length = p - start - 4
        for b in range(4):
            out[start + b] = (length >> (8 * b)) & 0xFF
        s, rv = seq[i], recv[i]
        for b in range(8):
            out[start + 8 + b] = (s >> (8 * b)) & 0xFF
            out[start + 16 + b] = (rv >> (8 * b)) & 0xFF
        out[start + 24], out[start + 25], out[start + 26], out[start + 27] = 3, 0, 0, 0
        c = crc32_kernel(out, start + 8, p, 0, crc_table)
        for b in range(4):
            out[start + 4 + b] = (c >> (8 * b)) & 0xFF
        q = p
    return out


def _np(t: pa.Table, name: str, dtype: type, fill: object = 0) -> np.ndarray:
    col = t.column(name)
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if arr.null_count:
        arr = arr.fill_null(fill)
    return np.ascontiguousarray(arr.to_numpy(zero_copy_only=False), dtype=dtype)


def trade_frames(table: pa.Table, symbol: str) -> bytes | None:
    """The journal frames of a trades table's messages in row order; None when the symbol is unusual."""
    from journal.scan import CRC_TABLE

    sym = np.frombuffer(symbol.encode(), dtype=np.uint8)
    if not 0 < len(sym) < 256:
        return None
    seq = _np(table, "seq", np.int64)
    starts = np.r_[0, np.flatnonzero(seq[1:] != seq[:-1]) + 1]
    rows = np.diff(np.r_[starts, len(seq)])
    index = _np(table, "index", np.int64)
    n = np.where(index[starts] < 0, 0, rows)
    ids = table.column("trade_id").combine_chunks()
    ids = ids.fill_null("") if ids.null_count else ids
    ids = pa.concat_arrays([ids])  # offset 0, own buffers
    off = np.frombuffer(ids.buffers()[1], dtype=np.int32)[:len(ids) + 1].astype(np.int64)
    data = np.frombuffer(ids.buffers()[2], dtype=np.uint8) if ids.buffers()[2] is not None else \
        np.zeros(0, np.uint8)
    return encode_trades(seq[starts], _np(table, "recv_ns", np.int64)[starts], _np(table, "ts", np.int64)[starts],
                         _np(table, "cts", np.int64)[starts], starts.astype(np.int64), n.astype(np.int64),
                         _np(table, "price", np.float64), _np(table, "size", np.float64),
                         _np(table, "side", np.int8), _np(table, "trade_time", np.int64), off, data,
                         _np(table, "block_trade", np.uint8, False), sym, CRC_TABLE).tobytes()


# -- parsing: trade frames straight from journal bytes ---------------------------------------------

@kernel
def _ext_at(buf: np.ndarray, p: int, end: int, dt: int, isz: int) -> tuple[bool, int, int, int]:
    """A 1-D numpy ExtType of dtype DTYPES[dt:dt+3] at p: (ok, data offset, n, next p)."""
    if p + 2 > end:
        return False, 0, 0, p
    b = np.int64(buf[p])
    if 0xD4 <= b <= 0xD8:
        length, q = np.int64(1) << (b - 0xD4), p + 1
    elif b == 0xC7:
        length, q = np.int64(buf[p + 1]), p + 2
    elif b == 0xC8 and p + 3 <= end:
        length, q = (np.int64(buf[p + 1]) << 8) | np.int64(buf[p + 2]), p + 3
    elif b == 0xC9 and p + 5 <= end:
        length = ((np.int64(buf[p + 1]) << 24) | (np.int64(buf[p + 2]) << 16) | (np.int64(buf[p + 3]) << 8)
                  | np.int64(buf[p + 4]))
        q = p + 5
    else:
        return False, 0, 0, p
    h = q + 1
    if length < 13 or h + length > end or buf[q] != 1 or buf[h] != 1 or buf[h + 1] != 3:
        return False, 0, 0, p
    if buf[h + 2] != DTYPES[dt] or buf[h + 3] != DTYPES[dt + 1] or buf[h + 4] != DTYPES[dt + 2]:
        return False, 0, 0, p
    n = np.int64(0)
    for i in range(7, -1, -1):
        n = (n << 8) | np.int64(buf[h + 5 + i])
    if n < 0 or length != 13 + n * isz:
        return False, 0, 0, p
    return True, h + 13, n, h + length


@kernel
def _count_at(buf: np.ndarray, p: int, end: int, small: int, fix: int, b8: int, b16: int,
              b32: int) -> tuple[bool, int, int]:
    """A msgpack array (fix 0x90) or str (fix 0xa0) header at p: (ok, count, next p)."""
    if p >= end:
        return False, 0, p
    b = np.int64(buf[p])
    if fix <= b < fix + small:
        return True, b - fix, p + 1
    if b8 != 0 and b == b8 and p + 2 <= end:
        return True, np.int64(buf[p + 1]), p + 2
    if b == b16 and p + 3 <= end:
        return True, (np.int64(buf[p + 1]) << 8) | np.int64(buf[p + 2]), p + 3
    if b == b32 and p + 5 <= end:
        return True, ((np.int64(buf[p + 1]) << 24) | (np.int64(buf[p + 2]) << 16) | (np.int64(buf[p + 3]) << 8)
                      | np.int64(buf[p + 4])), p + 5
    return False, 0, p


@kernel
def _key_at(buf: np.ndarray, p: int, end: int, k0: int, k1: int) -> bool:
    if p + k1 - k0 > end:
        return False
    for i in range(k1 - k0):
        if buf[p + i] != KEYS[k0 + i]:
            return False
    return True


@kernel
def _trade_head(buf: np.ndarray, p: int, end: int, out: np.ndarray) -> int:
    """Symbol, ts, cts and the map header: out[0:4]; the position after it, or -1."""
    if p + 3 > end or buf[p] != 0x94:
        return -1
    ok, sn, sp = _count_at(buf, p + 1, end, 32, 0xA0, 0xD9, 0xDA, 0xDB)
    if not ok or sn == 0 or sn > 64 or sp + sn > end:
        return -1
    ok, ts, q = _int(buf, sp + sn, end)
    if not ok:
        return -1
    ok, cts, q = _int(buf, q, end)
    if not ok or q >= end or buf[q] != 0x86:
        return -1
    out[0], out[1], out[2], out[3] = ts, cts, sp, sn
    return q + 1


@kernel
def _trade_arrays(buf: np.ndarray, q: int, end: int, out: np.ndarray) -> int:
    """The p, v, side and T arrays (equal lengths): out[4:9]; the position after them, or -1."""
    n = np.int64(-1)
    for k, (k0, k1, dt, isz) in enumerate(((0, 2, 0, 8), (2, 4, 0, 8), (4, 9, 3, 1), (9, 11, 6, 8))):
        if not _key_at(buf, q, end, k0, k1):
            return -1
        ok, at, m, q = _ext_at(buf, q + k1 - k0, end, dt, isz)
        if not ok or (n >= 0 and m != n):
            return -1
        n = m
        out[5 + k] = at
    out[4] = n
    return q


@kernel
def _trade_tail(buf: np.ndarray, q: int, end: int, n: int, out: np.ndarray) -> bool:
    """The id strings and bt booleans of n trades, ending the body: out[9:12]."""
    if not _key_at(buf, q, end, 11, 14):
        return False
    ok, m, q = _count_at(buf, q + 3, end, 16, 0x90, 0, 0xDC, 0xDD)
    if not ok or m != n:
        return False
    ida, idb = q, 0
    for _ in range(n):
        ok, ln, q = _count_at(buf, q, end, 32, 0xA0, 0xD9, 0xDA, 0xDB)
        if not ok or q + ln > end:
            return False
        q += ln
        idb += ln
    if not _key_at(buf, q, end, 14, 17):
        return False
    ok, m, q = _count_at(buf, q + 3, end, 16, 0x90, 0, 0xDC, 0xDD)
    if not ok or m != n or q + n != end:
        return False
    for i in range(n):
        if buf[q + i] != 0xC2 and buf[q + i] != 0xC3:
            return False
    out[9], out[10], out[11] = ida, idb, q
    return True


@kernel
def _parse_trade(buf: np.ndarray, p: int, end: int, out: np.ndarray) -> bool:
    """One trades body into out: ts, cts, sym_p, sym_n, n, p_at, v_at, side_at, T_at, id_at, id_bytes, bt_at."""
    q = _trade_head(buf, p, end, out)
    if q < 0:
        return False
    q = _trade_arrays(buf, q, end, out)
    return q >= 0 and _trade_tail(buf, q, end, out[4], out)


@kernel
def parse_trades(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray) -> np.ndarray:
    """Parse trades bodies of frames at `starts`; out[i] as in `_parse_trade`; ok flags."""
    ok = np.zeros(len(starts), dtype=np.bool_)
    for i in range(len(starts)):
        ok[i] = _parse_trade(buf, starts[i] + FRAME_HEAD_SIZE, starts[i] + lengths[i], out[i])
    return ok


@kernel
def gather_trades(buf: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                np.ndarray, np.ndarray, np.ndarray]:
    """Flat per-trade columns of parsed messages: price, size, side, T, id offsets (int32), id bytes, bt."""
    total, nbytes = 0, 0
    for i in range(len(cols)):
        total += cols[i, 4]
        nbytes += cols[i, 10]
    price, size = np.empty(total, np.float64), np.empty(total, np.float64)
    side, t = np.empty(total, np.int8), np.empty(total, np.int64)
    id_off, id_data, bt = np.zeros(total + 1, np.int32), np.empty(nbytes, np.uint8), np.empty(total, np.bool_)
    pb, vb, sb, tb = price.view(np.uint8), size.view(np.uint8), side.view(np.uint8), t.view(np.uint8)
    r, d = 0, 0
    for i in range(len(cols)):
        n = cols[i, 4]
        pb[8 * r:8 * (r + n)] = buf[cols[i, 5]:cols[i, 5] + 8 * n]
        vb[8 * r:8 * (r + n)] = buf[cols[i, 6]:cols[i, 6] + 8 * n]
        sb[r:r + n] = buf[cols[i, 7]:cols[i, 7] + n]
        tb[8 * r:8 * (r + n)] = buf[cols[i, 8]:cols[i, 8] + 8 * n]
        q = cols[i, 9]
        for j in range(n):
            ok, ln, q = _count_at(buf, q, len(buf), 32, 0xA0, 0xD9, 0xDA, 0xDB)
            id_data[d:d + ln] = buf[q:q + ln]
            q += ln
            d += ln
            id_off[r + j + 1] = d
            bt[r + j] = buf[cols[i, 11] + j] == 0xC3
        r += n
    return price, size, side, t, id_off, id_data, bt


def chunk_trades(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, kinds: np.ndarray,
                 recv: np.ndarray) -> ChunkBooks:
    """Parse the trades frames among the selected frames of a chunk; partition those that fit."""
    taken = np.zeros(len(starts), dtype=bool)
    tr = np.flatnonzero(kinds == 3)
    cols = np.zeros((len(tr), 12), dtype=np.int64)
    if not len(tr):
        return ChunkBooks(taken, tr, cols, {})
    good = np.flatnonzero(parse_trades(buf, starts[tr], lengths[tr], cols))
    keep, parts = fast_partitions(buf, tr[good], cols[good, 2], cols[good, 3], kinds, recv, {3: "raw_trades"})
    taken[tr[good[keep]]] = True
    return ChunkBooks(taken, tr[good], cols[good], parts)


def trades_table(buf: np.ndarray, cols: np.ndarray, seq: np.ndarray, recv: np.ndarray) -> pa.Table:
    """The trades table of parsed messages (one row per trade; an empty message keeps one null row)."""
    from journal.store.tables import SCHEMAS, _row_plan, _spread

    price, size, side, t, id_off, id_data, bt = gather_trades(buf, np.ascontiguousarray(cols))
    lens = cols[:, 4]
    rows, index, has = _row_plan(lens)
    ids = pa.StringArray.from_buffers(len(price), pa.py_buffer(id_off), pa.py_buffer(id_data))
    if not has.all():
        ids = ids.take(pa.array(np.cumsum(has) - 1, mask=~has))
    r = np.repeat(recv, rows)
    ra = pa.array(r)
    arrays = [pa.array(np.repeat(seq, rows)), ra, ra.view(pa.timestamp("ns", tz="UTC")),
              pa.array(np.repeat(cols[:, 0], rows)), pa.array(np.repeat(cols[:, 1], rows)), pa.array(index),
              _spread(t, has, pa.int64()), _spread(price, has, pa.float64()), _spread(size, has, pa.float64()),
              _spread(side, has, pa.int8()), ids, _spread(bt, has, pa.bool_())]
    return pa.Table.from_arrays(arrays, schema=SCHEMAS["raw_trades"])
