"""What `importer.import_files` checks before it writes anything: captures, journal, time order, category.

`survey` reads a capture once (format, frame count, first and last receive time, symbols,
categories named by its connection URLs); `journal_state` reads the journal without writing
(last receive time, category and symbols of its last SESSION record). `overlap_limits` and
`resolve_category` refuse an import that would break the journal's order in time or mix market
categories, with `ImportRefused` naming the capture, the journal and both sides.
"""

from __future__ import annotations

import gzip
import os
import re
import zlib
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from engine.record import NS_PER_S, Kind
from journal import capture_formats
from journal.errors import JournalError

#: The Bybit topic of a frame (``orderbook.50.SOLUSDT``, ``publicTrade.SOLUSDT``): its last part is the symbol.
TOPIC = re.compile(rb'"topic"\s*:\s*"[A-Za-z]+(?:\.[A-Za-z0-9]+)*\.([A-Z0-9]+)"')
DEFAULT_CATEGORY = "linear"


class ImportRefused(Exception):
    """An import that must not happen; ``status`` is the exit code (2: a usage mistake, 1: the data)."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class CaptureInfo(NamedTuple):
    """One capture file as `survey` found it."""

    path: str
    fmt: str
    frames: int
    first_ns: int  #: receive time of the first frame (0 without frames)
    last_ns: int  #: latest receive time of any frame
    symbols: set[str]
    categories: set[str]


class JournalState(NamedTuple):
    """What an import must know of the journal it continues."""

    exists: bool
    first_ns: int
    last_ns: int
    category: str | None
    symbols: set[str]


def survey(fmt: str, path: str) -> CaptureInfo:
    """Read capture `path` once; ImportRefused if it is unreadable or holds no frame of `fmt`."""
    try:
        return _survey(fmt, path)
    except FileNotFoundError:
        raise ImportRefused(f"capture {path}: no such file") from None
    except IsADirectoryError:
        raise ImportRefused(f"capture {path}: is a directory, not a capture file") from None
    except OSError as e:
        if isinstance(e, gzip.BadGzipFile):
            raise ImportRefused(f"capture {path}: not a gzip file ({e})") from None
        raise ImportRefused(f"capture {path}: {e.strerror or e}") from None
    except (EOFError, zlib.error) as e:
        raise ImportRefused(f"capture {path}: compressed data is damaged ({e})") from None
    except Exception as e:  # zstandard.ZstdError and friends: not one of ours, but named
        if type(e).__module__.startswith("zstandard"):
            raise ImportRefused(f"capture {path}: not a valid .zst file ({e})") from None
        raise


def _survey(fmt: str, path: str) -> CaptureInfo:
    looks = capture_formats.sniff(path)
    if fmt == capture_formats.AUTO:
        if looks is None and _blank(path):
            raise ImportRefused(f"capture {path}: is empty (no lines to import)")
        if looks is None:
            raise ImportRefused(f"capture {path}: not in any known capture format "
                                f"({', '.join(capture_formats.FORMATS)})")
        fmt = looks
    skipped: Counter[str] = Counter()
    n = first = last = 0
    symbols: set[str] = set()
    for recv_ns, payload in capture_formats.read(fmt, path, skipped):
        if not n:
            first = recv_ns
        n += 1
        last = max(last, recv_ns)
        m = TOPIC.search(payload, 0, 512)
        if m:
            symbols.add(m.group(1).decode())
    if not n:
        raise ImportRefused(_no_frames(path, fmt, looks, skipped), status=2 if looks not in (None, fmt) else 1)
    return CaptureInfo(path, fmt, n, first, last, symbols, capture_formats.categories(path))


def _blank(path: str) -> bool:
    """True when `path` holds no non-blank line."""
    with capture_formats.open_capture(path) as f:
        return not any(line.strip() for line in f)


def _no_frames(path: str, fmt: str, looks: str | None, skipped: Counter[str]) -> str:
    """The message for a capture of which `fmt` reads no frame."""
    lines = ", ".join(f"{k} {n}" for k, n in sorted(skipped.items())) or "no lines"
    if looks is None:
        hint = "it looks like none of the known formats"
    elif looks != fmt:
        hint = f"it looks like {looks} (use --format {looks} or --format auto)"
    else:
        hint = f"it looks like {looks} but holds no frame"
    return f"capture {path}: no {fmt} frames in it (skipped: {lines}); {hint}"


def journal_state(journal_dir: str) -> JournalState:
    """Read what an import continues, writing nothing; ImportRefused for an unusable directory."""
    from journal.errors import JournalCorruption
    from journal.reader import JournalReader

    if not str(journal_dir):
        raise ImportRefused("--journal: no journal directory given", status=2)
    d = Path(journal_dir)
    if d.exists() and not d.is_dir():
        raise ImportRefused(f"journal {journal_dir}: is a file, not a journal directory")
    if not d.is_dir():
        _check_creatable(d, journal_dir)
        return JournalState(False, 0, 0, None, set())
    if not os.access(d, os.W_OK | os.X_OK):
        raise ImportRefused(f"journal {journal_dir}: directory is not writable")
    reader = JournalReader(d)
    try:
        index = reader.index()
        sessions = [r.payload for r in reader.records(kinds=[Kind.SESSION])]
    except JournalCorruption as e:
        raise ImportRefused(f"journal {e} (run `feature-service journal repair --journal {journal_dir}`)") from None
    except (JournalError, OSError) as e:
        raise ImportRefused(f"journal {journal_dir}: {getattr(e, 'strerror', None) or e}") from None
    last = sessions[-1] if sessions else {}
    first_ns = int(index.recv_ns.min()) if len(index.recv_ns) else 0
    last_ns = int(index.recv_ns.max()) if len(index.recv_ns) else 0
    return JournalState(True, first_ns, last_ns, last.get("category"), set(last.get("symbols", ())))


def _check_creatable(d: Path, journal_dir: str) -> None:
    """Refuse a journal directory that cannot be created: an ancestor is a file or is not writable."""
    parent = d.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ImportRefused(f"journal {journal_dir}: cannot be created: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ImportRefused(f"journal {journal_dir}: cannot be created: {parent} is not writable")


def overlap_limits(infos: list[CaptureInfo], state: JournalState, journal_dir: str,
                   skip_overlap: bool) -> list[int]:
    """Per capture, the receive time up to which its frames are already journaled (or refuse).

    A capture must start at or after the journal's last record and the end of the captures before
    it; with `skip_overlap` the frames at or before that point are left out instead.
    """
    limits: list[int] = []
    end, end_of = state.last_ns, None
    for info in infos:
        if info.first_ns < end and not skip_overlap:
            raise ImportRefused(_overlap_message(info, state, journal_dir, end_of))
        limits.append(end if skip_overlap else -1)
        if info.last_ns > end:
            end, end_of = info.last_ns, info
    return limits


def _overlap_message(info: CaptureInfo, state: JournalState, journal_dir: str, end_of: CaptureInfo | None) -> str:
    """Name the capture's time range and the range it starts inside."""
    span = f"capture {info.path} ({iso(info.first_ns)} to {iso(info.last_ns)})"
    if end_of is None:
        other = f"the journal's last record (journal {journal_dir}: {iso(state.first_ns)} to {iso(state.last_ns)})"
    else:
        other = f"the end of capture {end_of.path} ({iso(end_of.first_ns)} to {iso(end_of.last_ns)})"
    return f"{span} starts before {other}; use --skip-overlap to import only what lies after"


