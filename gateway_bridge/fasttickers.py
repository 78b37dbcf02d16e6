"""One compiled pass over a batch of tickers frames: the checks the decoder makes, and the journal body.

A TICKER payload is Bybit's ``data`` object as sent (strings), so Python has to build that dict
anyway — `orjson.loads` of the ``data`` span does it. What this pass saves is the Python-level
checking and the msgpack packing: for a frame in the plain form (compact JSON, ``topic`` before
``data``, ASCII keys and string values without escapes, every key once), it checks what
`Decoder._ticker` checks — ``type`` snapshot|delta, ``data.symbol`` is the topic's symbol, every value
a string, the numeric fields of `decoder.TICKER_NUMBERS` plain decimals (the short form the general
path accepts with one regex), ``nextFundingTime`` digits — and writes the record's body
(`journal.packed`). Anything else gets a non-zero status and goes through the general decoder.
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
    NINE,
    TOP_CTS,
    TOP_DATA,
    TOP_OTHER,
    TOP_TOPIC,
    TOP_TS,
    TOP_TYPE,
    ZERO,
    ascii_string_end,
    equals,
    frames_buffer,
    member_end,
    member_key,
    skip_scalar,
    top_key,
    uint,
)
from journal.packed import UINT_MAX_BYTES, put_str, put_uint

FIELDS = ("status", "snapshot", "ts", "cts", "topic_start", "topic_end", "data_start", "data_end", "body_start",
          "body_end", "sym_start", "sym_end", "type_start", "type_end")
(ST, SNAP, TS, CTS, TOPIC0, TOPIC1, DATA0, DATA1, BODY0, BODY1, SYM0, SYM1, TYPE0, TYPE1) = range(len(FIELDS))
#: The columns `scan` hands to Python.
PUBLIC = SYM0
OK, SLOW = 0, 1
#: Most fields a ticker may have and still take this path (a snapshot has ~27).
MAX_FIELDS = 64

K_TOPIC, K_TYPE, K_TS, K_CTS, K_DATA, K_OTHER = TOP_TOPIC, TOP_TYPE, TOP_TS, TOP_CTS, TOP_DATA, TOP_OTHER
_PREFIX = np.frombuffer(b"tickers.", dtype=np.uint8)
_SNAPSHOT = np.frombuffer(b"snapshot", dtype=np.uint8)
_DELTA = np.frombuffer(b"delta", dtype=np.uint8)
_SYMBOL = np.frombuffer(b"symbol", dtype=np.uint8)
_NEXT_FUNDING = np.frombuffer(b"nextFundingTime", dtype=np.uint8)
_TYPE_KEY = np.frombuffer(b"\xa4type", dtype=np.uint8)
_FIELDS_KEY = np.frombuffer(b"\xa6fields", dtype=np.uint8)
_BODY_OVERHEAD = 64 + 2 * UINT_MAX_BYTES + 32


class Numbers(NamedTuple):
    """The numeric ticker fields as the kernel reads them: names joined, their starts, (signed, nonzero)."""

    names: np.ndarray
    starts: np.ndarray
    signed: np.ndarray
    nonzero: np.ndarray


def numbers_table(numbers: dict[str, tuple[bool, bool]]) -> Numbers:
    """Return the kernel's table of `numbers` (name -> (signed, nonzero), the decoder's TICKER_NUMBERS)."""
    names = [n.encode() for n in numbers]
    starts = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum([len(n) for n in names], out=starts[1:])
    return Numbers(np.frombuffer(b"".join(names), dtype=np.uint8).copy(), starts,
                   np.array([s for s, _ in numbers.values()], dtype=np.bool_),
                   np.array([z for _, z in numbers.values()], dtype=np.bool_))


@kernel
def _decimal_chars(buf: np.ndarray, start: int, end: int) -> int:
    """Return -1 if ``buf[start:end]`` holds anything but digits and dots, 1 if a digit is not 0, else 0."""
    out = 0
    for k in range(start, end):
        c = buf[k]
        if not (ZERO <= c <= NINE or c == DOT):
            return -1
        if ZERO < c <= NINE:
            out = 1
    return out


@kernel
def plain_decimal(buf: np.ndarray, start: int, end: int, signed: bool, nonzero: bool) -> bool:
    """Return True if ``buf[start:end]`` is a plain decimal: the decoder's `_PLAIN_DECIMAL` regex, compiled."""
    p = start
    if signed and p < end and buf[p] == 45:  # "-"
        p += 1
    if end - p < 1 or end - p > 16:
        return False
    chars = _decimal_chars(buf, p, end)
    if chars < 0 or (nonzero and chars == 0):
        return False
    q = p + 1
    if ZERO < buf[p] <= NINE:
        while q < end and ZERO <= buf[q] <= NINE:
            q += 1
        if q - p > 15:
            return False
    elif buf[p] != ZERO:
        return False
    if q == end:
        return True
    if buf[q] != DOT or q + 1 == end:
        return False
    for k in range(q + 1, end):
        if not ZERO <= buf[k] <= NINE:
            return False
    return True


