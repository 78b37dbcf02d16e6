"""`feature-service` console script: one sub-command per module, imported only when used.

Global options (before the command): ``--version``; ``-q`` (log WARNING and above) or ``-v`` (log
DEBUG); the default logs INFO. Logs are JSON lines on stderr; results go to stdout. ``shard`` and
``gateway-sim`` set logging up themselves and take ``--log-level LEVEL`` instead (a level that is
not DEBUG, INFO, WARNING or ERROR is exit 2).

Exit codes (every command):

  0    success
  1    runtime failure: a damaged or locked journal, a file that cannot be read or written
       (missing, permission, disk full), an output that cannot be written; also ``registry check``
       of an invalid registry
  2    usage or configuration error: unknown option or value, a bad time, symbol or path given
       on the command line, an invalid config or registry file, ``--log-level`` not a level
  130  interrupted (SIGINT)
  141  stdout closed early (a pipe into ``head``); nothing is printed

A failure prints one line on stderr, ``feature-service COMMAND: <what>: <the offending thing>``,
never a traceback (an unexpected bug still shows one).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import NoReturn

from tools.typedconfig import ConfigError

#: sub-command -> (module under tools/, one-line help). Each module has add_arguments(p) and run(args).
COMMANDS: dict[str, tuple[str, str]] = {
    "journal": ("tools.offline.cmd_journal", "inspect, import and repair journals (stats, cat, import, repair)"),
    "shard": ("tools.shard.cmd_shard", "run a shard: subscribe to ws-gateway and journal every event"),
    "gateway-sim": ("tools.sim.cmd_gateway_sim", "run the ws-gateway simulator (recording or synthetic)"),
    "replay": ("tools.offline.cmd_replay", "replay a journal through the engine into a Parquet feature file"),
    "compact": ("tools.offline.cmd_compact", "compact closed journal segments into the raw_* Parquet store"),
    "store": ("tools.offline.cmd_store", "the raw store: export it back as Bybit frames"),
    "retention": ("tools.offline.cmd_retention", "move store partitions past retention to the archive, delete expired"),
    "dataset": ("tools.dataset.cmd_dataset", "build labelled Parquet training datasets from the store; list, show, report"),
    "verify": ("tools.offline.cmd_verify", "prove online = offline: compare the feature log with a rebuild, bit for bit"),
    "registry": ("tools.offline.cmd_registry", "validate a feature registry, print its hash, columns or functions"),
    "bench": ("tools.bench.cmd_bench", "benchmarks: ingest, engine, journal, latency, restart, offline"),
    "demo": ("tools.sim.cmd_demo", "end-to-end demo on an embedded default config"),
    "cluster": ("tools.cluster.cmd_cluster", "plan a multi-shard deployment from a cluster config"),
}

#: Commands that set logging up themselves (their own --log-level and format).
OWN_LOGGING = frozenset({"shard", "gateway-sim"})

DESCRIPTION = ("Feature Service: journal Bybit v5 market data from ws-gateway, compute feature vectors live "
               "(shard) and offline from the journal (replay), bit for bit the same.")

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_PIPE = 0, 1, 2, 130, 141


class UsageError(ValueError):
    """A command-line value is wrong (time, symbol, path); the message names the option and value."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming the offending argument (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def version() -> str:
    """The installed package's version (from its metadata)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("feature-service")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every sub-command attached."""
    parser = Parser(prog="feature-service", description=DESCRIPTION,
                    epilog="exit codes: 0 ok, 1 runtime failure, 2 usage or config error, 130 interrupted, "
                           "141 stdout closed early. -q/-v set the log level of every command but shard and "
                           "gateway-sim, which take --log-level.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("-q", "--quiet", dest="log_level_global", action="store_const", const="WARNING",
                      help="log warnings and errors only")
    loud.add_argument("-v", "--verbose", dest="log_level_global", action="store_const", const="DEBUG",
                      help="log debug messages too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(p)
        p.set_defaults(_module=module)
    return parser


def setup_cli_logging(args: argparse.Namespace) -> None:
    """Log at INFO, or WARNING with -q, DEBUG with -v, unless the command sets its own logging up."""
    if args.command in OWN_LOGGING:
        return
    from tools.logsetup import setup_logging

    setup_logging(args.log_level_global or "INFO", "json")


def main(argv: list[str] | None = None) -> int:
    """Parse `argv`, run the chosen sub-command, and return its exit status."""
    args = build_parser().parse_args(argv)
    setup_cli_logging(args)
    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_PIPE
    except Exception as e:
        known = classify(e)
        if known is None:
            raise
        code, what = known
        print(f"feature-service {args.command}: {what}", file=sys.stderr)
        return code


def classify(e: BaseException) -> tuple[int, str] | None:
    """Exit code and one-line message for a known error family; None for anything else (a bug)."""
    from registry import RegistryError

    if isinstance(e, ConfigError):
        return EXIT_USAGE, f"config error: {e}"
    if isinstance(e, RegistryError):
        return EXIT_USAGE, f"registry error: {e}"
    if isinstance(e, UsageError):
        return EXIT_USAGE, f"error: {e}"
    feature_log = sys.modules.get("journal.feature_log")  # loaded whenever a FeatureTableError can exist
    if feature_log is not None and isinstance(e, feature_log.FeatureTableError):
        return EXIT_RUNTIME, f"output error: {e}"
    dataset_build = sys.modules.get("tools.dataset.build")
    if dataset_build is not None and isinstance(e, dataset_build.DatasetBuildError):
        return EXIT_RUNTIME, f"build failed: {e}"
    from journal.errors import JournalError

    if isinstance(e, JournalError):
        return EXIT_RUNTIME, f"journal error: {e}"
    if isinstance(e, OSError):
        return EXIT_RUNTIME, f"error: {os_error_text(e)}"
    return None


def os_error_text(e: OSError) -> str:
    """`path: reason` (both paths for a rename or copy), or the plain reason when no path is known."""
    reason = e.strerror or str(e)
    if e.filename is not None and e.filename2 is not None:
        return f"{e.filename} -> {e.filename2}: {reason}"
    if e.filename is not None:
        return f"{e.filename}: {reason}"
    return reason


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    # `python -m tools.cli` runs this file as __main__: use the importable module, whose UsageError
    # is the class the commands raise.
    from tools.cli import main as _main

    sys.exit(_main())
