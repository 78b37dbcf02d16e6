"""End to end: broken books come back. Gap → invalid → journaled resync request → snapshot → valid,
over the ZMQ control endpoint and over the simulator's Bybit-shaped HTTP endpoint (with a stalled
endpoint: time-outs, back-off, no flood, recovery), and a gateway kill -9 (down after silence_ms,
books invalid, up again, every book resynced). The shard never exits because the gateway misbehaves.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from engine.record import MARKET_KINDS, Kind
from tests.e2e import harness as h
from tools.offline.replay import ReplaySummary, replay

SYMBOLS = ["SOLUSDT", "DOGEUSDT"]


def _invalid_runs(vectors: list, symbol: str) -> list[tuple[int, int | None]]:
    """(first, end) tick times of each stretch of book_valid 0 after the symbol's first valid vector."""
    runs, start, seen_valid = [], None, False
    for v in (v for v in vectors if v.symbol == symbol):
        if v.book_valid and start is not None:
            runs.append((start, v.ts_ns))
            start = None
        elif not v.book_valid and seen_valid and start is None:
            start = v.ts_ns
        seen_valid = seen_valid or bool(v.book_valid)
    return [*runs, (start, None)] if start is not None else runs


def _gap_episodes(steps: list) -> list[tuple[int, int | None, int | None, str]]:
    """For every gap notice: (gap seq, the request asking for that book, the snapshot that made it valid).

    The request is the newest RESYNC_REQUEST of the book journaled before the fixing snapshot: one
    journaled after the gap, or, when the gap came while the book's request was still in flight
    (its snapshot already applied, the reply not yet in), the one whose policy owes a retry; the
    retry itself journals nothing new (`Resyncer.request` is False), by design.
    """
    out = []
    for i, (rec, notices, _valid) in enumerate(steps):
        for n in notices:
            if n.event != "gap":
                continue
            assert n.resync and steps[i][2] is False, f"a gap at seq {rec.seq} left the book valid"
            topic = f"orderbook.{n.depth}.{n.symbol}"
            fixed = next((r.seq for r, _, valid in steps[i:] if r.kind == Kind.BOOK_SNAPSHOT
                          and r.symbol == n.symbol and valid), None)
            req = max((r.seq for r, _, _ in steps if r.kind == Kind.RESYNC_REQUEST and r.payload["topic"] == topic
                       and r.seq < (fixed or 1 << 62)), default=None)
            out.append((rec.seq, req, fixed, topic))
    return out


@pytest.mark.timeout(90)
def test_gap_invalid_resync_over_zmq_valid_with_logs_and_metrics(tmp_path: Path) -> None:
    faults = {"drop_delta": {"every": 250}, "restart": {"every": 900}, "pause": {"every": 1600, "ms": 2500},
              "duplicate": {"every": 500}, "reorder": {"every": 1100}, "corrupt": {"every": 600}}
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=300, faults=faults)
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS)
    port = h.load(shard_cfg)["api"]["port"]
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    try:
        time.sleep(10)
        assert shard.alive() and sim.alive()
        status, metrics = h.get(port, "/metrics")
    finally:
        sim.stop()
        code = shard.stop()
    assert code == 0, shard.text()[-3000:]
    assert status == 200
    text = metrics.decode()
    assert h.metric(text, "fs_book_gaps_total") > 0, text
    assert h.metric(text, "fs_resync_duration_seconds_count") > 0, text

    # The log: book_gap, then resync_requested, then resync_completed with its duration, per book.
    events = shard.events()
    names = [e["event"] for e in events]
    for topic in {e["topic"] for e in events if e["event"] == "book_gap"}:
        mine = [e for e in events if e.get("topic") == topic]
        order = [e["event"] for e in mine]
        g = order.index("book_gap")
        r = order.index("resync_requested", g)
        c = order.index("resync_completed", r)
        assert mine[c]["via"] == "zmq" and 0 <= mine[c]["duration_s"] < 5, mine[c]
    assert {"book_gap", "resync_requested", "resync_completed", "gateway_down", "gateway_up"} <= set(names)

    # The journal: each gap invalidates the book, a request is journaled, a snapshot makes it valid.
    journal = Path(h.load(shard_cfg)["data_dir"]) / "journal"
    recs = h.journal_records(journal)
    h.check_journal(recs)
    episodes = _gap_episodes(h.fold_steps(journal))
    assert len(episodes) >= 2, episodes
    last = recs[-1].seq
    for gap, req, fixed, topic in episodes:
        assert req is not None or gap > last - 50, (gap, topic)
        assert fixed is not None or gap > last - 50, (gap, req, fixed, topic)
    assert sum(req is not None and fixed is not None and gap < req < fixed for gap, req, fixed, _ in episodes) >= 2
    reasons = {r.payload["reason"] for r in recs if r.kind == Kind.RESYNC_REQUEST}
    assert {"gap", "gateway_down"} <= reasons, reasons
    kinds = Counter(r.kind for r in recs)
    assert kinds[Kind.BAD_FRAME] >= 1 and kinds[Kind.GATEWAY_DOWN] >= 1 and kinds[Kind.GATEWAY_UP] >= 1, kinds
    assert not h.unanswered_resyncs(recs)

    # Replayed: books broke (gaps, exchange resets, silences) and every stretch invalid ended promptly.
    summary = ReplaySummary()
    vectors = list(replay(str(journal), summary=summary))
    assert summary.notices.get("gap", 0) >= 1 and summary.notices.get("reset", 0) >= 1, summary.notices
    assert summary.notices.get("gateway_down", 0) >= 2 * len(SYMBOLS), summary.notices  # down, then up
    last_tick = vectors[-1].ts_ns
    assert any(_invalid_runs(vectors, s) for s in SYMBOLS), "no tick ever saw a broken book"
    for sym in SYMBOLS:
        for first, end in _invalid_runs(vectors, sym):
            assert end is not None or first >= last_tick - h.NS, (sym, first, end)
            assert end is None or end - first <= 5 * h.NS, (sym, first, end)  # 2.5 s pause + 1 s + a round trip


