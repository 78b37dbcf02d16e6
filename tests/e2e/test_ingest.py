"""End to end: simulator subprocess -> shard subprocess -> journal; nothing lost; restart continues."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.record import MARKET_KINDS, NS_PER_S, Kind, Record

pytest.importorskip("gateway_bridge.decoder")
from journal.reader import JournalReader  # noqa: E402

SYMBOLS = ["SOLUSDT", "DOGEUSDT"]


def _write_configs(tmp_path: Path, messages: int, seed: int) -> tuple[Path, Path]:
    endpoint, control = f"ipc://{tmp_path}/gw", f"ipc://{tmp_path}/ctl"
    sim = {"endpoint": endpoint, "control_endpoint": control, "source": "synthetic",
           "synthetic": {"symbols": SYMBOLS, "depth": 50, "seed": seed, "rate_hz": 1000, "messages": messages},
           "wait_for_subscriber": True, "wait_timeout_ms": 20_000}
    shard = {"shard": {"name": "e2e", "symbols": SYMBOLS},
             "gateway": {"endpoint": endpoint, "control_endpoint": control, "poll_ms": 20},
             "journal": {"dir": str(tmp_path / "journal"), "fsync": "interval_ms"}}
    sim_path, shard_path = tmp_path / f"sim{seed}.yaml", tmp_path / "shard.yaml"
    sim_path.write_text(yaml.safe_dump(sim))
    shard_path.write_text(yaml.safe_dump(shard))
    return sim_path, shard_path


def _spawn(tmp_path: Path, command: str, config: Path) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{command}.log").open("ab")
    with log:
        return subprocess.Popen([sys.executable, "-m", "tools.cli", command, "--config", str(config)],
                                stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])


def _market_count(journal: Path) -> int:
    if not journal.exists():
        return 0
    return sum(1 for _ in JournalReader(journal).records(kinds=MARKET_KINDS))


def _session(tmp_path: Path, messages: int, seed: int) -> None:
    """Run one shard + one simulator publishing `messages`; stop the shard once all are journaled."""
    sim_cfg, shard_cfg = _write_configs(tmp_path, messages, seed)
    journal = tmp_path / "journal"
    before = _market_count(journal)
    shard = _spawn(tmp_path, "shard", shard_cfg)
    try:
        sim = _spawn(tmp_path, "gateway-sim", sim_cfg)
        assert sim.wait(40) == 0, (tmp_path / "gateway-sim.log").read_text()
        end = time.monotonic() + 15
        while _market_count(journal) < before + messages and time.monotonic() < end:
            time.sleep(0.1)
        time.sleep(1.2)  # let at least one idle tick pass after the last message
    finally:
        shard.send_signal(signal.SIGINT)
        code = shard.wait(20)
    assert code == 0, (tmp_path / "shard.log").read_text()


def _check_journal(recs: list[Record]) -> None:
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1)), "seq gap-free from 1"
    assert all(a.recv_ns <= b.recv_ns for a, b in zip(recs, recs[1:], strict=False)), "recv_ns non-decreasing"
    ticks = [r.recv_ns for r in recs if r.kind == Kind.TICK]
    market = [r.recv_ns for r in recs if r.kind in MARKET_KINDS]
    assert ticks == list(range(ticks[0], ticks[-1] + 1, NS_PER_S)), "a tick at every second"
    assert ticks[0] == (market[0] // NS_PER_S + 1) * NS_PER_S and ticks[-1] > market[-1]


@pytest.mark.timeout(90)
def test_simulator_to_shard_to_journal_loses_nothing_and_restart_continues(tmp_path: Path) -> None:
    _session(tmp_path, messages=2500, seed=1)
    recs = list(JournalReader(tmp_path / "journal").records())
    _check_journal(recs)
    assert sum(r.kind in MARKET_KINDS for r in recs) == 2500, "every published message journaled"
    assert not [r for r in recs if r.kind == Kind.BAD_FRAME]
    for symbol in SYMBOLS:  # book updates arrive in order: u steps by one after the snapshot
        us = [r.payload["u"] for r in recs if r.symbol == symbol and r.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA)]
        assert us == list(range(us[0], us[0] + len(us)))
    first_len = len(recs)

    _session(tmp_path, messages=500, seed=2)
    recs = list(JournalReader(tmp_path / "journal").records())
    _check_journal(recs)
    assert len(recs) > first_len
    # A restart is a reconnect: down since the last record, up on traffic, a snapshot asked for each book.
    second = recs[first_len:]
    assert second[0].kind == Kind.GATEWAY_DOWN and second[0].payload["reason"] == "shard_restart"
    assert second[0].recv_ns == recs[first_len - 1].recv_ns
    assert any(r.kind == Kind.GATEWAY_UP for r in second)
    requests = [r for r in second if r.kind == Kind.RESYNC_REQUEST]
    assert sorted(r.symbol for r in requests) == sorted(SYMBOLS)
    answers = sum(1 for q in requests if any(r.kind == Kind.BOOK_SNAPSHOT and r.symbol == q.symbol and r.seq > q.seq
                                             for r in second))
    assert sum(r.kind in MARKET_KINDS for r in recs) == 3000 + answers, "every published message journaled"
