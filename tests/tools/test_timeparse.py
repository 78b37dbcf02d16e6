"""parse_time: every accepted form against hand-computed epoch ns, and the refusals."""

from __future__ import annotations

import pytest

from tools.timeparse import parse_time

# 2026-08-09T21:26:00Z = 1786310760 s (20674 days * 86400 + 21*3600 + 26*60, computed by hand).
T = 1_786_310_760


@pytest.mark.parametrize(("text", "ns"), [
    ("2026-08-09T21:26:00Z", T * 10**9),
    ("2026-08-09T21:26:00", T * 10**9),
    ("2026-08-09 21:26:00z", T * 10**9),
    ("2026-08-09T21:26", T * 10**9),
    ("2026-08-09", (T - 21 * 3600 - 26 * 60) * 10**9),
    ("2026-08-09T21:26:00.5Z", T * 10**9 + 500_000_000),
    ("2026-08-09T21:26:00.123456789Z", T * 10**9 + 123_456_789),
    ("2026-08-09T23:26:00+02:00", T * 10**9),
    ("2026-08-09T20:26:00-0100", T * 10**9),
    (str(T), T * 10**9),
    (f"{T}.25", T * 10**9 + 250_000_000),
    (str(T * 1000 + 7), T * 10**9 + 7_000_000),
    (str(T * 10**6 + 7), T * 10**9 + 7_000),
    (str(T * 10**9 + 7), T * 10**9 + 7),
    ("0", 0),
    (" 1786310760 ", T * 10**9),
])
def test_accepted_forms(text: str, ns: int) -> None:
    assert parse_time(text, "--from") == ns


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "2026-02-30", "2026-08-09T25:00:00Z",
                                  "2026-08-09T21:26:00+25:00", "-5", "1e9", "12:00", "2026-08-09T21:26:00.1234567891Z",
                                  "99999999999999999999", f"{T * 10**9}.5", "0x10"])
def test_refused_forms_quote_the_value_and_the_option(text: str) -> None:
    with pytest.raises(ValueError) as e:
        parse_time(text, "--to")
    msg = str(e.value)
    assert msg.startswith("--to: ") and repr(text) in msg and "\n" not in msg
