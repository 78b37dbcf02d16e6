"""`feature-service shard --config FILE`: subscribe to ws-gateway and journal every event until signalled."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

log = logging.getLogger("shard")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the shard options."""
    p.add_argument("--config", required=True, metavar="FILE", help="shard YAML (shard, gateway, journal, registry)")
    p.add_argument("--log-level", default="INFO", help="logging level (default INFO)")


def run(args: argparse.Namespace) -> int:
    """Run the bridge into the journal until SIGINT/SIGTERM, then sync and close the journal."""
    from engine.engine import Engine
    from gateway_bridge.bridge import Bridge
    from journal.writer import JournalWriter
    from tools.registry_file import default_registry, load_registry_file
    from tools.shard.config import load_shard_config
    from tools.shard.runtime import ShardEngine

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    cfg = load_shard_config(args.config)
    registry = load_registry_file(cfg.registry) if cfg.registry else default_registry()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with JournalWriter(cfg.journal) as writer:
        log.info("shard start name=%s symbols=%s journal=%s next_seq=%d endpoint=%s", cfg.shard.name,
                 ",".join(cfg.shard.symbols), cfg.journal.dir, writer.next_seq, cfg.gateway.endpoint)
        shard = ShardEngine(Engine(registry, cfg.shard.symbols))
        replayed = shard.warm_up(cfg.journal.dir)
        log.info("engine warm registry=%s records=%d", registry.content_hash[:12], replayed)
        # Append-before-apply: the bridge hands the engine only records the journal has taken.
        bridge = Bridge(cfg, writer, on_records=shard.on_records)
        shard.sink = bridge
        bridge.run(stop)
        writer.sync()
        log.info("shard stop name=%s next_seq=%d vectors=%d notices=%s %s", cfg.shard.name, writer.next_seq,
                 shard.vectors, dict(shard.notices), bridge.format_counters())
    return 0
