"""The compaction manifest ``<hot root>/_manifest.json``: the only list of committed store files.

A Parquet file the manifest does not name is uncommitted (a crashed run's leftover): readers
ignore it and the next compaction deletes it. The manifest also lists the journal segments each
run compacted (and whether they are deleted yet) and every run's seq range. It is rewritten
whole and atomically (new temp file + fsync, rename, directory fsync), so a crash leaves either
the old or the new one, never a mix.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from journal.durable import fsync_dir, write_new_file
from journal.errors import JournalError
from journal.store.layout import MANIFEST_NAME

#: Manifest format version (``format`` key); a newer one is refused rather than misread.
FORMAT = 1


class ManifestError(JournalError):
    """The manifest exists but cannot be read (damaged, foreign or newer format); names the file."""


class FileEntry(NamedTuple):
    """One committed Parquet file: where it is, which partition, which seqs, its verified checksum."""

    path: str  #: relative to a store root (the same under hot and archive)
    table: str
    date: str
    symbol: str  #: "" for the control table
    rows: int
    records: int
    first_seq: int
    last_seq: int
    checksum: str  #: hex SHA-256 over the codec frames of the file's rebuilt records, in seq order
    bytes: int
    location: str = "hot"  #: "hot" | "archive"
    run: int = 0


class SegmentEntry(NamedTuple):
    """One compacted journal segment: its file name, seq range, records, the run and whether it is gone."""

    name: str
    first_seq: int
    last_seq: int
    records: int
    run: int
    deleted: bool = False


class RunEntry(NamedTuple):
    """One compaction run: the seq range it added, how many records and files."""

    run: int
    first_seq: int
    last_seq: int
    records: int
    files: int


@dataclass
class Manifest:
    """The committed state of a store (see the module docstring)."""

    files: list[FileEntry] = field(default_factory=list)
    segments: list[SegmentEntry] = field(default_factory=list)
    runs: list[RunEntry] = field(default_factory=list)
    compacted_through: int = 0

    @classmethod
    def load(cls, hot_root: str | Path) -> Manifest:
        """Read ``<hot_root>/_manifest.json``; an empty manifest when there is none."""
        path = Path(hot_root) / MANIFEST_NAME
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return cls()
        try:
            obj = orjson.loads(data)
            if obj.get("format") != FORMAT:
                raise ManifestError(f"{path}: manifest format {obj.get('format')!r}, this version reads {FORMAT}")
            return cls([FileEntry(**f) for f in obj["files"]], [SegmentEntry(**s) for s in obj["segments"]],
                       [RunEntry(**r) for r in obj["runs"]], int(obj["compacted_through"]))
        except ManifestError:
            raise
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise ManifestError(f"{path}: damaged manifest ({type(e).__name__}: {e})") from None

    def to_json(self) -> bytes:
        """The manifest as JSON bytes (stable: same manifest, same bytes)."""
        obj: dict[str, Any] = {"format": FORMAT, "compacted_through": self.compacted_through,
                               "files": [f._asdict() for f in self.files],
                               "segments": [s._asdict() for s in self.segments],
                               "runs": [r._asdict() for r in self.runs]}
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n"

    def save(self, hot_root: str | Path) -> None:
        """Write atomically: temp file + fsync, rename over the old one, directory fsync."""
        root = Path(hot_root)
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".tmp-manifest-{os.getpid()}.json"
        tmp.unlink(missing_ok=True)
        write_new_file(tmp, [self.to_json()])
        os.replace(tmp, root / MANIFEST_NAME)
        fsync_dir(root)

    # -- queries and edits -----------------------------------------------------------------

    def paths(self) -> set[str]:
        """Relative paths of every committed file."""
        return {f.path for f in self.files}

    def next_run(self) -> int:
        """Number of the next compaction run (1 for an empty store)."""
        return max((r.run for r in self.runs), default=0) + 1

    def segment(self, name: str) -> SegmentEntry | None:
        """The entry of a compacted segment, by file name."""
        return next((s for s in self.segments if s.name == name), None)

    def replace_files(self, old: Iterable[str], new: Iterable[FileEntry]) -> None:
        """Drop the entries whose paths are in `old`, add `new` (kept sorted by table, date, symbol, seq)."""
        gone = set(old)
        self.files = sorted([f for f in self.files if f.path not in gone] + list(new),
                            key=lambda f: (f.table, f.date, f.symbol, f.first_seq))

    def mark_deleted(self, names: Iterable[str]) -> None:
        """Mark compacted segments as deleted from the journal."""
        gone = set(names)
        self.segments = [s._replace(deleted=True) if s.name in gone else s for s in self.segments]
