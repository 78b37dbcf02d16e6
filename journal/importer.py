"""Backfill a journal from recorded captures: decode, make recv_ns monotonic, insert ticks, append.

`import_records` is the pure part (capture files -> the records a live shard would have
journaled: decoded frames and BAD_FRAMEs, with the tick of every whole second placed before the
first record at or after it); `import_files` appends them to a journal in batches and returns a
summary. Importing into a journal that already holds records continues it: receive times are
raised to at least its last ``recv_ns`` and the tick series resumes after it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any

from engine.record import NS_PER_S, Kind, Record, kind_name
from gateway_bridge.clock import MonotonicStamper
from gateway_bridge.decoder import Decoder
from gateway_bridge.ticks import TickClock
from journal import capture_formats

#: Records per journal append.
BATCH = 4096


class ImportStats:
    """Counts gathered while importing (filled in by `import_records`)."""

    def __init__(self) -> None:
        self.frames = 0
        self.skipped_lines: Counter[str] = Counter()
        self.records: Counter[str] = Counter()
        self.bad_frames: Counter[str] = Counter()
        self.decoder: dict[str, Any] = {}
        self.recv_ns_held = 0

    def summary(self) -> dict[str, Any]:
        """Return the counts as a JSON-ready dict."""
        skipped = dict(self.skipped_lines)
        for reason, n in self.decoder.get("skipped", {}).items():
            skipped[f"decoder_{reason}"] = n
        return {"frames": self.frames, "records": dict(sorted(self.records.items())),
                "ticks": self.records.get("tick", 0), "skipped": dict(sorted(skipped.items())),
                "bad_frames": dict(sorted(self.bad_frames.items())), "recv_ns_held": self.recv_ns_held}


def import_records(fmt: str, files: Iterable[str], symbols: Iterable[str] | None = None, *,
                   start_ns: int = 0, next_tick_ns: int | None = None,
                   stats: ImportStats | None = None) -> Iterator[Record]:
    """Yield the unnumbered records of `files` in order: ticks inserted, recv_ns non-decreasing."""
    stats = stats if stats is not None else ImportStats()
    decoder = Decoder(symbols, None, skip_unknown_symbols=symbols is not None)
    stamper = MonotonicStamper(start_ns=start_ns)
    ticks = TickClock(next_tick_ns)
    for path in files:
        for raw_ns, frame in capture_formats.read(fmt, path, stats.skipped_lines):
            stats.frames += 1
            recs = decoder.decode_frame(frame, stamper.monotonic(raw_ns))
            if not recs:
                continue
            for rec in ticks.before(recs[0].recv_ns):
                stats.records["tick"] += 1
                yield rec
            for rec in recs:
                stats.records[kind_name(rec.kind)] += 1
                if rec.kind == Kind.BAD_FRAME:
                    stats.bad_frames[rec.payload["reason"]] += 1
                yield rec
    stats.decoder = decoder.counters
    stats.recv_ns_held = stamper.held


def import_files(journal_dir: str, fmt: str, files: list[str], symbols: list[str] | None = None) -> dict[str, Any]:
    """Append the records of `files` to the journal at `journal_dir`; return the import summary."""
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    if fmt not in capture_formats.FORMATS:
        raise ValueError(f"unknown capture format {fmt!r}; known: {', '.join(capture_formats.FORMATS)}")
    stats = ImportStats()
    first_seq = last_seq = 0
    with JournalWriter(JournalConfig(dir=journal_dir, fsync="never")) as writer:
        last = writer.last_recv_ns
        next_tick = (last // NS_PER_S + 1) * NS_PER_S if last else None
        batch: list[Record] = []
        for rec in import_records(fmt, files, symbols, start_ns=last, next_tick_ns=next_tick, stats=stats):
            batch.append(rec)
            if len(batch) >= BATCH:
                first_seq, last_seq = _append(writer, batch, first_seq, last_seq)
        first_seq, last_seq = _append(writer, batch, first_seq, last_seq)
        writer.sync()
    out = {"journal": journal_dir, "format": fmt, "files": list(files), **stats.summary()}
    out["seq"] = [first_seq, last_seq] if first_seq else None
    return out


def _append(writer: Any, batch: list[Record], first_seq: int, last_seq: int) -> tuple[int, int]:
    """Append and clear `batch`; return the updated (first, last) seq of this import."""
    if not batch:
        return first_seq, last_seq
    numbered = writer.append(batch)
    batch.clear()
    return (first_seq or numbered[0].seq), numbered[-1].seq
