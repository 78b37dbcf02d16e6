"""End to end under faults: a misbehaving gateway, a shard that journals, resyncs and recovers.

The simulator drops, duplicates, reorders and corrupts frames, restarts an exchange book (u = 1)
and goes silent; the shard (engine wired in) must journal everything, ask for a snapshot after
every broken book, and end with every book valid again — and the replayed journal shows it.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from engine.record import MARKET_KINDS, NS_PER_S, Kind
from journal.reader import JournalReader
from tests.e2e.test_ingest import _spawn
from tools.offline.replay import ReplaySummary, replay
from tools.registry_file import default_registry

SYMBOLS = ["SOLUSDT", "DOGEUSDT"]
FAULTS = {"drop_delta": {"every": 700}, "duplicate": {"every": 500}, "reorder": {"every": 1100},
          "corrupt": {"every": 600}, "restart": {"every": 1300}, "pause": {"every": 2600, "ms": 3000}}
#: Seconds the faulty gateway runs (500 msgs/s); requests in the last second may go unanswered.
RUN_S = 14


def configs(tmp_path: Path) -> tuple[Path, Path]:
    endpoint, control = f"ipc://{tmp_path}/gw", f"ipc://{tmp_path}/ctl"
    sim = {"endpoint": endpoint, "control_endpoint": control, "source": "synthetic",
           "synthetic": {"symbols": SYMBOLS, "depth": 50, "seed": 3, "rate_hz": 500},
           "faults": FAULTS, "wait_for_subscriber": True, "wait_timeout_ms": 20_000}
    shard = {"shard": {"name": "faults", "symbols": SYMBOLS},
             "gateway": {"endpoint": endpoint, "control_endpoint": control, "poll_ms": 20, "silence_ms": 1000,
                         "reconnect": {"initial_ms": 50, "max_ms": 400}},
             "journal": {"dir": str(tmp_path / "journal"), "fsync": "interval_ms"}}
    (tmp_path / "sim.yaml").write_text(yaml.safe_dump(sim))
    (tmp_path / "shard.yaml").write_text(yaml.safe_dump(shard))
    return tmp_path / "sim.yaml", tmp_path / "shard.yaml"


def run_session(tmp_path: Path) -> None:
    """Shard and faulty simulator side by side for RUN_S seconds; the shard stops first."""
    sim_cfg, shard_cfg = configs(tmp_path)
    shard = _spawn(tmp_path, "shard", shard_cfg)
    sim = _spawn(tmp_path, "gateway-sim", sim_cfg)
    try:
        time.sleep(RUN_S)
        assert sim.poll() is None, (tmp_path / "gateway-sim.log").read_text()
    finally:
        shard.send_signal(signal.SIGINT)
        code = shard.wait(20)
        sim.send_signal(signal.SIGINT)
        sim.wait(20)
    assert code == 0, (tmp_path / "shard.log").read_text()


def runs_of_invalid(vectors: list, symbol: str) -> list[tuple[int, int | None]]:
    """(first, end) tick times of each stretch with book_valid 0 after the first valid vector."""
    runs, start, seen_valid = [], None, False
    for v in (v for v in vectors if v.symbol == symbol):
        if v.book_valid and start is not None:
            runs.append((start, v.ts_ns))
            start = None
        elif not v.book_valid and seen_valid and start is None:
            start = v.ts_ns
        seen_valid = seen_valid or bool(v.book_valid)
    return [*runs, (start, None)] if start is not None else runs


@pytest.mark.timeout(150)
def test_shard_journals_resyncs_and_recovers_under_gateway_faults(tmp_path: Path) -> None:
    run_session(tmp_path)
    journal = tmp_path / "journal"
    recs = list(JournalReader(journal).records())
    kinds = Counter(r.kind for r in recs)

    # Journal integrity: gap-free, ordered, a tick every second, faults visible as records.
    assert [r.seq for r in recs] == list(range(1, len(recs) + 1))
    ticks = [r.recv_ns for r in recs if r.kind == Kind.TICK]
    assert ticks == list(range(ticks[0], ticks[-1] + 1, NS_PER_S))
    assert kinds[Kind.BAD_FRAME] >= 3, kinds  # corrupt every 600 of ~5000
    assert kinds[Kind.GATEWAY_DOWN] >= 1 and kinds[Kind.GATEWAY_UP] >= 1, kinds
    assert sum(kinds[k] for k in MARKET_KINDS) > 3000, kinds

    # Every resync request (but those of the last second) is answered by a journaled snapshot.
    snapshots: dict[str, list[int]] = {}
    for r in recs:
        if r.kind == Kind.BOOK_SNAPSHOT:
            snapshots.setdefault(f"orderbook.{r.payload['depth']}.{r.symbol}", []).append(r.seq)
    requests = [r for r in recs if r.kind == Kind.RESYNC_REQUEST]
    assert {r.payload["reason"] for r in requests} >= {"gap", "gateway_down"}, requests
    settled = [r for r in requests if r.recv_ns < recs[-1].recv_ns - NS_PER_S]
    for req in settled:
        assert any(s > req.seq for s in snapshots.get(req.payload["topic"], [])), req

    # Replaying the journal: faults broke books, and every broken book became valid again.
    summary = ReplaySummary()
    vectors = list(replay(str(journal), default_registry(), SYMBOLS, summary=summary))
    assert summary.notices.get("gap", 0) >= 1 and summary.notices.get("reset", 0) >= 1, summary.notices
    assert summary.notices.get("gateway_down", 0) >= 2 * len(SYMBOLS), summary.notices  # down, then up
    last_tick = vectors[-1].ts_ns
    assert any(runs_of_invalid(vectors, sym) for sym in SYMBOLS), "no tick ever saw a broken book"
    for sym in SYMBOLS:
        for first, end in runs_of_invalid(vectors, sym):
            assert end is not None or first >= last_tick - NS_PER_S, (sym, first, end)
            # Recovery is prompt: a 3 s silence (down after 1 s) plus one resync round trip at most.
            assert end is None or end - first <= 5 * NS_PER_S, (sym, first, end)
