"""Long stores replay in bounded memory: six hours by default, a month of synthetic data as a slow soak.

Real subprocesses: `feature-service compact` and `feature-service replay --config`, peak RSS read
from the kernel's accounting of the finished child (`ru_maxrss`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.record import NS_PER_S, session
from journal.config import JournalConfig
from journal.writer import JournalWriter
from registry import load_registry_text
from tools.bench.synthetic_journal import write_journal

GIB = 1 << 30
START_NS = 1_786_320_000 * NS_PER_S


#: A small registry (journaled in the SESSION): the soak is about memory over a month of records and
#: ticks, and the default registry's 35 features would make its 2.6 M ticks most of the run time.
SOAK_REGISTRY = """
version: 1
features:
  - {name: mid_price, function: mid_price}
  - {name: spread_rel, function: spread_rel}
  - {name: vwap_15s, function: vwap, window: 15s}
  - {name: depth_imbalance_top5, function: depth_imbalance, params: {levels: 5}}
  - {name: volatility_1m, function: volatility, params: {seconds: 60}}
"""


def _write_journal(journal: Path, seconds: int) -> int:
    """A SESSION naming the soak registry, then `seconds` of one symbol at 4 events/s (plus a tick a
    second) in 64 MiB segments; return the records written."""
    reg = load_registry_text(SOAK_REGISTRY, source="soak")
    cfg = JournalConfig(dir=str(journal), fsync="never")
    with JournalWriter(cfg) as w:
        w.append([session(START_NS, "soak", "linear", ["SOAKUSDT"], reg.canonical, reg.content_hash)])
    wrote = write_journal(journal, ["SOAKUSDT"], seconds, rate=4, start_ns=START_NS, session=False,
                          segment_max_bytes=64 << 20)
    return wrote.records + 1


#: Runs the CLI in this process, then writes the process's own peak RSS (KiB) to the file in argv[1].
_MEASURED = ("import resource, sys\n"
             "from tools.cli import main\n"
             "rc = main(sys.argv[2:])\n"
             "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
             "sys.exit(rc)\n")


def _run(tmp: Path, *args: str) -> tuple[dict, int]:
    """Run the CLI in a child; return its JSON summary and that child's own peak RSS in bytes."""
    rss = tmp / "rss.txt"
    done = subprocess.run([sys.executable, "-c", _MEASURED, str(rss), *args], capture_output=True, text=True,
                          timeout=3600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), int(rss.read_text()) * 1024


@pytest.mark.parametrize("seconds", [pytest.param(6 * 3600, id="6h"),
                                     pytest.param(30 * 86_400, id="month",
                                                  marks=[pytest.mark.slow, pytest.mark.timeout(1800)])])
def test_store_replay_memory_stays_bounded(tmp_path: Path, seconds: int) -> None:
    data = tmp_path / "data"
    written = _write_journal(data / "journal", seconds)
    cfg = tmp_path / "shard.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(data), "shard": {"symbols": ["SOAKUSDT"]}}))
    summary, _ = _run(tmp_path, "compact", "--config", str(cfg))
    assert summary["records"] >= written - 200_000  # the newest segment may stay in the journal
    out = tmp_path / "features"
    got, peak = _run(tmp_path, "replay", "--config", str(cfg), "--out", str(out))
    assert got["records"] == written
    assert got["rows"] == seconds  # one vector per tick (the first tick is a second after the start)
    assert peak < 2 * GIB, f"replay of {seconds} s peaked at {peak / GIB:.2f} GiB"
