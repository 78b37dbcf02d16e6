"""`feature-service replay`: journal → engine → Parquet, one row per (tick, symbol)."""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach replay's options."""
    p.add_argument("--journal", required=True, metavar="DIR", help="journal directory")
    p.add_argument("--out", required=True, metavar="DIR|FILE.parquet",
                   help="output directory (one Parquet file per registry hash met) or one .parquet file "
                        "(only when the range has one registry)")
    p.add_argument("--registry", default="", metavar="FILE",
                   help="what-if: compute with this registry instead of the ones journaled")
    p.add_argument("--symbols", default="", metavar="S,...", help="symbols (default: all in the journal)")
    p.add_argument("--from", dest="from_", default="", metavar="ISO", help="first tick (inclusive, UTC)")
    p.add_argument("--to", default="", metavar="ISO", help="last tick (exclusive, UTC)")


def parse_iso_ns(text: str, name: str) -> int | None:
    """Parse an ISO-8601 time (naive means UTC) to epoch ns; empty gives None."""
    from datetime import UTC, datetime

    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SystemExit(f"feature-service replay: --{name} {text!r} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def run(args: argparse.Namespace) -> int:
    """Replay the journal and write the feature file; print a JSON summary."""
    from pathlib import Path

    import orjson

    from tools.offline.feature_table import FeatureTableError, write_by_registry
    from tools.offline.replay import ReplaySummary, replay
    from tools.registry_file import load_registry_file

    registry = load_registry_file(args.registry) if args.registry else None
    symbols = [s for s in args.symbols.split(",") if s] or None
    from_ns, to_ns = parse_iso_ns(args.from_, "from"), parse_iso_ns(args.to, "to")
    summary = ReplaySummary()
    try:
        files = write_by_registry(Path(args.out), replay(args.journal, registry, symbols, from_ns, to_ns, summary),
                                  summary.registries)
    except FeatureTableError as e:
        print(f"feature-service replay: {e}", file=sys.stderr)
        return 1
    doc = {"out": args.out, "files": {h: str(p) for h, p in files.items()}, "rows": summary.vectors,
           "records": summary.records, "registry_hashes": sorted(files), "notices": summary.notices,
           "counters": summary.counters}
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    return 0
