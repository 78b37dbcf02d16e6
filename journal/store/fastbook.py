"""Book frames <-> columns without a Python object per message (compaction's hot path).

`parse_books` reads BOOK_SNAPSHOT / BOOK_DELTA frame bodies straight from journal bytes when they
have exactly the codec's layout of a decoder payload (``[symbol, ts, cts, {depth, u, seq, b, a}]``,
levels as float64 (n, 2) arrays); anything else (``src``, extra keys, other types) is left to the
ordinary decode path. `encode_books` is the inverse: it rebuilds the journal frames (CRC
included) of book rows read back from Parquet, byte for byte what `journal.codec.encode` gives
for the rebuilt records, so verification checksums them without building records either.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from engine.jit import kernel
from journal.codec import FRAME_HEAD_SIZE
from journal.scan import crc32_kernel

#: Longest symbol the fast path handles (longer ones take the ordinary path).
SYM_MAX = 64
_KEYS = (b"\xa5depth", b"\xa1u", b"\xa3seq", b"\xa1b", b"\xa1a")
#: Array ExtType header of a float64 (n, 2) array after ndim/dlen: "<f8".
_F8 = np.frombuffer(b"<f8", dtype=np.uint8)
KEYS = np.frombuffer(b"".join(_KEYS), dtype=np.uint8)


@kernel
def _be(buf: np.ndarray, p: int, n: int) -> int:
    v = np.int64(0)
    for i in range(n):
        v = (v << 8) | np.int64(buf[p + i])
    return v


@kernel
def _le64(buf: np.ndarray, p: int) -> int:
    v = np.int64(0)
    for i in range(7, -1, -1):
        v = (v << 8) | np.int64(buf[p + i])
    return v


@kernel
def _int(buf: np.ndarray, p: int, end: int) -> tuple[bool, int, int]:
    """A msgpack int at p: (ok, value, next p)."""
    if p >= end:
        return False, 0, p
    b = np.int64(buf[p])
    if b <= 0x7F:
        return True, b, p + 1
    if b >= 0xE0:
        return True, b - 256, p + 1
    if 0xCC <= b <= 0xCF:
        n = 1 << (b - 0xCC)
        if p + 1 + n > end or (n == 8 and buf[p + 1] >= 0x80):
            return False, 0, p
        return True, _be(buf, p + 1, n), p + 1 + n
    if 0xD0 <= b <= 0xD3:
        n = 1 << (b - 0xD0)
        if p + 1 + n > end:
            return False, 0, p
        v = _be(buf, p + 1, n)
        if n < 8 and v >= (np.int64(1) << (8 * n - 1)):
            v -= np.int64(1) << (8 * n)
        return True, v, p + 1 + n
    return False, 0, p


@kernel
def _levels(buf: np.ndarray, p: int, end: int) -> tuple[bool, int, int, int]:
    """A float64 (n, 2) array ExtType at p: (ok, data offset, n, next p)."""
    if p + 3 > end:
        return False, 0, 0, p
    b = buf[p]
    if b == 0xC7:
        length, q = np.int64(buf[p + 1]), p + 2
    elif b == 0xC8:
        length, q = _be(buf, p + 1, 2), p + 3
    elif b == 0xC9:
        length, q = _be(buf, p + 1, 4), p + 5
    else:
        return False, 0, 0, p
    if q + 1 + length > end or buf[q] != 1 or length < 21:
        return False, 0, 0, p
    h = q + 1
    if buf[h] != 2 or buf[h + 1] != 3 or buf[h + 2] != _F8[0] or buf[h + 3] != _F8[1] or buf[h + 4] != _F8[2]:
        return False, 0, 0, p
    n = _le64(buf, h + 5)
    if _le64(buf, h + 13) != 2 or n < 0 or length != 21 + 16 * n:
        return False, 0, 0, p
    return True, h + 21, n, h + length


@kernel
def _key(buf: np.ndarray, p: int, keys: np.ndarray, k0: int, k1: int) -> bool:
    for i in range(k1 - k0):
        if buf[p + i] != keys[k0 + i]:
            return False
    return True


@kernel
def _symbol(buf: np.ndarray, p: int, end: int) -> tuple[bool, int, int]:
    """A short msgpack str at p: (ok, start, length)."""
    b = np.int64(buf[p])
    if 0xA0 <= b <= 0xBF:
        sn, sp = b - 0xA0, p + 1
    elif b == 0xD9:
        sn, sp = np.int64(buf[p + 1]), p + 2
    else:
        return False, 0, 0
    return 0 < sn <= SYM_MAX and sp + sn <= end, sp, sn


@kernel
def _parse_one(buf: np.ndarray, p: int, end: int, keys: np.ndarray, out: np.ndarray) -> bool:
    """Parse one body into out[0:10] (ts, cts, depth, u, seq, sym_p, sym_n, b_p, b_n, a_p, a_n)."""
    if p + 3 > end or buf[p] != 0x94:
        return False
    ok, sp, sn = _symbol(buf, p + 1, end)
    if not ok:
        return False
    q = sp + sn
    ok, ts, q = _int(buf, q, end)
    if not ok:
        return False
    ok, cts, q = _int(buf, q, end)
    if not ok or q >= end or buf[q] != 0x85:
        return False
    q += 1
    if q + 6 > end or not _key(buf, q, keys, 0, 6):
        return False
    ok, depth, q = _int(buf, q + 6, end)
    if not ok or q + 2 > end or not _key(buf, q, keys, 6, 8):
        return False
    ok, u, q = _int(buf, q + 2, end)
    if not ok or q + 4 > end or not _key(buf, q, keys, 8, 12):
        return False
    ok, xs, q = _int(buf, q + 4, end)
    if not ok:
        return False
    if q + 2 > end or not _key(buf, q, keys, 12, 14):
        return False
    ok, bp, bn, q = _levels(buf, q + 2, end)
    if not ok or q + 2 > end or not _key(buf, q, keys, 14, 16):
        return False
    ok, ap, an, q = _levels(buf, q + 2, end)
    if not ok or q != end:
        return False
    out[0], out[1], out[2], out[3], out[4] = ts, cts, depth, u, xs
    out[5], out[6], out[7], out[8], out[9], out[10] = sp, sn, bp, bn, ap, an
    return True


@kernel
def parse_books(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, keys: np.ndarray,
                out: np.ndarray) -> np.ndarray:
    """Parse the bodies of frames at `starts` (offsets into buf); out[i] as in `_parse_one`; ok flags."""
    ok = np.zeros(len(starts), dtype=np.bool_)
    for i in range(len(starts)):
        p = starts[i] + FRAME_HEAD_SIZE
        ok[i] = _parse_one(buf, p, starts[i] + lengths[i], keys, out[i])
    return ok


@kernel
def gather_bytes(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The byte ranges buf[starts[i]:starts[i]+lengths[i]] one after another."""
    total = 0
    for i in range(len(starts)):
        total += lengths[i]
    out = np.empty(total, dtype=np.uint8)
    q = 0
    for i in range(len(starts)):
        out[q:q + lengths[i]] = buf[starts[i]:starts[i] + lengths[i]]
        q += lengths[i]
    return out


