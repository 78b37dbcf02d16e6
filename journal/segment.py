"""Segment files: naming, the 32-byte header, listing, and scanning one whole segment.

A segment is ``<first seq, 20 digits>.seg``: header (magic ``FSJOURN1``, u16 version,
u16 reserved, u32 reserved, u64 first_seq, i64 created_recv_ns), then frames back to back.
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import NamedTuple

import numpy as np

from journal.errors import JournalCorruption
from journal.scan import OK, STATUS_NAMES, TRUNCATED, Frames, first_seq_break, iter_frames

MAGIC = b"FSJOURN1"
VERSION = 1
HEADER = struct.Struct("<8sHHIQq")
HEADER_SIZE = HEADER.size
SUFFIX = ".seg"
_NAME = re.compile(r"^(\d{20})\.seg$")


class SegmentHeader(NamedTuple):
    """Decoded segment header."""

    version: int
    first_seq: int
    created_recv_ns: int


class SegmentScan(NamedTuple):
    """Every verified, seq-contiguous frame of one segment and where (and why) that run ended."""

    path: Path
    header: SegmentHeader
    size: int  #: file size when scanned
    offset: np.ndarray
    length: np.ndarray
    seq: np.ndarray
    recv_ns: np.ndarray
    kind: np.ndarray
    stop: int  #: file offset just past the last good frame
    reason: str  #: "ok", or why the bytes from `stop` on are not good frames

    @property
    def clean(self) -> bool:
        """True when every byte of the file is header or good frames."""
        return self.stop == self.size


def segment_name(first_seq: int) -> str:
    """Return the file name of the segment starting at `first_seq`."""
    return f"{first_seq:020d}{SUFFIX}"


def list_segments(journal_dir: str | Path) -> list[tuple[int, Path]]:
    """Return (first_seq, path) of every segment in `journal_dir`, oldest first ([] if none)."""
    d = Path(journal_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), d / n) for n in os.listdir(d) if (m := _NAME.match(n))]
    return sorted(found)


def pack_header(first_seq: int, created_recv_ns: int) -> bytes:
    """Return the header bytes of a new segment."""
    return HEADER.pack(MAGIC, VERSION, 0, 0, first_seq, created_recv_ns)


def parse_header(data: bytes, path: str | Path) -> SegmentHeader:
    """Decode a segment header, raising JournalCorruption (offset 0) if it is short or foreign."""
    if len(data) < HEADER_SIZE:
        raise JournalCorruption(path, len(data), f"segment header incomplete ({len(data)} of {HEADER_SIZE} bytes)")
    magic, version, _, _, first_seq, created = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise JournalCorruption(path, 0, f"bad segment magic {magic!r}")
    if version != VERSION:
        raise JournalCorruption(path, 8, f"unsupported segment version {version}")
    m = _NAME.match(Path(path).name)
    if m and int(m.group(1)) != first_seq:
        raise JournalCorruption(path, 16, f"header first_seq {first_seq} does not match the file name")
    return SegmentHeader(version, first_seq, created)


def read_header(fd: int, path: str | Path) -> SegmentHeader:
    """Read and decode the header of an open segment."""
    return parse_header(os.pread(fd, HEADER_SIZE, 0), path)


def scan_segment(path: str | Path) -> SegmentScan:
    """Index one segment (header checked, CRCs verified, seq contiguity checked) without decoding bodies."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        header = read_header(fd, path)
        return _scan_open(fd, Path(path), header, size)
    finally:
        os.close(fd)


def _scan_open(fd: int, path: Path, header: SegmentHeader, size: int) -> SegmentScan:
    """Collect the good frames of an open segment into one SegmentScan."""
    parts: list[Frames] = []
    stop, reason, expected, status = HEADER_SIZE, "ok", header.first_seq, OK
    for _, _, frames in iter_frames(fd, HEADER_SIZE, size):
        cut = first_seq_break(frames.seq, expected)
        if cut < len(frames.seq):
            parts.append(frames.take(slice(0, cut)))
            stop = int(frames.offset[cut])
            reason = f"seq {int(frames.seq[cut])} where {expected + cut} was expected"
            break
        parts.append(frames)
        expected += len(frames.seq)
        stop, status = frames.stop, frames.status
    if stop < size and reason == "ok":
        reason = STATUS_NAMES[status if status != OK else TRUNCATED]
    cols = [np.concatenate([getattr(p, f) for p in parts]) if parts else np.empty(0, np.int64)
            for f in ("offset", "length", "seq", "recv_ns", "kind")]
    return SegmentScan(path, header, size, *cols, stop, reason)

