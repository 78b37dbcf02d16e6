"""End to end: the shard's journal across restarts. Nothing published is lost, seq continues
gap-free, a second shard on a running shard's journal is refused (the lock), kill -9 at random
moments loses no journaled record and the restarted shard publishes again within ~2 s.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine.record import MARKET_KINDS, Kind
from tests.e2e import harness as h
from tools.registry_file import default_registry_text

SYMBOLS = ["SOLUSDT", "DOGEUSDT"]


def _journal(cfg: Path) -> Path:
    return Path(h.load(cfg)["data_dir"]) / "journal"


def _frames(journal: Path) -> list[bytes]:
    """Every journaled record as its encoded frame (compares payload arrays too)."""
    from journal.codec import encode

    return [encode(r) for r in h.journal_records(journal)]


def _market(recs: list) -> int:
    return sum(r.kind in MARKET_KINDS for r in recs)


def _published(log_text: str) -> int:
    """How many frames the simulator says it published (its stop line), answered resyncs included."""
    found = re.findall(r"gateway_sim stopped .*\bpublished=(\d+)", log_text)
    assert len(found) == 1, log_text[-2000:]
    return int(found[0])


def _publish_all(tmp: Path, shard_cfg: Path, messages: int, seed: int) -> int:
    """A simulator that waits for the shard, publishes `messages` and exits; wait until all are journaled
    and return how many it published (a resync it answered adds a snapshot)."""
    sim_cfg = h.sim_config(tmp, SYMBOLS, rate_hz=1000, seed=seed, messages=messages,
                           wait_for_subscriber=True, wait_timeout_ms=20_000)
    before = _market(h.journal_records(_journal(shard_cfg)))
    sim = h.Proc("gateway-sim", sim_cfg, tmp / f"sim{seed}.log")
    assert sim.p.wait(40) == 0, sim.text()
    h.wait_for(lambda: _market(h.journal_records(_journal(shard_cfg))) >= before + messages, 15,
               f"{messages} messages journaled")
    published = _published(sim.text())
    h.wait_for(lambda: _market(h.journal_records(_journal(shard_cfg))) >= before + published, 15,
               f"{published} published messages journaled")
    time.sleep(1.2)  # one idle tick after the last message
    return published


@pytest.mark.timeout(90)
def test_every_published_message_is_journaled_and_a_clean_restart_continues_the_seq(tmp_path: Path) -> None:
    shard_cfg = h.shard_config(tmp_path, h.sim_config(tmp_path, SYMBOLS), SYMBOLS)
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    try:
        first_published = _publish_all(tmp_path, shard_cfg, 2500, seed=1)
    finally:
        assert shard.stop() == 0, shard.text()[-3000:]
    recs = h.journal_records(_journal(shard_cfg))
    h.check_journal(recs)
    assert first_published >= 2500 and _market(recs) == first_published, "every published message journaled"
    assert not [r for r in recs if r.kind in (Kind.BAD_FRAME, Kind.BAD_FRAME_SUMMARY)]
    for symbol in SYMBOLS:  # book updates arrive in order: u steps by one after the snapshot
        us = [r.payload["u"] for r in recs if r.symbol == symbol and r.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA)]
        assert us == list(range(us[0], us[0] + len(us)))
    first_len = len(recs)

    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    try:
        second_published = _publish_all(tmp_path, shard_cfg, 500, seed=2)
    finally:
        assert shard.stop() == 0, shard.text()[-3000:]
    recs = h.journal_records(_journal(shard_cfg))
    h.check_journal(recs)
    second = recs[first_len:]
    # A restart is a reconnect: down since the last record, up on traffic, a snapshot asked for each book.
    assert second[0].kind == Kind.GATEWAY_DOWN and second[0].payload["reason"] == "shard_restart"
    assert second[0].recv_ns == recs[first_len - 1].recv_ns
    assert any(r.kind == Kind.GATEWAY_UP for r in second)
    assert [r.kind for r in second].count(Kind.SESSION) == 1
    requests = [r for r in second if r.kind == Kind.RESYNC_REQUEST]
    assert sorted({r.symbol for r in requests}) == sorted(SYMBOLS)
    # The simulator's own count, not a guess from the journal: a resync asked before it bound its
    # control socket is answered late or not at all, and its first snapshots are not answers.
    assert second_published >= 500
    assert _market(second) == second_published, "every published message journaled"


@pytest.mark.timeout(60)
def test_a_second_shard_on_a_running_shards_journal_exits_naming_the_lock(tmp_path: Path) -> None:
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=200)
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS)
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    try:
        # A running shard: market data and ticks already journaled (a loaded machine starts slowly).
        h.wait_for(lambda: sum(r.kind == Kind.TICK for r in h.journal_records(_journal(shard_cfg))) >= 2,
                   20, "two journaled ticks")
        doc = h.load(shard_cfg)  # same data_dir; its own API port and stream, so only the journal clashes
        doc["api"]["port"], doc["publish"]["endpoint"] = h.free_port(), f"ipc://{tmp_path}/second.pub"
        second = tmp_path / "second.yaml"
        second.write_text(yaml.safe_dump(doc))
        r = subprocess.run([sys.executable, "-m", "tools.cli", "shard", "--config", str(second)],
                           cwd=h.ROOT, capture_output=True, timeout=30)
        err = [ln for ln in r.stderr.decode().splitlines() if ln.strip() and not ln.startswith("{")]
        assert r.returncode != 0 and len(err) == 1, (r.returncode, r.stderr.decode())
        assert str(_journal(shard_cfg)) in err[0] and "another writer" in err[0], err
        assert "Traceback" not in r.stderr.decode()
        assert shard.alive() and h.get(doc["api"]["port"], "/health")[0] == 0
        assert h.get(h.load(shard_cfg)["api"]["port"], "/health")[0] == 200
    finally:
        sim.stop()
        assert shard.stop() == 0, shard.text()[-3000:]
    h.check_journal(h.journal_records(_journal(shard_cfg)))


@pytest.mark.timeout(120)
def test_kill9_at_random_moments_loses_no_journaled_record_and_is_live_again_within_2s(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=1500, faults={"drop_delta": {"every": 500}})
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS, checkpoint={"interval_s": 1.0})
    journal = _journal(shard_cfg)
    rec = h.Recorder(tmp_path, [h.load(shard_cfg)["publish"]["endpoint"]])
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    kept: list = []
    to_publish: list[float] = []
    to_live: list[float] = []
    to_warm: list[float] = []
    try:
        for _ in range(3):
            time.sleep(rng.uniform(1.5, 3.0))
            shard.kill9()
            before = _frames(journal)
            assert before[:len(kept)] == kept, "a restart changed or lost records journaled before it"
            kept = before
            n = len(rec.messages())
            t0, wall0 = time.monotonic(), time.time_ns()
            shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
            h.wait_for(lambda n=n: len(rec.messages()) > n, 10, "a vector from the restarted shard", every=0.01)
            to_publish.append(time.monotonic() - t0)
            events = shard.events()
            started = [e for e in events if e["event"] == "shard_started"][-1]
            warm = [e for e in events if e["event"] == "engine_warm"][-1]
            to_live.append((h.log_ns(started) - wall0) / h.NS)
            to_warm.append((h.log_ns(warm) - wall0) / h.NS - warm["seconds"])
        time.sleep(1.5)
    finally:
        code = shard.stop()
        sim.stop()
        rec.stop()
    assert code == 0, shard.text()[-3000:]
    print("kill -9 -> restart: process start to warm-up start (interpreter, imports, journal open) (s):",
          ", ".join(f"{s:.3f}" for s in to_warm))
    print("kill -9 -> restart: process start to live (shard_started) (s):", ", ".join(f"{s:.3f}" for s in to_live))
    print("kill -9 -> restart: process start to first published vector (s):", ", ".join(f"{s:.3f}" for s in to_publish))
    recs = h.journal_records(journal)
    h.check_journal(recs)
    assert _frames(journal)[:len(kept)] == kept, "the last restart changed or lost journaled records"
    restarts = [r for r in recs if r.kind == Kind.GATEWAY_DOWN and r.payload["reason"] == "shard_restart"]
    assert len(restarts) == 3
    # Restart to live within 2 s. The machine is shared (other test runs load both cores), so one
    # best-of-3 restart must make it and none may take twice as long; `bench restart` measures it alone.
    assert min(to_live) <= 2.0 and max(to_live) <= 4.0, (to_live, to_warm)
    assert all(p - live <= 1.5 for p, live in zip(to_publish, to_live, strict=True)), (to_publish, to_live)
    # Warm-up from a checkpoint: each restart folded only the journal tail after one.
    warm = [e for e in shard.events() if e["event"] == "engine_warm"]
    assert len(warm) == 4 and all(e["from_checkpoint"] for e in warm[1:]), warm


def _hash_in_force(port: int, since_ns: int) -> str:
    """The registry hash of /features/schema once a SOLUSDT vector from `since_ns` on carries the same one."""
    def agreed() -> str | None:
        status, latest = h.get_json(port, "/features/latest?symbol=SOLUSDT")
        if status != 200 or latest["ts_ns"] < since_ns:
            return None
        current = h.get_json(port, "/features/schema")[1]["registry_hash"]
        return current if current == latest["registry_hash"] else None
    return h.wait_for(agreed, 5, "a vector under the registry in force")


@pytest.mark.timeout(60)
def test_a_registry_reloaded_through_the_api_survives_a_restart_until_the_configured_file_changes(
        tmp_path: Path) -> None:
    registry_file = tmp_path / "registry.yaml"
    registry_file.write_text(default_registry_text())
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=200)
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS, registry=str(registry_file))
    port = h.load(shard_cfg)["api"]["port"]
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    try:
        configured = _hash_in_force(port, 0)
        status, body = h.post_registry(port, default_registry_text() + "  - {name: vol_5s_e2e, function: volume, window: 5s}\n")
        assert status == 200 and body["registry_hash"] != configured, body
        assert _hash_in_force(port, body["effective_ns"]) == body["registry_hash"]
        shard.kill9()
        shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
        assert _hash_in_force(port, time.time_ns()) == body["registry_hash"], "a crash reverted the reload"
        assert shard.stop() == 0
        shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
        assert _hash_in_force(port, time.time_ns()) == body["registry_hash"], "a clean restart reverted the reload"

        # The operator edits the configured file: the next restart takes it.
        registry_file.write_text(default_registry_text().replace("  - {name: time_of_day, function: time_of_day}\n", ""))
        assert shard.stop() == 0
        shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
        edited = _hash_in_force(port, time.time_ns())
        assert edited not in (configured, body["registry_hash"])
        _, schema = h.get_json(port, "/features/schema")
        assert "time_of_day" not in schema["names"]
    finally:
        sim.stop()
        code = shard.stop()
    assert code == 0, shard.text()[-3000:]
