"""`feature-service bench dataset`: build a labelled dataset from a compacted store, beside naive pandas.

Data: synthetic, one symbol at 80 messages/s (75 % book deltas, 20 % trade messages, 5 % tickers:
60 / 16 / 4 per second — the issue's realistic mix is about 50 / 20 / 10), written as a journal and
compacted. Figures: the build of `--hours` × 1 symbol on one worker (the goal: 24 h in ≤ 10 s on
one core) and of `--multi-symbols` × `--multi-hours` with `--workers 2`, each as a `dataset build`
subprocess (wall time, the build's own seconds, peak RSS); the baseline is a naive pandas build of
the same dataset (pandas_baseline features from the decoded records + targets by pandas shift +
Parquet), measured on the first `--baseline-hours` of the same data in the same run, compared as
rows per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

NS = 1_000_000_000
DAY_START = 1_790_035_200 * NS  # a UTC midnight
RATE = 80


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the options."""
    p.add_argument("--hours", type=float, default=24.0, help="hours of the one-symbol dataset (default 24)")
    p.add_argument("--multi-symbols", type=int, default=10, help="symbols of the multi-symbol dataset (default 10)")
    p.add_argument("--multi-hours", type=float, default=2.0, help="hours of the multi-symbol dataset (default 2)")
    p.add_argument("--baseline-hours", type=float, default=1.0, help="hours the pandas baseline builds (default 1)")
    p.add_argument("--quick", action="store_true", help="minutes instead of hours (the test's form)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures as JSON."""
    hours, multi_h, base_h, multi_n = (args.hours, args.multi_hours, args.baseline_hours, args.multi_symbols)
    if args.quick:
        hours, multi_h, base_h, multi_n = 0.1, 0.05, 0.1, 2
    root = Path(tempfile.mkdtemp(prefix="bench-dataset-"))
    try:
        one = bench_build(root / "one", ["BTCUSDT"], int(hours * 3600), workers=1)
        multi = bench_build(root / "multi", [f"S{i:02d}USDT" for i in range(multi_n)], int(multi_h * 3600), workers=2)
        base = bench_baseline(root / "one", ["BTCUSDT"], int(base_h * 3600))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    doc = {"data": f"synthetic, {RATE} msgs/s per symbol (60 deltas, 16 trade messages, 4 tickers)",
           "one_symbol": one, "multi_symbol": multi, "pandas_baseline": base,
           "ratio_rows_per_s_vs_pandas": one["rows_per_s"] / base["rows_per_s"],
           "ratio_in_process_vs_pandas": one["rows"] / one["build_s"] / base["rows_per_s"] if one["build_s"] else None,
           "goal_24h_1_symbol_le_10s": ("MET" if one["build_wall_s"] * 24 * 3600 / one["seconds_of_data"] <= 10
                                       else "NOT MET") if one["seconds_of_data"] else "n/a"}
    print(json.dumps(doc, indent=2))
    return 0


def _shard(root: Path, symbols: list[str], seconds: int) -> tuple[Path, dict[str, Any]]:
    """A compacted shard data dir of `seconds` of synthetic data; its config and the set-up figures."""
    from tools.bench.synthetic_journal import write_journal

    data = root / "data"
    made = write_journal(data / "journal", symbols, seconds, rate=RATE, start_ns=DAY_START)
    cfg = root / "shard.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(data), "shard": {"symbols": symbols}}))
    t0 = time.perf_counter()
    done = _cli("compact", "--config", str(cfg))
    return cfg, {"records": made.records, "compact_s": time.perf_counter() - t0, "compacted": done["records"]}


def _cli(*args: str) -> dict[str, Any]:
    r = subprocess.run([sys.executable, "-m", "tools.cli", "-q", *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"feature-service {args[0]} failed: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout)


def bench_build(root: Path, symbols: list[str], seconds: int, workers: int) -> dict[str, Any]:
    """Time one `dataset build` of the whole range as a subprocess (wall, its own seconds, peak RSS)."""
    cfg, made = _shard(root, symbols, seconds)
    t0 = time.perf_counter()
    out = _cli("dataset", "build", "--config", str(cfg), "--from", str(DAY_START + NS),
               "--to", str(DAY_START + seconds * NS), "--horizons", "60s,300s", "--workers", str(workers))
    wall = time.perf_counter() - t0
    manifest = json.loads((Path(out["path"]) / "_manifest.json").read_text())
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"symbols": len(symbols), "seconds_of_data": seconds, "workers": workers, **made,
            "rows": out["rows_total"], "build_wall_s": wall, "build_s": manifest["build_seconds"],
            "records_per_s": made["records"] / wall, "rows_per_s": out["rows_total"] / wall,
            "peak_rss_mib_children": peak}


def bench_baseline(root: Path, symbols: list[str], seconds: int) -> dict[str, Any]:
    """The naive pandas build of the first `seconds` of the same data (read back from the store), in process."""
    import itertools

    from journal.store.layout import StoreRoots
    from journal.store.records import read_records

    end = DAY_START + seconds * NS
    t0 = time.perf_counter()
    stored = read_records(StoreRoots(root / "data" / "store", None))
    recs = list(itertools.takewhile(lambda r: r.recv_ns <= end, stored))
    rows = pandas_dataset(recs, symbols, root / "baseline.parquet")
    wall = time.perf_counter() - t0
    return {"seconds_of_data": seconds, "records": len(recs), "rows": rows, "wall_s": wall, "rows_per_s": rows / wall}


def pandas_dataset(recs: list, symbols: list[str], out: Path, horizons_s: tuple[int, ...] = (60, 300),
                   bps: float = 2.0) -> int:
    """Features from `pandas_baseline`, targets by shift over the tick index, one Parquet file; rows written."""
    import pandas as pd

    from tools.bench.pandas_baseline import compute
    from tools.registry_file import default_registry

    reg = default_registry()
    frames = []
    for sym, res in compute(recs, reg, symbols).items():
        df = pd.DataFrame(res.values, columns=list(reg.names))
        df.insert(0, "ts", pd.to_datetime(res.ts_ns, utc=True))
        df.insert(1, "symbol", sym)
        df.insert(2, "book_valid", res.book_valid.astype("int8"))
        mid = df["mid_price"].where(df["book_valid"] == 1).set_axis(df["ts"])
        for h in horizons_s:
            future = mid.reindex(mid.index + pd.Timedelta(seconds=h)).to_numpy()
            ret = np.log(future / mid.to_numpy())
            df[f"target_return_{h}s"] = ret
            label = pd.Series(np.where(ret > bps * 1e-4, 1, np.where(ret < -bps * 1e-4, -1, 0)), dtype="Int8")
            df[f"label_{h}s"] = label.mask(np.isnan(ret)).to_numpy()
        frames.append(df)
    table = pd.concat(frames)
    table.to_parquet(out)
    return len(table)


