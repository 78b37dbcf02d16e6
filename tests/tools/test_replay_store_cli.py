"""`feature-service replay --config`: the store and the journal tail, as a user runs it (real subprocesses)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import yaml

from gateway_bridge.importer import import_files
from tests.conftest import SOL_DOGE_FRAMES


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "-q", *args], capture_output=True, text=True,
                          timeout=300)


def _same_bits(a: Path, b: Path) -> bool:
    """Two feature files with the same columns, every float equal bit for bit (NaN included)."""
    x, y = pq.read_table(a), pq.read_table(b)
    if x.column_names != y.column_names or x.num_rows != y.num_rows:
        return False
    for c in x.column_names:
        u, v = x[c].to_numpy(zero_copy_only=False), y[c].to_numpy(zero_copy_only=False)
        if u.dtype.kind == "f" and not np.array_equal(u.view(np.int64), v.view(np.int64)):
            return False
        if u.dtype.kind != "f" and not np.array_equal(u, v):
            return False
    return True


def test_replay_config_equals_replay_journal_and_says_where_it_started(shared_bybit: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    import_files(str(data / "journal"), "frames", [str(shared_bybit / SOL_DOGE_FRAMES)])
    shutil.copytree(data / "journal", tmp_path / "copy")
    cfg = tmp_path / "shard.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(data), "shard": {"symbols": ["SOLUSDT", "DOGEUSDT"]}}))
    done = _cli("compact", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["records"] > 1000
    start = "2026-08-09T21:27:10Z"
    store = _cli("replay", "--config", str(cfg), "--out", str(tmp_path / "a.parquet"), "--from", start)
    plain = _cli("replay", "--journal", str(tmp_path / "copy"), "--out", str(tmp_path / "b.parquet"), "--from", start)
    assert store.returncode == 0 and plain.returncode == 0, store.stderr + plain.stderr
    summary = json.loads(store.stdout)
    assert summary["start"]["from"] in ("beginning", "checkpoint", "warm-up")
    assert summary["start"]["store_records"] > 0
    assert summary["rows"] == json.loads(plain.stdout)["rows"] > 0
    assert _same_bits(tmp_path / "a.parquet", tmp_path / "b.parquet")


def test_replay_config_mistakes_are_one_line(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "nothing")}))
    for args, code, words in ((["--config", str(tmp_path / "missing.yaml")], 2, "cannot read config"),
                              (["--config", str(empty)], 1, "nothing to replay"),
                              (["--config", str(empty), "--journal", str(tmp_path)], 2, "not allowed with")):
        done = _cli("replay", *args, "--out", str(tmp_path / "out"))
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code and len(lines) == 1 and words in lines[0], (args, done.stderr)
        assert not (tmp_path / "out").exists()