def _deltas_on_top(before: list, after: list, snap) -> int:  # noqa: ANN001 - a Record
    """Check the stream's deltas continue from a REST snapshot; return how many applied on top of it.

    The answer can be older than deltas already journaled (held while the book was invalid; the
    engine catches up on them), so the stream continues from the newer of the snapshot's ``u`` and
    the last journaled delta's. Up to 10 contiguous deltas must apply with no notice and the book
    valid; a ``u`` jump (a delta the simulator dropped) must show as a gap, never apply silently.
    """
    deltas = [r.payload["u"] for r, _, _ in before if r.symbol == snap.symbol and r.kind == Kind.BOOK_DELTA]
    u = max([snap.payload["u"], *deltas[-1:]])
    applied = 0
    for r, notices, valid in after:
        if r.symbol != snap.symbol or r.kind != Kind.BOOK_DELTA or r.payload["u"] <= u:
            continue  # other records, and deltas the book already holds
        if r.payload["u"] != u + 1:
            assert any(n.event == "gap" for n in notices), f"delta seq {r.seq} skipped u {u + 1} without a gap"
            break
        assert valid and not notices, f"delta seq {r.seq} (u {u + 1}) after REST snapshot {snap.seq}: {notices}"
        u, applied = u + 1, applied + 1
        if applied == 10:
            break
    return applied


@pytest.mark.timeout(90)
def test_resync_over_http_journals_rest_snapshots_and_survives_a_stalled_endpoint(tmp_path: Path) -> None:
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=300, faults={"drop_delta": {"every": 200}}, http=True)
    sim_doc = h.load(sim_cfg)
    url = f"http://{sim_doc['http_endpoint']}"
    resync = {"via": "http", "http_url": url, "timeout_ms": 500, "backoff": {"initial_ms": 100, "max_ms": 1000}}
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS, gateway={"resync": resync})
    shard_doc = h.load(shard_cfg)
    port, ctl = shard_doc["api"]["port"], sim_doc["control_endpoint"]
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    stall_s = 4.0
    try:
        time.sleep(5)
        assert h.control(ctl, "http_stall -1") == "ok"
        stall_from, n0 = time.time_ns(), h.sim_stats(ctl).get("http_requests", 0)
        time.sleep(stall_s)
        n1 = h.sim_stats(ctl).get("http_requests", 0)
        assert h.control(ctl, "http_stall 0") == "ok"
        stall_to = time.time_ns()
        h.wait_for(lambda: all(b["valid"] for b in h.get_json(port, "/health")[1]["books"].values()), 6,
                   "every book valid after the stall ended")
        time.sleep(2)
        assert shard.alive() and sim.alive()
    finally:
        sim.stop()
        code = shard.stop()
    assert code == 0, shard.text()[-3000:]

    # During the stall: requests time out and are retried with back-off, never a flood.
    asked = n1 - n0
    print(f"HTTP snapshot requests during a {stall_s:g} s stall: {asked} for {len(SYMBOLS)} books")
    assert 1 <= asked <= len(SYMBOLS) * (stall_s / 0.5 + 1), asked
    events = shard.events()
    stalled = [e for e in events if stall_from <= h.log_ns(e) <= stall_to]
    assert any(e["event"] == "resync_timeout" for e in stalled), Counter(e["event"] for e in stalled)
    for sym in SYMBOLS:
        sent = [h.log_ns(e) for e in stalled if e["event"] == "resync_sent" and e["symbol"] == sym]
        gaps = [b - a for a, b in zip(sent, sent[1:], strict=False)]
        assert all(g >= 0.45 * h.NS for g in gaps), gaps  # one in flight per book, 0.5 s timeout
        if len(gaps) >= 3:
            assert gaps[-1] > gaps[0], f"no back-off between retries of {sym}: {gaps}"
    after = [e for e in events if h.log_ns(e) > stall_to and e["event"] == "resync_completed"]
    assert after and all(e["via"] == "http" for e in after), "no book recovered after the stall"

    # The journal: REST answers are snapshots with src rest; each makes its book valid and later deltas apply.
    journal = Path(shard_doc["data_dir"]) / "journal"
    recs = h.journal_records(journal)
    h.check_journal(recs)
    steps = h.fold_steps(journal)
    rest = [i for i, (r, _, _) in enumerate(steps) if r.kind == Kind.BOOK_SNAPSHOT and r.payload.get("src") == "rest"]
    assert len(rest) >= 2, Counter(r.kind for r in recs)
    assert all(r.payload["via"] == "http" for r in recs if r.kind == Kind.RESYNC_REQUEST)
    applied: list[int] = []
    for i in rest:
        rec, _, valid = steps[i]
        assert valid, f"REST snapshot seq {rec.seq} left {rec.symbol} invalid"
        applied.append(_deltas_on_top(steps[:i], steps[i + 1:], rec))
    # Every snapshot but one whose next delta the simulator dropped (1 in 200) has deltas applied on top.
    assert sum(n == 0 for n in applied[:-1]) <= 1, applied
    assert not h.unanswered_resyncs(recs)


