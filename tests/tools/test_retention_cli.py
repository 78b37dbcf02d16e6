"""`feature-service retention run` as a user runs it: a subprocess, JSON on stdout, mistakes as one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from journal.store.manifest import Manifest
from tests.journal.store.test_retention import build_store, tree

#: Runs the real CLI; `retention` is added to COMMANDS only if the lead has not wired it yet.
LAUNCH = ("import sys, tools.cli as c; "
          "c.COMMANDS.setdefault('retention', ('tools.offline.cmd_retention', 'retention')); "
          "sys.exit(c.main(sys.argv[1:]))")
NOW = "2026-08-20T12:00:00Z"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", LAUNCH, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def shard_config(tmp_path: Path, store: str) -> Path:
    p = tmp_path / "shard.yaml"
    p.write_text(f"data_dir: {tmp_path / 'data'}\nshard: {{symbols: [SOLUSDT, DOGEUSDT]}}\nstore:\n{store}")
    return p


def test_dry_run_then_run(tmp_path: Path) -> None:
    hot, arch = tmp_path / "data" / "store", tmp_path / "arch"
    build_store(hot, ["2026-08-09", "2026-08-16", "2026-08-17", "2026-08-20"])
    cfg = shard_config(tmp_path, f"  archive_dir: {arch}\n  retention_days: 3\n  archive_retention_days: 5\n")
    before = tree(hot)
    dry = cli("retention", "run", "--config", str(cfg), "--dry-run", "--now", NOW)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    # kept hot from 08-17; the archive keeps from 08-15, so 08-09 is deleted outright and 08-16 moves
    assert plan["hot_kept_from"] == "2026-08-17" and plan["archive_kept_from"] == "2026-08-15"
    assert sorted((a["action"], a["date"]) for a in plan["actions"]) == \
        [("archive", "2026-08-16")] * 3 + [("delete_hot", "2026-08-09")] * 3
    assert tree(hot) == before and not arch.exists()
    done = cli("retention", "run", "--config", str(cfg), "--now", NOW)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["counts"] == {"archive": 3, "delete_hot": 3} and not summary["dry_run"]
    m = Manifest.load(hot)
    assert sorted({(e.date, e.location) for e in m.files}) == [
        ("2026-08-16", "archive"), ("2026-08-17", "hot"), ("2026-08-20", "hot")]
    assert {p.split("/")[1] for p in tree(arch)} == {"date=2026-08-16"}


def test_mistakes_are_one_line(tmp_path: Path) -> None:
    cfg = shard_config(tmp_path, "  retention_days: 3\n")
    for args, code, text in [
        (("--now", "yesterday"), 2, "--now: 'yesterday' is not a time"),
        ((), 0, ""),
    ]:
        proc = cli("retention", "run", "--config", str(cfg), *args)
        assert proc.returncode == code, proc.stderr
        if code:
            assert proc.stderr.count("\n") == 1 and text in proc.stderr, proc.stderr
    bad = shard_config(tmp_path, "  retention_days: -1\n")
    proc = cli("retention", "run", "--config", str(bad))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "store.retention_days" in proc.stderr
    proc = cli("retention", "run", "--config", str(tmp_path / "missing.yaml"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "missing.yaml" in proc.stderr


def test_a_locked_store_is_a_runtime_failure(tmp_path: Path) -> None:
    import fcntl
    import os

    hot = tmp_path / "data" / "store"
    build_store(hot, ["2026-08-09"])
    before = tree(hot)
    cfg = shard_config(tmp_path, "  retention_days: 3\n")
    fd = os.open(hot / ".lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a compaction holding the store
        proc = cli("retention", "run", "--config", str(cfg), "--now", NOW)
    finally:
        os.close(fd)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "locked" in proc.stderr, proc.stderr
    assert tree(hot) == before
