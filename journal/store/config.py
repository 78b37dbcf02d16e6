"""Raw store settings (YAML key ``store``): where the Parquet tables live, how long they stay hot."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoreConfig:
    """Typed, frozen store config; a shard config resolves an empty `dir` to ``<data_dir>/store``."""

    #: Root of the hot store (one sub-directory per table); empty means ``<data_dir>/store``.
    dir: str = ""
    #: Root of the archive (same layout); empty: no archive, partitions past retention are deleted.
    archive_dir: str = ""
    #: Days a date partition stays hot (counted from its date, UTC); 0 keeps every partition hot.
    retention_days: int = 0
    #: Days a partition stays in the archive before it is deleted; 0 keeps the archive forever.
    archive_retention_days: int = 0
    #: zstd level of the Parquet files (1 fastest … 22 smallest).
    compression_level: int = 3
    #: Rows per Parquet row group (the unit a reader fetches).
    row_group_rows: int = 65_536
    #: A partition holding several files smaller than this (MiB) is consolidated into one.
    consolidate_below_mib: int = 64
    #: Delete journal segments once their rows are compacted and read back verified.
    delete_segments: bool = True
    #: Save an engine checkpoint at every UTC date boundary while compacting (replay starts near --from).
    checkpoints: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.retention_days <= 36_500:
            raise ValueError(f"retention_days: {self.retention_days} is not within [0, 36500]")
        if not 0 <= self.archive_retention_days <= 36_500:
            raise ValueError(f"archive_retention_days: {self.archive_retention_days} is not within [0, 36500]")
        if self.archive_retention_days and not self.archive_dir:
            raise ValueError("archive_retention_days: needs store.archive_dir")
        if not 1 <= self.compression_level <= 22:
            raise ValueError(f"compression_level: {self.compression_level} is not within [1, 22]")
        if not 1024 <= self.row_group_rows <= 64 * 1024 * 1024:
            raise ValueError(f"row_group_rows: {self.row_group_rows} is not within [1024, 67108864]")
        if not 1 <= self.consolidate_below_mib <= 65_536:
            raise ValueError(f"consolidate_below_mib: {self.consolidate_below_mib} is not within [1, 65536]")
        if self.archive_dir and self.dir and self.archive_dir.rstrip("/") == self.dir.rstrip("/"):
            raise ValueError("archive_dir: must differ from store.dir")
