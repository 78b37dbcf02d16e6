"""`feature-service compact --config FILE [--dry-run]`: the shard's journal -> its raw Parquet store.

Compacts the segments no writer holds (all of them when the shard is stopped) into
``store.dir`` (default ``<data_dir>/store``), verifies every file before the manifest names it,
deletes compacted segments (``store.delete_segments``; never the newest, never past the newest
shard checkpoint) and prints a JSON summary. `--dry-run` lists what it would do and changes
nothing. Damage in a closed segment: the records before it are compacted, the summary names the
damage, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach compact's options."""
    p.add_argument("--config", required=True, metavar="FILE", help="shard config (its journal, data_dir and store)")
    p.add_argument("--dry-run", action="store_true", help="print what would be compacted and deleted; change nothing")


def summary(args: argparse.Namespace) -> dict[str, Any]:
    """Run (or plan) the compaction the arguments ask for; its JSON-ready summary."""
    from pathlib import Path

    from journal.reader import check_journal_dir
    from journal.store.compact import compact
    from tools.shard.config import load_shard_config

    cfg = load_shard_config(args.config)
    journal = check_journal_dir(cfg.journal.dir)
    return compact(journal, cfg.store, checkpoints_dir=Path(cfg.data) / "checkpoints", dry_run=args.dry_run).as_dict()


def run(args: argparse.Namespace) -> int:
    """Compact and print the summary; 1 when damage stopped the run early."""
    import orjson

    out = summary(args)
    sys.stdout.write(orjson.dumps(out).decode() + "\n")
    if out.get("damage"):
        print(f"feature-service compact: journal error: {out['damage']}", file=sys.stderr)
        return 1
    return 0
