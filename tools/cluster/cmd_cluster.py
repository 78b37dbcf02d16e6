"""`feature-service cluster plan --config FILE [--out DIR]`: each shard's config and its systemd commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path, PurePosixPath


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the cluster sub-commands."""
    sub = p.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    plan = sub.add_parser("plan", help="print every shard's config and the commands that install and start it")
    plan.add_argument("--config", required=True, metavar="FILE", help="cluster YAML (see tools/cluster/config.py)")
    plan.add_argument("--out", metavar="DIR", help="also write one NAME.yaml per shard into DIR (created)")
    plan.add_argument("--cluster-path", metavar="PATH",
                      help="where the shards read the cluster file on their hosts, e.g. "
                           "/etc/feature-service/cluster.yaml (default: FILE's absolute path)")


def run(args: argparse.Namespace) -> int:
    """Validate the cluster file (errors exit 2 via the CLI), print the plan, optionally write files."""
    from tools.cluster.config import load_cluster_config
    from tools.cluster.plan import plan, render, write_files

    cfg = load_cluster_config(args.config)
    source = str(Path(args.config).resolve())
    cluster_path = args.cluster_path or source
    if not PurePosixPath(cluster_path).is_absolute():
        print(f"feature-service cluster plan: --cluster-path {cluster_path!r} must be absolute", file=sys.stderr)
        return 2
    plans = plan(cfg, cluster_path)
    sources = {p.name: f"{p.name}.yaml" for p in plans}
    if args.out:
        try:
            sources = {name: str(path) for name, path in write_files(plans, Path(args.out)).items()}
        except OSError as e:
            print(f"feature-service cluster plan: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
            return 1
    cluster_source = source if cluster_path != source else None
    sys.stdout.write(render(cfg, plans, cluster_path, sources, cluster_source))
    return 0
