"""Consolidation: consecutive small files of one partition rewritten as one (no thousands of tiny files).

In a hot partition, each maximal run of two or more consecutive files (by seq) all smaller than
``store.consolidate_below_mib`` is copied row group by row group into one temp file, which is read
back and checked against the rebuilt records of the files it replaces (count and checksum), renamed
to ``part-<first_seq>-<last_seq>.parquet``, swapped into the manifest (the commit point), and only
then are the old files deleted. A crash before the swap leaves an unnamed file (deleted as a
leftover by the next run); after it, old files the manifest no longer names (deleted likewise).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from journal.codec import encode
from journal.store.config import StoreConfig
from journal.store.layout import part_name
from journal.store.manifest import FileEntry, Manifest
from journal.store.parts import dictionary_columns, new_hash, publish, verify_file, writer_options
from journal.store.records import file_records
from journal.store.tables import SCHEMAS

MIB = 1024 * 1024


def groups(manifest: Manifest, below_mib: int) -> list[list[FileEntry]]:
    """Runs of >= 2 consecutive small hot files per partition, oldest first."""
    limit = below_mib * MIB
    parts: dict[tuple[str, str, str], list[FileEntry]] = defaultdict(list)
    for f in manifest.files:
        parts[(f.table, f.date, f.symbol)].append(f)
    out = []
    for files in parts.values():
        run: list[FileEntry] = []
        for f in sorted(files, key=lambda f: f.first_seq):
            if f.location == "hot" and f.bytes < limit:
                run.append(f)
                continue
            if len(run) >= 2:
                out.append(run)
            run = []
        if len(run) >= 2:
            out.append(run)
    return out


def _merge(hot: Path, files: list[FileEntry], run: int, row_group_rows: int, level: int) -> FileEntry:
    """Write the files' rows into one verified, published file; its manifest entry."""
    first = files[0]
    tmp = hot / Path(first.path).parent / f".tmp-c{run}-{first.first_seq}.parquet"
    tmp.unlink(missing_ok=True)
    h, records, rows = new_hash(), 0, 0
    with pq.ParquetWriter(tmp, SCHEMAS[first.table], use_dictionary=dictionary_columns(first.table),
                          **writer_options(level)) as w:
        for f in files:
            with pq.ParquetFile(hot / f.path) as src:
                for g in range(src.metadata.num_row_groups):
                    t = src.read_row_group(g)
                    rows += t.num_rows
                    w.write_table(t, row_group_size=row_group_rows)
            for rec in file_records(hot / f.path, f.table, f.symbol):
                h.update(encode(rec))
                records += 1
    checksum = h.hexdigest()
    verify_file(tmp, first.table, first.symbol, records, checksum)
    last = files[-1]
    final = tmp.with_name(part_name(first.first_seq, last.last_seq))
    size = tmp.stat().st_size
    publish(tmp, final)
    return first._replace(path=final.relative_to(hot).as_posix(), rows=rows, records=records,
                          last_seq=max(f.last_seq for f in files), checksum=checksum, bytes=size, run=run)


def consolidate(hot: Path, cfg: StoreConfig, manifest: Manifest, run: int,
                hook: Callable[[str], None] | None = None) -> int:
    """Consolidate every eligible run of small files; return how many files were merged away."""
    merged = 0
    for files in groups(manifest, cfg.consolidate_below_mib):
        entry = _merge(hot, files, run, cfg.row_group_rows, cfg.compression_level)
        manifest.replace_files([f.path for f in files], [entry])
        manifest.save(hot)
        if hook is not None:
            hook("swapped")
        for f in files:
            (hot / f.path).unlink(missing_ok=True)
        merged += len(files)
    return merged
