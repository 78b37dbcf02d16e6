"""Compaction: journal segments no writer holds -> the store's Parquet tables, crash-safe and idempotent.

One run, in order (every step is safe to die in; a rerun finishes the job and gives the same store):

1. take the store lock; delete every file under the table directories the manifest does not name
   (a crashed run's temp or unpublished files);
2. read the journal records after the manifest's ``compacted_through`` (all segments when the
   journal's writer lock is free, else all but the writer's newest one), decoding chunk by chunk,
   and stream them into one temp file per (table, date, symbol) partition, hashing the original
   frames;
3. read every temp file back and check its record count and checksum, then rename it to
   ``part-<first_seq>-<last_seq>.parquet``;
4. save the manifest naming the new files, the segments and the run (the commit point);
5. delete the compacted segments (``store.delete_segments``): never the journal's newest one, never
   one holding seqs after the newest shard checkpoint, and only after a fresh scan of the segment
   matches what the manifest says was compacted from it;
6. consolidate partitions whose consecutive files are all small (see `consolidate`).

Damage in a closed segment stops reading there: what came before is compacted, the damage is
reported (`CompactSummary.damage`), nothing after it is touched.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import logging
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from engine.record import Record
from journal.codec import FRAME_HEAD_SIZE, decode_body
from journal.errors import JournalCorruption, JournalError
from journal.reader import Chunk, JournalReader, check_journal_dir
from journal.segment import list_segments, scan_segment
from journal.store.config import StoreConfig
from journal.store.fastbook import book_table, chunk_books, gather_bytes
from journal.store.fasttrades import chunk_trades, trades_table
from journal.store.layout import TABLES
from journal.store.manifest import FileEntry, Manifest, RunEntry, SegmentEntry
from journal.store.parts import PartWriter, publish, verify_file
from journal.store.tables import build_table, partition_indices

log = logging.getLogger(__name__)

#: Steps after which a run calls its `hook` (tests crash there, or damage a temp file before verify).
STEPS = ("cleaned", "written", "verified", "published", "committed", "deleted", "swapped", "consolidated")

Hook = Callable[[str], None]


class CompactError(JournalError):
    """Compaction cannot proceed (store dir unset, a written file failed verification); names the thing."""


@dataclass
class CompactSummary:
    """What one compaction run did."""

    run: int = 0
    records: int = 0
    files: int = 0
    segments: int = 0  #: segments whose records were compacted (wholly or partly) this run
    segments_deleted: int = 0
    consolidated: int = 0  #: files merged away by consolidation
    leftovers: int = 0  #: uncommitted files of an earlier crashed run deleted
    first_seq: int = 0
    last_seq: int = 0
    compacted_through: int = 0
    seconds: float = 0.0
    records_per_s: float = 0.0
    damage: str | None = None  #: damage met in a closed segment (reading stopped there)
    tail: str | None = None  #: bytes after the last whole frame of the newest segment (not compacted)
    checkpoints: int = 0  #: date checkpoints saved after the commit
    checkpoint_seconds: float = 0.0  #: of `seconds`, the time saving them took (not in records_per_s)
    dry_run: bool = False
    plan: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        out = dict(self.__dict__)
        if not self.dry_run:
            out.pop("plan")
        return out


def _step(hook: Hook | None, name: str) -> None:
    if hook is not None:
        hook(name)


# -- locks -----------------------------------------------------------------------------------------

def writer_active(journal_dir: Path) -> bool:
    """True when a journal writer holds the journal's lock (its newest segment is then live)."""
    lock = journal_dir / ".lock"
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)  # closing drops the probe lock at once
    return False


@contextlib.contextmanager
def _store_lock(hot: Path) -> Iterator[None]:
    from journal.store.retention import store_lock

    hot.mkdir(parents=True, exist_ok=True)
    with store_lock(hot):
        yield


# -- leftovers ---------------------------------------------------------------------------------------