@kernel
def _number_index(buf: np.ndarray, start: int, end: int, table: Numbers) -> int:
    """Return the index of the key ``buf[start:end]`` in the numeric-field table, or -1."""
    for i in range(len(table.starts) - 1):
        if equals(buf, start, end, table.names[table.starts[i]:table.starts[i + 1]]):
            return i
    return -1


@kernel
def _field(buf: np.ndarray, k0: int, k1: int, v0: int, v1: int, row: np.ndarray, table: Numbers) -> bool:
    """Check one ``data`` member (key and value spans, no quotes) as `Decoder._ticker` would."""
    if equals(buf, k0, k1, _SYMBOL):
        return equals(buf, v0, v1, buf[row[SYM0]:row[SYM1]])
    if v0 == v1:
        return True  # an empty value is not checked
    if equals(buf, k0, k1, _NEXT_FUNDING):
        return _all_digits(buf, v0, v1)
    i = _number_index(buf, k0, k1, table)
    return i < 0 or plain_decimal(buf, v0, v1, table.signed[i], table.nonzero[i])


@kernel
def _all_digits(buf: np.ndarray, start: int, end: int) -> bool:
    """Return True for 1..18 digits (leading zeros allowed, as the decoder's ``[0-9]{1,18}``)."""
    if end - start < 1 or end - start > 18:
        return False
    for k in range(start, end):
        if not ZERO <= buf[k] <= NINE:
            return False
    return True


@kernel
def _data(buf: np.ndarray, pos: int, row: np.ndarray, spans: np.ndarray, table: Numbers) -> int:
    """Check the ``data`` object at `pos`, keeping its members' spans in `spans`; return the next pos or -1."""
    end = len(buf)
    if pos >= end or buf[pos] != LBRACE or row[SYM1] == 0:  # the topic must come first
        return -1
    row[DATA0] = pos
    pos += 1
    n = 0
    has_symbol = False
    while True:
        close = member_key(buf, pos, True)
        if close < 0 or n >= MAX_FIELDS:
            return -1
        vclose = ascii_string_end(buf, close + 2)
        if vclose < 0:
            return -1
        k0, k1, v0, v1 = pos + 1, close, close + 3, vclose
        for j in range(n):  # a repeated key: orjson keeps the last, so leave it to the general path
            if equals(buf, k0, k1, buf[spans[j, 0]:spans[j, 1]]):
                return -1
        if not _field(buf, k0, k1, v0, v1, row, table):
            return -1
        has_symbol = has_symbol or equals(buf, k0, k1, _SYMBOL)
        spans[n, 0], spans[n, 1], spans[n, 2], spans[n, 3] = k0, k1, v0, v1
        n += 1
        nxt = member_end(buf, vclose + 1)
        if nxt == END:
            break
        if nxt < 0:
            return -1
        pos = nxt
    row[DATA1] = vclose + 2
    row[BODY1] = n  # the field count, until the body is written
    return vclose + 2 if has_symbol else -1


@kernel
def _frame(buf: np.ndarray, row: np.ndarray, spans: np.ndarray, table: Numbers) -> int:
    """Parse one whole frame `buf` into `row` and `spans`; return OK or SLOW."""
    end = len(buf)
    row[TS] = 0
    row[CTS] = 0
    row[SYM1] = 0
    if end == 0 or buf[0] != LBRACE:
        return SLOW
    pos = 1
    seen = 0
    while True:
        close = member_key(buf, pos, True)
        if close < 0:
            return SLOW
        k = top_key(buf, pos + 1, close)
        if k != K_OTHER:
            if seen & (1 << k):
                return SLOW
            seen |= 1 << k
        pos = _value(buf, close + 2, k, row, spans, table)
        nxt = member_end(buf, pos)
        if nxt == END:
            break
        if nxt < 0:
            return SLOW
        pos = nxt
    need = (1 << K_TOPIC) | (1 << K_TYPE) | (1 << K_DATA)
    return OK if seen & need == need and pos + 1 == end else SLOW


