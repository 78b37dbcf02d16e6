"""One compiled pass over a batch of orderbook frames: JSON bytes -> level arrays, fields and journal body.

`scan_books` reads each frame's raw bytes once — no ``orjson.loads``, no re-serialisation — and,
for a frame in the plain form Bybit sends (compact JSON, the keys ``topic type ts data cts`` and
``data{s b a u seq}`` in any order, each at most once, no escapes, decimals in the exact form
`gateway_bridge.numbers` accepts), writes:

- its prices and sizes into one shared float64 (rows, 2) array (``mantissa / 10**k``: the same
  correctly rounded double ``float(text)`` gives, see `gateway_bridge.numbers`);
- its ints and spans into a row of `FIELDS`;
- its record's journal body (`journal.packed`), byte for byte what the codec would pack.

Anything else — whitespace, an unknown or repeated key, a null, an exotic number, a zero size in a
snapshot, a symbol that is not the topic's — gets a non-zero status and goes through the general
decoder, which names the reason or accepts the rare valid form. So the fast path decides nothing
on its own: it either agrees with the general path bit for bit (the differential tests prove it
on every recorded frame and on mutated ones) or hands the frame over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from engine.jit import kernel
from gateway_bridge.jsonscan import (
    DOT,
    END,
    LBRACE,
    TOP_CTS,
    TOP_DATA,
    TOP_OTHER,
    TOP_TOPIC,
    TOP_TS,
    TOP_TYPE,
    digits,
    equals,
    frames_buffer,
    member_end,
    member_key,
    string_end,
    top_key,
    uint,
)
from gateway_bridge.numbers import _scan_side
from journal.codec import EXT_NDARRAY
from journal.packed import LEVELS_HEAD, UINT_MAX_BYTES, put_levels, put_str, put_uint

#: Columns of the per-frame int64 row `scan_books` fills (spans are offsets into the batch buffer).
FIELDS = ("status", "snapshot", "ts", "cts", "u", "seq", "topic_start", "topic_end", "b_row", "nb", "a_row", "na",
          "body_start", "body_end", "depth", "sym_start", "sym_end")
(ST, SNAP, TS, CTS, U, SEQ, TOPIC0, TOPIC1, BROW, NB, AROW, NA, BODY0, BODY1, DEPTH, SYM0, SYM1) = range(len(FIELDS))
#: The columns `scan` hands to Python (the rest only serve the kernel).
PUBLIC = DEPTH
#: Statuses (anything but OK: take the general path).
OK, SLOW = 0, 1

# Key ids: top level, then data.
K_TOPIC, K_TYPE, K_TS, K_CTS, K_DATA = TOP_TOPIC, TOP_TYPE, TOP_TS, TOP_CTS, TOP_DATA
K_S, K_B, K_A, K_U, K_SEQ = range(TOP_OTHER + 1, TOP_OTHER + 6)
_ORDERBOOK = np.frombuffer(b"orderbook.", dtype=np.uint8)
_SNAPSHOT = np.frombuffer(b"snapshot", dtype=np.uint8)
_DELTA = np.frombuffer(b"delta", dtype=np.uint8)
_DEPTH_KEY = np.frombuffer(b"\xa5depth", dtype=np.uint8)
_SEQ_KEY = np.frombuffer(b"\xa3seq", dtype=np.uint8)
#: Body bytes besides the symbol and the level values: headers, five keys, six uints, two array heads.
_BODY_OVERHEAD = 64 + 6 * UINT_MAX_BYTES + 2 * (5 + LEVELS_HEAD)


@kernel
def _key(buf: np.ndarray, start: int, end: int, data: bool) -> int:
    """Return the id of the key ``buf[start:end]`` (top level or inside data), or -1."""
    n = end - start
    c = buf[start] if n > 0 else 0
    if data:
        if n == 1:
            return K_S if c == 115 else K_B if c == 98 else K_A if c == 97 else K_U if c == 117 else -1
        if n == 3 and c == 115 and buf[start + 1] == 101 and buf[start + 2] == 113:
            return K_SEQ
        return -1
    k = top_key(buf, start, end)
    return -1 if k == TOP_OTHER else k


@kernel
def _data(buf: np.ndarray, pos: int, row: np.ndarray, levels: np.ndarray, first: int) -> int:
    """Parse the ``data`` object at `pos`: symbol span, both sides (level rows from `first`), u, seq."""
    end = len(buf)
    if pos >= end or buf[pos] != LBRACE:
        return -1
    pos += 1
    seen = 0
    nrow = first
    while True:
        close = member_key(buf, pos, False)
        if close < 0:
            return -1
        k = _key(buf, pos + 1, close, True)
        if k < 0 or seen & (1 << k):
            return -1
        seen |= 1 << k
        pos = close + 2
        if k == K_S:
            close = string_end(buf, pos)
            if close < 0:
                return -1
            row[SYM0] = pos + 1
            row[SYM1] = close
            pos = close + 1
        elif k == K_B or k == K_A:
            start_row = nrow
            pos, nrow = _scan_side(buf, pos, levels, nrow, False)  # zero sizes: checked once the type is known
            row[BROW if k == K_B else AROW] = start_row
            row[NB if k == K_B else NA] = nrow - start_row
        else:
            pos = uint(buf, pos, row, U if k == K_U else SEQ)
        nxt = member_end(buf, pos)
        if nxt == END:
            break
        if nxt < 0:
            return -1
        pos = nxt
    need = (1 << K_S) | (1 << K_B) | (1 << K_A) | (1 << K_U)
    return pos + 1 if seen & need == need else -1


@kernel
def _frame(buf: np.ndarray, row: np.ndarray, levels: np.ndarray, first: int) -> int:
    """Parse one whole frame `buf` into `row` and `levels` (rows from `first`); return OK or SLOW."""
    end = len(buf)
    row[TS] = 0
    row[CTS] = 0
    row[SEQ] = 0
    if end == 0 or buf[0] != LBRACE:
        return SLOW
    pos = 1
    seen = 0
    while True:
        close = member_key(buf, pos, False)
        if close < 0:
            return SLOW
        k = _key(buf, pos + 1, close, False)
        if k < 0 or seen & (1 << k):
            return SLOW
        seen |= 1 << k
        pos = _top_value(buf, close + 2, k, row, levels, first)
        nxt = member_end(buf, pos)
        if nxt == END:
            break
        if nxt < 0:
            return SLOW
        pos = nxt
    need = (1 << K_TOPIC) | (1 << K_TYPE) | (1 << K_DATA)
    if seen & need != need or pos + 1 != end:
        return SLOW
    if row[SNAP] == 1:  # sizes were scanned as a delta's (0 allowed): a snapshot has none
        for r in range(first, first + row[NB] + row[NA]):
            if levels[r, 1] == 0.0:
                return SLOW
    return OK if _topic_symbol(buf, row) else SLOW


@kernel
def _top_value(buf: np.ndarray, pos: int, k: int, row: np.ndarray, levels: np.ndarray, first: int) -> int:
    """Parse the value of top-level key `k` at `pos` into `row` / `levels`; return the next pos or -1."""
    if k == K_DATA:
        return _data(buf, pos, row, levels, first)
    if k == K_TS or k == K_CTS:
        return uint(buf, pos, row, TS if k == K_TS else CTS)
    close = string_end(buf, pos)
    if close < 0:
        return -1
    if k == K_TOPIC:
        row[TOPIC0] = pos + 1
        row[TOPIC1] = close
    elif equals(buf, pos + 1, close, _SNAPSHOT):
        row[SNAP] = 1
    elif equals(buf, pos + 1, close, _DELTA):
        row[SNAP] = 0
    else:
        return -1
    return close + 1


@kernel
def _topic_symbol(buf: np.ndarray, row: np.ndarray) -> bool:
    """Check the topic is ``orderbook.<depth>.<data.s>`` and keep its depth."""
    t0, t1 = row[TOPIC0], row[TOPIC1]
    n = len(_ORDERBOOK)
    if t1 - t0 <= n or not equals(buf, t0, t0 + n, _ORDERBOOK):
        return False
    pos = digits(buf, t0 + n, t1, row, DEPTH)
    if pos < 0 or pos >= t1 or buf[pos] != DOT:
        return False
    return equals(buf, pos + 1, t1, buf[row[SYM0]:row[SYM1]])


@kernel
def _body(buf: np.ndarray, row: np.ndarray, levels: np.ndarray, out: np.ndarray, pos: int) -> int:
    """Write the record's msgpack body ``[symbol, ts, cts, {depth, u, seq, b, a}]`` at `pos`; return the end."""
    out[pos] = 0x94
    pos = put_str(out, pos + 1, buf, row[SYM0], row[SYM1])
    pos = put_uint(out, pos, row[TS])
    pos = put_uint(out, pos, row[CTS])
    out[pos] = 0x85
    out[pos + 1:pos + 7] = _DEPTH_KEY
    pos = put_uint(out, pos + 7, row[DEPTH])
    out[pos] = 0xA1
    out[pos + 1] = 117  # "u"
    pos = put_uint(out, pos + 2, row[U])
    out[pos:pos + 4] = _SEQ_KEY
    pos = put_uint(out, pos + 4, row[SEQ])
    out[pos] = 0xA1
    out[pos + 1] = 98  # "b"
    pos = put_levels(out, pos + 2, EXT_NDARRAY, levels, row[BROW], row[NB])
    out[pos] = 0xA1
    out[pos + 1] = 97  # "a"
    return put_levels(out, pos + 2, EXT_NDARRAY, levels, row[AROW], row[NA])


