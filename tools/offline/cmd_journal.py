"""`feature-service journal stats|cat|import`: look inside a journal, or backfill one from captures."""

from __future__ import annotations

import argparse
import sys

IMPORT_FORMATS = ("frames", "tardis", "hftbacktest", "cryptofeed")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the journal sub-commands."""
    sub = p.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    s = sub.add_parser("stats", help="print JSON statistics of a journal")
    s.add_argument("--journal", required=True, metavar="DIR", help="journal directory")
    c = sub.add_parser("cat", help="print one JSON object per record")
    c.add_argument("--journal", required=True, metavar="DIR", help="journal directory")
    c.add_argument("--from-seq", type=int, default=0, metavar="N", help="first seq to print")
    c.add_argument("--kind", action="append", default=[], metavar="K",
                   help="only this kind (book_delta, trades, tick, …); repeatable")
    c.add_argument("--limit", type=int, default=0, metavar="N", help="stop after N records (0: all)")
    c.add_argument("--follow", action="store_true", help="keep printing as the journal grows")
    i = sub.add_parser("import", help="append recorded captures to a journal (ticks inserted)")
    i.add_argument("--journal", required=True, metavar="DIR", help="journal directory (created)")
    i.add_argument("--format", required=True, choices=IMPORT_FORMATS, help="capture format")
    i.add_argument("--symbols", default="", metavar="S,...", help="keep only these symbols (default: all)")
    i.add_argument("--category", default="linear", choices=("linear", "spot", "inverse", "option"),
                   help="Bybit market category of the capture, journaled in its SESSION record (default linear)")
    i.add_argument("--registry", default="", metavar="FILE",
                   help="feature registry journaled with the import (default: the packaged one)")
    i.add_argument("files", nargs="+", metavar="FILE", help="capture files (.gz and .zst read transparently)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the journal action."""
    import orjson

    if args.journal_command == "stats":
        from journal.errors import JournalError
        from journal.stats import journal_stats

        try:
            stats = journal_stats(args.journal)
        except JournalError as e:
            print(f"feature-service journal stats: {e}", file=sys.stderr)
            return 1
        sys.stdout.buffer.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
        return 0
    if args.journal_command == "cat":
        from journal.cat import cat

        return cat(args.journal, from_seq=args.from_seq, kinds=args.kind, limit=args.limit,
                   follow=args.follow, out=sys.stdout.buffer)
    from gateway_bridge.importer import import_files
    from tools.registry_file import load_registry_file

    symbols = [s for s in args.symbols.split(",") if s] or None
    registry = load_registry_file(args.registry) if args.registry else None
    summary = import_files(args.journal, args.format, args.files, symbols=symbols, category=args.category,
                           registry=registry)
    sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    return 0
