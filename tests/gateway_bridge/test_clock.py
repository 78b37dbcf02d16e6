"""MonotonicStamper: receive stamps never go backwards, also across a restart."""

from __future__ import annotations

from gateway_bridge.clock import MonotonicStamper


def test_stamps_hold_when_the_wall_clock_steps_back() -> None:
    readings = iter([100, 105, 90, 104, 110])
    stamper = MonotonicStamper(clock_ns=lambda: next(readings))
    assert [stamper.stamp() for _ in range(5)] == [100, 105, 105, 105, 110]
    assert stamper.held == 2 and stamper.max_step_back_ns == 15


def test_restart_seeded_with_the_journal_tail() -> None:
    stamper = MonotonicStamper(clock_ns=lambda: 50, start_ns=80)
    assert stamper.stamp() == 80


def test_monotonic_for_imported_times() -> None:
    stamper = MonotonicStamper(start_ns=0)
    assert [stamper.monotonic(t) for t in (5, 3, 7, 7, 6)] == [5, 5, 7, 7, 7]


def test_default_clock_is_wall_clock_ns() -> None:
    import time

    before = time.time_ns()
    assert before <= MonotonicStamper().stamp() <= time.time_ns()
