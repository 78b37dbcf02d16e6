"""`feature-service compact` as a user runs it: a subprocess, JSON on stdout, mistakes as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from journal.config import JournalConfig
from journal.reader import JournalReader
from journal.segment import list_segments
from journal.store.layout import StoreRoots
from journal.store.records import read_records
from journal.writer import JournalWriter
from tests.journal.store.recs import faulted_run, same_records

#: Runs the real CLI; `compact` is added to COMMANDS only if the lead has not wired it yet.
LAUNCH = ("import sys, tools.cli as c; "
          "c.COMMANDS.setdefault('compact', ('tools.offline.cmd_compact', 'compact')); "
          "sys.exit(c.main(sys.argv[1:]))")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LAUNCH, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def shard_config(tmp_path: Path, store: str = "  checkpoints: false\n") -> Path:
    p = tmp_path / "shard.yaml"
    p.write_text(f"data_dir: {tmp_path / 'data'}\nshard: {{symbols: [SOLUSDT, DOGEUSDT]}}\nstore:\n{store}")
    return p


def _journal(tmp_path: Path) -> Path:
    j = tmp_path / "data" / "journal"
    with JournalWriter(JournalConfig(dir=str(j), fsync="never")) as w:
        w.append(faulted_run())
    return j


def test_dry_run_then_compact(tmp_path: Path) -> None:
    j = _journal(tmp_path)
    want = list(JournalReader(j).records())
    cfg = shard_config(tmp_path)
    dry = cli("compact", "--config", str(cfg), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["dry_run"] and plan["records"] == len(want) and plan["files"] == 0
    assert not (tmp_path / "data" / "store").exists()
    done = cli("compact", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert (s["records"], s["first_seq"], s["last_seq"]) == (len(want), 1, len(want))
    # 9 partitions by hand: control, SOL snapshots/deltas/kline/ticker/funding/executions, SOL and DOGE trades
    assert s["files"] == 9 and s["records_per_s"] > 0 and s["seconds"] >= 0 and s["segments"] == 1
    same_records(list(read_records(StoreRoots(tmp_path / "data" / "store"))), want)
    assert len(list_segments(j)) == 1  # the newest segment always stays
    again = json.loads(cli("compact", "--config", str(cfg)).stdout)
    assert again["records"] == 0 and again["files"] == 0


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    missing = cli("compact", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nope.yaml" in missing.stderr and "Traceback" not in missing.stderr
    no_journal = cli("compact", "--config", str(shard_config(tmp_path)))
    assert no_journal.returncode == 1 and len(no_journal.stderr.strip().splitlines()) == 1
    assert "journal error" in no_journal.stderr and "no such directory" in no_journal.stderr
    bad = cli("compact", "--config", str(shard_config(tmp_path, "  compression_level: 99\n")))
    assert bad.returncode == 2 and "store.compression_level" in bad.stderr
    usage = cli("compact")
    assert usage.returncode == 2 and "--config" in usage.stderr


def test_damage_prints_the_summary_and_exits_1(tmp_path: Path) -> None:
    j = tmp_path / "data" / "journal"
    recs = faulted_run()
    with JournalWriter(JournalConfig(dir=str(j), fsync="never", segment_max_age_s=1)) as w:
        w.append(recs[:10])
        w.append([r._replace(recv_ns=r.recv_ns + 100 * 10**9) for r in recs[10:]])
    first = list_segments(j)[0][1]
    data = bytearray(first.read_bytes())
    data[-3] ^= 0xFF
    first.write_bytes(bytes(data))
    proc = cli("compact", "--config", str(shard_config(tmp_path)))
    assert proc.returncode == 1
    s = json.loads(proc.stdout)
    assert s["last_seq"] == 9 and first.name in s["damage"]
    last = proc.stderr.strip().splitlines()[-1]  # after the JSON log line of the warning
    assert last.startswith("feature-service compact: journal error: ") and first.name in last
