"""The feature log: every published vector, as Parquet under `<data_dir>/feature_log/`, off the tick path.

Layout (hours are UTC hours of the vectors' tick time, `hash12` the registry hash's first 12 digits):

    feature_log/<YYYYMMDDTHH>/part-<first ts ns, 20 digits>-<hash12>[-<n>].parquet   one per flush and registry
    feature_log/<YYYYMMDDTHH>-<hash12>.parquet                                       the hour, compacted

Columns are the replay feature-file layout (`schema` below, which `tools.offline.feature_table`
re-exports for replay files) plus `registry_hash`.

Threads: `append` only puts the (immutable) vectors on a queue. A *writer* thread writes one part
per registry every `flush_interval_s` (temp name, fsync, rename: a `kill -9` never leaves half a file
under a `.parquet` name and loses at most the last interval). When vectors of a new hour arrive, a
*compactor* thread merges each finished hour's parts into one file (temp, fsync, rename, then the
parts are deleted), so compaction never delays a flush. The compacted file lists the parts it holds
(name, size, mtime) in its metadata: parts a crash left behind after the rename are ignored by
readers and deleted at the next compaction; a later part that happens to reuse a name is not.
`close()` flushes, compacts every hour (the current one too) and joins. An error in either thread
is kept and raised by the next `append` or `close` as `FeatureLogError` naming the file. One
`FeatureLog` per directory (the shard's journal lock guards its data dir).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.engine import Vector
from journal.durable import fsync_dir
from registry import Registry

log = logging.getLogger(__name__)

# -- the vector table layout (replay files, datasets and this log share it) ------------------

#: Schema metadata keys carrying the registry a file was computed with.
META_HASH = b"feature_registry_hash"
META_REGISTRY = b"feature_registry"

#: Columns ahead of the features, in order.
LEADING = ("ts", "symbol", "book_valid")
#: The optional last column naming each row's registry (the feature log has it; replay files do not).
REGISTRY_HASH = "registry_hash"

#: Per-column Arrow field metadata: column name -> {key: value}.
FieldMetadata = Mapping[str, Mapping[str | bytes, str | bytes]]


class FeatureTableError(ValueError):
    """Vectors that do not fit a table or output file; the message names the file, column or registries."""


def schema(registry: Registry, *, registry_hash_column: bool = False,
           field_metadata: FieldMetadata | None = None) -> pa.Schema:
    """`ts` (tick boundary, UTC ns), `symbol`, `book_valid`, every registry column as float64[, `registry_hash`].

    `field_metadata` attaches Arrow field metadata to the named columns (an unknown name is an error).
    """
    fields = [pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
              pa.field("symbol", pa.string(), nullable=False),
              pa.field("book_valid", pa.int8(), nullable=False)]
    fields += [pa.field(f.name, pa.float64()) for f in registry.features]
    if registry_hash_column:
        if REGISTRY_HASH in registry.names:
            raise FeatureTableError(f"registry {registry.source}: feature {REGISTRY_HASH!r} clashes with the log column")
        fields.append(pa.field(REGISTRY_HASH, pa.string(), nullable=False))
    if field_metadata:
        fields = _with_field_metadata(fields, field_metadata)
    meta = {META_HASH: registry.content_hash.encode(), META_REGISTRY: registry.canonical.encode()}
    return pa.schema(fields, metadata=meta)


def _with_field_metadata(fields: list[pa.Field], field_metadata: FieldMetadata) -> list[pa.Field]:
    """Return `fields` with the metadata of `field_metadata` attached by column name."""
    unknown = set(field_metadata) - {f.name for f in fields}
    if unknown:
        raise FeatureTableError(f"field_metadata: no column named {', '.join(sorted(unknown))}")
    return [f.with_metadata(field_metadata[f.name]) if f.name in field_metadata else f for f in fields]


def feature_count(sch: pa.Schema) -> int:
    """Number of feature columns of a schema made by `schema`."""
    return len(sch) - len(LEADING) - (sch.names[-1] == REGISTRY_HASH)


def to_batch(vectors: list[Vector], sch: pa.Schema) -> pa.RecordBatch:
    """Turn vectors into one record batch of `sch` (NaN stays NaN, never null)."""
    n_features = feature_count(sch)
    values = np.vstack([v.values for v in vectors]) if vectors else np.empty((0, n_features))
    if values.shape[1] != n_features:
        raise FeatureTableError(f"vectors have {values.shape[1]} values, the table has {n_features} feature columns")
    cols = [pa.array(np.fromiter((v.ts_ns for v in vectors), np.int64, len(vectors)), pa.int64()).cast(sch.field(0).type),
            pa.array([v.symbol for v in vectors], pa.string()),
            pa.array(np.fromiter((v.book_valid for v in vectors), np.int8, len(vectors)), pa.int8())]
    cols += [pa.array(values[:, j], pa.float64()) for j in range(n_features)]
    if sch.names[-1] == REGISTRY_HASH:
        cols.append(pa.array([v.registry_hash for v in vectors], pa.string()))
    return pa.RecordBatch.from_arrays(cols, schema=sch)


# -- the log ---------------------------------------------------------------------------------

NS_PER_S = 1_000_000_000
HOUR_NS = 3600 * NS_PER_S
#: Compacted-file metadata key: JSON list of the part names the file holds.
META_PARTS = b"feature_log_parts"
#: Rows per row group of a compacted file (bounds the compactor's memory).
COMPACT_ROWS = 65_536
TMP_SUFFIX = ".tmp"

_HOUR_DIR = re.compile(r"^(\d{8}T\d{2})$")
_PART = re.compile(r"^part-(\d{20})-([0-9a-f]{12})(?:-(\d+))?\.parquet$")
_COMPACTED = re.compile(r"^(\d{8}T\d{2})-([0-9a-f]{12})\.parquet$")
_STOP = object()


class FeatureLogError(Exception):
    """The feature log could not write or read a file; the message names it."""


def hour_name(ts_ns: int) -> str:
    """`YYYYMMDDTHH` of the UTC hour holding `ts_ns`."""
    return time.strftime("%Y%m%dT%H", time.gmtime(ts_ns // NS_PER_S))


@contextmanager
def _naming(path: Path) -> Iterator[None]:
    """Turn an IO or Arrow failure on `path` into a `FeatureLogError` naming it."""
    try:
        yield
    except FeatureLogError:
        raise
    except (OSError, pa.ArrowException, ValueError) as e:
        raise FeatureLogError(f"{path}: {e}") from e


class FeatureLog:
    """Append published vectors; a writer thread logs them to hourly Parquet files (see module doc)."""

    def __init__(self, dir: str | Path, flush_interval_s: float = 1.0) -> None:
        if not 0.001 <= flush_interval_s <= 3600:
            raise ValueError(f"flush_interval_s: must be in 0.001..3600, got {flush_interval_s}")
        self.dir = Path(dir)
        self.flush_interval_s = flush_interval_s
        self.dir.mkdir(parents=True, exist_ok=True)
        _remove_temps(self.dir)
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._compact_queue: queue.SimpleQueue = queue.SimpleQueue()
        self._error: FeatureLogError | None = None
        self._error_lock = threading.Lock()
        self._closed = False
        self._files = _Files(self.dir)
        self._writer = threading.Thread(target=self._write_loop, name="feature-log-writer", daemon=True)
        self._compactor = threading.Thread(target=self._compact_loop, name="feature-log-compactor", daemon=True)
        self._writer.start()
        self._compactor.start()

    @property
    def rows_written(self) -> int:
        """Vectors written to part files so far."""
        return self._files.rows_written

    def append(self, vectors: Sequence[Vector], registry: Registry) -> None:
        """Hand `vectors` (computed with `registry`) to the writer thread; raise an earlier writer error."""
        self._raise_error()
        if self._closed:
            raise FeatureLogError(f"{self.dir}: the feature log is closed")
        if vectors:
            self._queue.put((vectors if isinstance(vectors, tuple) else tuple(vectors), registry))

    def close(self) -> None:
        """Flush what is queued, compact every hour, stop the threads; raise a writer error."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
            self._writer.join()
            self._compactor.join()
        self._raise_error()

    def __enter__(self) -> FeatureLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- threads -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        """Writer thread: gather vectors, write parts every interval, ask for compaction on a new hour."""
        interval = self.flush_interval_s
        due = time.monotonic() + interval
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, due - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                break
            if item is not None:
                self._guard(lambda item=item: self._files.add(*item))
            if time.monotonic() >= due:
                self._flush()
                due = time.monotonic() + interval
        self._flush()
        self._compact_queue.put(_STOP)

    def _flush(self) -> None:
        """Write the pending parts; when a new hour began, queue the hours before it for compaction."""
        self._guard(self._files.flush)
        newest = self._files.newest_hour
        if newest is not None and newest != self._files.compact_requested:
            self._files.compact_requested = newest
            self._compact_queue.put(newest)

    def _compact_loop(self) -> None:
        """Compactor thread: compact the hours before each requested one; at stop, every hour."""
        while True:
            item = self._compact_queue.get()
            if item is _STOP:
                self._guard(lambda: self._files.compact_hours(None))
                return
            self._guard(lambda item=item: self._files.compact_hours(item))

    def _guard(self, fn: Callable[[], None]) -> None:
        """Run `fn`; keep its error for the caller (the first one; later ones are logged)."""
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - kept and re-raised in the caller's thread
            err = e if isinstance(e, FeatureLogError) else FeatureLogError(f"{self.dir}: {e!r}")
            with self._error_lock:
                if self._error is None:
                    self._error = err
                    return
            log.error("feature log: %s (an earlier error is still unreported)", err)

    def _raise_error(self) -> None:
        with self._error_lock:
            err, self._error = self._error, None
        if err is not None:
            raise err


