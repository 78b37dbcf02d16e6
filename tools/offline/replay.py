"""Replay a journal through the engine: the one offline code path (datasets and verify use it too)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field

from engine.engine import Engine, Vector
from journal.reader import JournalReader
from journal.stats import journal_stats
from registry import Registry

log = logging.getLogger("feature_service.replay")


@dataclass
class ReplaySummary:
    """What a replay saw: records applied, vectors emitted, notices by event, engine counters."""

    records: int = 0
    vectors: int = 0
    notices: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


def journal_symbols(journal_dir: str) -> list[str]:
    """Every symbol named by a record of the journal, sorted (read from the index, no body decode)."""
    return sorted(s for s in journal_stats(journal_dir)["symbols"] if s)


def replay(journal_dir: str, registry: Registry, symbols: list[str] | None = None,
           from_ns: int | None = None, to_ns: int | None = None,
           summary: ReplaySummary | None = None) -> Iterator[Vector]:
    """Yield the vectors of every tick with from_ns ≤ ts < to_ns; the engine starts from the journal's start."""
    engine = Engine(registry, symbols if symbols is not None else journal_symbols(journal_dir))
    summary = summary if summary is not None else ReplaySummary()
    for rec in JournalReader(journal_dir).records():
        summary.records += 1
        effects = engine.apply(rec)
        for n in effects.notices:
            summary.notices[n.event] = summary.notices.get(n.event, 0) + 1
        if not effects.vectors:
            continue
        ts = effects.vectors[0].ts_ns
        if to_ns is not None and ts >= to_ns:
            break
        if from_ns is None or ts >= from_ns:
            summary.vectors += len(effects.vectors)
            yield from effects.vectors
    summary.counters = dict(engine.counters)
