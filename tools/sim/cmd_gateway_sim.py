"""`feature-service gateway-sim --config FILE`: run the ws-gateway simulator until done or signalled.

Exit status: 0 when the source is done or on SIGINT/SIGTERM, 2 for a config error, 1 when a socket
cannot be bound (one line naming the endpoint and the OS reason), 3 after a `kill_after` fault.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

#: Exit status when a `kill_after` fault ends the simulator (an abrupt gateway crash).
KILLED_EXIT = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the simulator options."""
    p.add_argument("--config", metavar="FILE",
                   help="simulator YAML (endpoint, control_endpoint, http_endpoint, synthetic, recording, faults; "
                        "see tools/sim/gateway/config.py)")
    p.add_argument("--example", action="store_true",
                   help="print a documented example config (3 symbols, an occasional gap) and exit")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def run(args: argparse.Namespace) -> int:
    """Load the config, publish until the source ends or SIGINT/SIGTERM; a kill fault exits at once."""
    from tools.sim.gateway.config import EXAMPLE_YAML, load_sim_config

    if args.example:
        sys.stdout.write(EXAMPLE_YAML)
        return 0
    if not args.config:
        print("feature-service gateway-sim: error: --config FILE is required (or --example)", file=sys.stderr)
        return 2
    from tools.sim.gateway.server import GatewaySim, SimError

    level = logging.getLevelName(args.log_level.upper())
    if not isinstance(level, int):
        print(f"feature-service gateway-sim: error: --log-level {args.log_level!r} is not a logging level",
              file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = load_sim_config(args.config)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        status = GatewaySim(cfg).run(stop)
    except SimError as e:
        print(f"feature-service gateway-sim: error: {e}", file=sys.stderr)
        return 1
    if status == "killed":
        logging.shutdown()
        os._exit(KILLED_EXIT)  # crash-like: no clean shutdown, like a killed gateway
    return 0
