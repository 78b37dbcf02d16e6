"""Bybit v5 frame encoder: a journaled market `Record` -> the WebSocket frame it came from (JSON bytes).

The inverse of `gateway_bridge.decoder`: ``Decoder().decode_frame(record_to_frame(rec), rec.recv_ns)``
gives back `rec` (unnumbered; payload values numerically equal, the same kind, symbol, ts and cts).
It is how the store exports history as frames (``feature-service store export --format frames``) and
how the gateway simulator plays stored history into a live shard (``source: store``).

Frames, as `decoder` reads them:

- BOOK_SNAPSHOT / BOOK_DELTA: ``{"topic": "orderbook.<depth>.<SYM>", "type": "snapshot"|"delta",
  "ts", "data": {"s", "b": [["price", "size"], …], "a", "u", "seq"}, "cts"}``.
- TRADES: ``{"topic": "publicTrade.<SYM>", "type": "snapshot", "ts", "data": [{"T", "s", "S":
  "Buy"|"Sell", "v", "p", "i", "BT"}, …]}``.
- TICKER: ``{"topic": "tickers.<SYM>", "type", "data": <fields exactly as journaled>, "ts"}``.
- KLINE: ``{"topic": "kline.<interval>.<SYM>", "type": "snapshot", "data": [{"start", "end",
  "interval", "open", "close", "high", "low", "volume", "turnover", "confirm", "timestamp"}], "ts"}``.
- FUNDING (this project's frame): ``{"topic": "funding.<SYM>", "ts", "data": {"symbol",
  "fundingRate", "nextFundingTime", "fundingIntervalHour"}}`` (the interval left out when 0: unknown).
- EXECUTION: ``{"topic": "execution", "creationTime": ts, "data": <the fills as journaled>}``.

``cts`` is written for every kind whose record has a non-zero one (book frames always carry it).
Numbers are written as Bybit writes them: plain decimal strings, never exponent notation, the
shortest text that parses back to the identical float64 (`decimal_text`). Control kinds, and book
snapshots fetched over REST (``src: "rest"``: never a WebSocket frame), give None.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import orjson

from engine.record import Kind, Record

_SIDE_NAMES = {1: "Buy", -1: "Sell"}


def decimal_text(x: float) -> str:
    """Shortest fixed-point text of a finite float that parses back to the same float64 (no exponent)."""
    text = repr(float(x))
    if "e" in text or "n" in text:  # 1e-05, 1e+16 (and inf/nan, refused below)
        if not math.isfinite(x):
            raise ValueError(f"decimal_text: {x!r} is not a finite number")
        text = np.format_float_positional(x, unique=True, trim="-")
    elif text.endswith(".0"):
        text = text[:-2]
    return text


def decimal_texts(values: Iterable[float]) -> list[str]:
    """`decimal_text` of every value."""
    return [decimal_text(v) for v in values]


def _levels(side: np.ndarray) -> list[list[str]]:
    """``[[price, size], …]`` of an (n, 2) float64 book side."""
    return [[decimal_text(p), decimal_text(s)] for p, s in side.tolist()]


def _with_cts(frame: dict[str, Any], cts: int) -> dict[str, Any]:
    """`frame` with a top-level ``cts`` when the record has one."""
    if cts:
        frame["cts"] = cts
    return frame


def _book(rec: Record) -> dict[str, Any] | None:
    p = rec.payload
    if p.get("src"):
        return None
    data = {"s": rec.symbol, "b": _levels(p["b"]), "a": _levels(p["a"]), "u": int(p["u"]), "seq": int(p["seq"])}
    typ = "snapshot" if rec.kind == Kind.BOOK_SNAPSHOT else "delta"
    return {"topic": f"orderbook.{int(p['depth'])}.{rec.symbol}", "type": typ, "ts": rec.ts, "data": data,
            "cts": rec.cts}


def _trades(rec: Record) -> dict[str, Any]:
    p = rec.payload
    rows = zip(p["T"].tolist(), p["side"].tolist(), p["v"].tolist(), p["p"].tolist(), p["id"], p["bt"],
               strict=True)
    data = [{"T": t, "s": rec.symbol, "S": _SIDE_NAMES[side], "v": decimal_text(v), "p": decimal_text(px),
             "i": i, "BT": bool(bt)} for t, side, v, px, i, bt in rows]
    return _with_cts({"topic": f"publicTrade.{rec.symbol}", "type": "snapshot", "ts": rec.ts, "data": data},
                     rec.cts)


def _ticker(rec: Record) -> dict[str, Any]:
    p = rec.payload
    return _with_cts({"topic": f"tickers.{rec.symbol}", "type": p["type"], "data": dict(p["fields"]),
                      "ts": rec.ts}, rec.cts)


def _bar(bar: dict[str, Any], interval: str) -> dict[str, Any]:
    out: dict[str, Any] = {"start": int(bar["start"]), "end": int(bar["end"]), "interval": interval}
    for key in ("open", "close", "high", "low", "volume", "turnover"):
        out[key] = decimal_text(bar[key])
    out["confirm"] = bool(bar["confirm"])
    out["timestamp"] = int(bar["timestamp"])
    return out


def _kline(rec: Record) -> dict[str, Any]:
    interval = rec.payload["interval"]
    data = [_bar(bar, interval) for bar in rec.payload["bars"]]
    return _with_cts({"topic": f"kline.{interval}.{rec.symbol}", "type": "snapshot", "data": data, "ts": rec.ts},
                     rec.cts)


def _funding(rec: Record) -> dict[str, Any]:
    p = rec.payload
    data: dict[str, Any] = {"symbol": rec.symbol, "fundingRate": decimal_text(p["rate"]),
                            "nextFundingTime": int(p["next_ms"])}
    if p["interval_h"]:
        data["fundingIntervalHour"] = decimal_text(p["interval_h"])
    return _with_cts({"topic": f"funding.{rec.symbol}", "ts": rec.ts, "data": data}, rec.cts)


def _execution(rec: Record) -> dict[str, Any]:
    return {"topic": "execution", "creationTime": rec.ts, "data": list(rec.payload["fills"])}


_ENCODERS: dict[int, Callable[[Record], dict[str, Any] | None]] = {
    Kind.BOOK_SNAPSHOT: _book, Kind.BOOK_DELTA: _book, Kind.TRADES: _trades, Kind.TICKER: _ticker,
    Kind.KLINE: _kline, Kind.FUNDING: _funding, Kind.EXECUTION: _execution,
}


def record_to_object(rec: Record) -> dict[str, Any] | None:
    """The Bybit v5 frame object of a market record; None for control kinds and REST snapshots."""
    encode = _ENCODERS.get(rec.kind)
    return None if encode is None else encode(rec)


def record_to_frame(rec: Record) -> bytes | None:
    """The Bybit v5 frame (JSON bytes) a market record decodes from; None for control kinds and REST snapshots."""
    obj = record_to_object(rec)
    return None if obj is None else orjson.dumps(obj)
