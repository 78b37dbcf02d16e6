"""Build a dataset: check the request, derive its id, run its (symbol, date) tasks, commit it atomically.

Tasks run in this process (`workers=1`), on local processes (`workers>1`) or on a Dask distributed
cluster (`executor="tcp://scheduler:8786"`, every worker seeing the store at the same path). The
files land in a hidden staging directory; only a complete, checked build is renamed to
`<data_dir>/datasets/<id>/` with its `_manifest.json`, so nothing that looks complete is ever partial.
`<data_dir>/datasets/_status/<id>.json` says queued/running/done/failed, with progress and the error.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from journal.durable import fsync_dir
from tools.dataset.params import FORMAT, BuildParams, DatasetRequestError, dataset_id
from tools.dataset.pointintime import TICKS_DIR
from tools.dataset.source import ShardData
from tools.dataset.tasks import Task, plan_tasks, run_task

MANIFEST = "_manifest.json"
STATUS_DIR = "_status"
Progress = Callable[[int, int], None]


class DatasetBuildError(Exception):
    """A build that started and failed; its status file says `failed` with this message."""


def iso(ns: int) -> str:
    """Epoch ns as ISO-8601 UTC (second precision plus the ns fraction when there is one)."""
    s, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(s, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z" if frac else f"{base}Z"


def check_range(data: ShardData, params: BuildParams) -> None:
    """No tick in [from, to), or a range reaching past the stored ticks, is refused with what is stored."""
    _, ts = data.ticks()
    if len(ts) == 0:
        raise DatasetRequestError(f"no data: the shard {data.shard} has no stored tick")
    lo, hi = int(ts.min()), int(ts.max())
    stored = f"the store and journal hold ticks from {iso(lo)} to {iso(hi)}"
    if not ((ts >= params.from_ns) & (ts < params.to_ns)).any():
        raise DatasetRequestError(f"no data in [{iso(params.from_ns)}, {iso(params.to_ns)}): {stored}")
    if params.from_ns < lo - 1_000_000_000 or params.to_ns > hi + 1_000_000_000:
        raise DatasetRequestError(f"[{iso(params.from_ns)}, {iso(params.to_ns)}) reaches beyond what is stored: {stored}")


def request_id(data: ShardData, params: BuildParams, at_sha256: str = "") -> str:
    """The id of this request on this data (checks the range first); `at_sha256` names a point-in-time events file."""
    check_range(data, params)
    return dataset_id(params, data.fingerprint(params.to_ns + params.longest_ns + 1),
                      {"at": at_sha256} if at_sha256 else None)


def dataset_dir(data: ShardData, ds_id: str) -> Path:
    """`<data_dir>/datasets/<id>`."""
    return data.datasets_dir / ds_id


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of a built dataset directory, None when there is none."""
    try:
        return orjson.loads((path / MANIFEST).read_bytes())
    except FileNotFoundError:
        return None


def write_status(data: ShardData, ds_id: str, status: str, **fields: Any) -> None:
    """Replace the build's status file atomically."""
    d = data.datasets_dir / STATUS_DIR
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / f".{ds_id}.tmp"
    tmp.write_bytes(orjson.dumps({"dataset_id": ds_id, "status": status, **fields}, option=orjson.OPT_INDENT_2))
    os.replace(tmp, d / f"{ds_id}.json")


def read_status(datasets_dir: Path, ds_id: str) -> dict[str, Any] | None:
    """A build's status, None when it was never requested."""
    try:
        return orjson.loads((datasets_dir / STATUS_DIR / f"{ds_id}.json").read_bytes())
    except FileNotFoundError:
        return None