@kernel
def gather_levels(buf: np.ndarray, data_p: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (int32) and flat price and size arrays of the (n, 2) float64 level blocks at data_p."""
    offsets = np.zeros(len(n) + 1, dtype=np.int32)
    for i in range(len(n)):
        offsets[i + 1] = offsets[i] + n[i]
    px = np.empty(offsets[-1], dtype=np.float64)
    sz = np.empty(offsets[-1], dtype=np.float64)
    flat = np.empty(2 * offsets[-1], dtype=np.float64)
    raw = flat.view(np.uint8)
    q = 0
    for i in range(len(n)):
        m = 16 * n[i]
        raw[q:q + m] = buf[data_p[i]:data_p[i] + m]
        q += m
    for j in range(offsets[-1]):
        px[j] = flat[2 * j]
        sz[j] = flat[2 * j + 1]
    return offsets, px, sz


# -- encoding back -------------------------------------------------------------------------------

@kernel
def _int_size(v: int) -> int:
    if 0 <= v < 128 or -32 <= v < 0:
        return 1
    if v >= 0:
        return 2 if v < 256 else 3 if v < 65536 else 5 if v < 4294967296 else 9
    return 2 if v >= -128 else 3 if v >= -32768 else 5 if v >= -2147483648 else 9


@kernel
def _put_be(out: np.ndarray, q: int, v: int, n: int) -> None:
    for i in range(n):
        out[q + n - 1 - i] = (v >> (8 * i)) & 0xFF


@kernel
def _put_int(out: np.ndarray, q: int, v: int) -> int:
    n = _int_size(v)
    if n == 1:
        out[q] = v & 0xFF
        return q + 1
    if v >= 0:
        out[q] = 0xCC if n == 2 else 0xCD if n == 3 else 0xCE if n == 5 else 0xCF
    else:
        out[q] = 0xD0 if n == 2 else 0xD1 if n == 3 else 0xD2 if n == 5 else 0xD3
    _put_be(out, q + 1, v, n - 1)
    return q + n


@kernel
def _ext_head_size(n: int) -> int:
    length = 21 + 16 * n
    return 3 if length < 256 else 4 if length < 65536 else 6


@kernel
def put_ext_head(out: np.ndarray, q: int, length: int) -> int:
    """The msgpack ext header for `length` data bytes (fixext, ext 8/16/32) at `q`; return the next position."""
    if length == 1 or length == 2 or length == 4 or length == 8 or length == 16:
        out[q] = 0xD4 + (0 if length == 1 else 1 if length == 2 else 2 if length == 4 else 3 if length == 8 else 4)
        return q + 1
    if length < 256:
        out[q], out[q + 1] = 0xC7, length
        return q + 2
    if length < 65536:
        out[q] = 0xC8
        _put_be(out, q + 1, length, 2)
        return q + 3
    out[q] = 0xC9
    _put_be(out, q + 1, length, 4)
    return q + 5


@kernel
def _put_levels(out: np.ndarray, q: int, px: np.ndarray, sz: np.ndarray, lo: int, hi: int) -> int:
    n = hi - lo
    q = put_ext_head(out, q, 21 + 16 * n)
    out[q] = 1
    out[q + 1], out[q + 2], out[q + 3], out[q + 4], out[q + 5] = 2, 3, _F8[0], _F8[1], _F8[2]
    q += 6
    for i in range(8):
        out[q + i] = (n >> (8 * i)) & 0xFF
        out[q + 8 + i] = (2 >> (8 * i)) & 0xFF
    q += 16
    pb, sb = px.view(np.uint8), sz.view(np.uint8)
    for j in range(n):
        k = 8 * (lo + j)
        for b in range(8):
            out[q + b] = pb[k + b]
            out[q + 8 + b] = sb[k + b]
        q += 16
    return q


@kernel
def encode_books(seq: np.ndarray, recv: np.ndarray, kind: int, ts: np.ndarray, cts: np.ndarray,
                 depth: np.ndarray, u: np.ndarray, xs: np.ndarray, sym: np.ndarray,
                 b_off: np.ndarray, b_px: np.ndarray, b_sz: np.ndarray, a_off: np.ndarray, a_px: np.ndarray,
                 a_sz: np.ndarray, keys: np.ndarray, crc_table: np.ndarray) -> np.ndarray:
    """The journal frames of book rows (all of one symbol `sym`, bytes), one after another."""
    n = len(seq)
    sn = len(sym)
    sym_head = 1 if sn < 32 else 2
    total = 0
    for i in range(n):
        body = (1 + sym_head + sn + _int_size(ts[i]) + _int_size(cts[i]) + 1 + 6 + _int_size(depth[i]) + 2
                + _int_size(u[i]) + 4 + _int_size(xs[i]) + 2 + _ext_head_size(b_off[i + 1] - b_off[i])
                + 21 + 16 * (b_off[i + 1] - b_off[i]) + 2 + _ext_head_size(a_off[i + 1] - a_off[i])
                + 21 + 16 * (a_off[i + 1] - a_off[i]))
        total += FRAME_HEAD_SIZE + body
    out = np.empty(total, dtype=np.uint8)
    q = 0
    for i in range(n):
        start = q
        p = q + FRAME_HEAD_SIZE
        out[p] = 0x94
        p += 1
        if sn < 32:
            out[p] = 0xA0 + sn
            p += 1
        else:
            out[p], out[p + 1] = 0xD9, sn
            p += 2
        out[p:p + sn] = sym
        p += sn
        p = _put_int(out, p, ts[i])
        p = _put_int(out, p, cts[i])
        out[p] = 0x85
        p += 1
        out[p:p + 6] = keys[0:6]
        p = _put_int(out, p + 6, depth[i])
        out[p:p + 2] = keys[6:8]
        p = _put_int(out, p + 2, u[i])
        out[p:p + 4] = keys[8:12]
        p = _put_int(out, p + 4, xs[i])
        out[p:p + 2] = keys[12:14]
        p = _put_levels(out, p + 2, b_px, b_sz, b_off[i], b_off[i + 1])
        out[p:p + 2] = keys[14:16]
        p = _put_levels(out, p + 2, a_px, a_sz, a_off[i], a_off[i + 1])
        length = p - start - 4
        for k in range(4):
            out[start + k] = (length >> (8 * k)) & 0xFF
        s, r = seq[i], recv[i]
        for k in range(8):
            out[start + 8 + k] = (s >> (8 * k)) & 0xFF
            out[start + 16 + k] = (r >> (8 * k)) & 0xFF
        out[start + 24], out[start + 25], out[start + 26], out[start + 27] = kind & 0xFF, (kind >> 8) & 0xFF, 0, 0
        c = crc32_kernel(out, start + 8, p, 0, crc_table)
        for k in range(4):
            out[start + 4 + k] = (c >> (8 * k)) & 0xFF
        q = p
    return out



@kernel
def symbol_keys(buf: np.ndarray, sp: np.ndarray, sn: np.ndarray) -> np.ndarray:
    """One row per frame: its symbol bytes zero-padded, then the length (rows compare equal iff symbols do)."""
    out = np.zeros((len(sp), SYM_MAX + 1), dtype=np.uint8)
    for i in range(len(sp)):
        out[i, :sn[i]] = buf[sp[i]:sp[i] + sn[i]]
        out[i, SYM_MAX] = sn[i]
    return out


# -- Python side: a chunk's book frames as partition tables, and book rows back to frames ---------

_KIND_TABLE = {1: "raw_orderbook_snapshots", 2: "raw_orderbook_deltas"}


class ChunkBooks(NamedTuple):
    """The book frames of a chunk the fast path took: parsed columns and their partitions."""

    taken: np.ndarray  #: bool per selected frame: parsed here (the rest goes the decode path)
    pos: np.ndarray  #: positions (into the selection) of the parsed frames
    cols: np.ndarray  #: (len(pos), 11) parsed values, see `_parse_one`
    parts: dict[tuple[str, str, str], np.ndarray]  #: partition -> rows of pos/cols, ascending


def fast_partitions(buf: np.ndarray, frames: np.ndarray, sp: np.ndarray, sn: np.ndarray, kinds: np.ndarray,
                    recv: np.ndarray, tables: dict[int, str]) -> tuple[np.ndarray, dict[tuple[str, str, str], np.ndarray]]:
    """Which parsed frames have a usable symbol, and their (table, date, symbol) partitions.

    `frames` are positions into the selection of the frames parsed (symbol at sp/sn in buf);
    returns a keep mask over them and, per partition, the kept rows (indices into `frames`), ascending.
    """
    from journal.store.layout import NS_PER_DAY, date_of
    from journal.store.tables import symbol_ok

    keys = symbol_keys(buf, sp, sn)
    uniq, inv = np.unique(keys.view(np.dtype((np.void, SYM_MAX + 1))).ravel(), return_inverse=True)
    inv = inv.ravel()
    names, valid = [], np.zeros(len(uniq), dtype=bool)
    for i, u in enumerate(uniq):
        raw = bytes(u)
        try:
            name = raw[:raw[-1]].decode("utf-8")
        except UnicodeDecodeError:
            name = ""
        names.append(name)
        valid[i] = symbol_ok(name)
    keep = valid[inv]
    rows = np.flatnonzero(keep)
    kind, day, sym = kinds[frames[rows]].astype(np.int64), recv[frames[rows]] // NS_PER_DAY, inv[rows]
    order = np.lexsort((sym, day, kind))
    k_s, d_s, s_s = kind[order], day[order], sym[order]
    cut = np.flatnonzero((k_s[1:] != k_s[:-1]) | (d_s[1:] != d_s[:-1]) | (s_s[1:] != s_s[:-1])) + 1
    parts = {}
    for lo, hi in zip(np.r_[0, cut].tolist(), np.r_[cut, len(order)].tolist(), strict=True):
        if hi > lo:
            key = (tables[int(k_s[lo])], date_of(int(d_s[lo]) * NS_PER_DAY), names[int(s_s[lo])])
            parts[key] = np.sort(rows[order[lo:hi]])
    return keep, parts


def chunk_books(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray, kinds: np.ndarray,
                recv: np.ndarray) -> ChunkBooks:
    """Parse the book frames among the selected frames of a chunk; partition those that fit."""
    taken = np.zeros(len(starts), dtype=bool)
    book = np.flatnonzero((kinds == 1) | (kinds == 2))
    cols = np.zeros((len(book), 11), dtype=np.int64)
    if not len(book):
        return ChunkBooks(taken, book, cols, {})
    ok = parse_books(buf, starts[book], lengths[book], KEYS, cols)
    ok &= (cols[:, 2] >= -(1 << 31)) & (cols[:, 2] < (1 << 31))
    good = np.flatnonzero(ok)
    keep, parts = fast_partitions(buf, book[good], cols[good, 5], cols[good, 6], kinds, recv, _KIND_TABLE)
    taken[book[good[keep]]] = True
    return ChunkBooks(taken, book[good], cols[good], parts)


def book_table(table: str, buf: np.ndarray, cols: np.ndarray, seq: np.ndarray, recv: np.ndarray) -> pa.Table:
    """The Arrow table of parsed book frames (rows in the given order)."""
    from journal.store.tables import SCHEMAS

    bo, bpx, bsz = gather_levels(buf, np.ascontiguousarray(cols[:, 7]), np.ascontiguousarray(cols[:, 8]))
    ao, apx, asz = gather_levels(buf, np.ascontiguousarray(cols[:, 9]), np.ascontiguousarray(cols[:, 10]))
    r = pa.array(recv)
    n = len(seq)
    boff, aoff = pa.array(bo), pa.array(ao)
    arrays = [pa.array(seq), r, r.view(pa.timestamp("ns", tz="UTC")), pa.array(cols[:, 0]), pa.array(cols[:, 1]),
              pa.array(cols[:, 2].astype(np.int32)), pa.array(cols[:, 3]), pa.array(cols[:, 4]),
              pa.ListArray.from_arrays(boff, pa.array(bpx)), pa.ListArray.from_arrays(boff, pa.array(bsz)),
              pa.ListArray.from_arrays(aoff, pa.array(apx)), pa.ListArray.from_arrays(aoff, pa.array(asz)),
              pa.repeat(pa.scalar("", pa.string()), n), pa.nulls(n, pa.binary())]
    return pa.Table.from_arrays(arrays, schema=SCHEMAS[table])


def _i64(t: pa.Table, name: str) -> np.ndarray:
    col = t.column(name)
    return np.ascontiguousarray((col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)).to_numpy(),
                                dtype=np.int64)


def book_frames(table: pa.Table, kind: int, symbol: str) -> list[bytes]:
    """The journal frames of a book table's rows, in row order (canonical rows encoded here, others via records)."""
    from journal.codec import encode
    from journal.scan import CRC_TABLE
    from journal.store.tables import flat_list, table_to_records

    src = table.column("src").fill_null("")
    canon = (pc.equal(src, "").to_numpy(zero_copy_only=False)
             & table.column("extra").is_null().to_numpy(zero_copy_only=False))
    sym = np.frombuffer(symbol.encode(), dtype=np.uint8)
    out: list[bytes] = []
    bounds = np.flatnonzero(np.diff(canon.astype(np.int8))) + 1
    for lo, hi in zip(np.r_[0, bounds].tolist(), np.r_[bounds, len(canon)].tolist(), strict=True):
        part = table.slice(lo, hi - lo)
        if not canon[lo] or len(sym) == 0 or len(sym) > SYM_MAX:
            out += [encode(r) for r in table_to_records(
                "raw_orderbook_snapshots" if kind == 1 else "raw_orderbook_deltas", part, symbol)]
            continue
        bo, bpx = flat_list(part.column("bid_price"))
        _, bsz = flat_list(part.column("bid_size"))
        ao, apx = flat_list(part.column("ask_price"))
        _, asz = flat_list(part.column("ask_size"))
        out.append(encode_books(_i64(part, "seq"), _i64(part, "recv_ns"), kind, _i64(part, "ts"), _i64(part, "cts"),
                                _i64(part, "depth"), _i64(part, "u"), _i64(part, "cross_seq"), sym, bo, bpx, bsz,
                                ao, apx, asz, KEYS, CRC_TABLE).tobytes())
    return out
