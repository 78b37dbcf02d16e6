"""`feature-service bench ingest|engine|journal|latency|restart|offline|dataset|model`: print measured figures beside a naive baseline."""

from __future__ import annotations

import argparse
import importlib

#: bench name -> module under tools/ with add_arguments(p) and run(args).
BENCHES = {
    "ingest": ("tools.bench.ingest", "simulator -> bridge -> journal throughput per fsync policy"),
    "engine": ("tools.bench.engine", "order book, apply, tick and replay costs"),
    "journal": ("tools.bench.journal", "journal write and read throughput"),
    "latency": ("tools.bench.latency", "tick boundary -> features.live subscriber latency; GET /features/latest"),
    "restart": ("tools.bench.restart", "shard start -> first vector on a 24 h journal, with and without a checkpoint"),
    "offline": ("tools.bench.offline", "offline rebuild: engine vs vectorised pandas vs naive, compaction, store "
                                       "and journal replay, scaling (time, peak RSS)"),
    "dataset": ("tools.bench.dataset", "dataset build from a compacted store: 1 symbol x 24 h, N symbols with "
                                       "--workers 2, beside a naive pandas build"),
    "model": ("tools.bench.model", "model-service inference: vector receipt -> prediction sent, p50/p99, beside "
                                   "a naive pandas client"),
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach one sub-command per benchmark."""
    sub = p.add_subparsers(dest="bench", metavar="BENCH", required=True)
    for name, (module, help_text) in BENCHES.items():
        b = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(b)
        b.set_defaults(_bench_module=module)


def run(args: argparse.Namespace) -> int:
    """Run the chosen benchmark."""
    return int(importlib.import_module(args._bench_module).run(args) or 0)