def leftovers(hot: Path, manifest: Manifest) -> list[Path]:
    """Files under the table directories the manifest does not name (uncommitted), and stray manifest temps."""
    named = manifest.paths()
    out = [p for p in hot.glob(".tmp-manifest-*") if p.is_file()]
    for table in TABLES:
        root = hot / table
        if root.is_dir():
            out += [p for p in sorted(root.rglob("*")) if p.is_file() and p.relative_to(hot).as_posix() not in named]
    return out


def _remove_leftovers(paths: list[Path]) -> None:
    """Delete uncommitted files and the partition directories they leave empty."""
    dirs = set()
    for p in paths:
        p.unlink(missing_ok=True)
        dirs.add(p.parent)
    _prune_dirs(dirs)


def _prune_dirs(dirs: set[Path]) -> None:
    """Drop partition directories left empty (deepest first)."""
    for d in sorted(dirs, key=lambda d: len(d.parts), reverse=True):
        while d.name.startswith(("date=", "symbol=")):
            try:
                d.rmdir()
            except OSError:
                break
            d = d.parent


# -- reading the journal -------------------------------------------------------------------------

def _chunks(journal_dir: Path, after_seq: int, stop_path: Path | None, out: CompactSummary) -> Iterator[Chunk]:
    """Verified frame chunks holding seqs > after_seq, up to (not into) `stop_path`; damage ends them (reported)."""
    reader = JournalReader(journal_dir)
    try:
        for chunk in reader.chunks(after_seq + 1):
            if stop_path is not None and chunk.path.name >= stop_path.name:
                break
            yield chunk
    except JournalCorruption as e:
        out.damage = str(e)
        log.warning("compact: %s; compacting only the records before it", e)
    if reader.tail is not None and (stop_path is None or reader.tail.path.name < stop_path.name):
        out.tail = f"{reader.tail.path}: {reader.tail.reason} at offset {reader.tail.offset} (not compacted)"


def _decode(buf: memoryview, starts: list[int], ends: list[int], seqs: list[int], recvs: list[int],
            kinds: list[int]) -> list[Record]:
    """Decode frames the fast book path did not take."""
    out = []
    add = out.append
    for s, e, seq, recv_ns, kind in zip(starts, ends, seqs, recvs, kinds, strict=True):
        symbol, ts, cts, payload = decode_body(buf[s + FRAME_HEAD_SIZE:e])
        add(tuple.__new__(Record, (seq, recv_ns, kind, symbol, ts, cts, payload)))
    return out


# -- one run ---------------------------------------------------------------------------------------

