"""Recording playback: read captured frames in any import format and route them to gateway topics."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from gateway_bridge.config import TopicsConfig
from tools.sim.gateway.config import RecordingConfig
from tools.sim.gateway.synthetic import Frame

log = logging.getLogger("gateway_sim.playback")


def read_capture(fmt: str, path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(recv_ns, frame_bytes)`` from one capture file in import format `fmt`."""
    try:
        from journal import capture_formats
    except ImportError:  # until journal/capture_formats.py lands: bare frames only
        if fmt != "frames":
            raise ValueError(f"recording.format: {fmt!r} needs journal.capture_formats") from None
        return _read_bare_frames(Path(path))
    return capture_formats.read(fmt, path)


def _read_bare_frames(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield frames of a one-frame-per-line file, timed by each frame's exchange ``ts``."""
    last_ns = 0
    with path.open("rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                ts = orjson.loads(line).get("ts", 0)
            except (orjson.JSONDecodeError, AttributeError):
                ts = 0
            last_ns = max(last_ns, int(ts) * 1_000_000 if isinstance(ts, int) else 0)
            yield last_ns, line


def route(payload: bytes, topics: TopicsConfig) -> tuple[bytes, str, str] | None:
    """Return ``(gateway_topic, kind, symbol)`` for a Bybit frame, or ``None`` (acks, unknown topics)."""
    try:
        obj = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    topic = obj.get("topic") if isinstance(obj, dict) else None
    if not isinstance(topic, str):
        return None
    head, _, rest = topic.partition(".")
    symbol = rest.rpartition(".")[2]
    if head == "orderbook":
        if obj.get("type") == "snapshot":
            return topics.orderbook_snapshot.encode(), "snapshot", symbol
        return topics.orderbook_delta.encode(), "delta", symbol
    if head == "publicTrade":
        return topics.trades.encode(), "trades", symbol
    if head == "tickers":
        return topics.ticker.encode(), "ticker", symbol
    if head == "kline" and rest.startswith("1."):
        return topics.kline_1m.encode(), "kline", symbol
    if head == "kline" and rest.startswith("1s."):
        return topics.kline_1s.encode(), "kline", symbol
    if head == "funding":
        return topics.funding.encode(), "funding", symbol
    if head == "execution":
        return topics.executions.encode(), "execution", symbol
    return None


def playback(cfg: RecordingConfig, topics: TopicsConfig,
             reader: Iterable[tuple[int, bytes]] | None = None) -> Iterator[tuple[float | None, Frame]]:
    """Yield ``(due_s, frame)``: when to send each routed frame (seconds from start; None = now)."""
    skipped = 0
    loop = 0
    offset_s = 0.0
    while cfg.loops == 0 or loop < cfg.loops:
        first_ns: int | None = None
        last_s = 0.0
        records = reader if reader is not None else _files(cfg)
        for recv_ns, payload in records:
            routed = route(payload, topics)
            if routed is None:
                skipped += 1
                continue
            first_ns = recv_ns if first_ns is None else first_ns
            last_s = (recv_ns - first_ns) / 1e9 / cfg.speed if cfg.speed > 0 else 0.0
            due = offset_s + last_s if cfg.speed > 0 else None
            yield due, Frame(routed[0], payload, routed[1], routed[2])
        offset_s += last_s
        loop += 1
        if reader is not None:
            break
    log.info("playback done loops=%d skipped=%d", loop, skipped)


def _files(cfg: RecordingConfig) -> Iterator[tuple[int, bytes]]:
    for path in cfg.files:
        yield from read_capture(cfg.format, path)
