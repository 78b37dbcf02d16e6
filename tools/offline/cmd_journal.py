"""`feature-service journal stats|cat|import|repair`: look inside a journal, backfill one, or repair one.

Exit status: 0 ok; 1 a runtime failure (missing or unusable journal, corrupt segment, unreadable
capture, an import that would break the journal's time order or mix market categories, a full
disk); 2 a usage mistake (bad time, --from after --to, unknown kind or symbol, --format or
--category contradicted by the capture). Every failure is one line on stderr; nothing is written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from tools.progress import CountBar

IMPORT_FORMATS = ("auto", "frames", "tardis", "hftbacktest", "cryptofeed")
CATEGORIES = ("linear", "spot", "inverse", "option")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the journal sub-commands."""
    sub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    s = sub.add_parser("stats", help="print JSON statistics of a journal")
    s.add_argument("--journal", required=True, metavar="DIR", help="journal directory")
    _add_cat(sub.add_parser("cat", help="print one JSON object per record"))
    _add_import(sub.add_parser("import", help="append recorded captures to a journal (ticks inserted)"))
    r = sub.add_parser("repair", help="move the damaged tail of corrupt closed segments aside; "
                       "print the seq ranges lost (JSON)")
    r.add_argument("--journal", required=True, metavar="DIR", help="journal directory (no shard may be running)")


def _add_cat(c: argparse.ArgumentParser) -> None:
    c.add_argument("--journal", required=True, metavar="DIR", help="journal directory")
    c.add_argument("--from-seq", type=int, default=0, metavar="N", help="first seq to print")
    c.add_argument("--kind", action="append", default=[], metavar="K",
                   help="only this kind (book_delta, trades, tick, …); repeatable")
    c.add_argument("--symbol", action="append", default=[], metavar="S", help="only this symbol; repeatable")
    c.add_argument("--from", dest="from_time", default=None, metavar="TIME",
                   help="first receive time (ISO-8601, with or without Z, or epoch s/ms/ns)")
    c.add_argument("--to", dest="to_time", default=None, metavar="TIME", help="last receive time (inclusive)")
    c.add_argument("--limit", type=int, default=0, metavar="N", help="stop after N records (0: all)")
    c.add_argument("--follow", action="store_true", help="keep printing as the journal grows")


def _add_import(i: argparse.ArgumentParser) -> None:
    i.add_argument("--journal", required=True, metavar="DIR", help="journal directory (created)")
    i.add_argument("--format", default="auto", choices=IMPORT_FORMATS,
                   help="capture format (default auto: sniffed from each file's first lines)")
    i.add_argument("--symbols", default="", metavar="S,...", help="keep only these symbols (default: all)")
    i.add_argument("--category", default=None, choices=CATEGORIES,
                   help="Bybit market category, journaled in its SESSION records (default: what the capture's "
                        "connection URL says, else the journal's, else linear); a contradiction is refused")
    i.add_argument("--skip-overlap", action="store_true",
                   help="import only frames received after the journal's last record (re-runs add nothing)")
    i.add_argument("--registry", default="", metavar="FILE",
                   help="feature registry journaled with the import (default: the packaged one)")
    i.add_argument("files", nargs="+", metavar="FILE", help="capture files (.gz and .zst read transparently)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the journal action; a failure is one line on stderr and a non-zero status."""
    from journal.errors import JournalError

    action: Callable[[argparse.Namespace], int] = _ACTIONS[args.journal_command]
    try:
        return action(args)
    except JournalError as e:
        return _fail(args, str(e), 1)
    except OSError as e:  # anything the file system says that no check above named
        where = f"{e.filename}: " if e.filename else ""
        return _fail(args, f"{where}{e.strerror or e}", 1)


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    print(f"feature-service journal {args.journal_command}: {message}", file=sys.stderr)
    return status


def _print_json(obj: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


def _stats(args: argparse.Namespace) -> int:
    from journal.reader import check_journal_dir
    from journal.stats import journal_stats

    _print_json(journal_stats(check_journal_dir(args.journal)))
    return 0


def _cat(args: argparse.Namespace) -> int:
    from journal.cat import cat
    from journal.reader import check_journal_dir
    from tools.timeparse import parse_time

    for name, value in (("--from-seq", args.from_seq), ("--limit", args.limit)):
        if value < 0:
            return _fail(args, f"{name}: {value} is negative", 2)
    try:
        from_ns = None if args.from_time is None else parse_time(args.from_time, "--from")
        to_ns = None if args.to_time is None else parse_time(args.to_time, "--to")
    except ValueError as e:
        return _fail(args, str(e), 2)
    if from_ns is not None and to_ns is not None and from_ns > to_ns:
        return _fail(args, f"--from {args.from_time} is after --to {args.to_time}", 2)
    d = check_journal_dir(args.journal)
    unknown = _unknown_symbols(d, args.symbol)
    if unknown:
        return _fail(args, unknown, 2)
    return cat(d, from_seq=args.from_seq, kinds=args.kind, limit=args.limit, follow=args.follow,
               out=sys.stdout.buffer, symbols=args.symbol, from_ns=from_ns, to_ns=to_ns)


def _unknown_symbols(d: Any, wanted: list[str]) -> str:
    """A message naming the `wanted` symbols the journal has no record of ("" if all are there)."""
    if not wanted:
        return ""
    from journal.stats import journal_stats

    have = sorted(s for s in journal_stats(d)["symbols"] if s)
    missing = [s for s in wanted if s not in have]
    if not missing:
        return ""
    return f"--symbol {', '.join(missing)}: not in journal {d} (its symbols: {', '.join(have) or 'none'})"


def _import(args: argparse.Namespace) -> int:
    from gateway_bridge.importer import ImportRefused, import_files
    from tools.registry_file import load_registry_file

    symbols = [s for s in args.symbols.split(",") if s] or None
    registry = load_registry_file(args.registry) if args.registry else None
    try:
        with CountBar("importing", "frames") as progress:
            summary = import_files(args.journal, args.format, args.files, symbols=symbols,
                                   category=args.category, registry=registry, skip_overlap=args.skip_overlap,
                                   progress=progress)
    except ImportRefused as e:
        return _fail(args, str(e), e.status)
    _print_json(summary)
    return 0


def _repair(args: argparse.Namespace) -> int:
    from journal.repair import repair

    _print_json(repair(args.journal))
    return 0


_ACTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "stats": _stats, "cat": _cat, "import": _import, "repair": _repair,
}