@kernel
def _value(buf: np.ndarray, pos: int, k: int, row: np.ndarray, spans: np.ndarray, table: Numbers) -> int:
    """Parse the value of top-level key `k` at `pos`; return the next pos or -1."""
    if k == K_DATA:
        return _data(buf, pos, row, spans, table)
    if k == K_TS or k == K_CTS:
        return uint(buf, pos, row, TS if k == K_TS else CTS)
    if k == K_OTHER:
        return skip_scalar(buf, pos)
    close = ascii_string_end(buf, pos)
    if close < 0:
        return -1
    if k == K_TYPE:
        row[TYPE0], row[TYPE1] = pos + 1, close
        if equals(buf, pos + 1, close, _SNAPSHOT):
            row[SNAP] = 1
        elif equals(buf, pos + 1, close, _DELTA):
            row[SNAP] = 0
        else:
            return -1
        return close + 1
    n = len(_PREFIX)
    if close - pos - 1 <= n or not equals(buf, pos + 1, pos + 1 + n, _PREFIX):
        return -1
    row[TOPIC0], row[TOPIC1] = pos + 1, close
    row[SYM0], row[SYM1] = pos + 1 + n, close
    return close + 1


@kernel
def _body(buf: np.ndarray, row: np.ndarray, spans: np.ndarray, out: np.ndarray, pos: int) -> int:
    """Write ``[symbol, ts, cts, {"type": type, "fields": {key: value, …}}]`` at `pos`; return the end."""
    n = row[BODY1]
    out[pos] = 0x94
    pos = put_str(out, pos + 1, buf, row[SYM0], row[SYM1])
    pos = put_uint(out, pos, row[TS])
    pos = put_uint(out, pos, row[CTS])
    out[pos] = 0x82
    out[pos + 1:pos + 6] = _TYPE_KEY
    pos = put_str(out, pos + 6, buf, row[TYPE0], row[TYPE1])
    out[pos:pos + 7] = _FIELDS_KEY
    pos += 7
    if n < 16:
        out[pos] = 0x80 | n
        pos += 1
    else:  # map16 (n <= MAX_FIELDS)
        out[pos] = 0xDE
        out[pos + 1] = (n >> 8) & 0xFF
        out[pos + 2] = n & 0xFF
        pos += 3
    for j in range(n):
        pos = put_str(out, pos, buf, spans[j, 0], spans[j, 1])
        pos = put_str(out, pos, buf, spans[j, 2], spans[j, 3])
    return pos


@kernel
def scan_tickers(buf: np.ndarray, starts: np.ndarray, rows: np.ndarray, table: Numbers, out: np.ndarray) -> None:
    """Scan frames ``buf[starts[i]:starts[i+1]]`` into ``rows[i]`` (see `FIELDS`) and `out`."""
    spans = np.empty((MAX_FIELDS, 4), dtype=np.int64)
    at = 0
    for i in range(len(starts) - 1):
        row = rows[i]
        frame = buf[starts[i]:starts[i + 1]]
        status = _frame(frame, row, spans, table)
        # A member costs at most 10 body bytes of headers against 6 of JSON quotes and separators.
        if status == OK and at + _BODY_OVERHEAD + len(frame) + 4 * row[BODY1] > len(out):
            status = SLOW
        if status == OK:
            row[BODY0] = at
            at = _body(frame, row, spans, out, at)
            row[BODY1] = at
            for col in (TOPIC0, TOPIC1, DATA0, DATA1, SYM0, SYM1):
                row[col] += starts[i]
        row[ST] = status


class Scan(NamedTuple):
    """What `scan` gives back: the batch bytes, the first `PUBLIC` `FIELDS` per frame, the bodies."""

    buf: bytes
    rows: list[list[int]]
    bodies: memoryview


def scan(payloads: Sequence[bytes], table: Numbers) -> Scan:
    """Run `scan_tickers` over `payloads` (one call for the whole batch)."""
    buf, u8, starts = frames_buffer(payloads)
    rows = np.empty((len(payloads), len(FIELDS)), dtype=np.int64)
    out = np.empty(len(buf) + len(payloads) * (_BODY_OVERHEAD + 4 * MAX_FIELDS), dtype=np.uint8)
    scan_tickers(u8, starts, rows, table, out)
    return Scan(buf, rows[:, :PUBLIC].tolist(), memoryview(out))
