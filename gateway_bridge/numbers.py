"""Exact decimal-string -> float64 parsing for Bybit prices and sizes.

Bybit sends every price and size as a decimal string. A float64 reproduces a decimal exactly (the
float formatted to 15 significant digits gives the decimal back) when the decimal has at most 15
significant digits and lies in the normal float range, so only such strings are accepted; anything
else is rejected with a reason the decoder journals:

- ``not_a_number``  not a plain decimal (``"1e5"``, ``""``, ``"0x1"``, ``"00.5"``, non-ASCII digits, …)
- ``non_finite``    ``"nan"``, ``"inf"``, ``"Infinity"`` (any case/sign)
- ``negative``      a minus sign where only non-negative values make sense
- ``zero``          zero where it is meaningless (a price; a size outside a book delta)
- ``precision``     more than 15 significant digits, or outside the normal float64 range
- ``bad_level``     a book level that is not a ``[price, size]`` pair of strings

The grammar is JSON's without exponent: ``-?(0|[1-9][0-9]*)(\\.[0-9]+)?``.

Hot path: a book frame's two sides are serialised once with orjson and scanned by ONE compiled
kernel (`levels_kernel`) that checks structure, grammar, digit count and zero rules and computes
each value as ``mantissa / 10**k`` — both exact doubles, so the one IEEE division is correctly
rounded, i.e. identical to ``float(text)`` (Clinger's fast path). Trade columns use one compiled
regex and one ``orjson.loads``. Anything the fast paths do not accept goes through a per-value
Python pass that names the reason (or accepts rare valid forms, such as ``"0.0000000000000123"``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import orjson

from engine.jit import kernel

#: Most significant digits a decimal may have and still round-trip through float64 exactly.
MAX_SIGNIFICANT = 15
#: Smallest magnitude accepted (below the normal range floats lose digits).
MIN_MAGNITUDE = 1e-300

_DECIMAL = re.compile(r"(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?", re.ASCII)
_NON_FINITE = frozenset({"nan", "inf", "infinity"})

# Fast-path tokens inside orjson output: at most 16 chars (15 digits + dot) before the closing quote.
_W = r'(?=[0-9.]{1,16}")'
# An integer part is capped at 15 digits: 16 chars without a dot would be 16 significant digits.
_NONZERO = _W + r"(?:[1-9][0-9]{0,14}+(?:\.[0-9]++)?+|0\.0*+[1-9][0-9]*+)"
_ANY = _W + r"(?:0|[1-9][0-9]{0,14}+)(?:\.[0-9]++)?+"


_POSITIVE_COLUMN = re.compile(rf'\[(?:"{_NONZERO}"(?:,"{_NONZERO}")*+)?\]'.encode())
_EMPTY_LEVELS = np.empty((0, 2), dtype=np.float64)
_EMPTY_LEVELS.flags.writeable = False
#: Exact powers of ten (10**22 is the largest exactly representable one).
_POW10 = np.array([10.0 ** k for k in range(23)], dtype=np.float64)
_QUOTE, _COMMA, _OPEN, _CLOSE, _DOT, _ZERO, _NINE = (ord(c) for c in '",[].09')


class NumberError(ValueError):
    """A value that is not an exactly representable decimal; ``reason`` names why."""

    def __init__(self, reason: str, text: object) -> None:
        super().__init__(f"{reason}: {text!r}"[:200])
        self.reason = reason


def parse_decimal(text: object, *, signed: bool = False, nonzero: bool = False) -> float:
    """Return the float of a decimal string, raising NumberError unless it is exact and allowed."""
    if type(text) is not str:
        raise NumberError("not_a_number", text)
    m = _DECIMAL.fullmatch(text)
    if m is None:
        if text.strip().lstrip("+-").lower() in _NON_FINITE:
            raise NumberError("non_finite", text)
        raise NumberError("not_a_number", text)
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    digits = (whole + frac).strip("0")
    if sign and not signed:
        raise NumberError("negative", text)
    if not digits:
        if nonzero:
            raise NumberError("zero", text)
        return 0.0
    if len(digits) > MAX_SIGNIFICANT:
        raise NumberError("precision", text)
    value = float(text)
    if not MIN_MAGNITUDE <= abs(value) < float("inf"):
        raise NumberError("precision", text)
    return value


def parse_levels(bids: object, asks: object, *, snapshot: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return bids and asks as float64 (n, 2) arrays; sizes may be 0 only in deltas."""
    if type(bids) is not list or type(asks) is not list:
        raise NumberError("bad_level", "side is not a list")
    try:
        text = orjson.dumps((bids, asks))
    except TypeError:
        raise NumberError("bad_level", "unserialisable level") from None
    nb = len(bids)
    out = np.empty((nb + len(asks), 2), dtype=np.float64)
    if levels_kernel(text, out, nb, snapshot) != 0:  # bytes straight in: no np.frombuffer (~350 ns)
        return _levels_slow(bids, asks, snapshot)
    return out[:nb], out[nb:]


