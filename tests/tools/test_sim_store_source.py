"""Simulator ``source: store``: stored history played over a real XPUB into a real SUB, decoded back to the records."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import zmq

from engine.record import Kind, Record
from gateway_bridge.config import TopicsConfig
from gateway_bridge.decoder import Decoder
from gateway_bridge.importer import import_records
from tests.conftest import SOL_DOGE_FRAMES
from tests.tools.sim_client import subscribe_all
from tests.tools.test_store_export import check_equal, market, numbered, write_store
from tools.sim.gateway.config import SimConfig, StoreSourceConfig, load_sim_config
from tools.sim.gateway.server import GatewaySim, SimError
from tools.typedconfig import ConfigError

TOPICS = TopicsConfig()
#: Frame families the playback routes to gateway topics (recording playback's `route`).
ROUTED = {Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA, Kind.TRADES, Kind.TICKER, Kind.KLINE}


@pytest.fixture(scope="module")
def stored(shared_bybit: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """A shard config whose store holds the shared SOL/DOGE recording, and the records stored."""
    d = tmp_path_factory.mktemp("simstore")
    recs = numbered(list(import_records("frames", [str(shared_bybit / SOL_DOGE_FRAMES)])))
    write_store(d / "data" / "store", recs)
    cfg = d / "shard.yaml"
    cfg.write_text(f"data_dir: {d / 'data'}\nshard: {{symbols: [SOLUSDT, DOGEUSDT]}}\n")
    return cfg, recs


def sim_cfg(tmp_path: Path, **store: object) -> SimConfig:
    return SimConfig(endpoint=f"ipc://{tmp_path}/pub", control_endpoint="", source="store",
                     store=StoreSourceConfig(**store), linger_ms=2000)  # type: ignore[arg-type]


def receive(cfg: SimConfig, n: int) -> tuple[list[tuple[bytes, bytes]], GatewaySim]:
    """Start the simulator, read `n` messages on a SUB of every topic, then wait for the simulator to finish."""
    sim = GatewaySim(cfg).start()
    ctx = zmq.Context()
    sub = subscribe_all(ctx, cfg.endpoint)
    try:
        got = [tuple(sub.recv_multipart()) for _ in range(n)]
        sim.join(20)
        sub.setsockopt(zmq.RCVTIMEO, 300)
        with pytest.raises(zmq.Again):  # nothing more than the store holds
            sub.recv_multipart()
    finally:
        sub.close()
        ctx.term()
        sim.stop()
    return got, sim  # type: ignore[return-value]


def decoded(msgs: list[tuple[bytes, bytes]], recv_ns: list[int]) -> list[Record]:
    """The records the shard's decoder makes of the messages (gateway topic checked), at the stored receive times."""
    d = Decoder(["SOLUSDT", "DOGEUSDT"], TOPICS)
    out = []
    for (topic, payload), ns in zip(msgs, recv_ns, strict=True):
        recs = d.decode(topic.decode(), payload, ns)
        assert len(recs) == 1 and recs[0].kind != Kind.BAD_FRAME, (topic, payload[:200])
        out.append(recs[0])
    return out


@pytest.mark.timeout(60)
def test_the_whole_store_plays_in_order_on_the_right_topics(stored: tuple[Path, list[Record]],
                                                             tmp_path: Path) -> None:
    shard_cfg, recs = stored
    want = [r for r in market(recs) if r.kind in ROUTED]
    cfg = sim_cfg(tmp_path, config=str(shard_cfg), speed=0.0)
    msgs, sim = receive(cfg, len(want))
    assert sim.status == "done"
    check_equal(decoded(msgs, [r.recv_ns for r in want]), want)
    topics = Counter(t.decode() for t, _ in msgs)
    kinds = Counter(Kind(r.kind) for r in want)
    assert topics == {TOPICS.orderbook_snapshot: kinds[Kind.BOOK_SNAPSHOT], TOPICS.orderbook_delta:
                      kinds[Kind.BOOK_DELTA], TOPICS.trades: kinds[Kind.TRADES], TOPICS.ticker: kinds[Kind.TICKER],
                      TOPICS.kline_1m: kinds[Kind.KLINE]}