def resolve_category(infos: list[CaptureInfo], given: str | None, state: JournalState, journal_dir: str) -> str:
    """The market category of the import: the captures', `given`'s, the journal's, or linear."""
    named = {c: i for i in infos for c in sorted(i.categories)}
    if len(named) > 1:
        where = ", ".join(f"{c} ({i.path})" for c, i in named.items())
        raise ImportRefused(f"the captures name several market categories: {where}; a journal holds one")
    found = next(iter(named), None)
    if found is not None and given is not None and found != given:
        raise ImportRefused(f"capture {named[found].path} is a {found} capture (its connection URL says so), "
                            f"but --category is {given}", status=2)
    category = found or given or state.category or DEFAULT_CATEGORY
    if state.category is not None and category != state.category:
        source = f"capture {named[found].path}" if found else "--category" if given else "the import"
        raise ImportRefused(f"journal {journal_dir} holds {state.category} records; {source} is {category} "
                            "(a journal holds one market category)")
    return category


def check_symbols(infos: list[CaptureInfo], symbols: list[str] | None) -> None:
    """Refuse `symbols` the captures' topics never name (a typo would import nothing but ticks)."""
    have = set().union(*(i.symbols for i in infos))
    missing = [s for s in symbols or () if s not in have]
    if missing and have:
        raise ImportRefused(f"--symbols {','.join(missing)}: not in the captures "
                            f"(their symbols: {', '.join(sorted(have))})", status=2)


def iso(ns: int) -> str:
    """ns since the epoch as ISO-8601 UTC to the millisecond (``2026-08-09T21:26:00.123Z``)."""
    s, frac = divmod(ns, NS_PER_S)
    return datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 1_000_000:03d}Z"
