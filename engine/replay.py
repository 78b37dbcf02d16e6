"""The one fold over journal records: records in, vectors and notices out.

Warm-up after a restart, the live shard, the offline replay and the benchmarks (later datasets and
`verify`) all drive the engine through this loop, so every path handles notices the same way and
none of them has a loop of its own.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from engine.engine import NOTHING, Engine, Notice, Vector
from engine.record import Record
from engine.runs import DeltaRun, TradesRun


class Folded(NamedTuple):
    """What a batch of records produced, in journal order."""

    vectors: list[Vector]
    notices: list[Notice]


def notice_key(n: Notice) -> str:
    """The counter name of a notice: its event up to the first colon (``gap``, ``registry rejected``)."""
    return n.event.split(":", 1)[0]


class Fold:
    """Feed records to one engine; count records, vectors and notices by event."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.records = 0
        self.vectors = 0
        self.notices: Counter[str] = Counter()

    def batch(self, records: Iterable[Record | DeltaRun | TradesRun]) -> Folded:
        """Apply `records` in order (a `DeltaRun` or `TradesRun` counts as its n records); return
        every vector and notice."""
        vectors: list[Vector] = []
        notices: list[Notice] = []
        engine = self.engine
        apply = engine.apply
        n = 0
        for rec in records:
            item = type(rec)
            if item is Record:  # the common case first: one type check per record
                n += 1
                effects = apply(rec)
            elif item is DeltaRun:
                n += rec.n
                effects = engine.apply_deltas(rec)
            elif item is TradesRun:
                n += rec.n
                effects = engine.apply_trades_run(rec)
            else:
                n += 1
                effects = apply(rec)
            if effects is NOTHING:
                continue
            if effects.vectors:
                vectors.extend(effects.vectors)
            if effects.notices:
                notices.extend(effects.notices)
        self.records += n
        self.vectors += len(vectors)
        for notice in notices:
            self.notices[notice_key(notice)] += 1
        return Folded(vectors, notices)

    def vectors_of(self, records: Iterable[Record], from_ns: int | None = None,
                   to_ns: int | None = None) -> Iterator[Vector]:
        """Yield the vectors of every tick with ``from_ns ≤ ts < to_ns``; stop reading at `to_ns`."""
        for rec in records:
            folded = self.batch((rec,))
            if not folded.vectors:
                continue
            ts = folded.vectors[0].ts_ns
            if to_ns is not None and ts >= to_ns:
                return
            if from_ns is None or ts >= from_ns:
                yield from folded.vectors
