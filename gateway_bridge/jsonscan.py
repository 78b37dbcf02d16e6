"""Compiled JSON token readers over uint8 arrays, for the fast frame scanners (`fastbook`, `fasttrades`).

Each reader accepts only the plain form of its token and returns -1 (or False) for anything else,
so a scanner can hand the frame to the general decoder instead of guessing: strings without
escapes or control characters, non-negative ints below 10**18 without a leading zero or a
fraction, and JSON scalars to skip.
"""

from __future__ import annotations

import numpy as np

from engine.jit import inline_kernel

QUOTE, COLON, COMMA, LBRACE, RBRACE, LBRACKET, RBRACKET, BACKSLASH, DOT, ZERO, NINE = (
    ord(c) for c in '":,{}[]\\.09')


@inline_kernel
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


@inline_kernel
def equals(buf: np.ndarray, start: int, end: int, word: np.ndarray) -> bool:
    """Return True if ``buf[start:end]`` is `word`."""
    if end - start != len(word):
        return False
    for k in range(len(word)):
        if buf[start + k] != word[k]:
            return False
    return True


@inline_kernel
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


@inline_kernel
def uint(buf: np.ndarray, pos: int, row: np.ndarray, col: int) -> int:
    """Parse a JSON non-negative int below 10**18 into ``row[col]``; return the next pos or -1."""
    pos = digits(buf, pos, len(buf), row, col)
    if pos < 0 or pos >= len(buf):
        return -1
    c = buf[pos]
    return -1 if c == DOT or c == 101 or c == 69 else pos  # 1.0 or 1e5 is not an int


@inline_kernel
def skip_scalar(buf: np.ndarray, pos: int) -> int:
    """Skip a plain string, number, true, false or null at `pos`; return the next pos or -1 (objects, arrays)."""
    end = len(buf)
    if pos >= end:
        return -1
    c = buf[pos]
    if c == QUOTE:
        close = string_end(buf, pos)
        return -1 if close < 0 else close + 1
    if c == 116 or c == 102 or c == 110:  # true false null
        n = 4 if c != 102 else 5
        if pos + n > end:
            return -1
        if c == 116 and not (buf[pos + 1] == 114 and buf[pos + 2] == 117 and buf[pos + 3] == 101):
            return -1
        if c == 102 and not (buf[pos + 1] == 97 and buf[pos + 2] == 108 and buf[pos + 3] == 115
                             and buf[pos + 4] == 101):
            return -1
        if c == 110 and not (buf[pos + 1] == 117 and buf[pos + 2] == 108 and buf[pos + 3] == 108):
            return -1
        return pos + n
    start = pos
    if c == 45:  # "-"
        pos += 1
    while pos < end and (ZERO <= buf[pos] <= NINE or buf[pos] == DOT or buf[pos] == 101 or buf[pos] == 69
                         or buf[pos] == 43 or buf[pos] == 45):
        pos += 1
    return pos if pos > start + (1 if c == 45 else 0) else -1