@dataclass
class _Run:
    """The state of one run between reading and the commit."""

    hot: Path
    cfg: StoreConfig
    run: int
    writers: dict[tuple[str, str, str], PartWriter] = field(default_factory=dict)
    segs: dict[str, list[int]] = field(default_factory=dict)  #: name -> [first, last, records]
    records: int = 0
    io: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=1))

    def add_chunk(self, chunk: Chunk, after_seq: int) -> None:
        """Sort a chunk's records into partitions; hand each writer its rows and original frames."""
        f = chunk.frames
        sel = np.flatnonzero(f.seq > after_seq)
        if not len(sel):
            return
        buf = np.frombuffer(chunk.data, dtype=np.uint8)
        starts = (f.offset[sel] - chunk.base).astype(np.int64)
        lens = f.length[sel].astype(np.int64)
        seqs, recvs, kinds = f.seq[sel].astype(np.int64), f.recv_ns[sel].astype(np.int64), f.kind[sel]
        books = chunk_books(buf, starts, lens, kinds, recvs)
        trades = chunk_trades(buf, starts, lens, kinds, recvs)
        parts: dict[tuple[str, str, str], list[tuple[np.ndarray, pa.Table]]] = {}
        for key, rows in books.parts.items():
            pos = books.pos[rows]
            parts.setdefault(key, []).append((pos, book_table(key[0], buf, books.cols[rows], seqs[pos], recvs[pos])))
        for key, rows in trades.parts.items():
            pos = trades.pos[rows]
            parts.setdefault(key, []).append((pos, trades_table(buf, trades.cols[rows], seqs[pos], recvs[pos])))
        slow = np.flatnonzero(~(books.taken | trades.taken))
        if len(slow):
            recs = _decode(memoryview(chunk.data), starts[slow].tolist(), (starts[slow] + lens[slow]).tolist(),
                           seqs[slow].tolist(), recvs[slow].tolist(), kinds[slow].tolist())
            for key, idx in partition_indices(recs).items():
                order = idx.tolist()
                parts.setdefault(key, []).append((slow[idx], build_table(key[0], [recs[i] for i in order])))
        for key, pieces in parts.items():
            self._write(key, pieces, buf, starts, lens, seqs)
        self._track(chunk.path.name, seqs)

    def _write(self, key: tuple[str, str, str], pieces: list[tuple[np.ndarray, pa.Table]], buf: np.ndarray,
               starts: np.ndarray, lens: np.ndarray, seqs: np.ndarray) -> None:
        """One partition's rows of a chunk (fast and decoded pieces merged by seq) to its writer."""
        if len(pieces) == 1:
            pos, table = pieces[0]
        else:
            pos = np.concatenate([p for p, _ in pieces])
            table = pa.concat_tables([t for _, t in pieces])
            order = np.argsort(pos, kind="stable")
            pos = pos[order]
            if table.num_rows == len(order):  # book tables: one row per record
                table = table.take(pa.array(order))
            else:
                table = table.sort_by([("seq", "ascending")])
        w = self.writers.get(key)
        if w is None:
            w = self.writers[key] = PartWriter(self.hot, key, self.run, len(self.writers), self.cfg.row_group_rows,
                                               self.cfg.compression_level, self.io)
        frames = gather_bytes(buf, starts[pos], lens[pos])
        w.add(table, [frames], int(seqs[pos[0]]), int(seqs[pos[-1]]), len(pos))
        self.records += len(pos)

    def _track(self, name: str, seqs: np.ndarray) -> None:
        """Extend this run's record of what it took from segment `name`."""
        s = self.segs.get(name)
        if s is None:
            self.segs[name] = [int(seqs[0]), int(seqs[-1]), len(seqs)]
        else:
            s[1], s[2] = int(seqs[-1]), s[2] + len(seqs)


def _segment_entries(manifest: Manifest, segs: dict[str, list[int]], run: int) -> list[SegmentEntry]:
    """The manifest's segment list with this run's ranges added (a segment compacted before is extended)."""
    out = {s.name: s for s in manifest.segments}
    for name, (first, last, n) in segs.items():
        old = out.get(name)
        if old is None:
            out[name] = SegmentEntry(name, first, last, n, run)
        else:
            out[name] = old._replace(first_seq=min(old.first_seq, first), last_seq=max(old.last_seq, last),
                                     records=old.records + n, run=run)
    return sorted(out.values(), key=lambda s: s.name)


def _write_and_verify(state: _Run, hook: Hook | None) -> list[FileEntry]:
    """Close every temp file, verify it, rename it to its final name; the new manifest entries."""
    tmps = [(w, w.close()) for w in state.writers.values()]
    _step(hook, "written")
    # Parquet reads, the frame-rebuilding kernels and hashing release the GIL: verify files side by side.
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        list(pool.map(lambda wt: verify_file(wt[1], wt[0].table, wt[0].symbol, wt[0].records,
                                             wt[0].hash.hexdigest()), tmps))
    _step(hook, "verified")
    entries = []
    for w, tmp in tmps:
        final = tmp.with_name(w.final_name)
        size = tmp.stat().st_size
        publish(tmp, final)
        entries.append(FileEntry(final.relative_to(state.hot).as_posix(), w.table, w.date, w.symbol, w.rows,
                                 w.records, w.first_seq, w.last_seq, w.hash.hexdigest(), size, "hot", state.run))
    _step(hook, "published")
    return entries


