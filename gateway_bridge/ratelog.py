"""Log a problem once per reason, then at most once per interval, with the count suppressed meanwhile.

A flood of identical bad frames must not flood the log: the first occurrence of each reason is
logged at once; later ones are counted and summarised at most every `interval_s` seconds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class RateLog:
    """Per-reason rate-limited logging (clock injected for tests)."""

    def __init__(self, logger: logging.Logger, interval_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self._clock = clock
        self._next: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, reason: str, msg: str, *args: object) -> bool:
        """Log `msg` for `reason` unless it was logged within the interval; return whether it was."""
        now = self._clock()
        due = self._next.get(reason)
        if due is not None and now < due:
            self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
            return False
        self._next[reason] = now + self.interval_s
        suppressed = self._suppressed.pop(reason, 0)
        if suppressed:
            self.logger.log(level, msg + " (%d more since last report)", *args, suppressed)
        else:
            self.logger.log(level, msg, *args)
        return True

    def warning(self, reason: str, msg: str, *args: object) -> bool:
        """Rate-limited ``logger.warning`` keyed by `reason`."""
        return self.log(logging.WARNING, reason, msg, *args)
