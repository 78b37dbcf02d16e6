"""Writing and verifying one store file: temp file, row groups, read back, checksum, rename.

A file is written as ``.tmp-<run>-<n>.parquet`` in its partition directory, fsynced, read back
whole and checked (record count and a SHA-256 checksum over the codec frames of the rebuilt
records, which must equal the one taken over the original journal frames), and only then renamed
to ``part-<first_seq>-<last_seq>.parquet``. Nothing here touches the manifest.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.record import Record
from journal.codec import encode
from journal.durable import fsync_dir
from journal.errors import JournalError
from journal.store.fastbook import book_frames
from journal.store.fasttrades import trade_frames
from journal.store.layout import part_name, partition_dir
from journal.store.records import file_records, hold_last_message
from journal.store.tables import SCHEMAS

BOOK_KINDS = {"raw_orderbook_snapshots": 1, "raw_orderbook_deltas": 2}
#: A partition's buffered rows are written out as a row group at this many bytes even below row_group_rows.
MAX_BUFFER_BYTES = 32 * 1024 * 1024


class VerifyError(JournalError):
    """A written file does not give back the records it was written from (names the file)."""


def new_hash() -> Any:
    """The checksum the manifest keeps per file: SHA-256 over codec frames in seq order (the fastest
    strong hash here: ~1 GB/s with the CPU's SHA instructions, blake2b ~0.7 GB/s)."""
    return hashlib.sha256()


def records_checksum(records: Iterable[Record]) -> tuple[int, str]:
    """Count and checksum of records (each hashed as its journal frame)."""
    h, n = new_hash(), 0
    batch: list[bytes] = []
    for rec in records:
        batch.append(encode(rec))
        if len(batch) >= 4096:
            h.update(b"".join(batch))
            n += len(batch)
            batch = []
    h.update(b"".join(batch))
    return n + len(batch), h.hexdigest()


def writer_options(compression_level: int) -> dict[str, object]:
    """ParquetWriter options: zstd; dictionaries for text only (float dictionaries could fold -0.0 and NaNs)."""
    return {"compression": "zstd", "compression_level": compression_level, "write_statistics": True}


def dictionary_columns(table: str) -> list[str]:
    """Columns written with dictionary encoding (text; never floats)."""
    schema = SCHEMAS[table]
    return [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_map(f.type)]


class PartWriter:
    """One partition's file of one run: rows buffered into row groups, original frames hashed."""

    def __init__(self, hot: Path, key: tuple[str, str, str], run: int, n: int, row_group_rows: int,
                 compression_level: int, io: Executor | None = None) -> None:
        self.table, self.date, self.symbol = key
        self.dir = hot / partition_dir(*key)
        self.tmp = self.dir / f".tmp-{run}-{n}.parquet"
        self.row_group_rows = row_group_rows
        self.level = compression_level
        self.hash = new_hash()
        self.records = self.rows = 0
        self.first_seq = self.last_seq = -1
        self._buf: list[pa.Table] = []
        self._buf_rows = self._buf_bytes = 0
        self._writer: pq.ParquetWriter | None = None
        #: Where row groups are encoded and written (one worker thread shared by a run: zstd and the
        #: write release the GIL, so they overlap the parsing of the next chunk); None: inline.
        self._io = io
        self._pending: list[Future[None]] = []

    def add(self, table: pa.Table, frames: Iterable[bytes | memoryview | np.ndarray], first_seq: int, last_seq: int,
            records: int) -> None:
        """Buffer rows of records `first_seq..last_seq` and hash their original frames (seq order)."""
        for frame in frames:
            self.hash.update(frame)
        if self.first_seq < 0:
            self.first_seq = first_seq
        self.last_seq = last_seq
        self.records += records
        self.rows += table.num_rows
        self._buf.append(table)
        self._buf_rows += table.num_rows
        self._buf_bytes += table.nbytes
        if self._buf_rows >= self.row_group_rows or self._buf_bytes >= MAX_BUFFER_BYTES:
            self._flush(final=False)

    def _flush(self, final: bool) -> None:
        if not self._buf:
            return
        t = pa.concat_tables(self._buf)
        keep = t.num_rows if final or self._buf_bytes >= MAX_BUFFER_BYTES else \
            t.num_rows // self.row_group_rows * self.row_group_rows
        if self._writer is None:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.tmp.unlink(missing_ok=True)
            self._writer = pq.ParquetWriter(self.tmp, SCHEMAS[self.table], use_dictionary=dictionary_columns(
                self.table), **writer_options(self.level))
        if self._io is None:
            self._writer.write_table(t.slice(0, keep), row_group_size=self.row_group_rows)
        else:
            self._pending = [f for f in self._pending if not f.done() or f.result()]  # raise a failed write
            self._pending.append(self._io.submit(self._writer.write_table, t.slice(0, keep),
                                                 row_group_size=self.row_group_rows))
        rest = t.slice(keep)
        self._buf = [rest] if rest.num_rows else []
        self._buf_rows = rest.num_rows
        self._buf_bytes = rest.nbytes if rest.num_rows else 0

    def close(self) -> Path:
        """Write what is buffered, close and fsync the temp file; return it."""
        self._flush(final=True)
        assert self._writer is not None
        for f in self._pending:
            f.result()
        self._pending = []
        self._writer.close()
        fd = os.open(self.tmp, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return self.tmp

    @property
    def final_name(self) -> str:
        return part_name(self.first_seq, self.last_seq)


def file_checksum(path: Path, table: str, symbol: str) -> tuple[int, str]:
    """Count and checksum of the records a store file rebuilds to (book files: frames rebuilt from columns)."""
    if table == "raw_trades":
        return _trades_checksum(path, symbol)
    if table not in BOOK_KINDS:
        return records_checksum(file_records(path, table, symbol))
    h, n = new_hash(), 0
    with pq.ParquetFile(path, memory_map=True) as f:
        for g in range(f.metadata.num_row_groups):
            t = f.read_row_group(g)
            for piece in book_frames(t, BOOK_KINDS[table], symbol):
                h.update(piece)
            n += t.num_rows
    return n, h.hexdigest()


def _trades_checksum(path: Path, symbol: str) -> tuple[int, str]:
    """`file_checksum` of a trades file: whole messages per row group (a straddling one waits for its rest)."""
    h, n = new_hash(), 0
    with pq.ParquetFile(path, memory_map=True) as f:
        carry: pa.Table | None = None
        last = f.metadata.num_row_groups - 1
        for g in range(last + 1):
            t = f.read_row_group(g)
            if carry is not None:
                t, carry = pa.concat_tables([carry, t]), None
            if g < last and t.num_rows:
                t, carry = hold_last_message(t)
            if not t.num_rows:
                continue
            frames = trade_frames(t, symbol)
            if frames is None:
                return records_checksum(file_records(path, "raw_trades", symbol))
            h.update(frames)
            seq = t.column("seq").to_numpy()
            n += 1 + int(np.count_nonzero(seq[1:] != seq[:-1]))
    return n, h.hexdigest()


def verify_file(path: Path, table: str, symbol: str, records: int, checksum: str) -> None:
    """Read a written file back whole; VerifyError unless its rebuilt records match count and checksum."""
    try:
        n, got = file_checksum(path, table, symbol)
    except (OSError, ValueError, KeyError, TypeError, IndexError, pa.ArrowException) as e:
        raise VerifyError(f"{path}: cannot be read back ({type(e).__name__}: {e})") from None
    if n != records or got != checksum:
        raise VerifyError(f"{path}: read back {n} records with checksum {got}, wrote {records} with {checksum}")


def publish(tmp: Path, final: Path) -> None:
    """Rename a verified temp file to its final name and make the rename durable."""
    os.replace(tmp, final)
    fsync_dir(final.parent)
