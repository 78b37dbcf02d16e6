"""Paranoid Pirate helpers: exponential back-off and silence detection on one injected clock."""

from __future__ import annotations

from gateway_bridge.config import BackoffConfig

NS_PER_MS = 1_000_000


class Backoff:
    """Exponential delays: initial, ×factor per attempt, capped at max; `reset` starts over."""

    def __init__(self, cfg: BackoffConfig) -> None:
        self.cfg = cfg
        self.attempts = 0
        self._ms = float(cfg.initial_ms)

    def next_ns(self) -> int:
        """Return the delay before the next attempt (ns) and count the attempt."""
        ms = self._ms
        # Grow by multiplication, capped each step: never factor**attempts (which overflows a float).
        self._ms = min(float(self.cfg.max_ms), ms * self.cfg.factor)
        self.attempts += 1
        return int(ms * NS_PER_MS)

    def reset(self) -> None:
        """Start over from the initial delay (the peer answered)."""
        self.attempts = 0
        self._ms = float(self.cfg.initial_ms)


class Liveness:
    """Tracks traffic: reports the up→down edge after `silence_ms` and the down→up edge on traffic.

    `last_ns` None means "nothing to watch yet" (an import before its first frame): no down edge.
    """

    def __init__(self, silence_ms: int, now_ns: int | None) -> None:
        self.silence_ns = silence_ms * NS_PER_MS
        self.last_ns = now_ns
        self.down = False

    def traffic(self, now_ns: int) -> int | None:
        """Note traffic; if the peer was down, return how long it was silent (ms), else None."""
        last = now_ns if self.last_ns is None else self.last_ns
        self.last_ns = now_ns
        if self.down:
            self.down = False
            return (now_ns - last) // NS_PER_MS
        return None

    def check(self, now_ns: int) -> int | None:
        """If silence just crossed the threshold, mark down and return the silence (ms), else None."""
        last = self.last_ns
        if self.down or last is None or now_ns - last < self.silence_ns:
            return None
        self.down = True
        return (now_ns - last) // NS_PER_MS

    def deadline_ns(self) -> int | None:
        """Return when silence would mark the peer down (None when down or not watching)."""
        if self.down or self.last_ns is None:
            return None
        return self.last_ns + self.silence_ns

    def mark_down(self, since_ns: int) -> None:
        """Start as down, silent since `since_ns` (a restart): the first traffic reports the up edge."""
        self.down = True
        self.last_ns = since_ns