@kernel
def scan_books(buf: np.ndarray, starts: np.ndarray, rows: np.ndarray, levels: np.ndarray,
               out: np.ndarray) -> None:
    """Scan frames ``buf[starts[i]:starts[i+1]]`` into ``rows[i]`` (see `FIELDS`), `levels` and `out`."""
    first = 0
    at = 0
    for i in range(len(starts) - 1):
        row = rows[i]
        frame = buf[starts[i]:starts[i + 1]]  # a view: no scan can run into the next frame
        status = _frame(frame, row, levels, first)
        if status == OK and at + _BODY_OVERHEAD + (row[SYM1] - row[SYM0]) + 16 * (row[NB] + row[NA]) > len(out):
            status = SLOW
        if status == OK:
            row[BODY0] = at
            at = _body(frame, row, levels, out, at)
            row[BODY1] = at
            first += row[NB] + row[NA]
            for col in (TOPIC0, TOPIC1, SYM0, SYM1):
                row[col] += starts[i]
        row[ST] = status


class Scan(NamedTuple):
    """What `scan` gives back: the batch bytes, the first `PUBLIC` `FIELDS` per frame, the levels, the bodies."""

    buf: bytes
    rows: list[list[int]]
    levels: np.ndarray
    bodies: memoryview


def scan(payloads: Sequence[bytes]) -> Scan:
    """Run `scan_books` over `payloads` (one call for the whole batch)."""
    buf, u8, starts = frames_buffer(payloads)
    n = len(payloads)
    rows = np.empty((n, len(FIELDS)), dtype=np.int64)
    # A level takes at least 9 bytes of text (["1","1"]) and 16 of floats; a body adds a bounded head.
    levels = np.empty((len(buf) // 9 + 2, 2), dtype=np.float64)
    out = np.empty(2 * len(buf) + n * (_BODY_OVERHEAD + 64), dtype=np.uint8)
    scan_books(u8, starts, rows, levels, out)
    return Scan(buf, rows[:, :PUBLIC].tolist(), levels, memoryview(out))
