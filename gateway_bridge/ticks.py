"""Tick insertion: the tick for whole second ``b`` goes right before the first record at or after ``b``.

Pure logic, shared by the live bridge and the importer. Boundaries are epoch-aligned whole seconds
(ns). The series starts at the first whole second at or after the first record's ``recv_ns`` and,
from there on, no second is skipped: a record after a gap is preceded by the ticks of every second
in the gap, in order. Live, `until` emits the ticks of seconds the clock passed while idle.
`next_boundary_ns` is the whole state: persist/restore it (or derive it from the journal's last
``recv_ns``) to continue the series across restarts.
"""

from __future__ import annotations

from engine.record import NS_PER_S, Record, tick


def ceil_second(ns: int) -> int:
    """Return the first whole-second boundary at or after `ns`."""
    return -(-ns // NS_PER_S) * NS_PER_S


class TickClock:
    """Emit tick records for passed whole seconds; see the module docstring."""

    __slots__ = ("next_boundary_ns",)

    def __init__(self, next_boundary_ns: int | None = None) -> None:
        #: Next boundary not yet ticked; None until the first record fixes the start.
        self.next_boundary_ns = next_boundary_ns

    def before(self, recv_ns: int) -> list[Record]:
        """Return the ticks to journal immediately before a record stamped `recv_ns`."""
        nxt = self.next_boundary_ns
        if nxt is None:
            nxt = self.next_boundary_ns = ceil_second(recv_ns)
        if recv_ns < nxt:
            return []
        return self._emit(nxt, recv_ns)

    def until(self, now_ns: int) -> list[Record]:
        """Return the ticks of boundaries up to `now_ns` passed while idle (none before any record)."""
        nxt = self.next_boundary_ns
        if nxt is None or now_ns < nxt:
            return []
        return self._emit(nxt, now_ns)

    def _emit(self, first: int, upto_ns: int) -> list[Record]:
        """Return ticks for every boundary in ``[first, upto_ns]`` and advance past them."""
        last = upto_ns - upto_ns % NS_PER_S
        self.next_boundary_ns = last + NS_PER_S
        return [tick(b) for b in range(first, last + 1, NS_PER_S)]
