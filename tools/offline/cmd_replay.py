"""`feature-service replay`: journal → engine → Parquet, one row per (tick, symbol).

Every argument is checked before anything is written: the journal must be a journal directory
(exit 1 otherwise, as for `journal stats`), `--symbols` must name symbols of the journal (its
SESSION records, else its index), `--from` must be before `--to`, and `--out` must not lie inside
the journal (exit 2). On any failure the output is not created (nor a directory `--out` would
have created). Each feature column carries
Parquet field metadata ``unit`` and ``description`` (see `registry functions`).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.engine import Vector
    from registry import Registry

log = logging.getLogger(__name__)

_TIME_HELP = "ISO-8601 (2026-08-09T21:26:00Z; no Z means UTC) or epoch seconds, milliseconds or nanoseconds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach replay's options."""
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--journal", metavar="DIR", help="journal directory (replayed from its first record)")
    src.add_argument("--config", metavar="FILE",
                     help="shard config: replay its store (hot + archive) and then the journal tail not yet "
                          "compacted, starting from the newest checkpoint before --from")
    p.add_argument("--out", required=True, metavar="DIR|FILE.parquet",
                   help="output directory (one Parquet file per registry hash met, created if missing) or one "
                        ".parquet file in an existing directory (only when the range has one registry)")
    p.add_argument("--registry", default="", metavar="FILE",
                   help="what-if: compute with this registry instead of the ones journaled")
    p.add_argument("--symbols", default="", metavar="S,...",
                   help="only these symbols, comma-separated, as the journal spells them (default: all)")
    p.add_argument("--from", dest="from_", default="", metavar="TIME",
                   help=f"first tick, inclusive: {_TIME_HELP} (default: the journal's start)")
    p.add_argument("--to", default="", metavar="TIME", help="last tick, exclusive (default: the journal's end)")


def run(args: argparse.Namespace) -> int:
    """Replay the journal and write the feature file; print a JSON summary."""
    import orjson

    from tools.offline.feature_table import write_by_registry
    from tools.offline.replay import ReplaySummary
    from tools.registry_file import load_registry_file

    source = _source(args)
    journal = source.journal
    out = check_out(args.out, journal, source.store)
    from_ns, to_ns = time_range(args.from_, args.to)
    symbols = check_symbol_list(args.symbols, source.known_symbols())
    registry = load_registry_file(args.registry) if args.registry else None
    log.debug("replay_start", extra={"journal": str(journal), "out": str(out), "symbols": symbols,
                                     "from_ns": from_ns, "to_ns": to_ns, "what_if": args.registry or None})
    summary = ReplaySummary()
    vectors = source.replay(registry, symbols, from_ns, to_ns, summary)
    if summary.start:
        log.info("replay_start_point", extra=summary.start)
    written = _Count(_with_progress(vectors, str(journal), from_ns, to_ns))
    with _undo_created_dirs(out):
        files = write_by_registry(out, written, summary.registries, docs=field_metadata)
    if written.n == 0:
        log.warning("replay_no_rows", extra={"reason": "no tick of the journal lies in the range asked for"})
    log.info("replay_done", extra={"rows": written.n, "files": len(files), "records": summary.records})
    doc = {"out": args.out, "files": {h: str(p) for h, p in files.items()}, "rows": written.n,
           "records": summary.records, "registry_hashes": sorted(files), "notices": summary.notices,
           "counters": summary.counters, **({"start": summary.start} if summary.start else {})}
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


# -- argument checks (UsageError, exit 2) ------------------------------------------------------

def check_journal(text: str) -> Path:
    """The --journal directory; a missing path, a file or a directory without segments is a JournalError."""
    from journal.reader import check_journal_dir

    return check_journal_dir(text)


def check_out(text: str, journal: Path, store: Path | None = None) -> Path:
    """The --out path; one inside the journal or the store directory (which it would change) is refused."""
    from tools.cli import UsageError

    out = Path(text)
    resolved = out.resolve()
    for what, d in (("journal", journal), ("store", store)):
        if d is None:
            continue
        if resolved == d.resolve() or d.resolve() in resolved.parents:
            raise UsageError(f"--out {text}: lies inside the {what} {d}; write the features elsewhere")
    return out


