"""Point-in-time join (`dataset build --at EVENTS.parquet`): each event gets the features of the last
tick at or before its `ts`, never after — the Feast `get_historical_features` analogue.

The tick rows come from the ordinary build (same tasks, same engine); the join only picks rows.
Event columns other than `symbol` and `ts` are carried through; `feature_ts` names the tick used
(null, with null features, for an event before the first tick).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from journal.store.layout import NS_PER_DAY, date_of
from tools.dataset.params import DatasetRequestError

NS = 1_000_000_000
TICKS_DIR = "_ticks"
_RESERVED = ("feature_ts", "book_valid", "date")


def load_events(path: str, known: list[str]) -> tuple[pa.Table, str]:
    """The events file (columns `symbol`, `ts`, others carried) checked, sorted by (symbol, ts); and its SHA-256."""
    p = Path(path)
    if not p.is_file():
        raise DatasetRequestError(f"--at {path}: no such file")
    try:
        t = pq.read_table(p)
    except (pa.ArrowInvalid, OSError) as e:
        raise DatasetRequestError(f"--at {path}: not a Parquet file ({e})") from None
    missing = [c for c in ("symbol", "ts") if c not in t.column_names]
    if missing or t.num_rows == 0:
        raise DatasetRequestError(f"--at {path}: " + (f"needs columns symbol and ts (missing {', '.join(missing)})"
                                                      if missing else "holds no event"))
    t = t.set_column(t.column_names.index("ts"), "ts", _ts_ns(t.column("ts"), path))
    t = t.set_column(t.column_names.index("symbol"), "symbol", t.column("symbol").cast(pa.string()))
    if t.column("symbol").null_count or t.column("ts").null_count:
        raise DatasetRequestError(f"--at {path}: symbol and ts must not be null")
    unknown = sorted(set(t.column("symbol").to_pylist()) - set(known))
    if unknown:
        raise DatasetRequestError(f"--at {path}: unknown symbol {', '.join(unknown[:5])}; the shard's: {', '.join(known)}")
    clash = [c for c in _RESERVED if c in t.column_names]
    if clash:
        raise DatasetRequestError(f"--at {path}: column {clash[0]!r} clashes with a dataset column; rename it")
    return t.sort_by([("symbol", "ascending"), ("ts", "ascending")]), hashlib.sha256(p.read_bytes()).hexdigest()


def _ts_ns(col: pa.ChunkedArray, path: str) -> pa.ChunkedArray:
    if pa.types.is_timestamp(col.type):
        return col.cast(pa.timestamp("ns", tz="UTC"))
    if pa.types.is_integer(col.type):
        return col.cast(pa.int64()).cast(pa.timestamp("ns", tz="UTC"))
    raise DatasetRequestError(f"--at {path}: ts is {col.type}, not a timestamp or epoch ns integer")


def tick_range(events: pa.Table) -> tuple[int, int]:
    """[from, to) of the ticks the events need: the second of the first event to just after the last one's."""
    ts = events.column("ts").cast(pa.int64()).to_numpy()
    return int(ts.min()) // NS * NS, int(ts.max()) // NS * NS + NS


def join(staging: Path, events: pa.Table, symbols: tuple[str, ...]) -> list[dict[str, Any]]:
    """Replace the tick files under `staging/_ticks` by the joined event files; return their stats."""
    from tools.dataset.tasks import ROW_GROUP_ROWS, label_balance

    out = []
    for sym in symbols:
        ev = events.filter(pc.equal(events.column("symbol"), sym)).drop_columns(["symbol"])
        if ev.num_rows == 0:
            continue
        ticks = _ticks_of(staging / TICKS_DIR / f"symbol={sym}")
        joined = _asof(ev, ticks)
        days = joined.column("ts").cast(pa.int64()).to_numpy() // NS_PER_DAY
        for day in np.unique(days):
            part = joined.filter(pa.array(days == day))
            rel = f"symbol={sym}/date={date_of(int(day) * NS_PER_DAY)}/part-0.parquet"
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(part.replace_schema_metadata(ticks.schema.metadata), staging / rel, compression="zstd",
                           row_group_size=ROW_GROUP_ROWS)
            out.append({"task": rel, "symbol": sym, "rows": part.num_rows,
                        "null_counts": {c: part.column(c).null_count for c in part.column_names},
                        "labels": {c[6:]: label_balance(part.column(c)) for c in part.column_names if c.startswith("label_")},
                        "sha256": hashlib.sha256((staging / rel).read_bytes()).hexdigest()})
    return out


def _ticks_of(d: Path) -> pa.Table:
    files = sorted(d.rglob("*.parquet"))
    if not files:
        raise DatasetRequestError(f"no tick of {d.name[7:]} at or before its events")
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables).sort_by("ts").replace_schema_metadata(tables[0].schema.metadata)


def _asof(events: pa.Table, ticks: pa.Table) -> pa.Table:
    """Each event row with the tick row at or before its ts (`feature_ts`), null when there is none."""
    t_ts = ticks.column("ts").cast(pa.int64()).to_numpy()
    e_ts = events.column("ts").cast(pa.int64()).to_numpy()
    idx = np.searchsorted(t_ts, e_ts, side="right") - 1
    picked = ticks.take(pa.array(np.maximum(idx, 0)))
    none = pa.array(idx < 0)
    cols = {c: events.column(c) for c in events.column_names}
    for c in picked.column_names:
        name = "feature_ts" if c == "ts" else c
        cols[name] = pc.if_else(none, pa.nulls(len(idx), picked.column(c).type), picked.column(c))
    return pa.table(cols)

