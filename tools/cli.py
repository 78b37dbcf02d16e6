"""`feature-service` console script: one sub-command per module, imported only when used."""

from __future__ import annotations

import argparse
import importlib
import sys

from tools.typedconfig import ConfigError

#: sub-command -> (module under tools/, one-line help). Each module has add_arguments(p) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "journal": ("tools.offline.cmd_journal", "inspect and import journals (stats, cat, import)"),
    "shard": ("tools.shard.cmd_shard", "run a shard: subscribe to ws-gateway and journal every event"),
    "gateway-sim": ("tools.sim.cmd_gateway_sim", "run the ws-gateway simulator (recording or synthetic)"),
    "replay": ("tools.offline.cmd_replay", "replay a journal through the engine into a Parquet feature file"),
    "registry": ("tools.offline.cmd_registry", "validate a feature registry and print its hash"),
    "bench": ("tools.bench.cmd_bench", "benchmarks: ingest, engine, journal"),
    "demo": ("tools.sim.cmd_demo", "end-to-end demo on an embedded default config"),
    "cluster": ("tools.cluster.cmd_cluster", "plan a multi-shard deployment from a cluster config"),
}


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command attached."""
    parser = argparse.ArgumentParser(prog="feature-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, run the chosen sub-command, and return its exit status."""
    args = build_parser().parse_args(argv)
    from registry import RegistryError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except ConfigError as e:
        print(f"feature-service {args.command}: config error: {e}", file=sys.stderr)
        return 2
    except RegistryError as e:
        print(f"feature-service {args.command}: registry error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
