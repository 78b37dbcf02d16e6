"""One (symbol, UTC date) piece of a dataset: replay it from the store, add targets, write one Parquet file.

A task warms its engine from a checkpoint or enough history before its start (the store replay
decides), and reads past its end by the longest horizon for the future mids. Its file depends on
nothing but the task and the source, so any split over processes or machines gives the same bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.targets import forward_targets
from journal.store.layout import NS_PER_DAY, date_of

ROW_GROUP_ROWS = 65_536


@dataclass(frozen=True)
class Task:
    """Ticks [from_ns, to_ns) of one symbol within one UTC date."""

    symbol: str
    date: str
    from_ns: int
    to_ns: int

    @property
    def rel_path(self) -> str:
        """The file's path inside the dataset (hive partitions)."""
        return f"symbol={self.symbol}/date={self.date}/part-0.parquet"


def plan_tasks(symbols: tuple[str, ...], from_ns: int, to_ns: int) -> list[Task]:
    """Every (symbol, date) piece of [from_ns, to_ns), symbols then dates in order."""
    tasks = []
    for sym in symbols:
        lo = from_ns
        while lo < to_ns:
            hi = min(to_ns, (lo // NS_PER_DAY + 1) * NS_PER_DAY)
            tasks.append(Task(sym, date_of(lo), lo, hi))
            lo = hi
    return tasks


class TaskError(Exception):
    """A task that cannot produce its rows (e.g. a registry switch inside the range)."""


def run_task(config_path: str, params: dict[str, Any], task: Task, out_dir: str) -> dict[str, Any]:
    """Build one task's file under `out_dir`; return its stats (rows, nulls, labels, registry, sha256)."""
    from tools.offline.replay import ConfigSource, ReplaySummary

    registry = _registry(params)
    summary = ReplaySummary()
    vectors = [v for v in ConfigSource.open(config_path).replay(
        registry, [task.symbol], task.from_ns, min(task.to_ns + params["longest_ns"] + 1, params["until_ns"]), summary)
        if v.symbol == task.symbol]
    hashes = sorted({v.registry_hash for v in vectors if v.ts_ns < task.to_ns})
    if len(hashes) > 1:
        switch = next(v.ts_ns for v in vectors if v.registry_hash != vectors[0].registry_hash)
        raise TaskError(f"{task.symbol} {task.date}: the range spans registries {', '.join(hashes)} "
                        f"(switch at tick {switch}); build each side separately or give --registry")
    if not hashes:
        return {"task": task.rel_path, "rows": 0, "registry_hash": None}
    reg = summary.registries[hashes[0]]
    table = _table(vectors, reg.names, params, task)
    return _write(table, Path(out_dir) / task.rel_path, task, hashes[0], reg)


def _registry(params: dict[str, Any]) -> Any:
    if params.get("registry_text") is None:
        return None
    from registry import load_registry_text

    return load_registry_text(params["registry_text"], source="dataset --registry")


def _table(vectors: list, names: tuple[str, ...], params: dict[str, Any], task: Task) -> pa.Table:
    """Columns ts, book_valid, features, then target_return_H and label_H per horizon; NaN → null."""
    same = [v for v in vectors if v.registry_hash == vectors[0].registry_hash]
    ts = np.array([v.ts_ns for v in same], np.int64)
    valid = np.array([v.book_valid for v in same], np.int8)
    mid = np.array([v.mid for v in same], np.float64)
    values = np.stack([v.values for v in same]) if same else np.zeros((0, len(names)))
    keep = (ts >= task.from_ns) & (ts < task.to_ns)
    if params["drop_invalid"]:
        keep &= valid == 1
    cols: dict[str, pa.Array] = {"ts": pa.array(ts[keep], pa.timestamp("ns", tz="UTC")),
                                 "book_valid": pa.array(valid[keep], pa.int8())}
    for i, name in enumerate(names):
        x = values[keep, i]
        cols[name] = pa.array(x, pa.float64(), mask=np.isnan(x))
    for h, h_ns in params["horizons_ns"].items():
        tg = forward_targets(ts, mid, valid == 1, h_ns, params["threshold_bps"])
        d = ~tg.defined[keep]
        cols[f"target_return_{h}"] = pa.array(tg.ret[keep], pa.float64(), mask=d)
        cols[f"label_{h}"] = pa.array(tg.label[keep], pa.int8(), mask=d)
    return pa.table(cols)


def _write(table: pa.Table, path: Path, task: Task, registry_hash: str, reg: Any) -> dict[str, Any]:
    """Write the file (deterministic options, no time in it) and return its stats."""
    if table.num_rows == 0:
        return {"task": task.rel_path, "rows": 0, "registry_hash": registry_hash}
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {b"feature_registry_hash": registry_hash.encode()}
    pq.write_table(table.replace_schema_metadata(meta), path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    labels = {c[len("label_"):]: label_balance(table.column(c)) for c in table.column_names if c.startswith("label_")}
    return {"task": task.rel_path, "symbol": task.symbol, "rows": table.num_rows, "registry_hash": registry_hash,
            "registry": reg.canonical, "names": list(reg.names),
            "null_counts": {c: table.column(c).null_count for c in table.column_names},
            "labels": labels, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def label_balance(col: pa.ChunkedArray) -> dict[str, int]:
    """Counts of -1, 0, +1 and null in a label column."""
    x = col.to_numpy(zero_copy_only=False)
    known = x[~np.isnan(x)] if x.dtype.kind == "f" else x
    return {"-1": int((known == -1).sum()), "0": int((known == 0).sum()), "1": int((known == 1).sum()),
            "null": int(col.null_count)}
