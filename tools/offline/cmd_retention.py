"""`feature-service retention run --config FILE [--dry-run]`: apply the store's retention and archive rules.

Hot date partitions older than ``store.retention_days`` move to ``store.archive_dir`` (deleted when
there is no archive), archive partitions older than ``store.archive_retention_days`` are deleted,
and compacted journal segments past ``retention_days`` go (`journal.store.retention`). Only files
the compaction manifest names (compacted and verified) are touched; today's partitions never are.
``--dry-run`` prints the actions and changes nothing. A JSON summary goes to stdout.

Exit status: 0 ok; 1 a runtime failure (the store locked by a running compaction, a file changed
since it was verified, a copy that did not read back identical, a damaged manifest, a full disk);
2 a usage or config mistake (bad ``--now``, an invalid config file).
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the retention sub-commands."""
    sub = p.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    r = sub.add_parser("run", help="move hot partitions past store.retention_days to the archive, delete what is "
                       "past store.archive_retention_days; print a JSON summary")
    r.add_argument("--config", required=True, metavar="FILE", help="shard config (its store and journal sections)")
    r.add_argument("--dry-run", action="store_true", help="print the actions it would take (JSON) and change nothing")
    r.add_argument("--now", default="", metavar="TIME",
                   help="count ages from this time instead of the clock (ISO-8601 or epoch s/ms/ns; to preview a "
                        "later run with --dry-run)")


def run(args: argparse.Namespace) -> int:
    """Run retention on the configured store; print the summary."""
    from pathlib import Path

    import orjson

    from journal.store.manifest import ManifestError
    from journal.store.retention import RetentionError, run_retention
    from tools.shard.config import load_shard_config

    now_ns = _now(args.now)
    cfg = load_shard_config(args.config)
    try:
        summary = run_retention(cfg.store, Path(cfg.journal.dir), checkpoints_dir=cfg.data / "checkpoints",
                                now_ns=now_ns, dry_run=args.dry_run)
    except (RetentionError, ManifestError) as e:
        print(f"feature-service retention run: error: {e}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()
    return 0


def _now(text: str) -> int | None:
    """--now as epoch ns (None: the clock); an unparsable time is a usage error."""
    if not text:
        return None
    from tools.cli import UsageError
    from tools.timeparse import parse_time

    try:
        return parse_time(text, "--now")
    except ValueError as e:
        raise UsageError(str(e)) from None
