"""The compiled ticker checks against the decoder's own: plain decimals, the numeric-field table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway_bridge.decoder import _PLAIN_DECIMAL, TICKER_NUMBERS
from gateway_bridge.fasttickers import numbers_table, plain_decimal

FLAGS = [(signed, nonzero) for signed in (False, True) for nonzero in (False, True)]
EDGES = ["0", "0.0", "-0", "-0.0", "-1.5", "01", "1.", ".5", "1e5", "123456789012345", "1234567890123456",
         "1.23456789012345", "1.234567890123456", "0.000000000000001", "0.0000000000000001", "", "-", "+1",
         " 1", "1 ", "nan", "1..2", "00", "-01", "9" * 15 + ".5", "77.300"]


def _compiled(text: str, signed: bool, nonzero: bool) -> bool:
    raw = np.frombuffer(b"x" + text.encode() + b"y", dtype=np.uint8)  # offsets inside a bigger buffer
    return plain_decimal(raw, 1, 1 + len(text.encode()), signed, nonzero)


@pytest.mark.parametrize("signed, nonzero", FLAGS)
@pytest.mark.parametrize("text", EDGES)
def test_plain_decimal_is_the_decoders_regex(text: str, signed: bool, nonzero: bool) -> None:
    assert _compiled(text, signed, nonzero) == bool(_PLAIN_DECIMAL[signed, nonzero](text))


@given(st.text(alphabet="0123456789.-", max_size=20), st.sampled_from(FLAGS))
@settings(max_examples=1000, deadline=None)
def test_plain_decimal_agrees_on_any_short_text(text: str, flags: tuple[bool, bool]) -> None:
    assert _compiled(text, *flags) == bool(_PLAIN_DECIMAL[flags](text))


def test_numbers_table_holds_every_numeric_ticker_field_with_its_flags() -> None:
    table = numbers_table(TICKER_NUMBERS)
    names = [bytes(table.names[a:b]).decode() for a, b in zip(table.starts[:-1], table.starts[1:], strict=True)]
    assert names == list(TICKER_NUMBERS)
    assert [(bool(s), bool(z)) for s, z in zip(table.signed, table.nonzero, strict=True)] == list(TICKER_NUMBERS.values())
