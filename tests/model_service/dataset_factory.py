"""Hand-made Feature Service dataset directories (hive-partitioned parquet and `_manifest.json`) for the tests."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

DATASET_ID = "3135e1989d15df83"
REGISTRY_HASH = "0123456789abcdef" * 4
H60_NS = 60_000_000_000


def ns(iso: str) -> int:
    """ns since the epoch of an ISO time in UTC."""
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def table(ts: np.ndarray, book_valid: np.ndarray, features: dict[str, np.ndarray],
          labels: dict[str, np.ndarray]) -> pa.Table:
    """One file's columns: `labels` maps a horizon to float values with NaN for a null label."""
    cols: dict[str, pa.Array] = {
        "ts": pa.array(np.asarray(ts, dtype=np.int64), type=pa.int64()).cast(pa.timestamp("ns", tz="UTC")),
        "book_valid": pa.array(np.asarray(book_valid, dtype=np.int8), type=pa.int8()),
    }
    for name, v in features.items():
        cols[name] = pa.array(np.asarray(v, dtype=np.float64), type=pa.float64())
    for h, lab in labels.items():
        lab = np.asarray(lab, dtype=np.float64)
        null = np.isnan(lab)
        cols[f"target_return_{h}"] = pa.array(np.where(null, np.nan, lab * 1e-4), type=pa.float64())
        cols[f"label_{h}"] = pa.array(np.where(null, 0, lab).astype(np.int8), type=pa.int8(), mask=null)
    return pa.table(cols)


def write_dataset(root: Path, files: dict[str, pa.Table], *, feature_names: list[str] | None = None,
                  horizons: dict[str, int] | None = None, manifest_name: str = "_manifest.json",
                  **manifest: Any) -> Path:
    """Write `files` (relative path -> table) under `root` and a manifest with their sizes and SHA-256."""
    root.mkdir(parents=True, exist_ok=True)
    entries = []
    for rel, t in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, p)
        entries.append({"path": rel, "rows": t.num_rows, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    horizons = horizons if horizons is not None else {"60s": H60_NS}
    doc = {"dataset_id": DATASET_ID, "status": "done", "format": 1, "registry_hash": REGISTRY_HASH,
           "feature_names": feature_names if feature_names is not None else ["f1", "f2"],
           "params": {"horizons": list(horizons), "horizons_ns": horizons}, "files": entries, **manifest}
    (root / manifest_name).write_text(json.dumps(doc), encoding="utf-8")
    return root


def hive(symbol: str, ts_ns: int, part: int = 0) -> str:
    """The hive path of `symbol`'s file holding the day of `ts_ns`."""
    day = datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d")
    return f"symbol={symbol}/date={day}/part-{part}.parquet"


def learnable(root: Path, n_ticks: int = 300, step_ns: int = 10_000_000_000, seed: int = 0,
              label_rule: str = "f1", invalid: dict[str, list[int]] | None = None, null_tail: int = 6,
              **manifest: Any) -> tuple[Path, dict[str, dict[str, np.ndarray]]]:
    """BTCUSDT and ETHUSDT at `n_ticks` ticks `step_ns` apart from 2026-09-21T00:00Z, labels from f1
    (-1 below -0.5, 1 above 0.5, else 0; or all 0 for `label_rule` "zero"); the last `null_tail`
    ticks have null labels, `invalid` names tick indices with book_valid 0 per symbol.
    Returns the directory and each symbol's raw columns (ts, book_valid, f1, f2, label with NaN)."""
    rng = np.random.default_rng(seed)
    t0 = ns("2026-09-21T00:00:00")
    ts = t0 + np.arange(n_ticks, dtype=np.int64) * step_ns
    raw, files = {}, {}
    for sym in ("BTCUSDT", "ETHUSDT"):
        f1, f2 = rng.normal(size=n_ticks), rng.normal(size=n_ticks)
        if label_rule == "zero":
            lab = np.zeros(n_ticks)
        else:
            lab = np.where(f1 > 0.5, 1.0, np.where(f1 < -0.5, -1.0, 0.0))
        if null_tail:
            lab[-null_tail:] = np.nan
        bv = np.ones(n_ticks, dtype=np.int8)
        bv[(invalid or {}).get(sym, [])] = 0
        raw[sym] = {"ts": ts, "book_valid": bv, "f1": f1, "f2": f2, "label": lab}
        files[hive(sym, int(ts[0]))] = table(ts, bv, {"f1": f1, "f2": f2}, {"60s": lab})
    return write_dataset(root, files, **manifest), raw
