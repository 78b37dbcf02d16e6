"""`feature-service bench ingest`: simulator -> bridge -> journal throughput, stage costs and loss.

The same pre-generated synthetic Bybit messages (mostly book deltas, then trades, tickers, klines)
go through every measurement:

- end to end, per fsync policy: a forked simulator process blasts them over ipc:// (XPUB waits for
  the subscriber; SNDHWM/RCVHWM 0, so nothing can be dropped) into a `Bridge` writing a fresh
  journal through the shard's asyncio loop (`Bridge.next_batch` -> `JournalWriter.append`, no
  engine); msgs/s from the first receive to the last journal append, receive and decode + ticks
  costs from the bridge's own per-batch timers, append timed around each call, loss = sent -
  journaled market records (read back with JournalReader);
- stage by stage in process: decoder alone, journal frame encoding alone, journal append alone;
- a naive baseline: ``json.loads`` + ``pickle.dump`` appended to a file.

Figures are medians of `--repeats` runs (the bench machine is small and noisy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

POLICIES = ("always", "interval_ms", "never")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
START_MS = 1_786_310_819_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the ingest bench options."""
    p.add_argument("--messages", type=int, default=200_000, metavar="N", help="messages per run (default 200000)")
    p.add_argument("--policies", default=",".join(POLICIES), metavar="P,...", help="fsync policies to run")
    p.add_argument("--repeats", type=int, default=3, metavar="R", help="runs per measurement; medians reported")
    p.add_argument("--batch", type=int, default=1024, metavar="B", help="gateway.max_batch of the bridge")
    p.add_argument("--dir", default="", metavar="DIR", help="scratch directory (default: a temp dir)")


def run(args: argparse.Namespace) -> int:
    """Run every measurement and print a report."""
    from gateway_bridge.config import TopicsConfig
    from tools.sim.gateway.config import SyntheticConfig
    from tools.sim.gateway.synthetic import generate

    policies = [p for p in args.policies.split(",") if p]
    bad = set(policies) - set(POLICIES)
    if bad:
        raise SystemExit(f"bench ingest: unknown policies {sorted(bad)}; known: {', '.join(POLICIES)}")
    t0 = time.perf_counter()
    frames = generate(SyntheticConfig(symbols=SYMBOLS, depth=200, seed=11), TopicsConfig(), args.messages, START_MS)
    print(f"generated {len(frames)} messages in {time.perf_counter() - t0:.1f} s; "
          f"mean payload {sum(len(f.payload) for f in frames) / len(frames):.0f} B", flush=True)
    with tempfile.TemporaryDirectory(dir=args.dir or None) as scratch:
        root = Path(scratch)
        stages = _stages(frames, root, args.repeats)
        baseline = _median(args.repeats, lambda i: _baseline(frames, root / f"baseline{i}.pkl"))
        e2e = {p: _end_to_end(frames, root, p, args.repeats, args.batch) for p in policies}
    _report(len(frames), stages, baseline, e2e)
    return 0 if all(r["loss"] == 0 for r in e2e.values()) else 1


