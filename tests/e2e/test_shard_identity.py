"""End to end, the central check: what a subscriber got online is what replay computes offline.

Simulator (3 symbols, 50-level books, gaps, duplicates, reorders, corrupt frames) → shard → a SUB
client in another process and an HTTP poller. During the run the simulator is killed -9 and
restarted, the registry is reloaded through the API (one feature added: the hash changes mid-run),
and the shard is killed -9 and restarted from checkpoint + journal. Afterwards `feature-service
replay` over the shard's journal must give, bit for bit, every vector the subscriber received, every
row the feature log holds and every `/features/latest` body.
"""

from __future__ import annotations

import math
import struct
import time
from collections import Counter
from pathlib import Path

import pytest

from engine.record import Kind
from journal.feature_log import read_feature_log
from tests.e2e import harness as h
from tools.registry_file import default_registry_text

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT"]
FAULTS = {"drop_delta": {"every": 300}, "duplicate": {"every": 250}, "reorder": {"every": 400},
          "corrupt": {"every": 350}}
NEW_FEATURE = "  - {name: vol_5s_e2e, function: volume, window: 5s}\n"


def _run(tmp: Path) -> dict:
    """The scripted run; returns what the checks need (wall-clock marks, clients' data, paths)."""
    sim_cfg = h.sim_config(tmp, SYMBOLS, rate_hz=300, faults=FAULTS)
    shard_cfg = h.shard_config(tmp, sim_cfg, SYMBOLS)
    cfg = h.load(shard_cfg)
    port, marks = cfg["api"]["port"], {}
    rec = h.Recorder(tmp, [cfg["publish"]["endpoint"]])
    shard = h.start_shard(shard_cfg, tmp / "shard.log")
    sim = h.start_sim(sim_cfg, tmp / "sim.log")
    poller = h.Poller(port, SYMBOLS)
    try:
        time.sleep(5)
        sim.kill9()  # gateway crash: silence_ms 1 s → gateway_down, books invalid
        time.sleep(2.5)
        sim = h.start_sim(sim_cfg, tmp / "sim.log")
        time.sleep(3)
        status, body = h.post_registry(port, default_registry_text() + NEW_FEATURE)
        assert status == 200, body
        marks["reload"] = body
        time.sleep(3)
        marks["kill_ns"] = time.time_ns()
        shard.kill9()
        n_before = len(rec.messages())
        marks["restart_ns"] = time.time_ns()
        t0 = time.monotonic()
        shard = h.start_shard(shard_cfg, tmp / "shard.log")
        h.wait_for(lambda: len(rec.messages()) > n_before, 10, "a vector from the restarted shard", every=0.01)
        marks["restart_to_publish_s"] = time.monotonic() - t0
        time.sleep(4)
        assert sim.alive() and shard.alive()
    finally:
        marks["bodies"] = poller.stop()
        shard_code = shard.stop()
        sim.stop()
        time.sleep(0.3)
        rec.stop()
    assert shard_code == 0, shard.text()[-3000:]
    marks["vectors"] = rec.vectors()
    marks["journal"] = Path(cfg["data_dir"]) / "journal"
    marks["feature_log"] = Path(cfg["data_dir"]) / "feature_log"
    return marks



