"""One compiled pass over a batch of publicTrade frames: JSON bytes -> trade columns, ids and journal body.

The trades counterpart of `gateway_bridge.fastbook`, for frames in the plain form Bybit sends:
compact JSON, ``topic`` before ``data``, each trade an object with ``T s S v p i`` (and ``BT``;
other keys such as ``L``, ``RPI``, ``seq`` are skipped when they hold a plain scalar), ASCII ids,
decimals in the exact form `gateway_bridge.numbers` accepts. It fills, per batch, the columns the
TRADES payload holds (price, size, side, time, block-trade flag), the ids joined by NUL and each
record's journal body (`journal.packed`). Anything else gets a non-zero status and goes through the
general decoder, so the two agree bit for bit or the frame is handed over.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from engine.jit import kernel
from gateway_bridge.jsonscan import (
    COMMA,
    END,
    LBRACE,
    LBRACKET,
    RBRACKET,
    TOP_CTS,
    TOP_DATA,
    TOP_OTHER,
    TOP_TOPIC,
    TOP_TS,
    TOP_TYPE,
    ascii_string_end,
    equals,
    frames_buffer,
    member_end,
    member_key,
    skip_scalar,
    top_key,
    uint,
)
from gateway_bridge.numbers import _scan_decimal
from journal.codec import EXT_NDARRAY
from journal.packed import (
    UINT_MAX_BYTES,
    VECTOR_HEAD,
    put_array_head,
    put_str,
    put_uint,
    put_vector,
)

#: Columns of the per-frame int64 row `scan_trades` fills (spans are offsets into the batch buffer).
FIELDS = ("status", "ts", "cts", "topic_start", "topic_end", "row", "n", "ids_start", "ids_end", "any_bt",
          "body_start", "body_end", "sym_start", "sym_end")
(ST, TS, CTS, TOPIC0, TOPIC1, ROW, N, IDS0, IDS1, ANYBT, BODY0, BODY1, SYM0, SYM1) = range(len(FIELDS))
OK, SLOW = 0, 1

# Top-level keys, then trade keys.
K_TOPIC, K_TS, K_CTS, K_DATA = TOP_TOPIC, TOP_TS, TOP_CTS, TOP_DATA
K_T, K_SYM, K_SIDE, K_V, K_P, K_ID, K_BT, K_OTHER = range(TOP_OTHER + 1, TOP_OTHER + 9)
_PREFIX = np.frombuffer(b"publicTrade.", dtype=np.uint8)
_BUY = np.frombuffer(b"Buy", dtype=np.uint8)
_SELL = np.frombuffer(b"Sell", dtype=np.uint8)
_F8 = np.frombuffer(b"<f8", dtype=np.uint8)
_I1 = np.frombuffer(b"|i1", dtype=np.uint8)
_I8 = np.frombuffer(b"<i8", dtype=np.uint8)
_SIDE_KEY = np.frombuffer(b"side", dtype=np.uint8)
_TRUE = np.frombuffer(b"true", dtype=np.uint8)
_FALSE = np.frombuffer(b"false", dtype=np.uint8)
#: Body bytes of a frame besides its symbol and per-trade bytes: headers, six keys, two uints, four array heads.
_FRAME_OVERHEAD = 64 + 2 * UINT_MAX_BYTES + 4 * (5 + VECTOR_HEAD) + 2 * 5
#: Body bytes per trade besides its id: 8 + 8 + 1 + 8 column bytes, a bool, an id header.
_TRADE_BYTES = 25 + 1 + 5


@kernel
def _key(buf: np.ndarray, start: int, end: int, trade: bool) -> int:
    """Return the id of a key (top level or inside a trade); K_OTHER for any other key."""
    n = end - start
    c = buf[start] if n > 0 else 0
    if trade:
        if n == 1:
            return (K_T if c == 84 else K_SYM if c == 115 else K_SIDE if c == 83 else K_V if c == 118
                    else K_P if c == 112 else K_ID if c == 105 else K_OTHER)
        return K_BT if n == 2 and c == 66 and buf[start + 1] == 84 else K_OTHER
    k = top_key(buf, start, end)
    return K_OTHER if k == TOP_OTHER or k == TOP_TYPE else k  # "type" is not read for trades


@kernel
def _mark(seen: int, k: int) -> int:
    """Return the seen-keys mask with key `k` added, or -1 if it was seen before (other keys: not tracked)."""
    if k == K_OTHER:
        return seen
    return -1 if seen & (1 << k) else seen | (1 << k)


@kernel
def _bool(buf: np.ndarray, pos: int, out: np.ndarray, r: int) -> int:
    """Parse ``true`` / ``false`` at `pos` into ``out[r]`` (1 / 0); return the next pos or -1."""
    if equals(buf, pos, min(pos + 4, len(buf)), _TRUE):
        out[r] = 1
        return pos + 4
    if equals(buf, pos, min(pos + 5, len(buf)), _FALSE):
        out[r] = 0
        return pos + 5
    return -1


@kernel
def _trade(buf: np.ndarray, pos: int, row: np.ndarray, cols: tuple, r: int, ids: np.ndarray,
           at: int) -> tuple[int, int]:
    """Parse one trade object at `pos` into row `r` of `cols`, its id into `ids` at `at`; (next pos, next at)."""
    p, v, side, times, bt = cols
    end = len(buf)
    if pos >= end or buf[pos] != LBRACE:
        return -1, at
    pos += 1
    seen = 0
    bt[r] = 0
    while True:
        close = member_key(buf, pos, True)
        if close < 0:
            return -1, at
        k = _key(buf, pos + 1, close, True)
        seen = _mark(seen, k)
        if seen < 0:
            return -1, at
        pos = close + 2
        if k == K_T:
            pos = uint(buf, pos, times, r)
        elif k == K_V or k == K_P:
            pos = _scan_decimal(buf, pos, v if k == K_V else p, r, 0, True)
        elif k == K_BT:
            pos = _bool(buf, pos, bt, r)
            row[ANYBT] |= bt[r]
        elif k == K_OTHER:
            pos = skip_scalar(buf, pos)
        else:
            pos, at = _text(buf, pos, k, row, side, r, ids, at)
        nxt = member_end(buf, pos)
        if nxt == END:
            break
        if nxt < 0:
            return -1, at
        pos = nxt
    need = (1 << K_T) | (1 << K_SYM) | (1 << K_SIDE) | (1 << K_V) | (1 << K_P) | (1 << K_ID)
    return (pos + 1 if seen & need == need else -1), at


@kernel
def _text(buf: np.ndarray, pos: int, k: int, row: np.ndarray, side: np.ndarray, r: int, ids: np.ndarray,
          at: int) -> tuple[int, int]:
    """Parse a trade's ``s`` (must be the topic's symbol), ``S`` (Buy / Sell) or ``i`` (copied to `ids`)."""
    close = ascii_string_end(buf, pos)
    if close < 0:
        return -1, at
    if k == K_SYM:
        return (close + 1 if equals(buf, pos + 1, close, buf[row[SYM0]:row[SYM1]]) else -1), at
    if k == K_SIDE:
        side[r] = 1 if equals(buf, pos + 1, close, _BUY) else -1 if equals(buf, pos + 1, close, _SELL) else 0
        return (close + 1 if side[r] != 0 else -1), at
    if r > row[ROW]:  # NUL between two ids (JSON strings hold no NUL)
        ids[at] = 0
        at += 1
    ids[at:at + close - pos - 1] = buf[pos + 1:close]
    return close + 1, at + close - pos - 1


@kernel
def _data(buf: np.ndarray, pos: int, row: np.ndarray, cols: tuple, ids: np.ndarray) -> int:
    """Parse the ``data`` array of trades at `pos` (rows from ``row[ROW]``, ids from ``row[IDS0]``)."""
    end = len(buf)
    if pos >= end or buf[pos] != LBRACKET or row[SYM1] == 0:  # the topic must come first
        return -1
    pos += 1
    r = row[ROW]
    at = row[IDS0]
    if pos < end and buf[pos] == RBRACKET:
        pos += 1
    else:
        while True:
            if r >= len(cols[0]):
                return -1
            pos, at = _trade(buf, pos, row, cols, r, ids, at)
            r += 1
            if pos < 0 or pos >= end:
                return -1
            if buf[pos] == RBRACKET:
                pos += 1
                break
            if buf[pos] != COMMA:
                return -1
            pos += 1
    row[N] = r - row[ROW]
    row[IDS1] = at
    return pos


@kernel
def _frame(buf: np.ndarray, row: np.ndarray, cols: tuple, ids: np.ndarray) -> int:
    """Parse one whole frame `buf` into `row`, `cols` and `ids`; return OK or SLOW."""
    end = len(buf)
    row[TS] = 0
    row[CTS] = 0
    row[SYM1] = 0
    row[ANYBT] = 0
    if end == 0 or buf[0] != LBRACE:
        return SLOW
    pos = 1
    seen = 0
    while True:
        close = member_key(buf, pos, True)
        if close < 0:
            return SLOW
        k = _key(buf, pos + 1, close, False)
        seen = _mark(seen, k)
        if seen < 0:
            return SLOW
        pos = close + 2
        if k == K_TOPIC:
            pos = _topic(buf, pos, row)
        elif k == K_DATA:
            pos = _data(buf, pos, row, cols, ids)
        elif k == K_OTHER:
            pos = skip_scalar(buf, pos)
        else:
            pos = uint(buf, pos, row, TS if k == K_TS else CTS)
        nxt = member_end(buf, pos)
        if nxt == END:
            break
        if nxt < 0:
            return SLOW
        pos = nxt
    need = (1 << K_TOPIC) | (1 << K_DATA)
    return OK if seen & need == need and pos + 1 == end else SLOW


@kernel
def _topic(buf: np.ndarray, pos: int, row: np.ndarray) -> int:
    """Parse ``"publicTrade.<symbol>"`` at `pos`: keep the topic and symbol spans; next pos or -1."""
    close = ascii_string_end(buf, pos)
    n = len(_PREFIX)
    if close < 0 or close - pos - 1 <= n or not equals(buf, pos + 1, pos + 1 + n, _PREFIX):
        return -1
    row[TOPIC0] = pos + 1
    row[TOPIC1] = close
    row[SYM0] = pos + 1 + n
    row[SYM1] = close
    return close + 1


@kernel
def _body(buf: np.ndarray, row: np.ndarray, cols: tuple, ids: np.ndarray, out: np.ndarray, pos: int) -> int:
    """Write ``[symbol, ts, cts, {p, v, side, T, id, bt}]`` at `pos`; return the end."""
    p, v, side, times, bt = cols
    r, n = row[ROW], row[N]
    out[pos] = 0x94
    pos = put_str(out, pos + 1, buf, row[SYM0], row[SYM1])
    pos = put_uint(out, pos, row[TS])
    pos = put_uint(out, pos, row[CTS])
    out[pos] = 0x86
    out[pos + 1] = 0xA1
    out[pos + 2] = 112  # "p"
    pos = put_vector(out, pos + 3, EXT_NDARRAY, _F8, p.reshape(-1).view(np.uint8), r, n)
    out[pos] = 0xA1
    out[pos + 1] = 118  # "v"
    pos = put_vector(out, pos + 2, EXT_NDARRAY, _F8, v.reshape(-1).view(np.uint8), r, n)
    out[pos] = 0xA4
    out[pos + 1:pos + 5] = _SIDE_KEY
    pos = put_vector(out, pos + 5, EXT_NDARRAY, _I1, side.view(np.uint8), r, n)
    out[pos] = 0xA1
    out[pos + 1] = 84  # "T"
    pos = put_vector(out, pos + 2, EXT_NDARRAY, _I8, times.view(np.uint8), r, n)
    out[pos] = 0xA2
    out[pos + 1] = 105  # "id"
    out[pos + 2] = 100
    pos = put_array_head(out, pos + 3, n)
    start = row[IDS0]
    for k in range(row[IDS0], row[IDS1] + 1):
        if k == row[IDS1] or ids[k] == 0:
            if n:
                pos = put_str(out, pos, ids, start, k)
            start = k + 1
    out[pos] = 0xA2
    out[pos + 1] = 98  # "bt"
    out[pos + 2] = 116
    pos = put_array_head(out, pos + 3, n)
    for k in range(r, r + n):
        out[pos] = 0xC3 if bt[k] else 0xC2
        pos += 1
    return pos



@kernel
def scan_trades(buf: np.ndarray, starts: np.ndarray, rows: np.ndarray, cols: tuple, ids: np.ndarray,
                out: np.ndarray) -> int:
    """Scan frames ``buf[starts[i]:starts[i+1]]`` into ``rows[i]`` (see `FIELDS`), `cols`, `ids` and
    `out`; return how many id bytes were used."""
    first = 0
    id_at = 0
    at = 0
    for i in range(len(starts) - 1):
        row = rows[i]
        row[ROW] = first
        row[IDS0] = id_at
        frame = buf[starts[i]:starts[i + 1]]
        status = _frame(frame, row, cols, ids)
        need = _FRAME_OVERHEAD + (row[SYM1] - row[SYM0]) + row[N] * _TRADE_BYTES + (row[IDS1] - row[IDS0])
        if status == OK and at + need > len(out):
            status = SLOW
        if status == OK:
            row[BODY0] = at
            at = _body(frame, row, cols, ids, out, at)
            row[BODY1] = at
            first += row[N]
            id_at = row[IDS1]
            for col in (TOPIC0, TOPIC1, SYM0, SYM1):
                row[col] += starts[i]
        row[ST] = status
    return id_at


class Scan(NamedTuple):
    """What `scan` gives back: the batch bytes, rows, the five columns, the ids text, the bodies."""

    buf: bytes
    rows: list[list[int]]
    p: np.ndarray
    v: np.ndarray
    side: np.ndarray
    T: np.ndarray
    bt: np.ndarray
    ids: str
    bodies: memoryview


def scan(payloads: Sequence[bytes]) -> Scan:
    """Run `scan_trades` over `payloads` (one call for the whole batch)."""
    buf, u8, starts = frames_buffer(payloads)
    n = len(payloads)
    rows = np.empty((n, len(FIELDS)), dtype=np.int64)
    cap = len(buf) // 24 + 2  # a trade object takes at least ~40 bytes of text
    p, v = np.empty(cap, dtype=np.float64), np.empty(cap, dtype=np.float64)
    side, times, bt = np.empty(cap, dtype=np.int8), np.empty(cap, dtype=np.int64), np.empty(cap, dtype=np.int8)
    ids = np.empty(len(buf) + 1, dtype=np.uint8)
    out = np.empty(2 * len(buf) + n * (_FRAME_OVERHEAD + 64), dtype=np.uint8)
    cols = (p.reshape(cap, 1), v.reshape(cap, 1), side, times, bt)
    used = scan_trades(u8, starts, rows, cols, ids, out)
    return Scan(buf, rows.tolist(), p, v, side, times, bt, ids[:used].tobytes().decode("ascii"), memoryview(out))
