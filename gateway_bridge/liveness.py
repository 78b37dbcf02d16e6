"""Paranoid Pirate helpers: exponential back-off and silence detection on one injected clock."""

from __future__ import annotations

from gateway_bridge.config import BackoffConfig

NS_PER_MS = 1_000_000


class Backoff:
    """Exponential delays: initial, ×factor per attempt, capped at max; `reset` starts over."""

    def __init__(self, cfg: BackoffConfig) -> None:
        self.cfg = cfg
        self.attempts = 0

    def next_ns(self) -> int:
        """Return the delay before the next attempt (ns) and count the attempt."""
        ms = min(self.cfg.max_ms, self.cfg.initial_ms * self.cfg.factor**self.attempts)
        self.attempts += 1
        return int(ms * NS_PER_MS)

    def reset(self) -> None:
        """Start over from the initial delay (the peer answered)."""
        self.attempts = 0


class Liveness:
    """Tracks traffic: reports the up→down edge after `silence_ms` and the down→up edge on traffic."""

    def __init__(self, silence_ms: int, now_ns: int) -> None:
        self.silence_ns = silence_ms * NS_PER_MS
        self.last_ns = now_ns
        self.down = False

    def traffic(self, now_ns: int) -> int | None:
        """Note traffic; if the peer was down, return how long it was silent (ms), else None."""
        silent_ms = (now_ns - self.last_ns) // NS_PER_MS
        self.last_ns = now_ns
        if self.down:
            self.down = False
            return silent_ms
        return None

    def check(self, now_ns: int) -> int | None:
        """If silence just crossed the threshold, mark down and return the silence (ms), else None."""
        if self.down or now_ns - self.last_ns < self.silence_ns:
            return None
        self.down = True
        return (now_ns - self.last_ns) // NS_PER_MS

    def mark_down(self, since_ns: int) -> None:
        """Start as down, silent since `since_ns` (a restart): the first traffic reports the up edge."""
        self.down = True
        self.last_ns = since_ns
