"""Tick insertion: the tick for whole second ``b`` goes right before the first record at or after ``b``.

Pure logic, shared by the live bridge, a shard restart and the importer (through
`gateway_bridge.ingest`). Boundaries are epoch-aligned whole seconds (ns). The series starts at the
first whole second at or after the first record's ``recv_ns`` and, from there on, no second is
skipped: a record after a gap is preceded by the ticks of every second in the gap, in order — for
at most ``max_backfill_s`` seconds; the rest of a longer gap becomes ONE ``TICK_GAP`` record
(``from_ns`` … ``to_ns`` inclusive, ``seconds``), followed by the tick of the current second. So
time and memory never depend on how long the gap was. Live, `until` emits the ticks of seconds the
clock passed while idle. `next_boundary_ns` is the whole state: persist/restore it (or derive it
from the journal's last ``recv_ns``) to continue the series across restarts.
"""

from __future__ import annotations

from engine.record import NS_PER_S, Kind, Record, tick


def ceil_second(ns: int) -> int:
    """Return the first whole-second boundary at or after `ns`."""
    return -(-ns // NS_PER_S) * NS_PER_S


def next_second(ns: int) -> int:
    """Return the first whole-second boundary strictly after `ns`."""
    return (ns // NS_PER_S + 1) * NS_PER_S


def tick_gap(from_ns: int, to_ns: int) -> Record:
    """Return the (unnumbered) TICK_GAP record standing for the ticks ``from_ns`` … ``to_ns``."""
    seconds = (to_ns - from_ns) // NS_PER_S + 1
    return Record(0, from_ns, Kind.TICK_GAP, "", 0, 0, {"from_ns": from_ns, "to_ns": to_ns, "seconds": seconds})


class TickClock:
    """Emit tick records for passed whole seconds, a long gap capped; see the module docstring."""

    __slots__ = ("next_boundary_ns", "max_backfill_s", "ticks", "gaps", "gap_seconds")

    def __init__(self, next_boundary_ns: int | None = None, max_backfill_s: int = 60) -> None:
        #: Next boundary not yet ticked; None until the first record fixes the start.
        self.next_boundary_ns = next_boundary_ns
        #: Per-second ticks journaled for a gap before the rest of it becomes one TICK_GAP.
        self.max_backfill_s = max(0, max_backfill_s)
        #: TICK records emitted, TICK_GAP records emitted, seconds those stood for.
        self.ticks = 0
        self.gaps = 0
        self.gap_seconds = 0

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
        """Return ticks for every boundary in ``[first, upto_ns]`` (a long run capped) and advance past them."""
        last = upto_ns - upto_ns % NS_PER_S
        self.next_boundary_ns = last + NS_PER_S
        count = (last - first) // NS_PER_S + 1
        keep = self.max_backfill_s
        if count <= keep + 1:
            self.ticks += count
            return [tick(b) for b in range(first, last + 1, NS_PER_S)]
        gap_from = first + keep * NS_PER_S
        out = [tick(b) for b in range(first, gap_from, NS_PER_S)]
        out.append(tick_gap(gap_from, last - NS_PER_S))
        out.append(tick(last))
        self.ticks += keep + 1
        self.gaps += 1
        self.gap_seconds += count - keep - 1
        return out
