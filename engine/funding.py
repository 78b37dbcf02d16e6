"""Ticker and funding state of one symbol: Bybit ticker snapshot + delta merge, last funding."""

from __future__ import annotations

import math
from typing import Any

NAN = math.nan


class FundingState:
    """Merged `tickers.SYMBOL` fields plus the last known funding rate and next settlement time."""

    __slots__ = ("fields", "rate", "next_ms", "interval_h")

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.rate = NAN
        self.next_ms = 0
        self.interval_h = 0.0

    def apply_ticker(self, kind: str, fields: dict[str, str]) -> None:
        """Merge a ticker frame: a snapshot replaces every field, a delta updates the ones it carries."""
        if kind == "snapshot":
            self.fields = dict(fields)
        else:
            self.fields.update(fields)
        self._take_funding(fields.get("fundingRate"), fields.get("nextFundingTime"), fields.get("fundingIntervalHour"))

    def apply_funding(self, payload: dict[str, Any]) -> None:
        """Take a funding-stream record (rate, next settlement, interval)."""
        self.rate = float(payload["rate"])
        self.next_ms = int(payload["next_ms"])
        if payload.get("interval_h"):
            self.interval_h = float(payload["interval_h"])

    def _take_funding(self, rate: str | None, next_ms: str | None, interval_h: str | None) -> None:
        # Empty strings appear in real frames for fields that do not apply; they change nothing.
        if rate:
            self.rate = _num(rate, self.rate)
        if next_ms:
            self.next_ms = int(_num(next_ms, float(self.next_ms)))
        if interval_h:
            self.interval_h = _num(interval_h, self.interval_h)

    def to_state(self) -> dict[str, Any]:
        """Return a msgpack-friendly copy of the state."""
        return {"fields": dict(self.fields), "rate": self.rate, "next_ms": self.next_ms, "interval_h": self.interval_h}

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> FundingState:
        """Rebuild from `to_state` output."""
        s = cls()
        s.fields = dict(d["fields"])
        s.rate, s.next_ms, s.interval_h = float(d["rate"]), int(d["next_ms"]), float(d["interval_h"])
        return s


def _num(text: str, fallback: float) -> float:
    """Parse a Bybit numeric string; keep `fallback` if it is not a finite number."""
    try:
        v = float(text)
    except ValueError:
        return fallback
    return v if math.isfinite(v) else fallback
