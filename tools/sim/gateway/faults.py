"""Fault injection between the frame source and the PUB socket: drops, duplicates, reorders, …"""

from __future__ import annotations

import random
from collections import Counter
from typing import NamedTuple, Protocol

from tools.sim.gateway.config import FaultsConfig, FaultSpec
from tools.sim.gateway.synthetic import Frame


class Pause(NamedTuple):
    """Go silent for `ms` milliseconds before the next frame."""

    ms: int


class Restartable(Protocol):
    """A market that can replay an exchange restart (the synthetic market)."""

    def snapshot(self, symbol: str, depth: int, now_ms: int, restart: bool = False) -> Frame | None: ...


class FaultInjector:
    """Turn each source frame into what is actually sent: usually itself, sometimes not."""

    def __init__(self, cfg: FaultsConfig, market: Restartable | None = None, depth: int = 0) -> None:
        self.cfg = cfg
        self.market = market
        self.depth = depth
        self.rng = random.Random(cfg.seed)
        self.fired: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._held: Frame | None = None
        names = ("drop_delta", "duplicate", "reorder", "corrupt", "restart", "pause")
        self.active = any(getattr(cfg, n).enabled for n in names)

    def _fires(self, name: str, spec: FaultSpec) -> bool:
        """Count one eligible frame for `name`; return whether the fault fires on it."""
        if not spec.enabled:
            return False
        self._seen[name] += 1
        hit = (spec.every > 0 and self._seen[name] % spec.every == 0) or (
            spec.prob > 0 and self.rng.random() < spec.prob)
        if hit:
            self.fired[name] += 1
        return hit

    def pause(self) -> Pause | None:
        """Return a pause to keep before the next frame is made, or ``None`` (asked once per frame)."""
        if self.active and self._fires("pause", self.cfg.pause):
            return Pause(self.cfg.pause.ms)
        return None

    def apply(self, frame: Frame, now_ms: int) -> list[Frame]:
        """Return the frames to send in place of `frame`, in order (pauses come from `pause`)."""
        if not self.active:
            return [frame]
        cfg = self.cfg
        out: list[Frame] = []
        if frame.kind == "delta" and self._fires("drop_delta", cfg.drop_delta):
            return out
        sent = self._corrupt(frame) if self._fires("corrupt", cfg.corrupt) else frame
        copies = [sent, sent] if self._fires("duplicate", cfg.duplicate) else [sent]
        if self._held is not None:
            copies.append(self._held)
            self._held = None
        elif self._fires("reorder", cfg.reorder):
            self._held, copies = copies[0], copies[1:]
        out.extend(copies)
        if frame.kind == "delta" and self.market is not None and self._fires("restart", cfg.restart):
            snap = self.market.snapshot(frame.symbol, self.depth, now_ms, restart=True)
            if snap is not None:
                out.append(snap)
        return out

    def flush(self) -> list[Frame]:
        """Return a frame still held back for reordering (at the end of the source)."""
        held, self._held = self._held, None
        return [held] if held is not None else []

    def _corrupt(self, frame: Frame) -> Frame:
        """Return `frame` with mangled bytes no JSON or msgpack parser accepts as the original."""
        data = frame.payload
        if self.rng.random() < 0.5:
            bad = data[: max(1, len(data) // 2)]  # truncated mid-document
        else:
            at = self.rng.randrange(1, max(2, len(data)))
            bad = data[:at] + b"\xff\xfe" + data[at:]  # invalid UTF-8 inside the document
        return frame._replace(payload=bad, kind="corrupt")
