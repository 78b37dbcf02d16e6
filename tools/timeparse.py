"""`parse_time(text, name)`: a command-line time (ISO-8601 or epoch s/ms/µs/ns) as exact epoch ns.

Accepted forms, all UTC unless an offset is given:

- ISO-8601: ``2026-08-09``, ``2026-08-09T21:26:00``, ``2026-08-09 21:26:00.123456789Z``,
  ``2026-08-09T23:26:00+02:00`` (fraction up to 9 digits, parsed exactly; no ``Z`` means UTC).
- epoch numbers, the unit told by magnitude: below 1e11 seconds (``1786310819`` or
  ``1786310819.5``), below 1e14 milliseconds, below 1e17 microseconds, otherwise nanoseconds.

Anything else raises ``ValueError("<name>: ...")`` quoting the value.
"""

from __future__ import annotations

import calendar
import re
from decimal import Decimal

NS_PER_S = 1_000_000_000
#: The largest time an int64 ns count holds (2262-04-11).
MAX_NS = 2**63 - 1

_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
                  r"(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,20}(?:\.\d{1,9})?")
#: (upper bound exclusive, ns per unit) for epoch numbers, smallest unit last.
_UNITS = ((Decimal(10) ** 11, NS_PER_S), (Decimal(10) ** 14, 1_000_000), (Decimal(10) ** 17, 1_000))


def parse_time(text: str, name: str) -> int:
    """Return `text` (ISO-8601 or epoch s/ms/µs/ns) as epoch ns; ValueError naming `name` otherwise."""
    s = text.strip()
    try:
        ns = _iso_ns(s) if "-" in s[1:] or ":" in s else _epoch_ns(s)
    except ValueError:
        ns = None
    if ns is None or not 0 <= ns <= MAX_NS:
        raise ValueError(f"{name}: {text!r} is not a time (ISO-8601 such as 2026-08-09T21:26:00Z, "
                         "or epoch seconds, milliseconds or nanoseconds)")
    return ns


def _iso_ns(s: str) -> int | None:
    """ISO-8601 text as epoch ns, or None if it does not match."""
    m = _ISO.fullmatch(s)
    if m is None:
        return None
    y, mo, d, h, mi, sec = (int(g or 0) for g in m.groups()[:6])
    if not (1 <= mo <= 12 and 1 <= d <= _days_in(y, mo) and h < 24 and mi < 60 and sec < 60):
        return None
    seconds = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) - _offset_s(m.group(8))
    return seconds * NS_PER_S + int((m.group(7) or "").ljust(9, "0"))


def _days_in(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _offset_s(zone: str | None) -> int:
    """Seconds east of UTC of ``Z``/``+HH:MM``/``-HHMM`` (0 when absent)."""
    if not zone or zone.upper() == "Z":
        return 0
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(zone)
    sign = -1 if zone[0] == "-" else 1
    return sign * (hours * 3600 + minutes * 60)


def _epoch_ns(s: str) -> int | None:
    """An epoch number as ns, its unit told by magnitude, or None if it is not a plain number."""
    if _NUMBER.fullmatch(s) is None:
        return None
    value = Decimal(s)
    for bound, ns_per_unit in _UNITS:
        if value < bound:
            return int(value * ns_per_unit)
    return None if "." in s else int(s)
