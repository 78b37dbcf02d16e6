"""Where the store's files live: tables, Hive partitions ``date=YYYY-MM-DD/symbol=S``, the manifest.

Layout under a store root (the hot ``store.dir`` and the ``store.archive_dir`` share it)::

    <root>/<table>/date=2026-08-09/symbol=SOLUSDT/part-<first_seq:016d>-<last_seq:016d>.parquet
    <root>/control/date=2026-08-09/part-<first_seq:016d>-<last_seq:016d>.parquet
    <root>/_manifest.json          (hot root only: every committed file, its seq range, checksum, location)
    <root>/_checkpoints/           (hot root only: engine checkpoints at UTC date boundaries)

Names starting with ``_`` or ``.`` are skipped by pyarrow.dataset, polars and duckdb globbing
conventions, so temporary files (``.tmp-…``) and the manifest never show up as data.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import NamedTuple

#: The seven market tables (SPEC §4), then the control table (everything else replay needs).
MARKET_TABLES = ("raw_orderbook_snapshots", "raw_orderbook_deltas", "raw_trades", "raw_kline", "raw_ticker",
                 "raw_funding", "raw_executions")
CONTROL_TABLE = "control"
TABLES = (*MARKET_TABLES, CONTROL_TABLE)
MANIFEST_NAME = "_manifest.json"
CHECKPOINTS_DIR = "_checkpoints"
NS_PER_DAY = 86_400 * 1_000_000_000


class StoreRoots(NamedTuple):
    """The hot root and the archive root (None without an archive)."""

    hot: Path
    archive: Path | None = None

    def all(self) -> tuple[Path, ...]:
        """Hot first, then the archive."""
        return (self.hot,) if self.archive is None else (self.hot, self.archive)


def date_of(recv_ns: int) -> str:
    """The UTC date partition (``YYYY-MM-DD``) of a receive time."""
    return time.strftime("%Y-%m-%d", time.gmtime(recv_ns // 1_000_000_000))


def day_start_ns(date: str) -> int:
    """Epoch ns of 00:00 UTC of a ``YYYY-MM-DD`` partition date."""
    import calendar

    y, m, d = (int(x) for x in date.split("-"))
    return calendar.timegm((y, m, d, 0, 0, 0, 0, 0, 0)) * 1_000_000_000


def partition_dir(table: str, date: str, symbol: str = "") -> Path:
    """Relative directory of a partition; the control table is partitioned by date only."""
    if table == CONTROL_TABLE:
        return Path(table) / f"date={date}"
    return Path(table) / f"date={date}" / f"symbol={symbol}"


def part_name(first_seq: int, last_seq: int) -> str:
    """File name of the rows with journal seq in [first_seq, last_seq] (deterministic: reruns rewrite it)."""
    return f"part-{first_seq:016d}-{last_seq:016d}.parquet"
