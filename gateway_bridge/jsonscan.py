"""Compiled JSON token readers over uint8 arrays, for the fast frame scanners (`fastbook`, `fasttrades`, `fasttickers`).

Each reader accepts only the plain form of its token and returns -1 (or False) for anything else,
so a scanner can hand the frame to the general decoder instead of guessing: strings without
escapes or control characters, non-negative ints below 10**18 without a leading zero or a
fraction, and JSON scalars to skip.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.jit import kernel

#: What `top_key` returns for a Bybit frame's top-level keys (TOP_OTHER: any other key).
TOP_TOPIC, TOP_TYPE, TOP_TS, TOP_CTS, TOP_DATA, TOP_OTHER = range(6)
#: What `member_end` returns at the closing brace of an object.
END = -2
QUOTE, COLON, COMMA, LBRACE, RBRACE, LBRACKET, RBRACKET, BACKSLASH, DOT, ZERO, NINE = (
    ord(c) for c in '":,{}[]\\.09')


@kernel
def string_end(buf: np.ndarray, pos: int) -> int:
    """Return the index of the closing quote of a string opened at `pos`, or -1 (escape, control)."""
    end = len(buf)
    if pos >= end or buf[pos] != QUOTE:
        return -1
    pos += 1
    while pos < end:
        c = buf[pos]
        if c == QUOTE:
            return pos
        if c == BACKSLASH or c < 0x20:
            return -1
        pos += 1
    return -1


@kernel
def equals(buf: np.ndarray, start: int, end: int, word: np.ndarray) -> bool:
    """Return True if ``buf[start:end]`` is `word`."""
    if end - start != len(word):
        return False
    for k in range(len(word)):
        if buf[start + k] != word[k]:
            return False
    return True


@kernel
def digits(buf: np.ndarray, pos: int, end: int, row: np.ndarray, col: int) -> int:
    """Parse 1..18 digits without a leading zero at `pos` into ``row[col]``; return the next pos or -1."""
    start = pos
    value = 0
    while pos < end and ZERO <= buf[pos] <= NINE:
        value = value * 10 + (int(buf[pos]) - ZERO)
        pos += 1
    n = pos - start
    if n == 0 or n > 18 or (n > 1 and buf[start] == ZERO):
        return -1
    row[col] = value
    return pos


@kernel
def uint(buf: np.ndarray, pos: int, row: np.ndarray, col: int) -> int:
    """Parse a JSON non-negative int below 10**18 into ``row[col]``; return the next pos or -1."""
    pos = digits(buf, pos, len(buf), row, col)
    if pos < 0 or pos >= len(buf):
        return -1
    c = buf[pos]
    return -1 if c == DOT or c == 101 or c == 69 else pos  # 1.0 or 1e5 is not an int


@kernel
def ascii_string_end(buf: np.ndarray, pos: int) -> int:
    """`string_end` for a string of ASCII characters only (no UTF-8 left to validate); -1 otherwise."""
    close = string_end(buf, pos)
    if close < 0:
        return -1
    for k in range(pos + 1, close):
        if buf[k] >= 0x80:
            return -1
    return close


@kernel
def _run_of_digits(buf: np.ndarray, pos: int) -> int:
    """Return the end of the run of digits at `pos` (`pos` itself if there is none)."""
    while pos < len(buf) and ZERO <= buf[pos] <= NINE:
        pos += 1
    return pos


@kernel
def skip_number(buf: np.ndarray, pos: int) -> int:
    """Skip a JSON number ``-?(0|[1-9][0-9]{0,17})(\\.[0-9]+)?`` at `pos`; next pos or -1. Exponents and
    longer integer parts are refused: orjson rejects what overflows a double, and so must the caller."""
    end = len(buf)
    if pos < end and buf[pos] == 45:  # "-"
        pos += 1
    start = pos
    pos = _run_of_digits(buf, pos)
    if pos == start or pos - start > 18 or (buf[start] == ZERO and pos > start + 1):
        return -1
    if pos < end and buf[pos] == DOT:
        frac = pos + 1
        pos = _run_of_digits(buf, frac)
        if pos == frac:
            return -1
    if pos < end and (buf[pos] == 101 or buf[pos] == 69):  # an exponent: let the general path judge it
        return -1
    return pos


@kernel
def _word(buf: np.ndarray, pos: int, word: np.ndarray) -> int:
    """Return the pos after `word` at `pos`, or -1."""
    n = len(word)
    return pos + n if pos + n <= len(buf) and equals(buf, pos, pos + n, word) else -1


_TRUE = np.frombuffer(b"true", dtype=np.uint8)
_FALSE = np.frombuffer(b"false", dtype=np.uint8)
_NULL = np.frombuffer(b"null", dtype=np.uint8)


@kernel
def skip_scalar(buf: np.ndarray, pos: int) -> int:
    """Skip an ASCII string, a number, true, false or null at `pos`; return the next pos or -1 (objects,
    arrays, anything orjson might refuse)."""
    if pos >= len(buf):
        return -1
    c = buf[pos]
    if c == QUOTE:
        close = ascii_string_end(buf, pos)
        return -1 if close < 0 else close + 1
    if c == 116:
        return _word(buf, pos, _TRUE)
    if c == 102:
        return _word(buf, pos, _FALSE)
    if c == 110:
        return _word(buf, pos, _NULL)
    return skip_number(buf, pos)


@kernel
def member_key(buf: np.ndarray, pos: int, ascii_only: bool) -> int:
    """Return the closing quote of the object member's key at `pos` when a colon follows it, else -1."""
    close = ascii_string_end(buf, pos) if ascii_only else string_end(buf, pos)
    if close < 0 or close + 1 >= len(buf) or buf[close + 1] != COLON:
        return -1
    return close


@kernel
def member_end(buf: np.ndarray, pos: int) -> int:
    """After a member's value (at `pos`, -1 if it failed): the next member's pos, `END` at ``}``, or -1."""
    if pos < 0 or pos >= len(buf):
        return -1
    if buf[pos] == COMMA:
        return pos + 1
    return END if buf[pos] == RBRACE else -1


def frames_buffer(payloads: Sequence[bytes]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """Join a batch's payloads for one compiled call: the bytes, a uint8 view and the n + 1 frame starts."""
    buf = b"".join(payloads)
    starts = np.zeros(len(payloads) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, payloads), np.int64, len(payloads)), out=starts[1:])
    return buf, np.frombuffer(buf, dtype=np.uint8), starts


@kernel
def top_key(buf: np.ndarray, start: int, end: int) -> int:
    """Return which of a frame's top-level keys ``buf[start:end]`` is: topic, type, ts, cts, data or other."""
    n = end - start
    c = buf[start] if n > 0 else 0
    if n == 2 and c == 116 and buf[start + 1] == 115:
        return TOP_TS
    if n == 3 and c == 99 and buf[start + 1] == 116 and buf[start + 2] == 115:
        return TOP_CTS
    if n == 4 and c == 116 and buf[start + 1] == 121 and buf[start + 2] == 112 and buf[start + 3] == 101:
        return TOP_TYPE
    if n == 4 and c == 100 and buf[start + 1] == 97 and buf[start + 2] == 116 and buf[start + 3] == 97:
        return TOP_DATA
    if (n == 5 and c == 116 and buf[start + 1] == 111 and buf[start + 2] == 112 and buf[start + 3] == 105
            and buf[start + 4] == 99):
        return TOP_TOPIC
    return TOP_OTHER