def parse_positive_column(texts: Sequence[object]) -> np.ndarray:
    """Return a float64 array of strictly positive decimal strings (trade prices and sizes)."""
    try:
        text = orjson.dumps(texts)
    except TypeError:
        raise NumberError("not_a_number", "unserialisable value") from None
    if _POSITIVE_COLUMN.fullmatch(text) is None:
        return np.array([parse_decimal(t, nonzero=True) for t in texts], dtype=np.float64)
    return np.array(orjson.loads(text.translate(None, b'"')), dtype=np.float64)


def _levels_slow(bids: object, asks: object, snapshot: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse levels value by value: name the first bad one, or accept forms the fast path skips."""
    return _side_slow(bids, snapshot), _side_slow(asks, snapshot)


def _side_slow(levels: object, snapshot: bool) -> np.ndarray:
    """Parse one book side value by value (raises NumberError naming the first bad value)."""
    if type(levels) is not list:
        raise NumberError("bad_level", levels)
    out = []
    for level in levels:
        if type(level) is not list or len(level) != 2:
            raise NumberError("bad_level", level)
        price, size = level
        out.append((parse_decimal(price, nonzero=True), parse_decimal(size, nonzero=snapshot)))
    if not out:
        return _EMPTY_LEVELS
    return np.array(out, dtype=np.float64)


# --- the compiled scanner ---------------------------------------------------------------------

@kernel
def _scan_decimal(buf: bytes | np.ndarray, pos: int, out: np.ndarray, row: int, col: int, nonzero: bool) -> int:
    """Parse ``"<decimal>"`` at `pos` into ``out[row, col]``; return the next pos, or -1 to go slow."""
    n = len(buf)
    if pos >= n or buf[pos] != _QUOTE:
        return -1
    pos += 1
    start = pos
    mantissa = 0
    significant = 0
    frac = -1  # digits after the dot; -1 before a dot
    while pos < n:
        c = buf[pos]
        if _ZERO <= c <= _NINE:
            if significant or c != _ZERO:
                significant += 1
                if significant > MAX_SIGNIFICANT:
                    return -1
            mantissa = mantissa * 10 + (int(c) - _ZERO)  # int(): no uint8 wrap-around without JIT
            if frac >= 0:
                frac += 1
        elif c == _DOT and frac < 0 and pos > start:
            frac = 0
        else:
            break
        pos += 1
    if pos >= n or buf[pos] != _QUOTE or pos == start or frac == 0 or frac > 22:
        return -1
    if buf[start] == _ZERO and pos > start + 1 and buf[start + 1] != _DOT:
        return -1  # leading zero
    if nonzero and mantissa == 0:
        return -1
    out[row, col] = mantissa / _POW10[max(frac, 0)]
    return pos + 1


@kernel
def _scan_side(buf: bytes | np.ndarray, pos: int, out: np.ndarray, row: int, snapshot: bool) -> tuple[int, int]:
    """Parse one side ``[["p","s"],…]`` at `pos` into `out` from `row`; return (next pos, next row), pos -1 to go slow."""
    n = len(buf)
    if pos >= n or buf[pos] != _OPEN:
        return -1, row
    pos += 1
    if pos < n and buf[pos] == _CLOSE:
        return pos + 1, row
    while True:
        if row >= out.shape[0] or pos >= n or buf[pos] != _OPEN:
            return -1, row
        pos = _scan_decimal(buf, pos + 1, out, row, 0, True)
        if pos < 0 or pos >= n or buf[pos] != _COMMA:
            return -1, row
        pos = _scan_decimal(buf, pos + 1, out, row, 1, snapshot)
        if pos < 0 or pos + 1 >= n or buf[pos] != _CLOSE:
            return -1, row
        row += 1
        pos += 2
        if buf[pos - 1] == _CLOSE:
            return pos, row
        if buf[pos - 1] != _COMMA:
            return -1, row


@kernel
def levels_kernel(buf: bytes | np.ndarray, out: np.ndarray, nb: int, snapshot: bool) -> int:
    """Fill `out` from ``orjson.dumps((bids, asks))`` (bytes or uint8 array); 0 if all valid, else 1 (go slow)."""
    n = len(buf)
    if n < 2 or buf[0] != _OPEN:
        return 1
    pos, row = _scan_side(buf, 1, out, 0, snapshot)
    if pos < 0 or row != nb or pos >= n or buf[pos] != _COMMA:
        return 1
    pos, row = _scan_side(buf, pos + 1, out, row, snapshot)
    if pos < 0 or row != out.shape[0] or pos != n - 1 or buf[pos] != _CLOSE:
        return 1
    return 0
