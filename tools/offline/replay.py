"""Replay a journal through the engine: the one offline code path (datasets and verify use it too).

The engine is set up from the journal itself: its SESSION records name the symbols and the
registry, and REGISTRY_CHANGED records switch registries at tick boundaries, exactly as they did
online. A journal written before SESSION records existed falls back to the symbols of its index
and the packaged registry. `registry` is an explicit what-if override (every journaled registry is
then ignored) and `symbols` keeps only those symbols.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from engine.engine import Engine, Vector
from engine.record import Kind
from engine.replay import Fold
from journal.reader import JournalReader
from journal.stats import journal_stats
from registry import Registry
from tools.registry_file import default_registry


@dataclass
class ReplaySummary:
    """What a replay saw: records applied, vectors emitted, notices by event, engine counters."""

    records: int = 0
    vectors: int = 0
    notices: dict[str, int] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    #: Every registry the engine computed with, by content hash (for one output file per hash).
    registries: dict[str, Registry] = field(default_factory=dict)


def journal_symbols(journal_dir: str) -> list[str]:
    """Every symbol named by a record of the journal, sorted (read from the index, no body decode)."""
    return sorted(s for s in journal_stats(journal_dir)["symbols"] if s)


def known_symbols(journal_dir: str) -> list[str]:
    """The symbols a replay of `journal_dir` can compute: every SESSION record's, else those of its index."""
    named: set[str] = set()
    for rec in JournalReader(journal_dir).records(kinds=[Kind.SESSION]):
        named.update(rec.payload["symbols"])
    return sorted(named) if named else journal_symbols(journal_dir)


def open_engine(journal_dir: str, registry: Registry | None = None,
                symbols: Iterable[str] | None = None) -> Engine:
    """An engine to fold `journal_dir` from its start (see the module docstring for the options)."""
    stats = journal_stats(journal_dir)
    journaled = stats["kinds"].get("session", 0) > 0
    start_symbols = () if journaled else sorted(s for s in stats["symbols"] if s)
    return Engine(registry or default_registry(), start_symbols, pin_registry=registry is not None,
                  only_symbols=symbols)


def replay(journal_dir: str, registry: Registry | None = None, symbols: list[str] | None = None,
           from_ns: int | None = None, to_ns: int | None = None,
           summary: ReplaySummary | None = None) -> Iterator[Vector]:
    """Return the vectors of every tick with from_ns ≤ ts < to_ns; the engine starts from the journal's start.

    The engine is opened now (so a bad journal fails here); `summary.registries` is live from now
    on and the other summary fields are filled when the iterator is exhausted or closed.
    """
    fold = Fold(open_engine(journal_dir, registry, symbols))
    summary = summary if summary is not None else ReplaySummary()
    summary.registries = fold.engine.registries  # the engine adds to it as it switches registries
    return _vectors(fold, journal_dir, from_ns, to_ns, summary)


def _vectors(fold: Fold, journal_dir: str, from_ns: int | None, to_ns: int | None,
             summary: ReplaySummary) -> Iterator[Vector]:
    try:
        yield from fold.vectors_of(JournalReader(journal_dir).records(), from_ns, to_ns)
    finally:
        summary.records, summary.vectors = fold.records, fold.vectors
        summary.notices = dict(fold.notices)
        summary.counters = dict(fold.engine.counters)
