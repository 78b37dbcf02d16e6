"""`feature-service bench model --quick` runs the real inference path and prints its figures beside the baseline."""

from __future__ import annotations

import json
import subprocess
import sys


def test_bench_model_quick_prints_latencies_of_singles_bursts_and_the_naive_client() -> None:
    done = subprocess.run([sys.executable, "-m", "tools.cli", "-q", "bench", "model", "--quick", "--burst-symbols", "5"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["model"]["kind"] == "hist_gradient_boosting" and doc["model"]["trees"] == 100
    assert doc["single"]["vectors"] == 200 and doc["burst_of_5"]["vectors"] == 100
    for part in (doc["single"], doc["burst_of_5"]):
        assert 0 < part["service_p50_us"] <= part["service_p99_us"]
        assert part["service_p50_us"] <= part["full_path_p50_us"]  # the service's span lies inside the full path
    assert doc["naive_pandas_per_vector"]["p50_us"] > 0 and doc["ratio_naive_over_service_p50"] > 0
    assert doc["goal_p99_le_1ms"] in ("MET", "NOT MET")
