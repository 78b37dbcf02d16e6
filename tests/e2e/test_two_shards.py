"""End to end: two shards with disjoint symbols fed by one gateway; one SUB socket gets them all."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest

from engine.record import MARKET_KINDS, Kind
from tests.e2e import harness as h

SHARD_SYMBOLS = {"majors": ["BTCUSDT", "ETHUSDT"], "alts": ["SOLUSDT", "DOGEUSDT"]}
ALL = [s for syms in SHARD_SYMBOLS.values() for s in syms]


def _all_valid(health: dict) -> dict | None:
    """The health body when every book in it is valid (a gap's resync takes a moment)."""
    return health if all(b["valid"] for b in health["books"].values()) else None


@pytest.fixture(scope="module")
def two_shards(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One simulator (4 symbols), two shards of 2 symbols each, one SUB recorder on both; run 6 s."""
    tmp_path = tmp_path_factory.mktemp("two_shards")
    sim_cfg = h.sim_config(tmp_path, ALL, rate_hz=300, faults={"drop_delta": {"every": 100}})
    cfgs = {name: h.shard_config(tmp_path, sim_cfg, syms, name=name) for name, syms in SHARD_SYMBOLS.items()}
    rec = h.Recorder(tmp_path, [h.load(c)["publish"]["endpoint"] for c in cfgs.values()])
    shards = {name: h.start_shard(c, tmp_path / f"{name}.log") for name, c in cfgs.items()}
    sim = h.start_sim(sim_cfg, tmp_path / "sim.log")
    try:
        time.sleep(6)
        assert sim.alive() and all(s.alive() for s in shards.values())
        health = {name: h.wait_for(lambda c=c: _all_valid(h.get_json(h.load(c)["api"]["port"], "/health")[1]), 3,
                                   f"every book of {name} valid") for name, c in cfgs.items()}
    finally:
        sim.stop()
        codes = {name: s.stop() for name, s in shards.items()}
        rec.stop()
    assert codes == {name: 0 for name in SHARD_SYMBOLS}, {n: s.text()[-2000:] for n, s in shards.items()}

    return {"cfgs": cfgs, "health": health, "vectors": rec.vectors(),
            "journals": {n: h.journal_records(Path(h.load(c)["data_dir"]) / "journal") for n, c in cfgs.items()}}


@pytest.mark.timeout(90)
def test_two_shards_split_one_gateway_by_symbol_and_one_sub_socket_gets_every_symbol(two_shards: dict) -> None:
    for name, recs in two_shards["journals"].items():
        own = set(SHARD_SYMBOLS[name])
        books = two_shards["health"][name]["books"]
        assert set(books) == own and all(b["valid"] for b in books.values()), books
        h.check_journal(recs)
        market = Counter(r.symbol for r in recs if r.kind in MARKET_KINDS)
        assert set(market) == own, (name, market)
        assert {r.symbol for r in recs if r.kind == Kind.RESYNC_REQUEST} <= own
        assert any(r.kind == Kind.RESYNC_REQUEST and r.payload["reason"] == "gap" for r in recs), name
        assert not h.unanswered_resyncs(recs)

    # One SUB socket connected to both endpoints: every symbol, once per tick, from its own shard.
    vectors = two_shards["vectors"]
    seen = Counter((v.ts_ns, v.symbol) for v in vectors)
    assert {v.symbol for v in vectors} == set(ALL)
    assert max(seen.values()) == 1
    first = max(min(ts for ts, s in seen if s == sym) for sym in ALL)  # the shards start a moment apart
    last = min(max(ts for ts, s in seen if s == sym) for sym in ALL)
    assert last - first >= 3 * h.NS, (first, last)
    for ts in range(first, last + 1, h.NS):
        assert {s for t, s in seen if t == ts} == set(ALL), ts


@pytest.mark.timeout(90)
def test_two_shards_do_not_journal_each_others_frames_as_bad_frames(two_shards: dict) -> None:
    for name, recs in two_shards["journals"].items():
        bad = [r for r in recs if r.kind in (Kind.BAD_FRAME, Kind.BAD_FRAME_SUMMARY)]
        assert not bad, f"{name} journaled {len(bad)} bad frames: {Counter(r.payload.get('reason') for r in bad)}"
