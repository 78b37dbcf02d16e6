"""Replay from the store: the compacted tables (hot + archive) then the journal tail, in seq order.

Records go through the one fold loop (`engine.replay.Fold`); book deltas go as runs
(`engine.runs.DeltaRun`): every delta of a symbol between two records that could change what the
next delta does (any other record of that symbol, any shard-wide control record) is applied by one
kernel call. The engine gives the same state as applying them one by one, so the vectors are
bit-identical to replaying the original journal.

Where it starts: the newest engine checkpoint (the store's date-boundary ones, then the shard's)
whose next tick is at or after `from_ns`; else, with a `from_ns`, a warm-up start (`warmup.py`:
enough history to rebuild every window and book); else the beginning. `StoreReplay.start` says
which.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow.parquet as pq

from engine.engine import Engine, Vector
from engine.record import Kind, Record
from engine.replay import Fold
from engine.runs import DeltaRun, TradesRun
from journal.checkpoints import CheckpointStore
from journal.reader import JournalReader
from journal.store.columns import (
    DELTA_COLUMNS,
    TRADE_COLUMNS,
    Cursor,
    DeltaColumns,
    FileRef,
    delta_columns,
    open_cursors,
    take_all,
    trade_columns,
)
from journal.store.layout import CHECKPOINTS_DIR, CONTROL_TABLE, NS_PER_DAY, TABLES, StoreRoots
from journal.store.manifest import Manifest
from journal.store.tables import table_to_records
from journal.store.warmup import WarmStart, warm_ns, warm_start
from registry import Registry, load_registry_text
from registry.packaged import default_registry

#: Journal seqs per replay window (the unit read from every file at once).
WINDOW_SEQS = 65_536
#: Records folded per batch from the journal tail.
TAIL_BATCH = 8192
_TICK = int(Kind.TICK)
_SNAPSHOT, _DELTA, _TRADE = int(Kind.BOOK_SNAPSHOT), int(Kind.BOOK_DELTA), int(Kind.TRADES)
#: Kinds from here on are control records (the shard's own).
_FIRST_CONTROL = int(Kind.TICK)
_TRADES = "raw_trades"
_DELTAS = "raw_orderbook_deltas"
#: Tables read column-wise (the fast path) and the columns it needs.
_FAST_COLUMNS = {_DELTAS: DELTA_COLUMNS, "raw_trades": TRADE_COLUMNS}


class StoreGap(ValueError):
    """The store and the journal together miss a seq range: the replay would silently differ."""


@dataclass
class StoreReplay:
    """What a store replay did: where it started, how much it read from each source."""

    start: dict[str, Any] = field(default_factory=dict)
    store_records: int = 0
    journal_records: int = 0
    delta_runs: int = 0
    level_updates: int = 0


def store_files(roots: StoreRoots, manifest: Manifest, symbols: Iterable[str] | None = None) -> list[FileRef]:
    """Every committed file as a FileRef with its absolute path (hot or archive); market files of
    symbols outside `symbols` are left out."""
    wanted = set(symbols) if symbols is not None else None
    refs = []
    for f in manifest.files:
        if wanted is not None and f.table != CONTROL_TABLE and f.symbol not in wanted:
            continue
        root = roots.hot if f.location == "hot" or roots.archive is None else roots.archive
        refs.append(FileRef(f.table, f.symbol, f.first_seq, f.last_seq, root / f.path))
    return refs


def checkpoint_dir(roots: StoreRoots) -> Path:
    """Where compaction keeps the engine checkpoints taken at UTC date boundaries."""
    return roots.hot / CHECKPOINTS_DIR


# --- reading windows -------------------------------------------------------------------------------

class _Tables:
    """One cursor set per table over the committed files, read window by window."""

    def __init__(self, refs: list[FileRef], from_seq: int) -> None:
        by_table: dict[str, list[FileRef]] = {t: [] for t in TABLES}
        for r in refs:
            by_table.setdefault(r.table, []).append(r)
        self.cursors: dict[str, list[Cursor]] = {
            t: open_cursors(rs, from_seq, _FAST_COLUMNS.get(t)) for t, rs in by_table.items()}

    def window(self, below_seq: int) -> Window:
        """The records (seq order), per-symbol delta and trade columns with seq < `below_seq` not yet read."""
        w = Window([], [], [])
        for table, cursors in self.cursors.items():
            for ref, t in take_all(cursors, below_seq):
                cols = delta_columns(ref.symbol, t) if table == _DELTAS else None
                if cols is not None:
                    w.deltas.append(cols)
                elif table == _TRADES:
                    w.trades.append(trade_columns(ref.symbol, t))
                else:
                    w.records.extend(table_to_records(table, _full(ref, t), ref.symbol))
        w.records.sort(key=_seq_of)
        return w

    def exhausted(self) -> bool:
        return not any(self.cursors.values())

    def close(self) -> None:
        for cursors in self.cursors.values():
            for c in cursors:
                c.close()


def _full(ref: FileRef, t: Any) -> Any:
    """The slice with every column: a deltas slice was read with the fast path's columns only, so the
    (rare) one that needs the record path is read again whole for its seq range."""
    if ref.table != _DELTAS:
        return t
    lo, hi = int(t.column("seq")[0].as_py()), int(t.column("seq")[-1].as_py())
    return pq.read_table(ref.path, filters=[("seq", ">=", lo), ("seq", "<=", hi)])


def _seq_of(rec: Record) -> int:
    return rec.seq


class Window(NamedTuple):
    """One seq window of the store: records, and the deltas and trades of each symbol as columns."""

    records: list[Record]
    deltas: list[DeltaColumns]
    trades: list[TradesRun]


# --- runs ------------------------------------------------------------------------------------------

def _bounds(seq: np.ndarray, symbol_barriers: np.ndarray, shard_barriers: np.ndarray,
            key: np.ndarray | None = None) -> np.ndarray:
    """Start/stop indices of the runs of `seq`: cut where a barrier lies between neighbours or `key` changes."""
    barriers = np.searchsorted(symbol_barriers, seq) + np.searchsorted(shard_barriers, seq)
    cut = np.diff(barriers) != 0
    if key is not None:
        cut |= np.diff(key) != 0
    return np.concatenate(([0], np.flatnonzero(cut) + 1, [len(seq)]))


def delta_runs(cols: DeltaColumns, symbol_barriers: np.ndarray, shard_barriers: np.ndarray) -> list[DeltaRun]:
    """Split one symbol's deltas into runs: a run ends at a depth change or where a barrier (a book
    snapshot or control record of this symbol, or a shard-wide control record) lies between two deltas.

    Trades, tickers, funding, klines and executions are no barrier: they touch other parts of the
    symbol's state than the book (and its churn), so moving a run past them changes nothing.
    """
    bounds = _bounds(cols.seq, symbol_barriers, shard_barriers, cols.depth)
    return [_run(cols, int(i), int(j)) for i, j in zip(bounds[:-1], bounds[1:], strict=True)]


def _run(c: DeltaColumns, i: int, j: int) -> DeltaRun:
    b0, b1, a0, a1 = c.b_off[i], c.b_off[j], c.a_off[i], c.a_off[j]
    return DeltaRun(c.symbol, int(c.depth[i]), c.seq[i:j], c.recv_ns[i:j], c.u[i:j],
                    c.b_off[i:j + 1] - b0, c.b_px[b0:b1], c.b_sz[b0:b1],
                    c.a_off[i:j + 1] - a0, c.a_px[a0:a1], c.a_sz[a0:a1])


def trade_runs(cols: TradesRun, symbol_barriers: np.ndarray, shard_barriers: np.ndarray) -> list[TradesRun]:
    """Split one symbol's trade messages into runs at control records of the symbol or the shard (ticks
    among them): books, tickers and funding are no barrier, they touch other state than the trades."""
    bounds = _bounds(cols.seq, symbol_barriers, shard_barriers)
    out = []
    for i, j in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        a, b = int(cols.off[i]), int(cols.off[j])
        out.append(TradesRun(cols.symbol, cols.seq[i:j], cols.recv_ns[i:j], cols.off[i:j + 1] - a,
                             cols.p[a:b], cols.v[a:b], cols.side[a:b], cols.ids[a:b]))
    return out


def window_items(w: Window) -> list[Record | DeltaRun | TradesRun]:
    """Records and runs of one window in the order the engine must see them (first seq)."""
    records = w.records
    if not w.deltas and not w.trades:
        return list(records)
    codes: dict[str, int] = {"": 0}
    rec_code = np.fromiter((codes.setdefault(r.symbol, len(codes)) for r in records), dtype=np.int64,
                           count=len(records))
    rec_kind = np.fromiter((r.kind for r in records), dtype=np.int64, count=len(records))
    rec_seq = np.fromiter((r.seq for r in records), dtype=np.int64, count=len(records))
    control = rec_kind >= _FIRST_CONTROL
    shard = rec_seq[rec_code == 0]
    book_bar = control | (rec_kind == _SNAPSHOT) | (rec_kind == _DELTA)
    trade_bar = control | (rec_kind == _TRADE)
    keys = [rec_seq]
    items: list[Record | DeltaRun | TradesRun] = list(records)
    for cols_list, bar, split in ((w.deltas, book_bar, delta_runs), (w.trades, trade_bar, trade_runs)):
        for cols in cols_list:
            mine = rec_seq[(rec_code == codes.get(cols.symbol, -1)) & bar]
            runs = split(cols, mine, shard)
            items.extend(runs)
            keys.append(np.fromiter((r.seq[0] for r in runs), dtype=np.int64, count=len(runs)))
    order = np.argsort(np.concatenate(keys), kind="stable")
    return [items[i] for i in order.tolist()]


# --- the replay ------------------------------------------------------------------------------------

class StoreReader:
    """Replay a store and its journal tail through one fold, starting where `start_engine` says."""

    def __init__(self, roots: StoreRoots, journal_dir: str | Path | None, *, registry: Registry | None = None,
                 symbols: Iterable[str] | None = None, shard_checkpoints: Path | None = None) -> None:
        self.roots = roots
        self.journal_dir = Path(journal_dir) if journal_dir is not None else None
        self.registry = registry
        self.symbols = sorted(set(symbols)) if symbols is not None else None
        self.shard_checkpoints = shard_checkpoints
        self.manifest = Manifest.load(roots.hot)
        self.info = StoreReplay()
        #: Records before the start a warm-up applies first (SESSION, tickers, funding).
        self.prelude: list[Record] = []

    # -- where to start --
    def start_engine(self, from_ns: int | None) -> tuple[Engine, int]:
        """The engine to fold with and the first seq to feed it: a checkpoint before `from_ns`, else seq 1."""
        if from_ns is not None and self.registry is None:
            found = self._checkpoint_before(from_ns)
            if found is not None:
                return found
        eng = Engine(self.registry or default_registry(), self._legacy_symbols(), pin_registry=self.registry is not None,
                     only_symbols=self.symbols)
        warm = self._warm_start(from_ns) if from_ns is not None else None
        if warm is None:
            self.info.start = {"from": "beginning", "seq": 1}
            return eng, 1
        self.prelude = warm.prelude
        self.info.start = {"from": "warm-up", "seq": warm.seq, "history_s": warm.history_ns / 1e9,
                           "prelude_records": len(warm.prelude)}
        return eng, warm.seq

    def _warm_start(self, from_ns: int) -> WarmStart | None:
        """Enough history before `from_ns` for the longest-reaching registry this replay can meet."""
        if self.manifest.compacted_through == 0:
            return None
        registries = [self.registry] if self.registry is not None else [
            load_registry_text(p["registry"], source="store session") for p in self.journaled_sessions()]
        refs = store_files(self.roots, self.manifest, self.symbols)
        longest = max(registries or [default_registry()], key=warm_ns)
        return warm_start(refs, from_ns, longest)

    def _checkpoint_before(self, from_ns: int) -> tuple[Engine, int] | None:
        """The newest checkpoint whose engine has not yet seen the tick at `from_ns` (newest first:
        only checkpoints newer than the one chosen are restored to look)."""
        found = [(seq, path) for d in (checkpoint_dir(self.roots), self.shard_checkpoints)
                 if d is not None and d.is_dir() for seq, path in CheckpointStore(d, keep=1000).list()]
        for seq, path in sorted(found, reverse=True):
            eng = _restore(path, seq)
            if eng is None or eng.last_tick_ns >= from_ns:
                continue
            if self.symbols is not None:
                eng.only_symbols = frozenset(self.symbols)
                eng._set_symbols(eng.symbols)  # the what-if filter, as if the engine had started with it
            self.info.start = {"from": "checkpoint", "seq": seq + 1, "path": str(path),
                               "tick_ns": eng.last_tick_ns}
            return eng, seq + 1
        return None

    def _legacy_symbols(self) -> list[str]:
        """Symbols for a store compacted from a journal without SESSION records (its files' symbols)."""
        if self.journaled_sessions():
            return []
        return sorted({f.symbol for f in self.manifest.files if f.symbol})

    def journaled_sessions(self) -> list[dict[str, Any]]:
        """The payloads of every SESSION record in the store's control table, oldest first."""
        out: list[dict[str, Any]] = []
        for ref in sorted(store_files(self.roots, self.manifest), key=lambda r: r.first_seq):
            if ref.table != CONTROL_TABLE:
                continue
            t = pq.read_table(ref.path, filters=[("kind", "=", int(Kind.SESSION))])
            out.extend(r.payload for r in table_to_records(CONTROL_TABLE, t, ""))
        return out

    # -- folding --
    def items(self, from_seq: int) -> Iterator[list[Record | DeltaRun]]:
        """Batches of records and delta runs in fold order: the store's windows, then the journal tail."""
        through = self.manifest.compacted_through
        if self.prelude:
            self.info.store_records += len(self.prelude)
            yield list(self.prelude)
        if from_seq <= through:
            yield from self._store_items(from_seq)
        if self.journal_dir is not None:
            yield from self._journal_items(max(from_seq, through + 1))

    def _store_items(self, from_seq: int) -> Iterator[list[Record | DeltaRun]]:
        tables = _Tables(store_files(self.roots, self.manifest, self.symbols), from_seq)
        try:
            lo = from_seq
            while not tables.exhausted():
                w = tables.window(lo + WINDOW_SEQS)
                lo += WINDOW_SEQS
                items = window_items(w)
                self.info.store_records += len(w.records) + sum(len(c.seq) for c in (*w.deltas, *w.trades))
                self.info.delta_runs += sum(1 for x in items if type(x) is DeltaRun)
                self.info.level_updates += sum(len(d.b_px) + len(d.a_px) for d in w.deltas)
                if items:
                    yield items
        finally:
            tables.close()

    def _journal_items(self, from_seq: int) -> Iterator[list[Record | DeltaRun]]:
        assert self.journal_dir is not None
        batch: list[Record | DeltaRun] = []
        first = True
        for rec in JournalReader(self.journal_dir).records(from_seq=from_seq):
            if first and rec.seq > from_seq and from_seq > 1:
                raise StoreGap(f"seqs {from_seq}..{rec.seq - 1} are in neither the store {self.roots.hot} "
                               f"nor the journal {self.journal_dir}")
            first = False
            batch.append(rec)
            if len(batch) >= TAIL_BATCH:
                self.info.journal_records += len(batch)
                yield batch
                batch = []
        if batch:
            self.info.journal_records += len(batch)
            yield batch


def _restore(path: Path, seq: int) -> Engine | None:
    """The engine of one checkpoint file; None when it is unreadable or of an older format."""
    from journal.checkpoints import CheckpointDamaged, read_checkpoint

    try:
        _, data, _ = read_checkpoint(path, expect_seq=seq)
        return Engine.restore(data)
    except (OSError, CheckpointDamaged, ValueError, KeyError, TypeError):
        return None


def fold_vectors(fold: Fold, batches: Iterable[list[Record | DeltaRun]], from_ns: int | None,
                 to_ns: int | None) -> Iterator[Vector]:
    """Fold `batches`; yield the vectors of ticks with from_ns ≤ ts < to_ns, and stop reading at `to_ns`."""
    for items in batches:
        for v in fold.batch(items).vectors:
            if to_ns is not None and v.ts_ns >= to_ns:
                return
            if from_ns is None or v.ts_ns >= from_ns:
                yield v


def replay_store(roots: StoreRoots, journal_dir: str | Path | None, *, registry: Registry | None = None,
                 symbols: Iterable[str] | None = None, from_ns: int | None = None, to_ns: int | None = None,
                 shard_checkpoints: Path | None = None) -> tuple[Iterator[Vector], Fold, StoreReader]:
    """Vectors of every tick with from_ns ≤ ts < to_ns, read from the store then the journal tail.

    The engine is chosen now (checkpoint or beginning: `reader.info.start`); the Fold carries the
    counters and registries as the iterator runs.
    """
    reader = StoreReader(roots, journal_dir, registry=registry, symbols=symbols, shard_checkpoints=shard_checkpoints)
    engine, from_seq = reader.start_engine(from_ns)
    fold = Fold(engine)
    return fold_vectors(fold, reader.items(from_seq), from_ns, to_ns), fold, reader


# --- checkpoints at date boundaries ----------------------------------------------------------------

def save_date_checkpoints(roots: StoreRoots) -> list[Path]:
    """Fold the store from its newest date checkpoint to its end; save one before each new UTC date's first tick.

    Compaction calls this after committing, so `replay --from` can start near its date instead of
    at the store's beginning.
    """
    ckpts = CheckpointStore(checkpoint_dir(roots), keep=1000)
    reader = StoreReader(roots, None)
    newest = ckpts.load_newest()
    engine = Engine.restore(newest.data) if newest is not None else None
    from_seq = newest.seq + 1 if newest is not None else 1
    if engine is None:
        engine, from_seq = reader.start_engine(None)
    fold = Fold(engine)
    saved: list[Path] = []
    last_tick = engine.last_tick_ns
    for items in reader.items(from_seq):
        start = 0
        for i, item in enumerate(items):
            if type(item) is not Record or item.kind != _TICK:
                continue
            if 0 < last_tick and last_tick // NS_PER_DAY < item.recv_ns // NS_PER_DAY:
                fold.batch(items[start:i])
                engine.last_seq = item.seq - 1
                saved.append(ckpts.save(item.seq - 1, engine.checkpoint(),
                                        {"tick_ns": item.recv_ns, "kind": "date_boundary"}))
                start = i
            last_tick = max(last_tick, item.recv_ns)
        fold.batch(items[start:])
    return saved