@pytest.mark.timeout(90)
def test_gateway_kill9_goes_down_after_silence_and_every_book_resyncs_when_it_is_back(tmp_path: Path) -> None:
    sim_cfg = h.sim_config(tmp_path, SYMBOLS, rate_hz=200)
    shard_cfg = h.shard_config(tmp_path, sim_cfg, SYMBOLS)
    cfg = h.load(shard_cfg)
    rec = h.Recorder(tmp_path, [cfg["publish"]["endpoint"]])
    shard = h.start_shard(shard_cfg, tmp_path / "shard.log")
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    try:
        time.sleep(3)
        killed = time.time_ns()
        sim.kill9()
        time.sleep(3.5)
        assert shard.alive(), shard.text()[-3000:]
        back = time.time_ns()
        sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
        h.wait_for(lambda: all(b["valid"] for b in h.get_json(cfg["api"]["port"], "/health")[1]["books"].values()),
                   5, "every book valid after the gateway came back")
        valid_after_s = (time.time_ns() - back) / h.NS
        time.sleep(2)
        assert shard.alive()
    finally:
        sim.stop()
        code = shard.stop()
        rec.stop()
    assert code == 0, shard.text()[-3000:]
    print(f"gateway back to every book valid: {valid_after_s:.2f} s")

    recs = h.journal_records(Path(cfg["data_dir"]) / "journal")
    h.check_journal(recs)
    downs = [r for r in recs if r.kind == Kind.GATEWAY_DOWN and r.recv_ns > killed]
    assert len(downs) == 1, downs
    down = downs[0]
    assert killed + 0.9 * h.NS <= down.recv_ns <= killed + 2 * h.NS, (down.recv_ns - killed) / h.NS
    assert down.payload["silent_ms"] >= 1000
    ups = [r for r in recs if r.kind == Kind.GATEWAY_UP and r.seq > down.seq]
    assert ups and ups[0].recv_ns >= back
    asked = {r.symbol for r in recs if r.kind == Kind.RESYNC_REQUEST and r.seq > down.seq}
    assert asked == set(SYMBOLS), asked
    assert not any(r.kind in MARKET_KINDS and down.seq < r.seq < ups[0].seq for r in recs)

    # Vectors: every second ticked through the silence, book_valid 0 from the down until the gateway
    # was back, valid again within a few seconds.
    vectors = rec.vectors()
    by_ts = {(v.ts_ns, v.symbol): v for v in vectors}
    first, last = min(v.ts_ns for v in vectors), max(v.ts_ns for v in vectors)
    for ts in range(first, last + 1, h.NS):
        for sym in SYMBOLS:
            assert (ts, sym) in by_ts, f"no vector for {sym} at {ts}: the shard must tick through a silence"
    for (ts, sym), v in by_ts.items():
        if down.recv_ns < ts <= back:
            assert not v.book_valid, f"{sym} valid at {ts} while the gateway was down"
        if ts >= back + 3 * h.NS:
            assert v.book_valid, f"{sym} still invalid {(ts - back) / h.NS:.0f} s after the gateway came back"