class _Files:
    """The file side of the log: pending vectors and parts (writer thread), compaction (compactor)."""

    def __init__(self, dir: Path) -> None:
        self.dir = dir
        self.rows_written = 0
        self.newest_hour: str | None = None
        self.compact_requested: str | None = None
        self._pending: dict[tuple[str, str], list[Vector]] = {}
        self._schemas: dict[str, pa.Schema] = {}
        self._hour_of: dict[int, str] = {}

    def add(self, vectors: Sequence[Vector], registry: Registry) -> None:
        """Queue `vectors` for the next flush, by hour and registry hash."""
        h = registry.content_hash
        if h not in self._schemas:
            self._schemas[h] = schema(registry, registry_hash_column=True)
        for v in vectors:
            if v.registry_hash != h:
                raise FeatureLogError(f"{self.dir}: vector at {v.ts_ns} ({v.symbol}) carries registry "
                                      f"{v.registry_hash}, appended with registry {h}; vector dropped")
            hour = self._hour(v.ts_ns)
            self._pending.setdefault((hour, h), []).append(v)
            if self.newest_hour is None or hour > self.newest_hour:
                self.newest_hour = hour

    def _hour(self, ts_ns: int) -> str:
        start = ts_ns - ts_ns % HOUR_NS
        name = self._hour_of.get(start)
        if name is None:
            if len(self._hour_of) > 64:
                self._hour_of.clear()
            name = self._hour_of[start] = hour_name(start)
        return name

    def flush(self) -> None:
        """Write one part file per (hour, registry) pending."""
        pending, self._pending = self._pending, {}
        left = sum(len(v) for v in pending.values())
        for (hour, h), vectors in sorted(pending.items()):
            try:
                self._write_part(self.dir / hour, h, vectors)
            except FeatureLogError as e:
                raise FeatureLogError(f"{e} ({left} vectors not logged)") from e
            left -= len(vectors)
            self.rows_written += len(vectors)

    def _write_part(self, hour_dir: Path, h: str, vectors: list[Vector]) -> None:
        """Write `vectors` as a new part file of `hour_dir` (temp name, fsync, rename)."""
        first = min(v.ts_ns for v in vectors)
        with _naming(hour_dir):
            hour_dir.mkdir(exist_ok=True)
        name, n = f"part-{first:020d}-{h[:12]}.parquet", 0
        while (hour_dir / name).exists():
            n += 1
            name = f"part-{first:020d}-{h[:12]}-{n}.parquet"
        with _naming(hour_dir / name):
            table = pa.Table.from_batches([to_batch(vectors, self._schemas[h])])
        _atomic(hour_dir / name, lambda f: pq.write_table(table, f, compression="zstd"))

    def compact_hours(self, before: str | None) -> None:
        """Compact every hour directory named below `before` (all of them for None)."""
        for hour_dir in sorted(p for p in self.dir.iterdir() if _HOUR_DIR.match(p.name) and p.is_dir()):
            if before is None or hour_dir.name < before:
                compact_hour(self.dir, hour_dir.name)


