"""`bench journal`: every figure warms up once untimed, so --repeats 1 does not time numba compilation."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tools.bench.journal import median_rate


def test_the_first_call_is_untimed_whatever_repeats_is() -> None:
    """A first call 100x slower than the rest (compilation) is not in the figure, even with repeats=1."""
    calls: list[float] = []

    def fn() -> None:
        time.sleep(0.2 if not calls else 0.002)
        calls.append(time.perf_counter())

    rate = median_rate(1000, 1, fn)
    assert len(calls) == 2
    assert rate > 1000 / 0.1  # 0.002 s timed (allowing a slow machine), not 0.2 s


def test_a_separate_warm_up_runs_instead_of_the_timed_function() -> None:
    seen: list[str] = []
    median_rate(10, 3, lambda: seen.append("timed"), warm=lambda: seen.append("warm"))
    assert seen == ["warm", "timed", "timed", "timed"]


def test_bench_journal_runs_with_one_repeat(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "tools.cli", "bench", "journal", "--records", "2000", "--always-records", "200",
           "--repeats", "1", "--dir", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr
    ops = [json.loads(line)["op"] for line in done.stdout.splitlines()]
    assert ops[0] == "setup" and ops.count("write") == 3 and "scan" in ops and "decode" in ops
    assert list(tmp_path.iterdir()) == []  # scratch removed
