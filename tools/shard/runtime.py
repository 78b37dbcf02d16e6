"""The shard's engine side: replay the journal at start, then apply what the bridge journals.

Start-up and crash recovery are one code path: the engine is rebuilt by feeding it the journal
(checkpoints will shorten this), then every batch the bridge has journaled is applied in order.
Book notices are logged and counted; those that need a snapshot become resync requests.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Protocol

from engine.engine import Engine, Notice, Vector
from engine.record import Kind, Record
from journal.reader import JournalReader

log = logging.getLogger("feature_service.shard")


class ResyncSink(Protocol):
    """Where resync requests go (the bridge journals them and asks the gateway)."""

    def request_resync(self, symbol: str, depth: int, reason: str) -> None: ...

    def resync_done(self, symbol: str, depth: int) -> None: ...


class ShardEngine:
    """Apply journaled records to the engine; keep the latest vector per symbol."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sink: ResyncSink | None = None
        self.latest: dict[str, Vector] = {}
        self.notices: Counter[str] = Counter()
        self.vectors = 0

    def warm_up(self, journal_dir: str) -> int:
        """Feed the whole existing journal (nothing is requested from the gateway); return records applied."""
        n = 0
        for rec in JournalReader(journal_dir).records():
            self._apply(rec, [])
            n += 1
        return n

    def on_records(self, records: Sequence[Record]) -> None:
        """Bridge callback: apply numbered records (already journaled), then ask for the snapshots needed."""
        wanted: list[Notice] = []
        for rec in records:
            self._apply(rec, wanted)
            if rec.kind == Kind.BOOK_SNAPSHOT and self.sink is not None:
                self.sink.resync_done(rec.symbol, int(rec.payload["depth"]))
        if self.sink is not None:
            for n in wanted:
                self.sink.request_resync(n.symbol, int(n.topic.split(".")[1]), n.event)

    def _apply(self, rec: Record, wanted: list[Notice]) -> None:
        effects = self.engine.apply(rec)
        for n in effects.notices:
            self.notices[n.event] += 1
            log.warning("book %s topic=%s seq=%d resync=%s", n.event, n.topic, n.seq, n.resync)
            if n.resync:
                wanted.append(n)
        for v in effects.vectors:
            self.latest[v.symbol] = v
        self.vectors += len(effects.vectors)