def compact_hour(dir: Path, hour: str) -> None:
    """Merge `dir/<hour>/part-*` into `dir/<hour>-<hash12>.parquet` per registry, then delete the parts."""
    hour_dir = dir / hour
    by_hash: dict[str, list[Path]] = {}
    for p in sorted(hour_dir.iterdir()):
        m = _PART.match(p.name)
        if m:
            by_hash.setdefault(m.group(2), []).append(p)
    for h12, parts in sorted(by_hash.items()):
        _compact_parts(dir / f"{hour}-{h12}.parquet", parts)
    try:
        hour_dir.rmdir()
    except OSError:
        pass  # not empty: a part arrived meanwhile, or a file that is not ours


def _compact_parts(target: Path, parts: list[Path]) -> None:
    """Rewrite `target` as its old rows + the rows of `parts` it does not hold yet; then delete the parts."""
    old = target if target.exists() else None
    held = _held_parts(_read_schema(old)) if old is not None else set()
    keys = {p: _part_key(p) for p in parts}
    new = [p for p in parts if keys[p] not in held]
    if new:
        now_held = sorted(keys.values())  # every part present now is held once the rename is done
        _atomic(target, lambda f: _write_compacted(f, old, new, now_held))
    for p in parts:
        p.unlink(missing_ok=True)