@pytest.mark.timeout(60)
def test_range_symbols_loops_and_speed(stored: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """`dir:` instead of a shard config; a 2 s window of SOLUSDT at ×4, twice: ~0.5 s per pass."""
    shard_cfg, recs = stored
    mk = [r for r in market(recs) if r.kind in ROUTED]
    lo = mk[200].recv_ns
    hi = lo + 2_000_000_000
    want = [r for r in mk if lo <= r.recv_ns < hi and r.symbol == "SOLUSDT"]  # naive filter
    assert len(want) > 20
    cfg = sim_cfg(tmp_path, dir=str(shard_cfg.parent / "data" / "store"), from_time=lo, to_time=str(hi),
                  symbols=("SOLUSDT",), speed=4.0, loops=2)
    t0 = time.monotonic()
    msgs, sim = receive(cfg, 2 * len(want))
    elapsed = time.monotonic() - t0
    span = (want[-1].recv_ns - want[0].recv_ns) / 1e9 / 4.0
    assert sim.status == "done" and elapsed >= 2 * span * 0.9, (elapsed, span)
    times = [r.recv_ns for r in want] * 2
    check_equal(decoded(msgs, times), want + want)


def test_config_mistakes_name_the_key(tmp_path: Path) -> None:
    p = tmp_path / "sim.yaml"
    for text, key in [
        ("source: store\n", "store.config: source 'store' needs store.config"),
        ("source: store\nstore: {config: a.yaml, dir: b}\n", "store.config: give store.config or store.dir"),
        ("source: store\nstore: {archive_dir: b}\n", "store.archive_dir: needs store.dir"),
        ("source: store\nstore: {dir: d, from_time: 2026-08-10T00:00:00Z, to_time: 2026-08-09}\n",
         "store.from_time"),
        ("source: store\nstore: {dir: d, to_time: soon}\n", "store.to_time: 'soon' is not a time"),
        ("source: store\nstore: {dir: d, speed: -1}\n", "store.speed"),
        ("source: store\nstore: {dir: d, symbols: [sol]}\n", "store.symbols[0]"),
    ]:
        p.write_text(text)
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            load_sim_config(str(p))
    p.write_text("source: store\nstore: {dir: d, from_time: 2026-08-09T21:27:00Z, to_time: 1786310880}\n")
    cfg = load_sim_config(str(p))  # an unquoted YAML time and an epoch number
    assert cfg.store.range_ns() == (1_786_310_820 * 10**9, 1_786_310_880 * 10**9)


def test_an_unusable_store_fails_at_start(stored: tuple[Path, list[Record]], tmp_path: Path) -> None:
    shard_cfg, _ = stored
    for store, text in [
        ({"dir": str(tmp_path / "none")}, "is not a directory"),
        ({"config": str(shard_cfg), "symbols": ("BTCUSDT",)}, "store.symbols: BTCUSDT not in the store"),
        ({"config": str(tmp_path / "missing.yaml")}, "store.config:"),
    ]:
        with pytest.raises(SimError, match=text):
            GatewaySim(sim_cfg(tmp_path, **store)).start()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimError, match="holds no compacted records"):
        GatewaySim(sim_cfg(tmp_path, dir=str(tmp_path / "empty"))).start()


@pytest.mark.timeout(60)
def test_the_simulator_process_plays_the_store(stored: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """`feature-service gateway-sim` as a subprocess with ``source: store``; an empty store is exit 1, one line."""
    shard_cfg, recs = stored
    want = [r for r in market(recs) if r.kind in ROUTED]
    p = tmp_path / "sim.yaml"
    p.write_text(f"endpoint: ipc://{tmp_path}/pub\ncontrol_endpoint: ''\nsource: store\n"
                 f"store: {{config: {shard_cfg}, speed: 0}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "gateway-sim", "--config", str(p)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctx = zmq.Context()
    sub = subscribe_all(ctx, f"ipc://{tmp_path}/pub")
    try:
        msgs = [tuple(sub.recv_multipart()) for _ in range(len(want))]
        assert proc.wait(30) == 0
    finally:
        sub.close()
        ctx.term()
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    check_equal(decoded(msgs, [r.recv_ns for r in want]), want)  # type: ignore[arg-type]
    (tmp_path / "empty").mkdir()
    p.write_text(f"endpoint: ipc://{tmp_path}/pub2\ncontrol_endpoint: ''\nsource: store\n"
                 f"store: {{dir: {tmp_path / 'empty'}}}\n")
    done = subprocess.run([sys.executable, "-m", "tools.cli", "gateway-sim", "--config", str(p)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0 and "holds no compacted records" in done.stderr


@pytest.mark.timeout(120)
def test_stored_history_plays_into_a_live_shard(stored: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """Simulator (source: store, ×20) -> a real shard subprocess: it journals the stored market records."""
    import yaml

    from journal.reader import JournalReader
    from tests.e2e.harness import Proc, shard_config, start_shard, wait_for

    store_cfg, recs = stored
    want = [r for r in market(recs) if r.kind in ROUTED]
    sim_yaml = tmp_path / "sim.yaml"
    sim_yaml.write_text(yaml.safe_dump({
        "endpoint": f"ipc://{tmp_path}/gw", "control_endpoint": f"ipc://{tmp_path}/ctl", "source": "store",
        "store": {"config": str(store_cfg), "speed": 20.0}, "log_interval_s": 1.0}))
    shard_yaml = shard_config(tmp_path, sim_yaml, ["SOLUSDT", "DOGEUSDT"])
    shard = start_shard(shard_yaml, tmp_path / "shard.log")
    sim = Proc("gateway-sim", sim_yaml, tmp_path / "sim.log")  # holds the stream until the shard subscribed
    journal = yaml.safe_load(shard_yaml.read_text())["data_dir"] + "/journal"
    try:
        wait_for(lambda: sim.p.poll() is not None, 60, "the simulator to play the whole store")
        assert sim.p.returncode == 0, sim.text()

        def journaled() -> list[Record]:
            return [r for r in JournalReader(journal).records() if r.kind in ROUTED]

        wait_for(lambda: len(journaled()) >= len(want), 30, "the shard to journal every stored frame")
    finally:
        assert shard.stop() == 0, shard.text()[-2000:]
        sim.stop()
    got = journaled()
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):  # the shard stamps its own receive times
        assert (g.kind, g.symbol, g.ts, g.cts) == (w.kind, w.symbol, w.ts, w.cts)
    check_equal([g._replace(recv_ns=0) for g in got], [w._replace(recv_ns=0) for w in want])
