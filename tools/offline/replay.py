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
from pathlib import Path
from typing import Any

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
    #: Where a store replay started (checkpoint or beginning) and what it read; empty for a journal replay.
    start: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class JournalSource:
    """Replay a journal directory from its first record (`replay --journal`)."""

    journal: Path
    store: Path | None = None

    def known_symbols(self) -> tuple[str, list[str]]:
        """What holds the symbols (for messages) and the symbols a replay can compute."""
        return f"the journal {self.journal}", known_symbols(str(self.journal))

    def replay(self, registry: Registry | None, symbols: list[str] | None, from_ns: int | None,
               to_ns: int | None, summary: ReplaySummary) -> Iterator[Vector]:
        """The vectors of the range (see `replay`)."""
        return replay(str(self.journal), registry, symbols, from_ns, to_ns, summary)


@dataclass
class ConfigSource:
    """Replay a shard's store (hot + archive) and its journal tail (`replay --config`)."""

    journal: Path
    store: Path
    archive: Path | None
    checkpoints: Path

    @classmethod
    def open(cls, config_path: str) -> ConfigSource:
        """Load the shard config; a store with no committed file and no journal is refused."""
        from journal.errors import JournalError
        from journal.segment import list_segments
        from journal.store.manifest import Manifest
        from tools.shard.config import load_shard_config

        cfg = load_shard_config(config_path)
        src = cls(Path(cfg.journal.dir), Path(cfg.store.dir), Path(cfg.store.archive_dir) if cfg.store.archive_dir
                  else None, cfg.data / "checkpoints")
        has_journal = src.journal.is_dir() and bool(list_segments(src.journal))
        if not Manifest.load(src.store).files and not has_journal:
            raise JournalError(f"{config_path}: nothing to replay: the store {src.store} holds no compacted file "
                               f"and the journal {src.journal} no segment")
        return src

    def _reader(self, registry: Registry | None = None, symbols: list[str] | None = None) -> Any:
        from journal.store.layout import StoreRoots
        from journal.store.replay import StoreReader

        journal = self.journal if self.journal.is_dir() else None
        return StoreReader(StoreRoots(self.store, self.archive), journal, registry=registry, symbols=symbols,
                           shard_checkpoints=self.checkpoints)

    def known_symbols(self) -> tuple[str, list[str]]:
        """Symbols of the store's SESSION records and of the journal's."""
        named = {s for p in self._reader().journaled_sessions() for s in p["symbols"]}
        from journal.segment import list_segments

        if self.journal.is_dir() and list_segments(self.journal):
            named.update(known_symbols(str(self.journal)))
        return f"the store {self.store} or the journal {self.journal}", sorted(named)

    def replay(self, registry: Registry | None, symbols: list[str] | None, from_ns: int | None,
               to_ns: int | None, summary: ReplaySummary) -> Iterator[Vector]:
        """The vectors of the range, from the newest checkpoint before `from_ns` (else the beginning)."""
        from journal.store.layout import StoreRoots
        from journal.store.replay import replay_store

        journal = self.journal if self.journal.is_dir() else None
        vectors, fold, reader = replay_store(StoreRoots(self.store, self.archive), journal, registry=registry,
                                             symbols=symbols, from_ns=from_ns, to_ns=to_ns,
                                             shard_checkpoints=self.checkpoints)
        summary.registries = fold.engine.registries
        summary.start = reader.info.start
        return _summarised(vectors, fold, reader, summary)


def _summarised(vectors: Iterator[Vector], fold: Fold, reader: Any, summary: ReplaySummary) -> Iterator[Vector]:
    """`vectors`, filling `summary` when they are exhausted or closed."""
    try:
        yield from vectors
    finally:
        summary.records, summary.vectors = fold.records, fold.vectors
        summary.notices = dict(fold.notices)
        summary.counters = dict(fold.engine.counters)
        summary.start = {**reader.info.start, "store_records": reader.info.store_records,
                         "journal_records": reader.info.journal_records}
