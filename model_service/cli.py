"""`model-service` console script: ``serve`` the reference model-service, or ``train`` / ``list`` offline.

  model-service serve --config FILE [--log-level LEVEL]
  model-service train --config FILE (--dataset ID | --dataset-path DIR) [--horizon H] [--kind K] [--params JSON]
  model-service list  --config FILE

Exit codes: 0 ok, 1 runtime failure (an endpoint or port that cannot be bound, a training that
failed), 2 usage or configuration error (a bad config, a dataset that is not a Feature Service
dataset, an unknown horizon or model kind), 130 interrupted. Failures are one line on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

import orjson

from tools.cli import Parser, version
from tools.typedconfig import ConfigError


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog="model-service", description="Reference model-service: trains only on Feature Service "
               "datasets, scores features.live, publishes model.predictions.")
    p.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    serve = sub.add_parser("serve", help="run the service until SIGINT/SIGTERM")
    serve.add_argument("--config", required=True, metavar="FILE")
    serve.add_argument("--log-level", default="", metavar="LEVEL", help="default: the config's log.level")
    train = sub.add_parser("train", help="train one model in this process and print its metadata summary")
    train.add_argument("--config", required=True, metavar="FILE")
    which = train.add_mutually_exclusive_group(required=True)
    which.add_argument("--dataset", metavar="ID", help="a dataset id under datasets_dir")
    which.add_argument("--dataset-path", metavar="DIR", help="a dataset directory")
    train.add_argument("--horizon", default=None, metavar="H", help="a horizon of the dataset (default: its only one)")
    train.add_argument("--kind", default="auto", help="auto, logistic or hist_gradient_boosting")
    train.add_argument("--params", default="{}", metavar="JSON", help="estimator parameters as a JSON object")
    train.add_argument("--activate", action="store_true", help="make it the model a running service loads next start")
    lst = sub.add_parser("list", help="list the models under data_dir/models")
    lst.add_argument("--config", required=True, metavar="FILE")
    return p


def main(argv: list[str] | None = None) -> int:
    from model_service.jobs import THREAD_VARS

    # One OpenMP/BLAS thread: scoring one vector is faster without a thread pool's wake-up.
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")
    args = build_parser().parse_args(argv)
    try:
        return {"serve": run_serve, "train": run_train, "list": run_list}[args.command](args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        known = _classify(e)
        if known is None:
            raise
        print(f"model-service {args.command}: {known[1]}", file=sys.stderr)
        return known[0]


def _classify(e: Exception) -> tuple[int, str] | None:
    from model_service.artifacts import ModelError
    from model_service.request import RequestError
    from model_service.split import SplitError
    from model_service.train import TrainingError

    if isinstance(e, ConfigError):
        return 2, f"config error: {e}"
    if isinstance(e, RequestError):
        return 2, f"bad request: {e}"
    if isinstance(e, TrainingError | SplitError | ModelError):
        return 1, f"training failed: {e}"
    if isinstance(e, OSError):
        from tools.cli import os_error_text

        return 1, f"error: {os_error_text(e)}"
    return None


def _config(args: argparse.Namespace) -> Any:
    from model_service.config import load_config

    return load_config(args.config)


def run_serve(args: argparse.Namespace) -> int:
    import uvloop

    from tools.logsetup import parse_level, setup_logging

    cfg = _config(args)
    try:
        level = parse_level(args.log_level or cfg.log.level)
    except ValueError as e:
        raise ConfigError(f"--log-level: {e}") from None
    setup_logging(level, cfg.log.format)
    return uvloop.run(serve(cfg))


async def serve(cfg: Any) -> int:
    """Start the service and its API; run until SIGINT/SIGTERM."""
    import signal

    import structlog

    from api.server import start_server
    from model_service.api import create_app
    from model_service.service import ModelService
    from tools.shard.systemd import Notifier

    log = structlog.get_logger("model_service")
    try:
        svc = ModelService(cfg)
    except OSError as e:
        print(f"model-service serve: {e}", file=sys.stderr)
        return 1
    try:
        server = await start_server(create_app(svc, token=cfg.api.token, max_body_bytes=cfg.api.max_body_bytes),
                                    cfg.api.host, cfg.api.port)
    except Exception as e:  # noqa: BLE001 - a port in use, a bad host: one line, exit 1
        svc.close()
        print(f"model-service serve: {e}", file=sys.stderr)
        return 1
    svc.start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    notifier = Notifier.from_env()
    notifier.ready(f"API {server.url}; scoring with {svc.active_id() or 'no model'}")
    log.info("model_service_started", url=server.url, active_model=svc.active_id(),
             subscribe=list(cfg.subscribe.endpoints), publish=cfg.publish.endpoint)
    await stop.wait()
    notifier.stopping()
    await server.close()
    svc.close()
    log.info("model_service_stopped")
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Train in this process (no service needed) and print the summary as JSON."""
    from model_service.artifacts import ModelStore
    from model_service.request import RequestError, parse
    from model_service.train import train

    cfg = _config(args)
    try:
        params = orjson.loads(args.params)
    except orjson.JSONDecodeError as e:
        raise RequestError(f"--params is not JSON: {e}") from None
    body = {"dataset_id": args.dataset} if args.dataset else {"dataset_path": args.dataset_path}
    body.update({"model": {"kind": args.kind, "params": params}})
    if args.horizon is not None:
        body["horizon"] = args.horizon
    req = parse(body, cfg.datasets_dir)
    store = ModelStore(cfg.models_dir)
    meta = store.metadata(req.model_id()) or train(store, req)
    store.write_status(req.model_id(), "done", request=req.as_dict())
    if args.activate:
        store.set_active(req.model_id())
    test = meta["metrics"]["test"]
    print(orjson.dumps({"model_id": meta["model_id"], "path": str(store.dir / meta["model_id"]),
                        "kind": meta["kind"], "dataset_id": meta["dataset_id"], "horizon": meta["horizon"],
                        "rows": meta["rows"], "test_accuracy": test["accuracy"], "test_log_loss": test["log_loss"],
                        "baseline_accuracy": test["baseline"]["accuracy"]}, option=orjson.OPT_INDENT_2).decode())
    return 0


def run_list(args: argparse.Namespace) -> int:
    from model_service.artifacts import ModelStore

    print(orjson.dumps(ModelStore(_config(args).models_dir).list(), option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
