"""Read the store's tables column-wise, in seq windows, one cursor per Parquet file.

Replay from the store never builds a `Record` per book delta: the deltas of a seq window come out
as flat numpy arrays (seq, recv_ns, depth, u and the level lists' offsets and values), straight
from Arrow; every other table comes out as Arrow slices the caller turns into records. A cursor
holds one record batch of its file at a time, so memory is bounded by the number of open files
times the batch size, whatever the length of the range.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.runs import TradesRun

#: Rows per record batch a cursor reads.
BATCH_ROWS = 16_384


class FileRef(NamedTuple):
    """One committed store file: its table, partition symbol, seq range and absolute path."""

    table: str
    symbol: str
    first_seq: int
    last_seq: int
    path: Path


class Cursor:
    """Rows of one Parquet file in seq order, handed out window by window (`take` rows below a seq)."""

    def __init__(self, ref: FileRef, columns: Sequence[str] | None = None, from_seq: int = 0) -> None:
        self.ref = ref
        self._file = pq.ParquetFile(ref.path, memory_map=False)  # mapped pages would count as RSS
        self._batches = self._file.iter_batches(batch_size=BATCH_ROWS, columns=list(columns) if columns else None)
        self._buf: pa.RecordBatch | None = None
        self._seqs = np.empty(0, dtype=np.int64)
        self.done = False
        if from_seq > ref.first_seq:
            self.take(from_seq)  # skip what lies before the start

    def take(self, below_seq: int) -> pa.Table | None:
        """Return the rows with seq < `below_seq` not yet handed out (None when there are none)."""
        parts: list[pa.RecordBatch] = []
        while not self.done:
            if self._buf is None and not self._next():
                break
            assert self._buf is not None
            cut = int(np.searchsorted(self._seqs, below_seq, side="left"))
            if cut == 0:
                break
            if cut == len(self._seqs):
                parts.append(self._buf)
                self._buf = None
                continue
            parts.append(self._buf.slice(0, cut))
            self._buf, self._seqs = self._buf.slice(cut), self._seqs[cut:]
            break
        if not parts:
            return None
        return pa.Table.from_batches(parts)

    def _next(self) -> bool:
        """Load the next record batch; False (and done) at the end of the file."""
        batch = next(self._batches, None)
        if batch is None:
            self.done = True
            self._file.close()
            return False
        self._buf = batch
        self._seqs = batch.column("seq").to_numpy()
        return True

    def close(self) -> None:
        """Release the file."""
        self.done = True
        self._file.close()


class DeltaColumns(NamedTuple):
    """The book deltas of one symbol in a window: per-message arrays and the flat level values."""

    symbol: str
    seq: np.ndarray
    recv_ns: np.ndarray
    depth: np.ndarray
    u: np.ndarray
    b_off: np.ndarray
    b_px: np.ndarray
    b_sz: np.ndarray
    a_off: np.ndarray
    a_px: np.ndarray
    a_sz: np.ndarray


#: Columns of raw_orderbook_deltas the fast path reads.
DELTA_COLUMNS = ("seq", "recv_ns", "depth", "u", "bid_price", "bid_size", "ask_price", "ask_size", "extra")


def delta_columns(symbol: str, table: pa.Table) -> DeltaColumns | None:
    """Flatten one window of a deltas file; None when some row needs the record path (an `extra` payload)."""
    if table.column("extra").null_count != table.num_rows:
        return None
    b_off, b_px = _flat(table.column("bid_price"))
    b_off2, b_sz = _flat(table.column("bid_size"))
    a_off, a_px = _flat(table.column("ask_price"))
    a_off2, a_sz = _flat(table.column("ask_size"))
    if not (np.array_equal(b_off, b_off2) and np.array_equal(a_off, a_off2)):
        return None  # price and size lists of unequal lengths: let the record path report it
    col = table.column
    return DeltaColumns(symbol, _ints(col("seq")), _ints(col("recv_ns")), _ints(col("depth")), _ints(col("u")),
                        b_off, b_px, b_sz, a_off, a_px, a_sz)


#: Columns of raw_trades the fast path reads.
TRADE_COLUMNS = ("seq", "recv_ns", "index", "price", "size", "side", "trade_id")


def trade_columns(symbol: str, table: pa.Table) -> TradesRun:
    """Regroup one window of a trades file (a row per trade, `index` -1 for an empty message) by message:
    every trade message of the window as one run (`replay.trade_runs` cuts it at barriers)."""
    seq_rows = _ints(table.column("seq"))
    starts = np.flatnonzero(np.concatenate(([True], seq_rows[1:] != seq_rows[:-1])))
    real = _ints(table.column("index")) >= 0
    # offsets count only real trades: message i's trades are the real rows among its rows
    real_before = np.concatenate(([0], np.cumsum(real)))
    off = np.concatenate((real_before[starts], [real_before[-1]])).astype(np.int64)
    kept = table.filter(pa.array(real)) if not real.all() else table
    side = np.ascontiguousarray(kept.column("side").to_numpy(), dtype=np.int8)
    return TradesRun(symbol, seq_rows[starts], _ints(table.column("recv_ns"))[starts], off,
                        _floats(kept.column("price")), _floats(kept.column("size")), side,
                        kept.column("trade_id").to_pylist())


def _floats(col: pa.ChunkedArray) -> np.ndarray:
    return np.ascontiguousarray(col.to_numpy(), dtype=np.float64)


def _ints(col: pa.ChunkedArray) -> np.ndarray:
    return np.ascontiguousarray(col.to_numpy(), dtype=np.int64)


def _flat(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, from 0) and flat float64 values of a list column (nulls read as empty lists)."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar([], type=arr.type))
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    start, end = int(offsets[0]), int(offsets[-1])
    return offsets - start, np.ascontiguousarray(values[start:end], dtype=np.float64)


def open_cursors(refs: Sequence[FileRef], from_seq: int, columns: Sequence[str] | None = None) -> list[Cursor]:
    """Cursors on the files that hold rows at or after `from_seq`, oldest first."""
    return [Cursor(r, columns, from_seq) for r in sorted(refs, key=lambda r: r.first_seq) if r.last_seq >= from_seq]


def take_all(cursors: list[Cursor], below_seq: int) -> Iterator[tuple[FileRef, pa.Table]]:
    """Each cursor's rows below `below_seq`; cursors whose files are exhausted are dropped from the list."""
    for c in cursors:
        if c.ref.first_seq >= below_seq:
            continue
        t = c.take(below_seq)
        if t is not None and t.num_rows:
            yield c.ref, t
    cursors[:] = [c for c in cursors if not c.done]
