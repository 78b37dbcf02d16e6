"""Garbage collection on the shard's schedule, never in the middle of a tick's work.

A full collection of the engine's heap (hundreds of thousands of small objects after a minute at
10 000 msgs/s) stalls the loop for 100+ ms whenever CPython decides to run it — often while a tick
waits. So: the start-up heap is frozen (never scanned again), automatic collection is off, and
right after each tick's vectors are out the young generations are collected, the whole heap every
`full_every` ticks. Reference counting frees everything else as before.
"""

from __future__ import annotations

import gc


class GcPolicy:
    """Collect after ticks instead of whenever CPython's thresholds say."""

    def __init__(self, full_every: int = 300) -> None:
        if full_every < 1:
            raise ValueError(f"full_every: {full_every} must be >= 1")
        self.full_every = full_every
        self.ticks = 0
        self.collected = 0

    def start(self) -> None:
        """Freeze the start-up heap and take collection over from CPython."""
        gc.collect()
        gc.freeze()
        gc.disable()

    def after_tick(self) -> None:
        """Called once a tick's vectors are published: the loop has a second of slack now."""
        self.ticks += 1
        self.collected += gc.collect(2 if self.ticks % self.full_every == 0 else 1)

    def stop(self) -> None:
        """Give collection back to CPython."""
        gc.enable()