@pytest.mark.timeout(120)
def test_live_vectors_equal_replay_bit_for_bit_through_crashes_and_a_reload(tmp_path: Path) -> None:
    run = _run(tmp_path)
    print(f"shard restart (kill -9) to first published vector: {run['restart_to_publish_s']:.3f} s")
    rows = h.replay_cli(run["journal"], tmp_path / "replay")
    vectors = run["vectors"]
    assert len(vectors) > 12 * len(SYMBOLS)

    # 1. Every received vector is the replay row for its (registry hash, ts, symbol), bit for bit.
    missing = [h.vector_key(v) for v in vectors if h.vector_key(v) not in rows]
    assert not missing, f"{len(missing)} published vectors not in the replay, e.g. {missing[:3]}"
    differ = [h.vector_key(v) for v in vectors if rows[h.vector_key(v)] != h.vector_value(v)]
    assert not differ, f"{len(differ)} published vectors differ from the replay, e.g. {differ[:3]}"
    received = Counter((v.ts_ns, v.symbol) for v in vectors)
    assert max(received.values()) == 1, "a (ts, symbol) published twice"
    assert any(not v.book_valid for v in vectors), "the gateway crash never showed as book_valid 0"
    assert any(math.isnan(x) for v in vectors for x in v.values), "no NaN ever compared"

    # 2. The reload: the new hash from the effective tick on, through the shard's crash and restart
    # (a restart keeps a registry reloaded through the API), the old one before it.
    new_hash, effective = run["reload"]["registry_hash"], run["reload"]["effective_ns"]
    hashes = {v.registry_hash for v in vectors}
    assert len(hashes) == 2 and new_hash in hashes
    off = [(v.ts_ns - effective, v.symbol, v.registry_hash[:8]) for v in vectors
           if (v.registry_hash == new_hash) != (v.ts_ns >= effective)]
    assert any(v.ts_ns > run["restart_ns"] for v in vectors)
    assert not off, f"vectors on the wrong side of the reload (effective {effective}): {off[:6]}"
    assert len({len(v.values) for v in vectors}) == 2, "the added feature changed no vector length"

    # 3. A vector per symbol per second while the shard was up (but around its own restart).
    first, last = min(v.ts_ns for v in vectors), max(v.ts_ns for v in vectors)
    kill_s, back_s = run["kill_ns"] // h.NS * h.NS, (run["restart_ns"] // h.NS + 3) * h.NS
    for ts in range(first, last + 1, h.NS):
        if kill_s <= ts <= back_s:
            continue
        for sym in SYMBOLS:
            assert (ts, sym) in received, f"no vector for {sym} at {ts} (shard was up)"

    # 4. The journal: gap-free across both crashes, a tick every second, every broken book resynced.
    recs = h.journal_records(run["journal"])
    h.check_journal(recs)
    kinds = Counter(r.kind for r in recs)
    assert kinds[Kind.BAD_FRAME] >= 1 and kinds[Kind.REGISTRY_CHANGED] == 1 and kinds[Kind.SESSION] == 2, kinds
    reasons = Counter(r.payload["reason"] for r in recs if r.kind == Kind.GATEWAY_DOWN)
    assert reasons["shard_restart"] == 1 and sum(reasons.values()) >= 2, reasons
    assert {r.payload["reason"] for r in recs if r.kind == Kind.RESYNC_REQUEST} >= {"gap", "gateway_down"}
    assert not h.unanswered_resyncs(recs)

    # 5. The feature log equals the replay for every row it holds, and holds all but the crash's tail.
    logged = {}
    for hsh in hashes:
        logged.update(h.table_rows(read_feature_log(run["feature_log"], hsh), hsh))
    wrong = [k for k, v in logged.items() if rows.get(k) != v]
    assert not wrong, f"{len(wrong)} feature-log rows differ from the replay, e.g. {wrong[:3]}"
    lost = [h.vector_key(v) for v in vectors if h.vector_key(v) not in logged
            and not run["kill_ns"] - 2 * h.NS <= v.ts_ns <= run["kill_ns"]]
    assert not lost, f"{len(lost)} published vectors missing from the feature log, e.g. {lost[:3]}"

    # 6. /features/latest bodies equal the replay row of their ts (NaN and ±inf as null).
    names = _names(tmp_path / "replay")
    bodies = run["bodies"]
    assert len(bodies) > 20
    for b in bodies:
        key = (b["registry_hash"], b["ts_ns"], b["symbol"])
        assert key in rows, key
        valid, raw = rows[key]
        want = [x if math.isfinite(x) else None for x in struct.unpack(f"<{len(raw) // 8}d", raw)]
        got = [b["features"][n] for n in names[b["registry_hash"]]]
        assert list(b["features"]) == names[b["registry_hash"]] and b["book_valid"] == valid
        assert [None if x is None else struct.pack("<d", x) for x in got] == \
            [None if x is None else struct.pack("<d", x) for x in want], key


def _names(out: Path) -> dict[str, list[str]]:
    """Feature column names of each replay file, by registry hash (from the file's metadata)."""
    import pyarrow.parquet as pq

    from journal.feature_log import LEADING, META_HASH

    names = {}
    for path in out.glob("*.parquet"):
        sch = pq.read_schema(path)
        names[sch.metadata[META_HASH].decode()] = [n for n in sch.names if n not in LEADING]
    return names