def compact(journal_dir: str | Path, cfg: StoreConfig, *, now_ns: int | None = None,
            checkpoints_dir: Path | None = None, dry_run: bool = False,
            hook: Hook | None = None) -> CompactSummary:
    """Compact the journal's segments no writer holds into the store at `cfg.dir` (see the module docstring).

    `checkpoints_dir` is the shard's checkpoint directory: no segment holding seqs after its newest
    checkpoint is deleted (a restart must find its tail). `hook` (tests) is called with each of
    `STEPS` as the run passes it; an exception raised there stops the run as if it died.
    """
    t0 = time.perf_counter()
    if not cfg.dir:
        raise CompactError("store.dir: no store directory given")
    jdir = check_journal_dir(journal_dir)
    hot = Path(cfg.dir)
    if dry_run:
        return _dry_run(jdir, hot, cfg)
    with _store_lock(hot), _gc_paused():
        out = _compact_locked(jdir, hot, cfg, checkpoints_dir, hook)
        took = time.perf_counter() - t0
        if cfg.checkpoints and out.records:
            out.checkpoints = _date_checkpoints(hot, cfg)
    out.seconds = round(time.perf_counter() - t0, 3)
    out.checkpoint_seconds = round(out.seconds - took, 3)
    out.records_per_s = round(out.records / took, 1) if took > 0 else 0.0
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Automatic GC off for the run: it holds ~10^5 live records per batch, whose full collections
    cost more than the conversion itself; what the run drops is acyclic and freed by refcount."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _compact_locked(jdir: Path, hot: Path, cfg: StoreConfig, checkpoints_dir: Path | None,
                    hook: Hook | None) -> CompactSummary:
    manifest = Manifest.load(hot)
    left = leftovers(hot, manifest)
    _remove_leftovers(left)
    _step(hook, "cleaned")
    out = CompactSummary(leftovers=len(left))
    segments = list_segments(jdir)
    stop = segments[-1][1] if segments and writer_active(jdir) else None
    state = _Run(hot, cfg, manifest.next_run())
    try:
        for chunk in _chunks(jdir, manifest.compacted_through, stop, out):
            state.add_chunk(chunk, manifest.compacted_through)
        out.records = state.records
        entries = _write_and_verify(state, hook) if state.writers else []
    finally:
        state.io.shutdown(wait=True)
    if entries:
        first = min(e.first_seq for e in entries)
        last = max(e.last_seq for e in entries)
        manifest.replace_files((), entries)
        manifest.segments = _segment_entries(manifest, state.segs, state.run)
        manifest.runs.append(RunEntry(state.run, first, last, out.records, len(entries)))
        manifest.compacted_through = max(manifest.compacted_through, last)
        manifest.save(hot)
        out.run, out.files, out.first_seq, out.last_seq = state.run, len(entries), first, last
        out.segments = len(state.segs)
        log.info("compact: run %d: %d records (seqs %d..%d) into %d files", state.run, out.records, first, last,
                 len(entries))
    _step(hook, "committed")
    out.compacted_through = manifest.compacted_through
    if cfg.delete_segments:
        out.segments_deleted = delete_segments(jdir, hot, manifest, checkpoints_dir)
    _step(hook, "deleted")
    from journal.store.consolidate import consolidate

    out.consolidated = consolidate(hot, cfg, manifest, state.run or manifest.next_run() - 1, hook)
    _step(hook, "consolidated")
    return out


def _date_checkpoints(hot: Path, cfg: StoreConfig) -> int:
    """Engine checkpoints at the store's UTC date boundaries (replay starts near --from)."""
    from journal.store.layout import StoreRoots
    from journal.store.replay import save_date_checkpoints

    roots = StoreRoots(hot, Path(cfg.archive_dir) if cfg.archive_dir else None)
    return len(save_date_checkpoints(roots))


# -- deleting compacted segments -----------------------------------------------------------------

