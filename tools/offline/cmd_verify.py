"""`feature-service verify --config FILE --from T --to T`: online = offline, bit for bit, or exit 1.

Prints the JSON report of `tools.offline.verify` (rows compared, mismatches per column, missing
and extra rows, the first differing cells). Exit 0 only with no mismatch and no missing row.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach verify's options."""
    p.add_argument("--config", required=True, metavar="FILE", help="the shard config (feature log, store, journal)")
    p.add_argument("--from", dest="from_", required=True, metavar="TIME", help="first tick, inclusive")
    p.add_argument("--to", required=True, metavar="TIME", help="last tick, exclusive")
    p.add_argument("--symbols", default="", metavar="S,...", help="only these symbols (default: all)")
    p.add_argument("--max-diffs", type=int, default=20, metavar="N", help="differing cells listed (default 20)")


def run(args: argparse.Namespace) -> int:
    """Verify the range; 0 when identical, 1 otherwise."""
    import orjson

    from tools.cli import UsageError
    from tools.offline.cmd_replay import check_symbol_list, time_range
    from tools.offline.replay import ConfigSource
    from tools.offline.verify import NoLogRows, verify

    from_ns, to_ns = time_range(args.from_, args.to)
    assert from_ns is not None and to_ns is not None
    symbols = check_symbol_list(args.symbols, ConfigSource.open(args.config).known_symbols())
    try:
        report = verify(args.config, from_ns, to_ns, symbols, max(0, args.max_diffs))
    except NoLogRows as e:
        raise UsageError(str(e)) from None
    sys.stdout.buffer.write(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2) + b"\n")
    return 0 if report.ok else 1