def time_range(from_text: str, to_text: str) -> tuple[int | None, int | None]:
    """--from and --to as epoch ns (None when not given); an unparsable time or from ≥ to is refused."""
    from tools.cli import UsageError
    from tools.timeparse import parse_time

    try:
        from_ns = parse_time(from_text, "--from") if from_text else None
        to_ns = parse_time(to_text, "--to") if to_text else None
    except ValueError as e:
        raise UsageError(str(e)) from None
    if from_ns is not None and to_ns is not None and from_ns >= to_ns:
        raise UsageError(f"--from {from_text!r} is not before --to {to_text!r} (the range [from, to) is empty)")
    return from_ns, to_ns


def check_symbol_list(text: str, known: tuple[str, list[str]]) -> list[str] | None:
    """The --symbols list checked against `known` = (what holds them, their symbols); None for all."""
    from tools.cli import UsageError

    wanted = [s.strip() for s in text.split(",") if s.strip()]
    if not wanted:
        if text.strip():
            raise UsageError(f"--symbols {text!r}: names no symbol")
        return None
    where, symbols = known
    unknown = [s for s in wanted if s not in symbols]
    if unknown:
        hint = [f"{s} (did you mean {s.upper()}?)" if s.upper() in symbols else s for s in unknown]
        raise UsageError(f"--symbols: {', '.join(hint)} not in {where}; "
                         f"its symbols: {', '.join(sorted(symbols)) or 'none'}")
    return list(dict.fromkeys(wanted))


def _source(args: argparse.Namespace) -> Any:
    """What --journal or --config names, checked (a missing journal, config or empty store is refused)."""
    from tools.offline.replay import ConfigSource, JournalSource

    if args.journal is not None:
        return JournalSource(check_journal(args.journal))
    return ConfigSource.open(args.config)


# -- output --------------------------------------------------------------------------------------

def field_metadata(registry: Registry) -> dict[str, dict[bytes, bytes]]:
    """Parquet field metadata of each feature column: its ``unit`` and one-line ``description``."""
    from tools.offline.cmd_registry import feature_docs

    return {name: {b"unit": unit.encode(), b"description": text.encode()}
            for name, (unit, text) in feature_docs(registry).items()}


class _Count:
    """An iterable passing `items` through and counting them in `n`."""

    def __init__(self, items: Iterable[Vector]) -> None:
        self.items, self.n = items, 0

    def __iter__(self) -> Iterator[Vector]:
        for v in self.items:
            self.n += 1
            yield v


@contextlib.contextmanager
def _undo_created_dirs(out: Path) -> Iterator[None]:
    """On failure, remove the (still empty) directories that writing `out` created; existing ones stay."""
    target = out if out.suffix.lower() != ".parquet" else out.parent
    missing = [d for d in (target, *target.parents) if not d.exists()]
    try:
        yield
    except BaseException:
        for d in missing:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _with_progress(vectors: Iterable[Vector], journal: str, from_ns: int | None,
                   to_ns: int | None) -> Iterator[Vector]:
    """`vectors`, with a progress bar over tick time on stderr when it is a terminal."""
    if not sys.stderr.isatty():
        yield from vectors
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from journal.stats import journal_stats

    span = journal_stats(journal)["recv_ns"] or {"min": 0, "max": 0}
    lo, hi = from_ns if from_ns is not None else span["min"], to_ns if to_ns is not None else span["max"]
    total = max(1, (hi - lo) // 1_000_000_000)
    columns = (TextColumn("replay"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s of ticks"),
               TimeRemainingColumn())
    last = -1
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("replay", total=total)
        for v in vectors:
            if v.ts_ns != last:  # once per tick, not per symbol
                last = v.ts_ns
                bar.update(task, completed=min(total, max(0, (v.ts_ns - lo) // 1_000_000_000)))
            yield v
