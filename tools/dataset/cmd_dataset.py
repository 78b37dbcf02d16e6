"""`feature-service dataset build|list|show|report`: labelled training datasets from the shard's store.

`build` checks everything before it writes: the config, the range (`--from` before `--to`, ticks
stored in it, not beyond what is stored), `--symbols`, `--horizons` and `--registry` (exit 2 with
the reason). It prints a JSON summary with `dataset_id` and `path`; building the same request on
the same data again prints the same id and `already_built: true`. A failed build (exit 1) leaves
no dataset directory, only its status file marked `failed`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

_TIME_HELP = "ISO-8601 (2026-08-09T21:26:00Z) or epoch s/ms/ns"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the dataset sub-commands."""
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="build a dataset of features, targets and labels")
    b.add_argument("--config", required=True, metavar="FILE", help="the shard config (its store, journal, data_dir)")
    b.add_argument("--from", dest="from_", default="", metavar="TIME",
                   help=f"first tick, inclusive: {_TIME_HELP} (required unless --at)")
    b.add_argument("--to", default="", metavar="TIME", help="last tick, exclusive (required unless --at)")
    b.add_argument("--at", default="", metavar="EVENTS.parquet",
                   help="point-in-time join: each event (columns symbol, ts, others carried) gets the features "
                        "of the last tick at or before its ts")
    b.add_argument("--symbols", default="", metavar="S,...", help="these symbols (default: all of the shard's)")
    b.add_argument("--horizons", default="60s", metavar="H,...", help="target horizons, e.g. 60s,5m (default 60s)")
    b.add_argument("--threshold-bps", type=float, default=2.0, help="label threshold θ in bps (default 2)")
    b.add_argument("--drop-invalid", action="store_true", help="leave out rows whose book is invalid")
    b.add_argument("--registry", default="", metavar="FILE", help="what-if: compute with this registry")
    b.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    b.add_argument("--through-seq", type=int, default=None, metavar="SEQ",
                   help="read journal records up to SEQ only: the data as an earlier request saw it (the shard's "
                        "POST /dataset/build passes it, so the build matches the id it answered)")
    b.add_argument("--executor", default="", metavar="tcp://HOST:PORT",
                   help="run the tasks on this Dask distributed scheduler instead")
    for name, helptext in (("list", "list datasets and builds"), ("show", "print a dataset's manifest or status"),
                           ("report", "write report.html and PNGs into the dataset's _report/")):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--config", required=True, metavar="FILE", help="the shard config (its data_dir)")
        if name != "list":
            s.add_argument("dataset", metavar="ID", help="dataset id (16 hex digits)")


def run(args: argparse.Namespace) -> int:
    """Dispatch to the action."""
    import orjson

    out = {"build": _build, "list": _list, "show": _show, "report": _report}[args.action](args)
    sys.stdout.buffer.write(orjson.dumps(out, option=orjson.OPT_INDENT_2) + b"\n")
    return 0


def _usage(e: Exception) -> Exception:
    from tools.cli import UsageError

    return UsageError(str(e))


def _data(config: str) -> Any:
    from tools.dataset.source import ShardData

    return ShardData.open(config)


def _build(args: argparse.Namespace) -> dict[str, Any]:
    from tools.dataset.build import build
    from tools.dataset.params import DatasetRequestError

    data = _data(args.config)
    data.through_seq = args.through_seq
    try:
        params = _params(args, data)
        if args.workers < 1:
            raise DatasetRequestError(f"--workers {args.workers}: must be at least 1")
        at = None
        if args.at:
            from tools.dataset.pointintime import load_events

            at = load_events(args.at, data.symbols()[1])
        from tools.progress import CountBar

        with CountBar("dataset", "tasks") as progress:
            return build(data, params, workers=args.workers, executor=args.executor, progress=progress, at=at)
    except DatasetRequestError as e:
        raise _usage(e) from None


def _params(args: argparse.Namespace, data: Any) -> Any:
    from tools.dataset.build import symbols_of
    from tools.dataset.params import BuildParams, DatasetRequestError, parse_horizons
    from tools.offline.cmd_replay import time_range

    from_ns, to_ns = time_range(args.from_, args.to)
    wanted = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if args.at:
        from tools.dataset.pointintime import load_events, tick_range

        events, _ = load_events(args.at, data.symbols()[1])
        lo, hi = tick_range(events)
        from_ns, to_ns = from_ns if from_ns is not None else lo, to_ns if to_ns is not None else hi
        wanted = wanted or sorted(set(events.column("symbol").to_pylist()))
    if from_ns is None or to_ns is None:
        raise DatasetRequestError("--from and --to are required (unless --at gives the events)")
    text = hash_ = None
    if args.registry:
        from tools.registry_file import load_registry_file

        reg = load_registry_file(args.registry)
        text, hash_ = reg.canonical, reg.content_hash
    try:
        horizons = parse_horizons(args.horizons)
    except DatasetRequestError as e:
        raise DatasetRequestError(f"--horizons {args.horizons!r}: {e}") from None
    return BuildParams(from_ns, to_ns, symbols_of(data, wanted), horizons, args.threshold_bps,
                       args.drop_invalid, text, hash_)


def _checked_id(text: str) -> str:
    from tools.dataset.params import ID_RE

    if not ID_RE.match(text):
        raise _usage(ValueError(f"dataset id {text[:80]!r}: not a dataset id (16 lower-case hex digits)"))
    return text


def _list(args: argparse.Namespace) -> Any:
    from tools.dataset.build import list_datasets

    return list_datasets(_data_dir(args.config) / "datasets")


def _data_dir(config: str) -> Path:
    from tools.shard.config import load_shard_config

    return load_shard_config(config).data


def _show(args: argparse.Namespace) -> Any:
    from tools.dataset.build import read_manifest, read_status

    ds_id = _checked_id(args.dataset)
    root = _data_dir(args.config) / "datasets"
    found = read_manifest(root / ds_id) or read_status(root, ds_id)
    if found is None:
        raise _usage(ValueError(f"dataset {ds_id}: no such dataset under {root}"))
    return found


def _report(args: argparse.Namespace) -> Any:
    from tools.dataset.dataset_report import write_report

    ds_id = _checked_id(args.dataset)
    path = _data_dir(args.config) / "datasets" / ds_id
    try:
        html = write_report(path)
    except ValueError as e:
        raise _usage(e) from None
    return {"dataset_id": ds_id, "report": str(html)}