def _part_key(path: Path) -> tuple[str, int, int]:
    """What identifies one part file: name, size and mtime (a later part of the same name differs)."""
    with _naming(path):
        st = path.stat()
    return path.name, st.st_size, st.st_mtime_ns


def _write_compacted(f: BinaryIO, old: Path | None, parts: list[Path], held: list[tuple[str, int, int]]) -> None:
    """Stream `old`'s rows then the parts' rows (sorted chunks of about `COMPACT_ROWS`) into `f`."""
    sch = _read_schema(old if old is not None else parts[0])
    meta = {k: v for k, v in (sch.metadata or {}).items() if k != META_PARTS}
    meta[META_PARTS] = json.dumps(held).encode()
    with pq.ParquetWriter(f, sch.with_metadata(meta), compression="zstd") as w:
        if old is not None:
            with _naming(old), pq.ParquetFile(old) as pf:
                for batch in pf.iter_batches(batch_size=COMPACT_ROWS):
                    w.write_batch(batch)
        chunk: list[pa.Table] = []
        rows = 0
        for p in parts:
            chunk.append(_read_table(p))
            rows += chunk[-1].num_rows
            if rows >= COMPACT_ROWS:
                w.write_table(_concat_sorted(chunk), row_group_size=2 * COMPACT_ROWS)
                chunk, rows = [], 0
        if chunk:
            w.write_table(_concat_sorted(chunk), row_group_size=2 * COMPACT_ROWS)


def _read_table(path: Path) -> pa.Table:
    """Read one Parquet file whole; failures name it."""
    with _naming(path), pq.ParquetFile(path) as pf:
        return pf.read()


def _read_schema(path: Path) -> pa.Schema:
    with _naming(path):
        return pq.read_schema(path)


def _held_parts(sch: pa.Schema) -> set[tuple[str, int, int]]:
    """Keys (`_part_key`) of the parts a compacted file already holds, from its metadata."""
    raw = (sch.metadata or {}).get(META_PARTS)
    return {(str(n), int(s), int(m)) for n, s, m in json.loads(raw)} if raw else set()


