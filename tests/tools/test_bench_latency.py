"""bench latency: the figures' arithmetic by hand, then one tiny real run (simulator, shard, SUB client)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from tools.bench import latency
from tools.cli import UsageError

NS = 1_000_000_000
T0 = 1_786_310_800 * NS


def test_vector_latency_drops_the_warmup_and_takes_the_last_vector_of_each_tick() -> None:
    # Ticks at T0, T0+1s, T0+2s, T0+3s; two symbols each; arrivals 1 and 3 ms (tick 0: 50/60 ms).
    ts, arrival = [], []
    for k in range(4):
        late = (50, 60) if k == 0 else (1, 3)
        for ms in late:
            ts.append(T0 + k * NS)
            arrival.append(T0 + k * NS + ms * 1_000_000)
    got = latency.vector_latency({"ts": ts, "arrival": arrival, "symbol": ["A", "B"] * 4}, warmup=1)
    assert got["vectors"] == 6 and got["ticks"] == 3  # tick 0 dropped
    assert got["p50_ms"] == pytest.approx(2.0)  # median of 1,3,1,3,1,3
    assert got["max_ms"] == pytest.approx(3.0)
    assert got["last_of_tick_p50_ms"] == pytest.approx(3.0)
    assert got["p99_ms"] == pytest.approx(float(np.percentile([1, 3, 1, 3, 1, 3], 99)))


def test_vector_latency_of_nothing_is_zero_vectors() -> None:
    assert latency.vector_latency({"ts": [], "arrival": [], "symbol": []}, warmup=5) == {"vectors": 0, "ticks": 0}


def test_histogram_reads_prometheus_text() -> None:
    text = "\n".join([
        "# HELP fs_tick_to_publish_seconds Tick boundary to vectors sent",
        'fs_tick_to_publish_seconds_bucket{le="0.0005"} 10.0',
        'fs_tick_to_publish_seconds_bucket{le="0.001"} 95.0',
        'fs_tick_to_publish_seconds_bucket{le="0.002"} 100.0',
        'fs_tick_to_publish_seconds_bucket{le="+Inf"} 100.0',
        "fs_tick_to_publish_seconds_count 100.0",
        "fs_tick_to_publish_seconds_sum 0.08",
    ])
    h = latency.histogram(text, "fs_tick_to_publish_seconds")
    assert h["count"] == 100
    assert h["mean_ms"] == pytest.approx(0.8)
    assert h["p50_le_ms"] == pytest.approx(1.0)  # 50 of 100 first reached in the 1 ms bucket
    assert h["p99_le_ms"] == pytest.approx(2.0)
    assert latency.histogram("", "fs_tick_to_publish_seconds") == {}


def test_bad_symbol_counts_are_usage_errors() -> None:
    p = argparse.ArgumentParser()
    latency.add_arguments(p)
    with pytest.raises(UsageError, match="--symbols"):
        latency.run(p.parse_args(["--symbols", "1,x"]))
    with pytest.raises(UsageError, match="within"):
        latency.run(p.parse_args(["--symbols", "0"]))


def test_a_tiny_run_gives_well_formed_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    p = argparse.ArgumentParser()
    latency.add_arguments(p)
    out = tmp_path / "latency.json"
    args = p.parse_args(["--symbols", "2", "--rate", "200", "--seconds", "2", "--warmup", "1", "--slow-rate", "0",
                         "--http-rate", "50", "--engine-seconds", "3", "--where", "--json", str(out), "--dir", str(tmp_path)])
    assert latency.run(args) == 0
    doc = json.loads(out.read_text())
    (case,) = doc["cases"]
    assert case["symbols"] == 2 and case["rate"] == 200
    assert case["vectors"] >= 2 and case["ticks"] >= 1
    assert 0 < case["p50_ms"] <= case["p99_ms"] <= case["max_ms"] < 1000
    http = case["http"]
    assert http["planned"] == 100 and 50 <= http["requests"] <= 100 and sum(http["status"].values()) == http["requests"]
    assert http["status"].get("0", 0) == 0  # every request answered
    assert 0 < http["p50_ms"] <= http["p99_ms"]
    assert case["shard_tick_to_publish"]["count"] >= case["ticks"]
    assert case["engine_tick"]["ticks"] >= 1 and case["engine_tick"]["p50_ms"] > 0
    assert "tick_late_max_us" in case["bridge"]
    where = case["where"]
    assert where["ticks"] >= 1 and len(where["per_tick_ms"]) == where["ticks"]
    for row in where["per_tick_ms"]:  # total = to_batch + append + fold + publish, each >= 0
        assert min(row) >= 0 and row[0] == pytest.approx(sum(row[1:5]), abs=0.005)
    assert where["http"]["planned"] == 100 and where["http"]["status"].get("0", 0) == 0
    table = capsys.readouterr().out
    assert "features.live latency" in table and f"{case['vectors']:>7}" in table
    assert "where the time goes" in table
