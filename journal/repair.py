"""`repair(dir)`: move the damaged tail of each closed segment aside and say exactly which seqs are lost.

A closed segment (one with a successor) whose bytes stop being good frames — a flipped bit, a
torn write that was never cut, a foreign header — stops every reader. Repair truncates it to its
last good frame, keeps the cut bytes beside it as ``<segment>.torn-<offset>`` (like the writer's
torn tails; nothing is deleted) and writes ``<segment>.lost-<first>-<last>.json`` recording the seq
range that is now missing: from the first seq after the last good frame to the seq before the
next segment. Records in later segments are kept. The reader accepts exactly that gap (see
`journal.reader`); seqs stay unique and increasing, but are no longer gap-free there.

The writer's lock is held throughout, so a running shard makes repair refuse. The live (last)
segment is left alone: the writer cuts its torn tail itself when it opens the journal (the report
names such a tail under ``live_tail``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from journal.durable import fsync_dir, write_new_file
from journal.errors import JournalCorruption, JournalError
from journal.reader import check_journal_dir, lost_marker
from journal.segment import HEADER_SIZE, SegmentScan, list_segments, pack_header, scan_segment
from journal.writer import LOCK_NAME, lock_journal


def repair(journal_dir: str | Path) -> dict[str, Any]:
    """Repair every damaged closed segment of `journal_dir`; return a JSON-ready report of what was lost."""
    d = check_journal_dir(journal_dir)
    lock_fd = lock_journal(d / LOCK_NAME)
    try:
        segments = list_segments(d)
        repaired = []
        last_recv_ns = 0
        for (_, path), (next_first, _) in zip(segments, segments[1:], strict=False):
            entry, last_recv_ns = _repair_one(path, next_first, last_recv_ns)
            if entry is not None:
                repaired.append(entry)
        fsync_dir(d)
        live = _live_tail(segments[-1][1]) if segments else None
    finally:
        os.close(lock_fd)
    return {"journal": str(d), "segments": len(segments), "repaired": repaired,
            "lost_records": sum(e["lost_records"] for e in repaired), "live_tail": live}


def _live_tail(path: Path) -> dict[str, Any] | None:
    """Where the live segment's good frames end if bytes follow (the writer cuts them when it opens)."""
    try:
        scan = scan_segment(path)
    except JournalCorruption as e:
        return {"segment": path.name, "offset": e.offset, "reason": e.reason}
    if scan.clean:
        return None
    return {"segment": path.name, "offset": scan.stop, "reason": scan.reason, "bytes": scan.size - scan.stop}


def _repair_one(path: Path, next_first: int, last_recv_ns: int) -> tuple[dict[str, Any] | None, int]:
    """Repair one closed segment if it needs it; return its report entry and its last good recv_ns."""
    try:
        scan: SegmentScan | None = scan_segment(path)
    except JournalCorruption as e:  # the header itself is unusable: the whole segment goes aside
        scan, stop, reason = None, 0, e.reason
    else:
        stop, reason = scan.stop, scan.reason
    first = int(path.name.split(".")[0])
    ends_at = first + (len(scan.seq) if scan is not None else 0)  # the seq after the last good frame
    if scan is not None and len(scan.recv_ns):
        last_recv_ns = int(scan.recv_ns[-1])
    if scan is not None and scan.clean and (ends_at == next_first or lost_marker(path, ends_at, next_first - 1).exists()):
        return None, last_recv_ns
    if ends_at > next_first:
        raise JournalError(f"{path}: holds seqs up to {ends_at - 1} but the next segment starts at seq "
                           f"{next_first}; repair cannot tell which copy is right")
    size = path.stat().st_size
    kept = _move_tail_aside(path, stop, last_recv_ns if scan is None else None)
    lost = [ends_at, next_first - 1] if next_first > ends_at else None
    entry = {"segment": path.name, "offset": stop, "reason": reason if scan is None or not scan.clean else
             f"segment ends before seq {ends_at} but the next one starts at seq {next_first}",
             "bytes_moved": size - stop, "kept_in": kept.name if kept else None,
             "lost_seq": lost, "lost_records": (lost[1] - lost[0] + 1) if lost else 0,
             "last_good_recv_ns": last_recv_ns or None}
    if lost:
        write_new_file(lost_marker(path, *lost), [orjson.dumps(entry, option=orjson.OPT_INDENT_2) + b"\n"])
    return entry, last_recv_ns


def _move_tail_aside(path: Path, stop: int, new_header_recv_ns: int | None) -> Path | None:
    """Copy bytes from `stop` on into ``<path>.torn-<stop>`` (durably), then truncate `path` to `stop`.

    With `new_header_recv_ns` (the header was unusable, `stop` is 0) the segment is left as a
    fresh header naming its own first seq, so it stays a valid, empty segment.
    """
    with open(path, "rb") as f:
        f.seek(stop)
        tail = f.read()
    kept = None
    if tail:
        kept = _free_name(path.with_name(f"{path.name}.torn-{stop}"))
        write_new_file(kept, [tail])
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.ftruncate(fd, stop)
        if new_header_recv_ns is not None:
            os.pwrite(fd, pack_header(int(path.name.split(".")[0]), new_header_recv_ns), 0)
            assert os.fstat(fd).st_size == HEADER_SIZE
        os.fsync(fd)
    finally:
        os.close(fd)
    return kept


def _free_name(path: Path) -> Path:
    """`path`, or ``path.1``, ``path.2``, … : the first that does not exist (never overwrite kept bytes)."""
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate
