"""End to end, the identity proof as a user runs it: `feature-service verify` after a faulted live run.

Simulator (gaps, duplicates, reorders, corrupt frames, `u = 1` exchange restarts) → shard, with a
gateway kill -9 and restart, a registry reload through the API and a shard kill -9 and restart in
the middle → `compact` → `verify`: zero mismatches, zero missing, both registries compared. Then one
cell of the feature log is altered and `verify` must name exactly that cell and exit 1.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from journal.feature_log import read_feature_log
from tests.e2e import harness as h
from tools.registry_file import default_registry_text

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FAULTS = {"drop_delta": {"every": 300}, "duplicate": {"every": 250}, "reorder": {"every": 400},
          "corrupt": {"every": 350}, "restart": {"every": 1500}}
NEW_FEATURE = "  - {name: vol_5s_verify, function: volume, window: 5s}\n"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "-q", *args], capture_output=True, text=True,
                          timeout=300, cwd=h.ROOT)


def _live_run(tmp: Path) -> Path:
    sim_cfg = h.sim_config(tmp, SYMBOLS, rate_hz=300, faults=FAULTS)
    shard_cfg = h.shard_config(tmp, sim_cfg, SYMBOLS)
    port = h.load(shard_cfg)["api"]["port"]
    shard = h.start_shard(shard_cfg, tmp / "shard.log")
    sim = h.start_sim(sim_cfg, tmp / "sim.log")
    try:
        time.sleep(4)
        sim.kill9()
        time.sleep(2)
        sim = h.start_sim(sim_cfg, tmp / "sim.log")
        time.sleep(2)
        status, body = h.post_registry(port, default_registry_text() + NEW_FEATURE)
        assert status == 200, body
        time.sleep(3)
        shard.kill9()
        shard = h.start_shard(shard_cfg, tmp / "shard.log")
        time.sleep(4)
        assert sim.alive() and shard.alive()
    finally:
        code = shard.stop()
        sim.stop()
    assert code == 0, shard.text()[-3000:]
    return shard_cfg


def _log_span(data: Path) -> tuple[int, int]:
    from journal.feature_log import feature_log_hashes

    ts = [t for hh in feature_log_hashes(data / "feature_log")
          for t in read_feature_log(data / "feature_log", hh).column("ts").cast(pa.int64()).to_pylist()]
    return min(ts), max(ts) + h.NS


def _alter_one_cell(log_dir: Path) -> tuple[str, int, str]:
    """Change one finite float of the first compacted log file by one ulp; return (symbol, ts, column)."""
    path = sorted(p for p in log_dir.iterdir() if p.suffix == ".parquet")[0]
    t = pq.read_table(path)
    col = "spread_abs"
    values = t.column(col).to_numpy(zero_copy_only=False).copy()
    i = int(np.flatnonzero(np.isfinite(values))[len(values) // 3])
    values[i] = np.nextafter(values[i], np.inf)
    t = t.set_column(t.column_names.index(col), t.schema.field(col), pa.array(values, pa.float64()))
    pq.write_table(t, path)
    return t.column("symbol")[i].as_py(), t.column("ts").cast(pa.int64())[i].as_py(), col


@pytest.mark.timeout(240)
def test_verify_proves_online_equals_offline_and_finds_one_altered_cell(tmp_path: Path) -> None:
    cfg = _live_run(tmp_path)
    data = Path(h.load(cfg)["data_dir"])
    done = _cli("compact", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] > 1000
    lo, hi = _log_span(data)
    ok = _cli("verify", "--config", str(cfg), "--from", str(lo), "--to", str(hi))
    report = json.loads(ok.stdout)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr
    assert report["ok"] and report["mismatched_cells"] == 0 and report["missing"] == 0
    assert len(report["registries"]) == 2 and report["rows_compared"] > 15 * len(SYMBOLS)

    symbol, ts, col = _alter_one_cell(data / "feature_log")
    bad = _cli("verify", "--config", str(cfg), "--from", str(lo), "--to", str(hi))
    report = json.loads(bad.stdout)
    assert bad.returncode == 1 and not report["ok"]
    assert report["mismatches"] == {col: 1} and report["missing"] == 0
    (diff,) = report["first_diffs"]
    from tools.dataset.build import iso

    assert (diff["symbol"], diff["ts"], diff["column"]) == (symbol, iso(ts), col)
    assert float(diff["online"]) == np.nextafter(float(diff["offline"]), np.inf)


def test_verify_mistakes_are_one_line(tmp_path: Path) -> None:
    cfg = tmp_path / "shard.yaml"
    cfg.write_text(f"data_dir: {tmp_path / 'nothing'}\n")
    for args, code, words in ((["--config", str(tmp_path / "missing.yaml"), "--from", "1", "--to", "2"], 2,
                               "cannot read config"),
                              (["--config", str(cfg), "--from", "5", "--to", "2"], 2, "not before --to"),
                              (["--config", str(cfg), "--from", "1", "--to", "2"], 1, "nothing to replay")):
        done = _cli("verify", *args)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code and len(lines) == 1 and words in lines[0], (args, done.stderr)
