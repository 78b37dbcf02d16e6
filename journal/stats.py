"""`journal_stats(dir)`: what a journal holds, from the scanner's index plus each record's symbol.

No payload is decoded: kinds, seqs and times come from the fixed frame header, and the symbol is
read straight from the msgpack body's first element.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from engine.record import NS_PER_S, kind_name
from journal.codec import FRAME_HEAD_SIZE, decode_body
from journal.reader import Chunk, JournalReader, Tail
from journal.segment import list_segments

_FIXARRAY4 = 0x94  # msgpack: array of 4 elements, the body [symbol, ts, cts, payload]
_FIXSTR, _FIXSTR_LAST, _STR8 = 0xA0, 0xBF, 0xD9


def journal_stats(journal_dir: str | Path) -> dict[str, Any]:
    """Return record counts per kind and symbol, seq and recv-time ranges, bytes and segments.

    Raises JournalCorruption for damage in a closed segment; bytes after the last whole frame
    of the live segment are reported under ``tail``, and seq ranges a repair gave up under
    ``lost_seq`` (the records counted are the ones still there).
    """
    reader = JournalReader(journal_dir)
    kinds: Counter[int] = Counter()
    symbols: Counter[str] = Counter()
    per_segment: dict[Path, list[int]] = {}  # path -> [records, last_seq]
    lo = hi = None
    for chunk in reader.chunks():
        f = chunk.frames
        values, counts = np.unique(f.kind, return_counts=True)
        kinds.update(dict(zip(values.tolist(), counts.tolist(), strict=True)))
        symbols.update(_symbol_counts(chunk))
        seg = per_segment.setdefault(chunk.path, [0, 0])
        seg[0] += len(f.seq)
        seg[1] = int(f.seq[-1])
        lo = int(f.recv_ns.min()) if lo is None else min(lo, int(f.recv_ns.min()))
        hi = int(f.recv_ns.max()) if hi is None else max(hi, int(f.recv_ns.max()))
    return _summary(Path(journal_dir), kinds, symbols, per_segment, lo, hi, reader.tail)


def _summary(d: Path, kinds: Counter[int], symbols: Counter[str], per_segment: dict[Path, list[int]],
             lo: int | None, hi: int | None, tail: Tail | None) -> dict[str, Any]:
    """Assemble the stats dict."""
    segments = [_segment_entry(first_seq, path, per_segment.get(path)) for first_seq, path in list_segments(d)]
    firsts = [s["first_seq"] for s in segments if s["records"]]
    lasts = [s["last_seq"] for s in segments if s["records"]]
    return {
        "dir": str(d),
        "records": sum(kinds.values()),
        "bytes": sum(s["bytes"] for s in segments),
        "segments": len(segments),
        "seq": {"first": min(firsts), "last": max(lasts)} if firsts else None,
        "recv_ns": {"min": lo, "max": hi} if lo is not None else None,
        "recv_utc": {"min": iso_utc(lo), "max": iso_utc(hi)} if lo is not None and hi is not None else None,
        "kinds": {kind_name(k): int(kinds[k]) for k in sorted(kinds)},
        "symbols": {s: int(symbols[s]) for s in sorted(symbols)},
        "segment_list": segments,
        "tail": None if tail is None else {"file": tail.path.name, "offset": tail.offset, "reason": tail.reason},
        "lost_seq": lost_ranges(d),
    }


def lost_ranges(d: Path) -> list[list[int]]:
    """The seq ranges `journal repair` recorded as lost (``<segment>.lost-<first>-<last>.json``), in order."""
    found = []
    for p in d.glob("*.seg.lost-*-*.json"):
        first, _, last = p.name.rsplit(".lost-", 1)[1].removesuffix(".json").partition("-")
        if first.isdigit() and last.isdigit():
            found.append([int(first), int(last)])
    return sorted(found)


def _segment_entry(first_seq: int, path: Path, counted: list[int] | None) -> dict[str, Any]:
    """One segment's line in the stats."""
    records, last = counted or (0, None)
    return {"file": path.name, "first_seq": first_seq, "last_seq": last, "records": records,
            "bytes": path.stat().st_size}


def iso_utc(ns: int) -> str:
    """Format ns since the epoch as ISO-8601 UTC with all nine fractional digits."""
    s, frac = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"


def _symbol_counts(chunk: Chunk) -> Counter[str]:
    """Count symbols of a chunk's frames, read from the msgpack header bytes (no body decode)."""
    buf = np.frombuffer(chunk.data, dtype=np.uint8)
    body = chunk.frames.offset - chunk.base + FRAME_HEAD_SIZE
    tag = buf[body + 1].astype(np.int64)
    fix = (tag >= _FIXSTR) & (tag <= _FIXSTR_LAST)
    ok = (buf[body] == _FIXARRAY4) & (fix | (tag == _STR8))
    length = np.where(fix, tag & 0x1F, buf[body + 2]).astype(np.int64)
    start = body + np.where(fix, 2, 3)
    counts: Counter[str] = Counter()
    for key, n in _count_spans(buf, start[ok], length[ok]).items():
        counts[key] += n
    for i in np.flatnonzero(~ok).tolist():  # long or unusual symbols: decode the body
        s, e = int(body[i]), int(chunk.frames.offset[i] - chunk.base + chunk.frames.length[i])
        counts[decode_body(memoryview(chunk.data)[s:e])[0]] += 1
    return counts


def _count_spans(buf: np.ndarray, start: np.ndarray, length: np.ndarray) -> dict[str, int]:
    """Count the distinct byte strings buf[start:start+length] as UTF-8 text, vectorised."""
    if not len(start):
        return {}
    width = int(length.max()) + 1  # one more column holds the length, so "A" and "A\0" differ
    cols = np.arange(width - 1)
    idx = np.minimum(start[:, None] + cols, len(buf) - 1)
    mat = np.zeros((len(start), width), dtype=np.uint8)
    mat[:, :-1] = np.where(cols < length[:, None], buf[idx], 0)
    mat[:, -1] = length
    keys, counts = np.unique(mat.view(np.dtype((np.void, width))).ravel(), return_counts=True)
    out = {}
    for k, n in zip(keys.tolist(), counts.tolist(), strict=True):
        out[k[: k[-1]].decode("utf-8")] = n
    return out
