"""A user's mistakes with `feature-service shard`: exit 2 (config) or 1 (runtime), one line, data untouched.

Each case runs the real command as a subprocess; the journal directory is hashed before and after.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from engine.record import tick
from journal.config import JournalConfig
from journal.writer import JournalWriter

T0 = 1_786_310_800_000_000_000


def tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def base(tmp_path: Path) -> dict:
    return {"data_dir": str(tmp_path / "data"), "shard": {"name": "m", "symbols": ["AUSDT"]},
            "gateway": {"endpoint": f"ipc://{tmp_path}/gw", "control_endpoint": f"ipc://{tmp_path}/ctl"},
            "publish": {"endpoint": f"ipc://{tmp_path}/pub"}, "api": {"port": 0}}


def journal_with_records(tmp_path: Path, segments: int = 1) -> Path:
    """A journal under the data dir with a few ticks (several small segments if asked)."""
    d = tmp_path / "data" / "journal"
    cfg = JournalConfig(dir=str(d), fsync="never", segment_max_bytes=4096)
    with JournalWriter(cfg) as w:
        for i in range(segments):
            w.append([tick(T0 + (i * 200 + k) * 1_000_000_000) for k in range(200)])
    return d


def run_shard(tmp_path: Path, cfg: dict | str, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "shard.yaml"
    path.write_text(cfg if isinstance(cfg, str) else yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "tools.cli", "shard", "--config", str(path), *args],
                          capture_output=True, text=True, timeout=60, check=False)


def with_key(tmp_path: Path, dotted: str, value: object) -> dict:
    cfg = base(tmp_path)
    node = cfg
    *parents, leaf = dotted.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[leaf] = value
    return cfg


CONFIG_MISTAKES = [
    ("gateway.max_batch", 0), ("gateway.poll_ms", -1), ("gateway.poll_ms", 0),
    ("gateway.reconnect.initial_ms", -1), ("gateway.reconnect.factor", 1e308), ("gateway.silence_ms", 5),
    ("gateway.endpoint", "tcp://nonsense"), ("publish.endpoint", "udp://x:1"), ("api.port", 70000),
    ("checkpoint.interval_s", 0), ("ticks.max_backfill_s", -3), ("gateway.resync.via", "carrier-pigeon"),
    ("shard.symbols", ["btcusdt"]), ("shard.category", "futures"), ("gateway.topics.trade", "x"),
]


def assert_one_line(done: subprocess.CompletedProcess[str], code: int, *names: str) -> None:
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for name in names:
        assert name in lines[0], (name, lines[0])


@pytest.mark.parametrize(("key", "value"), CONFIG_MISTAKES)
def test_a_bad_setting_is_a_config_error_naming_its_key(tmp_path: Path, key: str, value: object) -> None:
    journal = journal_with_records(tmp_path)
    before = tree_hash(journal)
    done = run_shard(tmp_path, with_key(tmp_path, key, value))
    assert_one_line(done, 2, "shard.yaml", key)
    assert tree_hash(journal) == before


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    done = run_shard(tmp_path, "shard:\n  name: x\n   symbols: [A]\n")
    assert_one_line(done, 2, "shard.yaml:3")


def test_bogus_log_level(tmp_path: Path) -> None:
    assert_one_line(run_shard(tmp_path, base(tmp_path), "--log-level", "bogus"), 2, "bogus")


def test_a_journal_locked_by_another_writer(tmp_path: Path) -> None:
    journal = journal_with_records(tmp_path)
    with JournalWriter(JournalConfig(dir=str(journal), fsync="never")):
        before = tree_hash(journal)
        done = run_shard(tmp_path, base(tmp_path))
        assert tree_hash(journal) == before
    assert_one_line(done, 1, str(journal), "another writer")


def test_a_journal_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "journal").write_text("not a journal")
    assert_one_line(run_shard(tmp_path, base(tmp_path)), 1, "journal")
    assert (tmp_path / "data" / "journal").read_text() == "not a journal"


def test_a_corrupt_closed_segment_stops_the_shard_with_the_way_forward(tmp_path: Path) -> None:
    journal = journal_with_records(tmp_path, segments=3)
    first = sorted(journal.glob("*.seg"))[0]
    raw = bytearray(first.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    first.write_bytes(bytes(raw))
    before = tree_hash(journal)
    done = run_shard(tmp_path, base(tmp_path))
    assert_one_line(done, 1, first.name, "journal repair")
    assert tree_hash(journal) == before
