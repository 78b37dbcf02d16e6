"""`bench dataset --quick` prints its figures; its pandas baseline's targets equal a dataset build's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import yaml

from journal.store.layout import StoreRoots
from journal.store.records import read_records
from tools.bench.dataset import DAY_START, NS, pandas_dataset
from tools.bench.synthetic_journal import write_journal


def test_quick_bench_prints_positive_figures() -> None:
    done = subprocess.run([sys.executable, "-m", "tools.cli", "-q", "bench", "dataset", "--quick"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    for part in ("one_symbol", "multi_symbol"):
        assert doc[part]["rows"] > 0 and doc[part]["build_wall_s"] > 0 and doc[part]["peak_rss_mib_children"] > 0
    assert doc["pandas_baseline"]["rows_per_s"] > 0 and doc["ratio_rows_per_s_vs_pandas"] > 0
    assert doc["goal_24h_1_symbol_le_10s"] in ("MET", "NOT MET")


def test_the_pandas_baseline_builds_the_same_targets(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_journal(data / "journal", ["BTCUSDT"], 400, rate=80, start_ns=DAY_START)
    cfg = tmp_path / "shard.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(data), "shard": {"symbols": ["BTCUSDT"]}}))
    run = lambda *a: subprocess.run([sys.executable, "-m", "tools.cli", "-q", *a], capture_output=True,  # noqa: E731
                                    text=True, timeout=300)
    assert run("compact", "--config", str(cfg)).returncode == 0
    built = run("dataset", "build", "--config", str(cfg), "--from", str(DAY_START + 10 * NS),
                "--to", str(DAY_START + 390 * NS), "--horizons", "60s,300s")
    assert built.returncode == 0, built.stderr
    ours = pads.dataset(json.loads(built.stdout)["path"], format="parquet", partitioning="hive").to_table()
    pandas_dataset(list(read_records(StoreRoots(data / "store", None))), ["BTCUSDT"], tmp_path / "b.parquet")
    base = pq.read_table(tmp_path / "b.parquet").to_pandas().set_index("ts")
    ts = ours.column("ts").to_pandas()
    for h in ("60s", "300s"):
        got = ours.column(f"target_return_{h}").to_numpy(zero_copy_only=False).astype(float)
        want = base.loc[ts, f"target_return_{h}"].to_numpy()
        assert np.array_equal(np.isnan(got), np.isnan(want)), h
        ok = ~np.isnan(got)
        assert ok.sum() > 50 and np.allclose(got[ok], want[ok], rtol=0, atol=1e-12)
        labels = ours.column(f"label_{h}").to_pylist()
        base_labels = base.loc[ts, f"label_{h}"].tolist()
        assert labels == [None if pd.isna(x) else int(x) for x in base_labels]
