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
- a naive baseline: ``json.loads`` + ``pickle.dump`` appended to a file;
- in process, the shard's pipeline per message set (the synthetic mix and the real recordings of
  ``../shared/data/bybit`` cycled to the same count): groups of up to 1024 ``[topic, payload]``,
  one ``time.time_ns()`` stamp per group, `Ingest.batch` (`Ingest.messages` before it existed),
  `JournalWriter.append` (fsync never and interval_ms); beside it the floor on the same groups:
  ``orjson.loads`` + msgpack body + the journal's framing (crc32 + fixed header) joined per group
  and written with one ``os.write`` (no fsync);
- the end-to-end floor: the same forked simulator into a bare loop (plain SUB socket,
  ``recv_multipart``, the floor's decode + framing, one ``os.write`` per drain of up to 1024),
  printed as each policy's ratio floor/project;
- tick delay: a paced simulator at 10 and 10 000 msgs/s into a `Bridge` + `JournalWriter` (append
  with the sync deferred, as the shard does): ms from each tick's whole-second boundary to its
  append returning, the first tick skipped.

Figures are medians of `--repeats` runs (the bench machine is small and noisy).
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from engine.record import Kind
from tools.shard.gcpolicy import GcPolicy

POLICIES = ("always", "interval_ms", "never")
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")
START_MS = 1_786_310_819_000
#: Messages per drain / per journal append, as the shard's gateway.max_batch default.
GROUP = 1024
#: The real Bybit recordings shared beside the repository (absent: the recordings line is skipped).
RECORDINGS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "bybit"
RECORDING_FILES = ("*.frames.jsonl", "2024-12-01_XRPUSDT_ob500.data")
#: Paced simulator rates (msgs/s) of the tick-delay measurement.
TICK_RATES = (10, 10_000)
#: Goals of the issue: in-process µs per message, end-to-end floor/project ratio.
GOAL_US = 5.0
GOAL_RATIO = 1.5


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the ingest bench options."""
    p.add_argument("--messages", type=int, default=200_000, metavar="N", help="messages per run (default 200000)")
    p.add_argument("--policies", default=",".join(POLICIES), metavar="P,...", help="fsync policies to run")
    p.add_argument("--repeats", type=int, default=3, metavar="R", help="runs per measurement; medians reported")
    p.add_argument("--batch", type=int, default=1024, metavar="B", help="gateway.max_batch of the bridge")
    p.add_argument("--dir", default="", metavar="DIR", help="scratch directory (default: a temp dir)")
    p.add_argument("--tick-seconds", type=int, default=6, metavar="S",
                   help="ticks (seconds) measured per paced rate after the first (default 6)")


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
    sets = {"synthetic": ([[f.topic, f.payload] for f in frames], SYMBOLS)}
    real = _recordings(len(frames))
    if real is not None:
        sets["recordings"] = real
    # Garbage collection as a shard runs it (tools.shard.gcpolicy): the start-up heap (here the
    # pre-made messages) frozen, automatic collection off, the young generations collected after
    # each tick - the pipelines below call `after_tick` once per second, as the shard's loop does.
    policy = GcPolicy()
    policy.start()
    try:
        return _measure(args, policies, frames, sets)
    finally:
        policy.stop()
        gc.unfreeze()


def _measure(args: argparse.Namespace, policies: list[str], frames: list,
             sets: dict[str, tuple[list[list[bytes]], tuple[str, ...]]]) -> int:
    """Run the measurements in a scratch directory, print the report; 1 if the project lost a message."""
    with tempfile.TemporaryDirectory(dir=args.dir or None) as scratch:
        root = Path(scratch)
        stages = _stages(frames, root, args.repeats)
        baseline = _median(args.repeats, lambda i: _baseline(frames, root / f"baseline{i}.pkl"))
        inproc = {name: _in_process(msgs, syms, root / name, args.repeats) for name, (msgs, syms) in sets.items()}
        e2e = {p: _end_to_end(frames, root, p, args.repeats, args.batch) for p in policies}
        floor = _median(args.repeats, lambda i: _floor_run(frames, root / f"floor-e2e-{i}"))
        floor["sender_msgs_s"] = _median(args.repeats, lambda i: _floor_run(frames, root / f"recv-{i}", False))["msgs_s"]
        ticks = {r: _tick_delay(root / f"tick-{r}", r, args.tick_seconds) for r in TICK_RATES}
    _report(len(frames), stages, baseline, e2e)
    _report_more(inproc, e2e, floor, ticks)
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
        # Drains of GROUP messages at one stamp through `decode_many`, as the bridge decodes them.
        dec = Decoder(SYMBOLS, TopicsConfig())
        dec.warm_up()  # the number kernels load on first use (~0.2 s), as Bridge.open does before traffic
        base = START_MS * 10**6
        run = dec.decode_many
        drains = [([t for t, _ in topics[i:i + GROUP]], [p for _, p in topics[i:i + GROUP]])
                  for i in range(0, n, GROUP)]
        t = time.perf_counter()
        for i, (names, payloads) in enumerate(drains):
            run(names, payloads, base + i)
        dt = time.perf_counter() - t
        dec = Decoder(SYMBOLS, TopicsConfig())
        out = [r for i, (names, payloads) in enumerate(drains) for r in dec.decode_many(names, payloads, base + i)]
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


# --- in process: the shard's pipeline and its floor -----------------------------------------
def _recordings(n: int) -> tuple[list[list[bytes]], tuple[str, ...]] | None:
    """Return the real recordings as gateway messages cycled to `n`, and their symbols (None if absent); say so."""
    from gateway_bridge.config import TopicsConfig
    from tools.sim.gateway.playback import route

    files = sorted(f for pattern in RECORDING_FILES for f in RECORDINGS.glob(pattern) if f.is_file())
    topics = TopicsConfig()
    msgs: list[list[bytes]] = []
    symbols: set[str] = set()
    for line in (ln.strip() for f in files for ln in f.read_bytes().splitlines()):
        routed = route(line, topics) if line else None
        if routed is not None:
            msgs.append([routed[0], line])
            symbols.add(routed[2])
        elif line:  # an ack: the gateway forwards it on the ticker topic
            msgs.append([topics.ticker.encode(), line])
    if not msgs:
        return None
    print(f"recordings: {len(msgs)} frames of {len(files)} files in {RECORDINGS}, symbols {','.join(sorted(symbols))}, "
          f"cycled to {n} messages", flush=True)
    return [msgs[i % len(msgs)] for i in range(n)], tuple(sorted(symbols))


def _groups(msgs: list[list[bytes]]) -> list[list[list[bytes]]]:
    """Return `msgs` cut into drains of up to `GROUP` messages."""
    return [msgs[i:i + GROUP] for i in range(0, len(msgs), GROUP)]


def _in_process(msgs: list[list[bytes]], symbols: Sequence[str], root: Path, repeats: int) -> dict[str, Any]:
    """Return median µs/msg of the shard's pipeline per policy (never, interval_ms) and of the floor."""
    groups = _groups(msgs)
    root.mkdir(parents=True)
    out: dict[str, Any] = {}
    for policy in ("never", "interval_ms"):
        out[policy] = _median(repeats, lambda i, p=policy: _pipeline(groups, symbols, root / f"{p}-{i}", p))
    out["floor"] = _median(repeats, lambda i: _floor_in_process(groups, root / f"floor-{i}.bin"))
    return out


def _batch_fn(ing: Any) -> Callable[[int, list[list[bytes]]], list]:
    """Return ``fn(recv_ns, msgs)``: `Ingest.batch`, or `Ingest.messages` with one stamp for all before it."""
    if hasattr(type(ing), "batch"):
        return ing.batch
    messages = ing.messages
    return lambda recv_ns, msgs: messages([(recv_ns, parts) for parts in msgs])


def _pipeline(groups: list[list[list[bytes]]], symbols: Sequence[str], path: Path, policy: str) -> float:
    """Return µs/msg of stamp + decode + append as the shard does it: one stamp and one append per drain."""
    from gateway_bridge.config import GatewayConfig, TicksConfig
    from gateway_bridge.ingest import Ingest
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    ing = Ingest(GatewayConfig(), TicksConfig(), symbols, last_recv_ns=0, clock_ns=time.time_ns,
                 skip_unknown_symbols=True)
    ing.decoder.warm_up()
    decode, stamp, collector = _batch_fn(ing), ing.stamp, GcPolicy()
    with JournalWriter(JournalConfig(dir=str(path), fsync=policy)) as w:
        append = w.append
        t = time.perf_counter()
        next_tick = 0
        for group in groups:
            now = stamp()
            append(decode(now, group))
            if now >= next_tick:  # a second passed: the shard collects after its tick
                collector.after_tick()
                next_tick = (now // 10**9 + 1) * 10**9
        dt = time.perf_counter() - t
    return dt * 1e6 / sum(map(len, groups))


def _floor_encoder() -> Callable[[Sequence[bytes], int, int], tuple[bytes, int]]:
    """Return ``encode(payloads, recv_ns, seq) -> (frames, next seq)``: orjson.loads + msgpack + crc32 + fixed header."""
    import zlib

    import msgpack
    import orjson

    from journal.codec import FIXED, FIXED_PLUS_CRC, LEN_CRC

    loads, pack = orjson.loads, msgpack.Packer(autoreset=True).pack
    fixed_of, head_of, crc32 = FIXED.pack, LEN_CRC.pack, zlib.crc32

    def encode(payloads: Sequence[bytes], recv_ns: int, seq: int) -> tuple[bytes, int]:
        """Return the frames of `payloads` numbered from `seq`, and the next seq."""
        parts: list[bytes] = []
        for payload in payloads:
            body = pack(loads(payload))
            fixed = fixed_of(seq, recv_ns, 0, 0)
            parts += (head_of(FIXED_PLUS_CRC + len(body), crc32(body, crc32(fixed))), fixed, body)
            seq += 1
        return b"".join(parts), seq

    return encode


def _floor_in_process(groups: list[list[list[bytes]]], path: Path) -> float:
    """Return µs/msg of the floor on the same drains: one stamp, the floor's encoding, one os.write each."""
    encode, write, now = _floor_encoder(), os.write, time.time_ns
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    try:
        seq = 1
        t = time.perf_counter()
        for group in groups:
            data, seq = encode([parts[1] for parts in group], now(), seq)
            write(fd, data)
        dt = time.perf_counter() - t
    finally:
        os.close(fd)
    return dt * 1e6 / (seq - 1)


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
    collector = GcPolicy()
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
            if any(r.kind == Kind.TICK for r in recs):
                collector.after_tick()
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


# --- end-to-end floor ----------------------------------------------------------------------
def _floor_run(frames: list, path: Path, work: bool = True) -> dict[str, Any]:
    """Blast `frames` from a forked simulator into the bare receive loop (without `work`: receive only)."""
    import multiprocessing as mp

    path.mkdir(parents=True)
    endpoint = f"ipc://{path}/gw"
    n = len(frames)
    # Fork before this process has a ZMQ context; the XPUB waits for our subscriber.
    child = mp.get_context("fork").Process(target=_blast, args=(endpoint, frames), daemon=True)
    child.start()
    try:
        got, first_ns, last_ns = _bare_loop(endpoint, path / "floor.bin", n, 120.0, work)
    finally:
        child.join(30)
    elapsed = (last_ns - first_ns) / 1e9 if first_ns else 0.0
    return {"msgs_s": got / elapsed if elapsed > 0 else 0.0, "received": got, "loss": n - got}


def _bare_loop(endpoint: str, out: Path, n: int, timeout_s: float, work: bool) -> tuple[int, int, int]:
    """SUB (RCVHWM 0) -> recv_multipart -> floor encoding -> one os.write per drain of up to `GROUP`.

    Returns the messages written, the first drain's stamp and the time after the last write. Without
    `work` the drains are only counted: what the simulator and the transport alone can deliver.
    """
    import zmq

    from gateway_bridge.config import TopicsConfig

    ctx = zmq.Context()
    sock = ctx.socket(zmq.SUB)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    for name in TopicsConfig().names():
        sock.setsockopt(zmq.SUBSCRIBE, name.encode())
    sock.connect(endpoint)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
    encode, recv, now = _floor_encoder(), sock.recv_multipart, time.time_ns
    got, first_ns, seq = 0, 0, 1
    try:
        deadline = time.monotonic() + timeout_s
        while got < n and time.monotonic() < deadline:
            if not sock.poll(100):
                continue
            payloads: list[bytes] = []
            try:
                for _ in range(GROUP):
                    payloads.append(recv(zmq.NOBLOCK)[1])
            except zmq.Again:
                pass
            stamp = now()
            first_ns = first_ns or stamp
            if work:
                data, seq = encode(payloads, stamp, seq)
                os.write(fd, data)
            got += len(payloads)
        return got, first_ns, now()
    finally:
        os.close(fd)
        sock.close(linger=0)
        ctx.term()


# --- tick delay -----------------------------------------------------------------------------
def _tick_delay(path: Path, rate: int, ticks: int) -> list[float]:
    """Return ms from tick boundary to journaled tick, a paced simulator at `rate` msgs/s into Bridge + journal."""
    import multiprocessing as mp

    import uvloop

    from gateway_bridge.config import GatewayConfig
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    path.mkdir(parents=True)
    endpoint = f"ipc://{path}/gw"
    gw = GatewayConfig(endpoint=endpoint, control_endpoint="", rcvhwm=0)
    ticks = max(1, ticks)
    fork = mp.get_context("fork")
    stop = fork.Event()
    messages = int(rate * (ticks + 5))  # more than the run needs: `stop` ends the simulator
    child = fork.Process(target=_paced, args=(endpoint, rate, messages, stop), daemon=True)
    with JournalWriter(JournalConfig(dir=str(path / "journal"), fsync="interval_ms")) as writer:
        child.start()
        try:
            return uvloop.run(_tick_drive(gw, writer, ticks + 1, timeout_s=ticks + 10.0))[1:]
        finally:
            stop.set()
            child.join(10)


async def _tick_drive(gw: Any, writer: Any, ticks: int, timeout_s: float) -> list[float]:
    """The shard's loop (next_batch -> append, sync deferred -> maybe_sync) until `ticks` TICKs; their delays in ms."""
    import zmq.asyncio

    from engine.record import Kind
    from gateway_bridge.bridge import Bridge
    from gateway_bridge.config import TicksConfig

    ctx = zmq.asyncio.Context()
    bridge = Bridge(gw, TicksConfig(), SYMBOLS, last_recv_ns=writer.last_recv_ns, ctx=ctx)
    delays: list[float] = []
    try:
        await bridge.open()
        deadline = time.monotonic() + timeout_s
        while len(delays) < ticks and time.monotonic() < deadline:
            recs = await bridge.next_batch()
            writer.append(recs, defer_sync=True)
            done = time.time_ns()
            delays += [(done - r.recv_ns) / 1e6 for r in recs if r.kind == Kind.TICK]
            writer.maybe_sync()
        return delays
    finally:
        await bridge.close()
        ctx.destroy(linger=0)


def _paced(endpoint: str, rate: int, messages: int, stop: Any) -> None:
    """Child process: the synthetic market paced at `rate` msgs/s (frames made as it goes) until `stop`."""
    from tools.sim.gateway.config import SimConfig, SyntheticConfig
    from tools.sim.gateway.server import GatewaySim

    synthetic = SyntheticConfig(symbols=SYMBOLS, depth=200, seed=11, rate_hz=float(rate), messages=messages)
    cfg = SimConfig(endpoint=endpoint, control_endpoint="", synthetic=synthetic, sndhwm=0, linger_ms=0,
                    wait_timeout_ms=30_000)
    GatewaySim(cfg).run(stop)


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


def _report_more(inproc: dict[str, dict[str, Any]], e2e: dict[str, dict[str, Any]], floor: dict[str, Any],
                 ticks: dict[int, list[float]]) -> None:
    """Print the in-process pipeline against its floor, the end-to-end floor and the tick delays."""
    w = sys.stdout.write
    for name in ("synthetic", "recordings"):
        r = inproc.get(name)
        if r is None:
            w(f"in process  {name}: skipped ({RECORDINGS} not found)\n")
            continue
        fl = r["floor"]
        for policy in ("never", "interval_ms"):
            us = r[policy]
            w(f"in process  {name:<10} fsync {policy:<11}: {us:.2f} µs/msg ({1e6 / us:,.0f} msgs/s); "
              f"floor {fl:.2f} µs/msg ({1e6 / fl:,.0f} msgs/s); ratio {us / fl:.2f}; "
              f"goal ≤ {GOAL_US:.0f} µs {'ok' if us <= GOAL_US else 'MISSED'}\n")
    w(f"end to end  floor (SUB recv_multipart + orjson.loads + msgpack + framing + os.write): "
      f"{floor['msgs_s']:,.0f} msgs/s, loss {floor['loss']}\n")
    w(f"end to end  receive only (simulator + transport, nothing done with the messages): "
      f"{floor['sender_msgs_s']:,.0f} msgs/s\n")
    for policy, r in e2e.items():
        ratio = floor["msgs_s"] / r["msgs_s"] if r["msgs_s"] else float("inf")
        w(f"end to end  {policy:<11}: {r['msgs_s']:,.0f} msgs/s, loss {r['loss']}; floor/project {ratio:.2f}; "
          f"goal ≤ {GOAL_RATIO} {'ok' if ratio <= GOAL_RATIO and r['loss'] == 0 else 'MISSED'}\n")
    for rate, delays in ticks.items():
        if not delays:
            w(f"tick delay  {rate:,} msgs/s: no ticks measured\n")
            continue
        w(f"tick delay  {rate:,} msgs/s: median {statistics.median(delays):.2f} ms, max {max(delays):.2f} ms "
          f"({len(delays)} ticks, boundary -> append returned)\n")
