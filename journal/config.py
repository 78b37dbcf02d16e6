"""Journal settings: where segments live, when they roll, and how often they reach the disk."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FsyncPolicy = Literal["always", "interval_ms", "never"]


@dataclass(frozen=True)
class JournalConfig:
    """Typed, frozen journal config (YAML key ``journal``)."""

    #: Directory holding the segment files (created if missing); a shard defaults it to <data_dir>/journal.
    dir: str = ""
    #: ``always``: fsync after every append batch; ``interval_ms``: group commit at most every
    #: ``fsync_interval_ms``; ``never``: leave it to the OS. Appends always reach the OS before apply.
    fsync: FsyncPolicy = "interval_ms"
    #: Group-commit interval for ``fsync: interval_ms``.
    fsync_interval_ms: int = 5
    #: Roll to a new segment once the current one holds this many bytes.
    segment_max_bytes: int = 256 * 1024 * 1024
    #: Roll to a new segment once the current one is this old (seconds of recv time).
    segment_max_age_s: int = 3600

    def __post_init__(self) -> None:
        if self.fsync_interval_ms <= 0:
            raise ValueError("fsync_interval_ms: must be > 0")
        if self.segment_max_bytes < 4096:
            raise ValueError("segment_max_bytes: must be >= 4096")
        if self.segment_max_age_s <= 0:
            raise ValueError("segment_max_age_s: must be > 0")