def _median(repeats: int, fn: Any) -> Any:
    """Return the median of `repeats` calls of ``fn(i)``, by value (floats) or by ``msgs_s`` (dicts)."""
    results = [fn(i) for i in range(repeats)]
    if isinstance(results[0], dict):
        results.sort(key=lambda r: r["msgs_s"])
        return results[len(results) // 2]
    return statistics.median(results)


# --- stage costs in process ---------------------------------------------------------------
def _stages(frames: list, root: Path, repeats: int) -> dict[str, float]:
    """Return µs per message of decode, encode and journal append measured alone."""
    from engine.record import MARKET_KINDS
    from gateway_bridge.config import TopicsConfig
    from gateway_bridge.decoder import Decoder
    from journal import codec

    topics = [(f.topic.decode(), f.payload) for f in frames]
    n = len(frames)
    records: list = []

    def decode(_: int) -> float:
        # Timed without keeping the records, as the bridge drops each batch after append: keeping
        # 200k records alive would time the garbage collector's full passes over them instead.
        dec = Decoder(SYMBOLS, TopicsConfig())
        base = START_MS * 10**6
        run = dec.decode
        t = time.perf_counter()
        for i, (topic, payload) in enumerate(topics):
            run(topic, payload, base + i)
        dt = time.perf_counter() - t
        dec = Decoder(SYMBOLS, TopicsConfig())
        out = [r for i, (topic, payload) in enumerate(topics) for r in dec.decode(topic, payload, base + i)]
        records[:] = [r for r in out if r.kind in MARKET_KINDS]
        return dt * 1e6 / n

    def encode(_: int) -> float:
        enc = codec.encode
        t = time.perf_counter()
        for r in records:
            enc(r)
        return (time.perf_counter() - t) * 1e6 / n

    out = {"decode": _median(repeats, decode), "encode": _median(repeats, encode)}
    for policy in ("never", "interval_ms"):
        out[f"append_{policy}"] = _median(repeats, lambda i, p=policy: _append_only(records, root / f"append-{p}-{i}", p))
    return out


def _append_only(records: list, path: Path, policy: str) -> float:
    """Return µs per record of JournalWriter.append in batches of 1024 (encode + write + policy)."""
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    with JournalWriter(JournalConfig(dir=str(path), fsync=policy)) as w:
        t = time.perf_counter()
        for i in range(0, len(records), 1024):
            w.append(records[i:i + 1024])
        w.sync()
        return (time.perf_counter() - t) * 1e6 / len(records)


def _baseline(frames: list, path: Path) -> float:
    """Return msgs/s of the naive path: json.loads + pickle.dump appended to one file."""
    import json
    import pickle

    t = time.perf_counter()
    with path.open("ab") as f:
        for fr in frames:
            pickle.dump((fr.topic, json.loads(fr.payload)), f)
    return len(frames) / (time.perf_counter() - t)


# --- end to end ---------------------------------------------------------------------------
def _end_to_end(frames: list, root: Path, policy: str, repeats: int, batch: int) -> dict[str, Any]:
    """Return the median end-to-end run of one fsync policy."""
    return _median(repeats, lambda i: _one_run(frames, root / f"e2e-{policy}-{i}", policy, batch))


def _one_run(frames: list, path: Path, policy: str, batch: int) -> dict[str, Any]:
    """Blast `frames` from a forked simulator into a Bridge + JournalWriter; return the figures."""
    import multiprocessing as mp

    import uvloop

    from gateway_bridge.config import GatewayConfig
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    path.mkdir(parents=True)
    endpoint = f"ipc://{path}/gw"
    gw = GatewayConfig(endpoint=endpoint, control_endpoint="", max_batch=batch, silence_ms=60_000,
                       rcvhwm=0)
    n = len(frames)
    # Fork before this process has a ZMQ context or an event loop; the XPUB waits for our subscriber.
    child = mp.get_context("fork").Process(target=_blast, args=(endpoint, frames), daemon=True)
    with JournalWriter(JournalConfig(dir=str(path / "journal"), fsync=policy)) as writer:
        child.start()
        try:
            marks, c = uvloop.run(_drive(gw, writer, n, timeout_s=120.0))
        finally:
            child.join(30)
        writer.sync()
    elapsed = (marks["last_ns"] - marks["first_ns"]) / 1e9 if marks["first_ns"] else 0.0
    journaled = _count_market(path / "journal")
    return {"msgs_s": c["received"] / elapsed if elapsed > 0 else 0.0, "received": c["received"],
            "loss": n - journaled, "bad": c["bad_total"],
            "recv_us": c["stage_recv_ns"] / 1e3 / n, "decode_us": c["stage_ingest_ns"] / 1e3 / n,
            "append_us": marks["append_ns"] / 1e3 / n, "batches": c["batches"]}


async def _drive(gw: Any, writer: Any, n: int, timeout_s: float) -> tuple[dict[str, int], dict[str, Any]]:
    """The shard's ingest loop without the engine: next_batch -> append, until `n` messages arrived.

    Returns the marks (first receive, last append, ns spent in append) and the bridge counters.
    """
    import zmq.asyncio

    from gateway_bridge.bridge import Bridge
    from gateway_bridge.config import TicksConfig

    ctx = zmq.asyncio.Context()
    bridge = Bridge(gw, TicksConfig(), SYMBOLS, last_recv_ns=writer.last_recv_ns, ctx=ctx)
    marks = {"first_ns": 0, "last_ns": 0, "append_ns": 0}
    ingest_c = bridge.ingest.counters
    try:
        await bridge.open()
        deadline = time.monotonic() + timeout_s
        while ingest_c["received"] < n and time.monotonic() < deadline:
            recs = await bridge.next_batch()
            t0 = time.perf_counter_ns()
            writer.append(recs)
            marks["append_ns"] += time.perf_counter_ns() - t0
            if not marks["first_ns"]:
                marks["first_ns"] = recs[0].recv_ns
            writer.maybe_sync()
            ingest_c = bridge.ingest.counters
        marks["last_ns"] = time.time_ns()
        return marks, bridge.counters
    finally:
        await bridge.close()
        ctx.destroy(linger=0)


def _blast(endpoint: str, frames: list) -> None:
    """Child process: publish `frames` as fast as possible once the bridge has subscribed."""
    import threading

    from tools.sim.gateway.config import SimConfig, SyntheticConfig
    from tools.sim.gateway.server import GatewaySim

    cfg = SimConfig(endpoint=endpoint, control_endpoint="", synthetic=SyntheticConfig(symbols=SYMBOLS, rate_hz=0.0),
                    sndhwm=0, linger_ms=60_000, wait_timeout_ms=30_000)
    GatewaySim(cfg, frames=frames).run(threading.Event())


def _count_market(journal: Path) -> int:
    """Return the number of market records in a journal (read back, not from counters)."""
    from engine.record import MARKET_KINDS
    from journal.reader import JournalReader

    return sum(1 for _ in JournalReader(journal).records(kinds=MARKET_KINDS))


# --- report -------------------------------------------------------------------------------
def _report(n: int, stages: dict[str, float], baseline: float, e2e: dict[str, dict[str, Any]]) -> None:
    w = sys.stdout.write
    w(f"\ningest bench: {n} messages, medians\n")
    w(f"{'policy':<12}{'msgs/s':>10}{'recv µs':>9}{'decode µs':>11}{'append µs':>11}{'loss':>6}{'bad':>5}\n")
    for policy, r in e2e.items():
        w(f"{policy:<12}{r['msgs_s']:>10,.0f}{r['recv_us']:>9.2f}{r['decode_us']:>11.2f}{r['append_us']:>11.2f}"
          f"{r['loss']:>6}{r['bad']:>5}\n")
    w("stages alone (µs/msg): " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items()) + "\n")
    w(f"naive baseline (json.loads + pickle.dump): {baseline:,.0f} msgs/s\n")