def _concat_sorted(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables of one registry (metadata of the first, minus the parts list), sorted by ts, symbol."""
    meta = {k: v for k, v in (tables[0].schema.metadata or {}).items() if k != META_PARTS}
    table = pa.concat_tables([t.replace_schema_metadata(meta) for t in tables])
    return table.sort_by([("ts", "ascending"), ("symbol", "ascending")])


def _atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Create `path` by `write` into a temp file of the same directory, fsync'd, then renamed."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with _naming(path):
        try:
            with open(tmp, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(path.parent)


def _remove_temps(dir: Path) -> None:
    """Remove temp files a killed writer left in `dir` and its hour directories."""
    for p in [*dir.glob(f"*{TMP_SUFFIX}"), *dir.glob(f"*/*{TMP_SUFFIX}")]:
        if _HOUR_DIR.match(p.parent.name) or p.parent == dir:
            log.info("feature log: removing leftover temp file %s", p)
            p.unlink(missing_ok=True)


# -- reading ---------------------------------------------------------------------------------


def read_feature_log(dir: str | Path, registry_hash: str | None = None) -> pa.Table:
    """Every logged row of one registry (compacted files and loose parts), in ts then symbol order.

    `registry_hash` may be omitted when the log holds one registry only; otherwise the error names
    the hashes it holds.
    """
    for attempt in range(5):
        try:
            return _read(Path(dir), registry_hash)
        except FileNotFoundError:  # a compaction renamed or deleted a part meanwhile: list again
            if attempt == 4:
                raise
            time.sleep(0.05)
    raise AssertionError("unreachable")


def feature_log_hashes(dir: str | Path) -> list[str]:
    """The full hash of every registry the log holds rows of, sorted (an absent log holds none)."""
    if not Path(dir).is_dir():
        return []
    compacted, parts = _scan(Path(dir))
    hashes = {h12 for _hour, h12 in compacted} | {h12 for _hour, h12, _p in parts}
    return _full_hashes(hashes, compacted, parts)


def _read(dir: Path, registry_hash: str | None) -> pa.Table:
    compacted, parts = _scan(dir)
    hashes = {h12 for _hour, h12 in compacted} | {h12 for _hour, h12, _p in parts}
    h12 = _pick_hash(dir, hashes, registry_hash, compacted, parts)
    tables, held = [], set()
    for (hour, hh), path in sorted(compacted.items()):
        if hh == h12:
            t = _read_table(path)
            held |= {(hour, key) for key in _held_parts(t.schema)}
            tables.append(t)
    for hour, hh, path in parts:
        if hh == h12 and (hour, _part_key(path)) not in held:
            tables.append(_read_table(path))
    table = _concat_sorted(tables)
    got = (table.schema.metadata or {}).get(META_HASH, b"").decode()
    if registry_hash is not None and not got.startswith(registry_hash):
        raise FeatureLogError(f"{dir}: files named {h12} hold registry {got}, not {registry_hash}")
    return table


def _scan(dir: Path) -> tuple[dict[tuple[str, str], Path], list[tuple[str, str, Path]]]:
    """Compacted files by (hour, hash12) and loose parts as (hour, hash12, path)."""
    if not dir.is_dir():
        raise FeatureLogError(f"{dir}: no feature log here")
    compacted, parts = {}, []
    for p in sorted(dir.iterdir()):
        m = _COMPACTED.match(p.name)
        if m:
            compacted[(m.group(1), m.group(2))] = p
        elif _HOUR_DIR.match(p.name) and p.is_dir():
            parts += [(p.name, m.group(2), q) for q in sorted(p.iterdir()) if (m := _PART.match(q.name))]
    return compacted, parts


def _pick_hash(dir: Path, hashes: set[str], registry_hash: str | None,
               compacted: dict[tuple[str, str], Path], parts: list[tuple[str, str, Path]]) -> str:
    """The hash12 to read: the one asked for, or the only one there is."""
    if registry_hash is not None:
        if registry_hash[:12] in hashes:
            return registry_hash[:12]
        raise FeatureLogError(f"{dir}: no vectors of registry {registry_hash} "
                              f"(the log holds {', '.join(_full_hashes(hashes, compacted, parts)) or 'none'})")
    if len(hashes) == 1:
        return next(iter(hashes))
    if not hashes:
        raise FeatureLogError(f"{dir}: the feature log is empty")
    raise FeatureLogError(f"{dir}: the log holds {len(hashes)} registries "
                          f"({', '.join(_full_hashes(hashes, compacted, parts))}); pass registry_hash")


def _full_hashes(hashes: set[str], compacted: dict[tuple[str, str], Path],
                 parts: list[tuple[str, str, Path]]) -> list[str]:
    """The full registry hash of each hash12, read from the schema metadata of one of its files."""
    one = {h12: p for (_hour, h12), p in compacted.items()}
    one.update({h12: p for _hour, h12, p in parts if h12 not in one})
    out = []
    for h12 in sorted(hashes):
        meta = _read_schema(one[h12]).metadata or {}
        out.append(meta.get(META_HASH, h12.encode()).decode())
    return out