def build(data: ShardData, params: BuildParams, *, workers: int = 1, executor: str = "",
          progress: Progress | None = None, at: tuple[Any, str] | None = None) -> dict[str, Any]:
    """Build (or find already built) the dataset of `params`; return the summary printed as JSON.

    `at` = (events table, its SHA-256) makes it a point-in-time join of those events (`pointintime`).
    """
    ds_id = request_id(data, params, at[1] if at else "")
    final = dataset_dir(data, ds_id)
    done = read_manifest(final)
    if done is not None:
        return _summary(done, final, already_built=True)
    started = time.time()
    staging = data.datasets_dir / f".staging-{ds_id}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tasks = plan_tasks(params.symbols, params.from_ns, params.to_ns)
    write_status(data, ds_id, "running", progress={"done": 0, "total": len(tasks)}, params=_params_json(params))
    try:
        results = _run(data, params, tasks, staging / TICKS_DIR if at else staging, workers, executor,
                       _status_progress(data, ds_id, params, progress))
        if at:
            results = _joined(staging, at, params, results)
        manifest = _manifest(ds_id, data, params, results, started)
        if at:
            manifest["at"] = {"sha256": at[1], "events": at[0].num_rows}
        (staging / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        os.replace(staging, final)
        fsync_dir(data.datasets_dir)
    except BaseException as e:
        shutil.rmtree(staging, ignore_errors=True)
        write_status(data, ds_id, "failed", error=_reason(e), params=_params_json(params))
        if isinstance(e, Exception) and not isinstance(e, DatasetRequestError):
            raise DatasetBuildError(f"dataset {ds_id}: {_reason(e)}") from e
        raise
    write_status(data, ds_id, "done", progress={"done": len(tasks), "total": len(tasks)},
                 params=_params_json(params), path=str(final))
    return _summary(manifest, final, already_built=False)


def _joined(staging: Path, at: tuple[Any, str], params: BuildParams,
            ticks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The point-in-time event files in place of the tick files, with the ticks' registry."""
    from tools.dataset.pointintime import join

    reg = next((r for r in ticks if r["rows"]), None)
    if reg is None:
        raise DatasetRequestError("no tick at or before any event")
    if len({r["registry_hash"] for r in ticks if r["rows"]}) > 1:
        return ticks  # _manifest names the registries
    joined = join(staging, at[0], params.symbols)
    shutil.rmtree(staging / TICKS_DIR)
    return [{**r, "registry_hash": reg["registry_hash"], "registry": reg["registry"], "names": reg["names"]}
            for r in joined]


def _reason(e: BaseException) -> str:
    return str(e) or type(e).__name__


def _status_progress(data: ShardData, ds_id: str, params: BuildParams, progress: Progress | None) -> Progress:
    def update(done: int, total: int) -> None:
        write_status(data, ds_id, "running", progress={"done": done, "total": total}, params=_params_json(params))
        if progress is not None:
            progress(done, total)
    return update


def _task_params(params: BuildParams) -> dict[str, Any]:
    """What a task needs, as plain data (it crosses process and machine boundaries)."""
    return {"longest_ns": params.longest_ns, "horizons_ns": dict(params.horizons),
            "threshold_bps": params.threshold_bps, "drop_invalid": params.drop_invalid,
            "registry_text": params.registry_text}


def _run(data: ShardData, params: BuildParams, tasks: list[Task], staging: Path, workers: int, executor: str,
         progress: Progress) -> list[dict[str, Any]]:
    """Run every task; results in task order whatever order they finished in."""
    args = (str(Path(data.config_path).resolve()),
            {**_task_params(params), "until_ns": data.replay_end(params.to_ns + params.longest_ns + 1)})
    if executor:
        return _run_dask(executor, args, tasks, staging, progress)
    if workers <= 1:
        out = []
        for i, t in enumerate(tasks):
            out.append(run_task(*args, t, str(staging)))
            progress(i + 1, len(tasks))
        return out
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(run_task, *args, t, str(staging)) for t in tasks]
        return _gather(futures, progress)


def _gather(futures: list, progress: Progress) -> list[dict[str, Any]]:
    from concurrent.futures import as_completed

    for n, _ in enumerate(as_completed(futures), 1):
        progress(n, len(futures))
    return [f.result() for f in futures]


def _run_dask(address: str, args: tuple, tasks: list[Task], staging: Path, progress: Progress) -> list[dict[str, Any]]:
    """The same tasks on an existing Dask distributed scheduler."""
    from distributed import Client, as_completed

    with Client(address, timeout="30s") as client:
        futures = [client.submit(run_task, *args, t, str(staging), pure=False) for t in tasks]
        for n, _ in enumerate(as_completed(futures), 1):
            progress(n, len(futures))
        return client.gather(futures)


def _params_json(params: BuildParams) -> dict[str, Any]:
    return {"from": iso(params.from_ns), "to": iso(params.to_ns), **params.canonical()}


def _manifest(ds_id: str, data: ShardData, params: BuildParams, results: list[dict[str, Any]],
              started: float) -> dict[str, Any]:
    """The manifest: parameters, registry, source, rows, nulls, label balance, files, code version."""
    written = [r for r in results if r["rows"]]
    hashes = sorted({r["registry_hash"] for r in written})
    if not written:
        raise DatasetRequestError(f"no rows in [{iso(params.from_ns)}, {iso(params.to_ns)}) for "
                                  f"{', '.join(params.symbols)}" + (" with a valid book" if params.drop_invalid else ""))
    if len(hashes) > 1:
        raise DatasetRequestError(f"the range spans registries {', '.join(hashes)}: build each side "
                                  "separately or give --registry")
    rows: dict[str, int] = {}
    nulls: dict[str, int] = {}
    balance: dict[str, dict[str, int]] = {h: {"-1": 0, "0": 0, "1": 0, "null": 0} for h in params.horizons}
    for r in written:
        rows[r["symbol"]] = rows.get(r["symbol"], 0) + r["rows"]
        for c, n in r["null_counts"].items():
            nulls[c] = nulls.get(c, 0) + n
        for h, b in r["labels"].items():
            for k, n in b.items():
                balance[h][k] += n
    return {"dataset_id": ds_id, "status": "done", "format": FORMAT, "params": _params_json(params),
            "registry_hash": hashes[0], "registry": written[0]["registry"], "feature_names": written[0]["names"],
            "source": {**data.fingerprint(params.to_ns + params.longest_ns + 1), "config": data.config_path},
            "rows": rows, "rows_total": sum(rows.values()), "null_counts": nulls, "label_balance": balance,
            "files": [{"path": r["task"], "rows": r["rows"], "sha256": r["sha256"]} for r in written],
            "code_version": _code_version(), "built_at": iso(int(time.time()) * 1_000_000_000),
            "build_seconds": round(time.time() - started, 3)}


def _code_version() -> str:
    from tools.cli import version

    return version()


def _summary(manifest: dict[str, Any], path: Path, *, already_built: bool) -> dict[str, Any]:
    return {"dataset_id": manifest["dataset_id"], "path": str(path), "already_built": already_built,
            "rows": manifest["rows"], "rows_total": manifest["rows_total"],
            "registry_hash": manifest["registry_hash"], "label_balance": manifest["label_balance"],
            "params": manifest["params"]}


def list_datasets(datasets_dir: Path) -> list[dict[str, Any]]:
    """Every requested dataset: built ones from their manifests, the rest from their status files."""
    out: dict[str, dict[str, Any]] = {}
    for d in sorted(datasets_dir.iterdir()) if datasets_dir.is_dir() else []:
        m = read_manifest(d) if d.is_dir() and not d.name.startswith((".", "_")) else None
        if m is not None:
            out[m["dataset_id"]] = {"dataset_id": m["dataset_id"], "status": "done", "path": str(d),
                                    "rows_total": m["rows_total"], "params": m["params"]}
    for f in sorted((datasets_dir / STATUS_DIR).glob("*.json")) if (datasets_dir / STATUS_DIR).is_dir() else []:
        s = orjson.loads(f.read_bytes())
        out.setdefault(s["dataset_id"], {k: s.get(k) for k in ("dataset_id", "status", "error", "params", "progress")})
    return list(out.values())


def symbols_of(data: ShardData, wanted: Iterable[str] | None) -> tuple[str, ...]:
    """The requested symbols (all the shard's when none), each checked against the data."""
    where, known = data.symbols()
    if not wanted:
        return tuple(known)
    unknown = [s for s in wanted if s not in known]
    if unknown:
        raise DatasetRequestError(f"unknown symbol {', '.join(unknown)}: not in {where}; its symbols: "
                                  f"{', '.join(known) or 'none'}")
    return tuple(dict.fromkeys(wanted))
