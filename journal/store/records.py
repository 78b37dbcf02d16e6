"""The simple lossless read path: every committed record of the store, rebuilt, in seq order.

Files are read row group by row group (rows of one message that straddle a group boundary are
held back until the rest arrives), and the files of every table and partition are merged by
seq with a heap, so memory is bounded by one row group per open file, whatever the range.
Only files the manifest names are read (hot and archive); anything else is an uncommitted
leftover.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from engine.record import MARKET_KINDS, Record
from journal.store.layout import CONTROL_TABLE, StoreRoots
from journal.store.manifest import FileEntry, Manifest
from journal.store.tables import table_to_records


def file_path(roots: StoreRoots, entry: FileEntry) -> Path:
    """Absolute path of a committed file in its location (hot or archive)."""
    if entry.location == "archive":
        if roots.archive is None:
            raise FileNotFoundError(f"{entry.path}: the manifest places it in the archive, but no archive is set")
        return roots.archive / entry.path
    return roots.hot / entry.path


def file_records(path: Path, table: str, symbol: str, from_seq: int = 0, to_seq: int | None = None,
                 columns: list[str] | None = None) -> Iterator[Record]:
    """The records of one store file in seq order, one row group at a time (seq range filter)."""
    with pq.ParquetFile(path, memory_map=True) as f:
        carry: pa.Table | None = None
        groups = _groups(f, from_seq, to_seq)
        for n, g in enumerate(groups):
            t = f.read_row_group(g, columns=columns)
            if carry is not None:
                t = pa.concat_tables([carry, t])
                carry = None
            if n < len(groups) - 1 and t.num_rows:
                t, carry = hold_last_message(t)
            for rec in table_to_records(table, t, symbol):
                if rec.seq >= from_seq and (to_seq is None or rec.seq <= to_seq):
                    yield rec
        if carry is not None:
            yield from (r for r in table_to_records(table, carry, symbol)
                        if r.seq >= from_seq and (to_seq is None or r.seq <= to_seq))


def _groups(f: pq.ParquetFile, from_seq: int, to_seq: int | None) -> list[int]:
    """Row groups that may hold seqs in range (by the seq column's statistics), plus neighbours kept whole."""
    md = f.metadata
    col = f.schema_arrow.get_field_index("seq")
    keep: list[int] = []
    for g in range(md.num_row_groups):
        st = md.row_group(g).column(col).statistics
        if st is not None and st.has_min_max and (st.max < from_seq or (to_seq is not None and st.min > to_seq)):
            continue
        keep.append(g)
    return keep


def hold_last_message(t: pa.Table) -> tuple[pa.Table, pa.Table | None]:
    """Split off the rows of the table's last seq (they may continue in the next row group)."""
    seq = t.column("seq").to_numpy()
    last = seq[-1]
    cut = len(seq)
    while cut > 0 and seq[cut - 1] == last:
        cut -= 1
    return t.slice(0, cut), t.slice(cut)


def committed_files(manifest: Manifest, from_seq: int = 0, to_seq: int | None = None,
                    symbols: Iterable[str] | None = None) -> list[FileEntry]:
    """Manifest files overlapping the seq range (market files of `symbols` only, control always)."""
    want = None if symbols is None else set(symbols)
    return [f for f in manifest.files
            if f.last_seq >= from_seq and (to_seq is None or f.first_seq <= to_seq)
            and (want is None or f.table == CONTROL_TABLE or f.symbol in want)]


def read_records(roots: StoreRoots, from_seq: int = 0, to_seq: int | None = None,
                 symbols: Iterable[str] | None = None) -> Iterator[Record]:
    """Every committed record with from_seq <= seq <= to_seq, in seq order (hot + archive).

    `symbols` keeps market records of those symbols; control records (ticks, sessions, bad
    frames, market records kept in control because their payload did not fit) always pass,
    except market-kind records of other symbols.
    """
    manifest = Manifest.load(roots.hot)
    want = None if symbols is None else set(symbols)
    files = sorted(committed_files(manifest, from_seq, to_seq, want), key=lambda f: f.first_seq)
    for rec in merge_files(roots, files, from_seq, to_seq):
        if want is None or rec.kind not in MARKET_KINDS or rec.symbol in want:
            yield rec


def merge_files(roots: StoreRoots, files: list[FileEntry], from_seq: int = 0,
                to_seq: int | None = None) -> Iterator[Record]:
    """Records of `files` (sorted by first_seq) merged by seq; a file is opened only when its seqs are next."""
    heap: list[tuple[int, int, Record, Iterator[Record]]] = []
    i = 0
    while heap or i < len(files):
        while i < len(files) and (not heap or files[i].first_seq <= heap[0][0]):
            f = files[i]
            _push(heap, i, file_records(file_path(roots, f), f.table, f.symbol, from_seq, to_seq))
            i += 1
        if not heap:
            continue
        _, n, rec, it = heapq.heappop(heap)
        yield rec
        _push(heap, n, it)


def _push(heap: list[tuple[int, int, Record, Iterator[Record]]], n: int, it: Iterator[Record]) -> None:
    rec = next(it, None)
    if rec is not None:
        heapq.heappush(heap, (rec.seq, n, rec, it))
