"""Backfill a journal from recorded captures through the live shard's own ingest pipeline.

`import_records` is the pure part: capture files -> exactly the records a live shard would have
journaled for that traffic at those receive times (`gateway_bridge.ingest.Ingest.frame`: decoded
frames and BAD_FRAMEs, receive times made non-decreasing, ticks in place with long gaps capped,
GATEWAY_DOWN after ``gateway.silence_ms`` without frames and GATEWAY_UP when they resume, the
bad-frame byte budget). `import_files` appends them to a journal in batches and returns a summary.
Importing into a journal that already holds records continues it: the tick series resumes after
its last record, which counts as the last traffic. A journal is append-only in time and holds one
market category: `import_checks` refuses, before anything is written, a capture that starts before
the journal's last record (or, with ``skip_overlap``, leaves out what lies at or before it) or
whose category differs (see `import_files`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from engine.record import MARKET_KINDS, Kind, Record, kind_name, session
from gateway_bridge.config import GatewayConfig, TicksConfig
from gateway_bridge.import_checks import (
    TOPIC,
    CaptureInfo,
    ImportRefused,
    JournalState,
    check_symbols,
    iso,
    journal_state,
    overlap_limits,
    resolve_category,
    survey,
)
from gateway_bridge.ingest import Ingest
from journal import capture_formats
from journal.errors import JournalError
from registry import Registry
from registry.packaged import default_registry

#: Records per journal append.
BATCH = 4096


def capture_symbols(fmt: str, files: Iterable[str]) -> set[str]:
    """The symbols named by the Bybit topics of the frames in `files` (one quick pass, no decoding)."""
    found: set[str] = set()
    for path in files:
        for _, payload in capture_formats.read(fmt, path, Counter()):
            m = TOPIC.search(payload, 0, 512)
            if m:
                found.add(m.group(1).decode())
    return found


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


class Sessions:
    """The SESSION records of an import: one at its head, and one more before the first record of
    each symbol the journal has not named yet (a capture's symbols are known only as they appear)."""

    def __init__(self, category: str, registry: Registry, known: Iterable[str] = ()) -> None:
        self.category, self.registry = category, registry
        self.known = set(known)

    def record(self, recv_ns: int = 0) -> Record:
        """The SESSION for the symbols known so far."""
        return session(recv_ns, "import", self.category, self.known, self.registry.canonical,
                       self.registry.content_hash)

    def before(self, rec: Record) -> Record | None:
        """A SESSION naming `rec`'s symbol if it is a market record of a symbol not named yet."""
        if rec.kind in MARKET_KINDS and rec.symbol and rec.symbol not in self.known:
            self.known.add(rec.symbol)
            return self.record(rec.recv_ns)
        return None


def import_records(fmt: str, files: Iterable[str], symbols: Iterable[str] | None = None, *,
                   start_ns: int = 0, stats: ImportStats | None = None,
                   gateway: GatewayConfig | None = None, ticks: TicksConfig | None = None,
                   head: Sequence[Record] = (), sessions: Sessions | None = None,
                   skip_through: Sequence[int] = ()) -> Iterator[Record]:
    """Yield the unnumbered records of `files` in journal order, continuing a journal ending at `start_ns`.

    `head` records are stamped with the first decoded frame's receive time and yielded right before it;
    with `sessions`, a SESSION record leads them and another precedes each newly seen symbol.
    Frames of ``files[i]`` until the captures' latest receive time passes ``skip_through[i]`` are
    left out (counted as skipped ``overlap``): what an import that stopped there had journaled. `fmt` may be ``auto`` (each file sniffed).
    """
    stats = stats if stats is not None else ImportStats()
    ingest = Ingest(gateway or GatewayConfig(), ticks or TicksConfig(), symbols, last_recv_ns=start_ns,
                    clock_ns=lambda: start_ns, skip_unknown_symbols=symbols is not None)
    head = [sessions.record(), *head] if sessions is not None else list(head)  # emptied once used
    frame = ingest.frame
    count = stats.records
    latest = 0  # the latest receive time so far: what the stamper makes of each frame's time
    for i, path in enumerate(files):
        through = skip_through[i] if i < len(skip_through) else -1
        for raw_ns, payload in capture_formats.read(fmt, path, stats.skipped_lines):
            latest = max(latest, raw_ns)
            if latest <= through:
                stats.skipped_lines["overlap"] += 1
                continue
            stats.frames += 1
            recs = frame(raw_ns, payload, head)
            for rec in recs:
                new = sessions.before(rec) if sessions is not None else None
                if new is not None:
                    count["session"] += 1
                    yield new
                count[kind_name(rec.kind)] += 1
                if rec.kind == Kind.BAD_FRAME:
                    stats.bad_frames[rec.payload["reason"]] += 1
                yield rec
    tail = ingest.control(head) if head else []  # no frame at all: the head still goes in
    for rec in tail + ingest.idle(ingest.stamper.last_ns):  # and a bad-frame summary still pending
        count[kind_name(rec.kind)] += 1
        yield rec
    stats.decoder = ingest.decoder.counters
    stats.recv_ns_held = ingest.stamper.held


def import_files(journal_dir: str, fmt: str, files: list[str], symbols: list[str] | None = None, *,
                 category: str | None = None, registry: Registry | None = None,
                 extra_head: Sequence[Record] = (), gateway: GatewayConfig | None = None,
                 ticks: TicksConfig | None = None, skip_overlap: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Append the records of `files` to the journal at `journal_dir`; return the import summary.

    Like a shard, an import journals SESSION records (category, symbols, `registry` — the packaged
    default when None) so the journal rebuilds offline alone: one at its head naming the symbols
    the journal already had plus `symbols`, and one before the first record of each new symbol.
    `extra_head` records are journaled right before the first imported record, stamped with its
    receive time. Before anything is written (the directory is not even created) every capture is
    read once and the import is refused with `ImportRefused` if a file is unreadable or holds no
    frames of `fmt` (``auto``: sniffed), starts before the journal's last record (or the previous
    file's end; with `skip_overlap` only frames after it are imported), or its market category
    differs from `category` or the journal's. `progress(done, total)` is called as frames go in.
    """
    from journal.writer import JournalWriter

    if fmt != capture_formats.AUTO and fmt not in capture_formats.FORMATS:
        raise ValueError(f"unknown capture format {fmt!r}; known: {', '.join(capture_formats.FORMATS)}")
    state = journal_state(journal_dir)
    infos = [survey(fmt, path) for path in files]
    category = resolve_category(infos, category, state, journal_dir)
    check_symbols(infos, symbols)
    through = overlap_limits(infos, state, journal_dir, skip_overlap)
    out: dict[str, Any] = {"journal": journal_dir, "format": _formats(infos), "files": list(files),
                           "category": category}
    if all(info.last_ns <= t for info, t in zip(infos, through, strict=True)):  # everything is there already
        stats = ImportStats()
        stats.skipped_lines["overlap"] = sum(info.frames for info in infos)
        return {**out, **stats.summary(), "seq": None}
    with JournalWriter(_journal_config(journal_dir)) as writer:
        if writer.last_recv_ns != state.last_ns:  # another writer came and went since the check
            raise ImportRefused(f"journal {journal_dir} changed while the import was being checked; run it again")
        stats, seq = _write_all(writer, infos, symbols, state, category, registry, extra_head, gateway, ticks,
                                through, progress)
    return {**out, **stats.summary(), "seq": seq}


def _journal_config(journal_dir: str) -> Any:
    from journal.config import JournalConfig

    return JournalConfig(dir=journal_dir, fsync="never")


def _write_all(writer: Any, infos: list[CaptureInfo], symbols: list[str] | None, state: JournalState,
               category: str, registry: Registry | None, extra_head: Sequence[Record],
               gateway: GatewayConfig | None, ticks: TicksConfig | None, through: list[int],
               progress: Callable[[int, int], None] | None) -> tuple[ImportStats, list[int] | None]:
    """Import every capture into the open `writer` in batches; return the stats and [first, last] seq."""
    stats = ImportStats()
    first_seq = last_seq = 0
    # The head SESSION names every symbol of the capture, so each has a vector from the first tick.
    known = state.symbols | (set(symbols) if symbols is not None else set().union(*(i.symbols for i in infos)))
    sessions = Sessions(category, registry or default_registry(), known)
    total = sum(i.frames for i in infos)  # progress: frames imported or found already journaled
    batch: list[Record] = []
    records = import_records(capture_formats.AUTO if len({i.fmt for i in infos}) > 1 else infos[0].fmt,
                             [i.path for i in infos], symbols, start_ns=writer.last_recv_ns, stats=stats,
                             gateway=gateway, ticks=ticks, head=extra_head, sessions=sessions, skip_through=through)
    try:
        for rec in records:
            # cut only between receive times, so a stopped import holds all of the times it reached
            if len(batch) >= BATCH and rec.recv_ns > batch[-1].recv_ns:
                first_seq, last_seq = _append(writer, batch, first_seq, last_seq)
                if progress is not None:
                    progress(stats.frames + stats.skipped_lines["overlap"], total)
            batch.append(rec)
        first_seq, last_seq = _append(writer, batch, first_seq, last_seq)
        writer.sync()
    except JournalError as e:  # a full disk half-way: say what went in and how to go on
        if not last_seq:
            raise
        raise ImportRefused(f"{e}; the import stopped after seq {last_seq} (received up to "
                            f"{iso(writer.last_recv_ns)}): free space, then re-run with --skip-overlap") from None
    if progress is not None:
        progress(stats.frames + stats.skipped_lines["overlap"], total)
    return stats, ([first_seq, last_seq] if first_seq else None)


def _formats(infos: list[CaptureInfo]) -> str | list[str]:
    """The capture format of the import: one name, or one per file when they differ."""
    fmts = [i.fmt for i in infos]
    return fmts[0] if len(set(fmts)) == 1 else fmts


def _append(writer: Any, batch: list[Record], first_seq: int, last_seq: int) -> tuple[int, int]:
    """Append and clear `batch`; return the updated (first, last) seq of this import."""
    if not batch:
        return first_seq, last_seq
    numbered = writer.append(batch)
    batch.clear()
    return (first_seq or numbered[0].seq), numbered[-1].seq