def newest_checkpoint_seq(checkpoints_dir: Path | None) -> int | None:
    """Seq of the shard's newest checkpoint (0 when there is none); None when there is no such limit."""
    if checkpoints_dir is None:
        return None
    if not Path(checkpoints_dir).is_dir():
        return 0
    from journal.checkpoints import CheckpointStore

    return max((seq for seq, _ in CheckpointStore(checkpoints_dir).list()), default=0)


def deletable(jdir: Path, hot: Path, manifest: Manifest, checkpoints_dir: Path | None) -> list[Path]:
    """Compacted segments safe to delete now (see the module docstring, step 5)."""
    segments = list_segments(jdir)
    limit = newest_checkpoint_seq(checkpoints_dir)
    entries = {s.name: s for s in manifest.segments if not s.deleted}
    out = []
    for first, path in segments[:-1]:  # never the newest
        e = entries.get(path.name)
        if e is None or e.last_seq > manifest.compacted_through or (limit is not None and e.last_seq > limit):
            continue
        if _scan_matches(path, first, e) and _files_cover(hot, manifest, e):
            out.append(path)
    return out


def _scan_matches(path: Path, first: int, e: SegmentEntry) -> bool:
    """A fresh CRC scan of the segment shows exactly the records the manifest says were compacted from it."""
    try:
        scan = scan_segment(path)
    except (OSError, JournalCorruption):
        return False
    n = len(scan.seq)
    return bool(scan.clean and n == e.records and n and int(scan.seq[0]) == e.first_seq == first
                and int(scan.seq[-1]) == e.last_seq)


def _files_cover(hot: Path, manifest: Manifest, e: SegmentEntry) -> bool:
    """Every hot file holding seqs of the segment is in place with the size the manifest verified."""
    for f in manifest.files:
        if f.location == "hot" and f.first_seq <= e.last_seq and f.last_seq >= e.first_seq:
            p = hot / f.path
            if not p.is_file() or p.stat().st_size != f.bytes:
                return False
    return True


def delete_segments(jdir: Path, hot: Path, manifest: Manifest, checkpoints_dir: Path | None) -> int:
    """Delete the deletable compacted segments, marking each deleted in the manifest first."""
    paths = deletable(jdir, hot, manifest, checkpoints_dir)
    if not paths:
        return 0
    manifest.mark_deleted(p.name for p in paths)
    manifest.save(hot)
    for p in paths:
        p.unlink(missing_ok=True)
        log.info("compact: deleted compacted segment %s", p)
    from journal.durable import fsync_dir

    fsync_dir(jdir)
    return len(paths)


# -- dry run ---------------------------------------------------------------------------------------

def _dry_run(jdir: Path, hot: Path, cfg: StoreConfig) -> CompactSummary:
    """What a run would do: records and segments to compact, leftovers, nothing changed."""
    manifest = Manifest.load(hot)
    out = CompactSummary(dry_run=True)
    segments = list_segments(jdir)
    stop = segments[-1][1] if segments and writer_active(jdir) else None
    index = JournalReader(jdir)
    seqs: dict[str, list[int]] = {}
    try:
        for chunk in index.chunks(manifest.compacted_through + 1):
            if stop is not None and chunk.path.name >= stop.name:
                break
            sel = chunk.frames.seq[chunk.frames.seq > manifest.compacted_through]
            if len(sel):
                s = seqs.setdefault(chunk.path.name, [int(sel[0]), 0, 0])
                s[1], s[2] = int(sel[-1]), s[2] + len(sel)
    except JournalCorruption as e:
        out.damage = str(e)
    out.records = sum(s[2] for s in seqs.values())
    out.segments = len(seqs)
    out.leftovers = len(leftovers(hot, manifest)) if hot.is_dir() else 0
    out.compacted_through = manifest.compacted_through
    out.plan = {"segments": [{"name": n, "first_seq": a, "last_seq": b, "records": c} for n, (a, b, c) in seqs.items()],
                "leftovers": [p.relative_to(hot).as_posix() for p in leftovers(hot, manifest)] if hot.is_dir() else []}
    return out
