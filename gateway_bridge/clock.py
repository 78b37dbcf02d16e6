"""Receive-time stamping: wall-clock nanoseconds made non-decreasing per shard.

Engine time is ``recv_ns``, so it must never go backwards: not when NTP steps the wall clock back,
and not across a restart (seed `start_ns` with the journal's last ``recv_ns``). A step back holds
the stamp at the last value until the clock catches up; such holds are counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class MonotonicStamper:
    """Turn a wall clock (or imported raw times) into a non-decreasing ns series."""

    __slots__ = ("_clock_ns", "last_ns", "held", "max_step_back_ns")

    def __init__(self, clock_ns: Callable[[], int] = time.time_ns, start_ns: int = 0) -> None:
        self._clock_ns = clock_ns
        #: Last stamp handed out (the floor for the next one).
        self.last_ns = start_ns
        #: How many stamps were held at `last_ns` because the source went backwards.
        self.held = 0
        #: Largest backward step seen, ns.
        self.max_step_back_ns = 0

    def stamp(self) -> int:
        """Return the wall clock now, in ns, but never less than the previous stamp."""
        return self.monotonic(self._clock_ns())

    def monotonic(self, raw_ns: int) -> int:
        """Return `raw_ns`, raised to the previous result if it is smaller (for imports)."""
        last = self.last_ns
        if raw_ns >= last:
            self.last_ns = raw_ns
            return raw_ns
        self.held += 1
        if last - raw_ns > self.max_step_back_ns:
            self.max_step_back_ns = last - raw_ns
        return last
