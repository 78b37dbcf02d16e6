"""`feature-service shard --config FILE`: run one shard until SIGINT/SIGTERM (see tools/shard/node.py)."""

from __future__ import annotations

import argparse
import asyncio
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the shard options."""
    p.add_argument("--config", required=True, metavar="FILE",
                   help="shard YAML (data_dir, shard, gateway, ticks, journal, publish, api, checkpoint, ...)")
    p.add_argument("--log-level", default="", metavar="LEVEL",
                   help="DEBUG, INFO, WARNING or ERROR (default: the config's log.level)")


def run(args: argparse.Namespace) -> int:
    """Load the config, set logging up, and serve until signalled; exit 1 on a runtime failure."""
    import uvloop

    from tools.logsetup import parse_level, setup_logging
    from tools.shard.config import load_shard_config
    from tools.typedconfig import ConfigError

    cfg = load_shard_config(args.config)
    try:
        level = parse_level(args.log_level or getattr(args, "log_level_global", None) or cfg.log.level)
    except ValueError as e:
        raise ConfigError(f"--log-level: {e}") from None
    setup_logging(level, cfg.log.format)
    return uvloop.run(serve(cfg, args.config))


async def serve(cfg, config_path: str = "") -> int:  # noqa: ANN001 - ShardConfig, imported lazily with the rest
    """Build the node, serve the API with the node as its background, stop on a signal or a failure."""
    import signal

    import structlog

    from api.app import create_app
    from api.server import start_server
    from journal.errors import JournalError
    from tools.shard.node import ShardNode
    from tools.shard.systemd import Heartbeat, Notifier, watchdog_task
    from tools.shard.view import NodeView

    log = structlog.get_logger("feature_service.shard")
    try:
        node = ShardNode(cfg)
    except (OSError, JournalError) as e:  # journal locked, unwritable, corrupt: one line, exit 1
        print(f"feature-service shard: {e}", file=sys.stderr)
        return 1
    notifier = Notifier.from_env()
    node.heartbeat = heartbeat = Heartbeat((notifier.watchdog_interval_s or 10.0) / 2)
    datasets = _dataset_runner(node, cfg, config_path) if config_path else None
    app = create_app(NodeView(node, _owners(cfg)), node.metrics, token=cfg.api.token,
                     max_body_bytes=cfg.api.max_body_bytes, background=[node.background], datasets=datasets)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, node.stopped.set)
    try:
        server = await start_server(app, cfg.api.host, cfg.api.port)
    except Exception as e:  # noqa: BLE001 - a socket that cannot bind, a bad endpoint: one line, exit 1
        node.close()
        print(f"feature-service shard: {e}", file=sys.stderr)
        return 1
    watchdog = asyncio.create_task(watchdog_task(notifier, heartbeat))
    notifier.ready(f"serving {len(cfg.shard.symbols)} symbols; API {server.url}")
    log.info("api_listening", url=server.url)
    await node.stopped.wait()
    notifier.stopping()
    watchdog.cancel()
    await server.close()  # runs the node's cleanup: stop the loop, checkpoint, close the journal
    log.info("shard_stopped", exit_code=node.exit_code, next_seq=node.writer.next_seq)
    return node.exit_code


def _dataset_runner(node, cfg, config_path: str):  # noqa: ANN001, ANN202
    """Dataset builds for POST /dataset/build, announced on the node's publish socket."""
    from tools.shard.dataset_runner import DatasetRunner

    def publish(topic: bytes, body: bytes) -> None:
        if node.publisher is not None:
            node.publisher.publish_message(topic, body)

    return DatasetRunner(config_path, cfg.data / "datasets", publish)


def _owners(cfg) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    """Symbol → (shard, API URL) of the other shards, from the cluster config when there is one."""
    if not cfg.cluster:
        return {}
    from tools.cluster.config import load_cluster_config

    cluster = load_cluster_config(cfg.cluster)
    return {sym: owner for s in cluster.shards for sym in s.symbols
            if (owner := cluster.owner_of(sym)) is not None and owner[0] != cfg.shard.name}
