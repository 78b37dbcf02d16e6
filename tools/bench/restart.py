"""`feature-service bench restart`: shard start -> live on a long journal, with and without a checkpoint.

1. Build a synthetic journal of `--hours` ending now, written straight with `JournalWriter`: the
   SESSION record a shard journals at start (`ShardNode._session`: shard, category, symbols, the
   default registry's canonical text and hash), then `tools.sim.synthetic_records` — a book
   snapshot, book deltas / trades / tickers at `--rate` events/s, a TICK every second.
2. Fold the whole journal in process (`open_engine` + `engine.replay.Fold`, batches of 4096, as
   the shard's warm-up does) and save its checkpoint with `CheckpointStore` under
   ``<data_dir>/checkpoints`` exactly as the node does (seq = engine.last_seq, meta created_ns/shard).
3. Start a real shard process (fed by a 1-symbol simulator) `--repeats` times with the checkpoint
   present, then with the checkpoints moved away (the whole-journal fold: the baseline). A SUB
   socket here, connected before the spawn, stamps the first features.live vector; the shard's own
   log gives when it was live (``shard_started``) and how long its fold took (``engine_warm``).

Reported per run: spawn -> live, spawn -> first vector (backfilled ticks of the seconds the shard
was down count), spawn -> first vector of a tick after the spawn (includes waiting up to 1 s for
the next boundary), the warm-up fold's records and seconds. Each clean stop writes a checkpoint,
so every with-checkpoint run after the first restores the previous run's stop checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tools.bench.latency import (
    log_events,
    machine,
    shard_config,
    sim_config,
    spawn,
    stop,
    write_yaml,
)

NS = 1_000_000_000
SYMBOL = "SYM001USDT"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the restart bench options."""
    p.add_argument("--hours", type=float, default=24, metavar="H", help="journal length in hours (default 24)")
    p.add_argument("--rate", type=int, default=10, metavar="R",
                   help="market events per second in the journal, besides 1 tick/s (default 10)")
    p.add_argument("--repeats", type=int, default=3, metavar="K", help="starts with a checkpoint (default 3)")
    p.add_argument("--baseline-repeats", type=int, default=1, metavar="K",
                   help="starts without a checkpoint (whole-journal fold; default 1)")
    p.add_argument("--json", default="", metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--dir", default="", metavar="DIR", help="scratch directory (default: a temp dir)")


def run(args: argparse.Namespace) -> int:
    """Build the journal, fold it, start the shard with and without a checkpoint; print the figures."""
    from tools.cli import UsageError

    if not 0 < args.hours <= 24 * 30 or not 0 <= args.rate <= 10_000 or args.repeats < 1 or args.baseline_repeats < 0:
        raise UsageError("bench restart: --hours within (0, 720], --rate within [0, 10000], --repeats >= 1, "
                         "--baseline-repeats >= 0")
    logging.getLogger("journal").setLevel(logging.WARNING)  # not one line per segment of the 24 h journal
    with tempfile.TemporaryDirectory(dir=args.dir or None) as scratch:
        root = Path(scratch)
        sim = sim_config(root, 1, 100.0)
        cfg = shard_config(root, sim, [SYMBOL])
        data = Path(cfg["data_dir"])
        doc: dict[str, Any] = {"machine": machine(), "hours": args.hours, "rate": args.rate}
        doc["journal"] = build_journal(data / "journal", args.hours, args.rate)
        print(f"journal: {doc['journal']['records']:,} records, {doc['journal']['bytes'] / 1e6:.0f} MB, "
              f"written in {doc['journal']['build_s']:.1f} s", flush=True)
        doc["fold"] = fold_and_checkpoint(data)
        print(f"whole-journal fold in process: {doc['fold']['fold_s']:.2f} s "
              f"({doc['fold']['records_per_s']:,.0f} records/s); checkpoint {doc['fold']['checkpoint_bytes']:,} B",
              flush=True)
        shard_yaml = write_yaml(root / "shard.yaml", cfg)
        sim_p = spawn("gateway-sim", write_yaml(root / "sim.yaml", sim), root / "sim.log")
        try:
            doc["with_checkpoint"] = [start_once(root, shard_yaml, cfg, i) for i in range(args.repeats)]
            doc["without_checkpoint"] = [start_once(root, shard_yaml, cfg, i, checkpoint=False)
                                         for i in range(args.baseline_repeats)]
        finally:
            stop(sim_p)
    doc["summary"] = summary(doc)
    print(format_report(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0


# --- the journal ------------------------------------------------------------------------------

def session_record(t_ns: int, symbols: list[str]) -> Any:
    """The SESSION record a shard named ``bench`` with the default registry journals at start."""
    from engine.record import Kind, Record
    from tools.registry_file import default_registry

    reg = default_registry()
    payload = {"shard": "bench", "category": "linear", "symbols": list(symbols),
               "registry": reg.canonical, "hash": reg.content_hash}
    return Record(0, t_ns, Kind.SESSION, "", 0, 0, payload)


def build_journal(journal_dir: Path, hours: float, rate: int) -> dict[str, Any]:
    """Write `hours` of synthetic records for one symbol ending about now; return size and timing."""
    from journal.config import JournalConfig
    from journal.writer import JournalWriter
    from tools.sim.synthetic_records import records

    seconds = int(hours * 3600)
    start_ns = (time.time_ns() // NS - seconds - 1) * NS
    t0 = time.perf_counter()
    n = 0
    with JournalWriter(JournalConfig(dir=str(journal_dir), fsync="never")) as w:
        batch = [session_record(start_ns, [SYMBOL])]
        for rec in records([SYMBOL], seconds, max(rate, 1), start_ns=start_ns, seed=5):
            batch.append(rec)
            if len(batch) >= 8192:
                n += len(w.append(batch))
                batch = []
        n += len(w.append(batch))
        w.sync()
    size = sum(p.stat().st_size for p in journal_dir.glob("*.seg"))
    return {"records": n, "seconds": seconds, "bytes": size, "build_s": time.perf_counter() - t0}


def fold_and_checkpoint(data: Path) -> dict[str, Any]:
    """Fold the whole journal as a shard's warm-up does and save its checkpoint as the node does."""
    from engine.engine import Engine
    from engine.replay import Fold
    from journal.checkpoints import CheckpointStore
    from journal.reader import JournalReader
    from tools.offline.replay import open_engine

    journal = str(data / "journal")
    t0 = time.perf_counter()
    fold = Fold(open_engine(journal))
    batch: list = []
    for rec in JournalReader(journal).records():
        batch.append(rec)
        if len(batch) >= 4096:
            fold.batch(batch)
            batch.clear()
    fold.batch(batch)
    fold_s = time.perf_counter() - t0
    engine = fold.engine
    t1 = time.perf_counter()
    blob = engine.checkpoint()
    save_s = time.perf_counter() - t1
    CheckpointStore(data / "checkpoints", keep=3).save(engine.last_seq, blob,
                                                        {"created_ns": time.time_ns(), "shard": "bench"})
    t2 = time.perf_counter()
    Engine.restore(blob)
    return {"records": fold.records, "vectors": fold.vectors, "fold_s": fold_s, "records_per_s": fold.records / fold_s,
            "checkpoint_bytes": len(blob), "checkpoint_serialise_s": save_s,
            "restore_s": time.perf_counter() - t2, "seq": engine.last_seq}


# --- one start --------------------------------------------------------------------------------

def start_once(root: Path, shard_yaml: Path, cfg: dict[str, Any], i: int, checkpoint: bool = True) -> dict[str, Any]:
    """Start the shard once (checkpoints present or moved away); time it to live and to vectors."""
    import zmq

    from api.wire import TOPIC_PREFIX, decode

    ckpt = Path(cfg["data_dir"]) / "checkpoints"
    aside = ckpt.with_name("checkpoints.aside")
    if not checkpoint:
        ckpt.rename(aside)
    log = root / f"shard-{'ckpt' if checkpoint else 'full'}-{i}.log"
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RECONNECT_IVL, 5)  # connected before the shard binds: retry every 5 ms, not 100
    sub.connect(cfg["publish"]["endpoint"])
    sub.subscribe(TOPIC_PREFIX)
    t_spawn = time.time_ns()
    p = spawn("shard", shard_yaml, log)
    first = live = None
    try:
        end = time.monotonic() + 300
        while live is None and time.monotonic() < end and p.poll() is None:
            if sub.poll(100):
                ts = decode(sub.recv_multipart()).ts_ns
                now = time.time_ns()
                first = first or (now, ts)
                if ts >= t_spawn:
                    live = (now, ts)
    finally:
        stop(p)
        sub.close(linger=0)
        ctx.term()
        if not checkpoint:
            shutil.rmtree(ckpt, ignore_errors=True)
            aside.rename(ckpt)
    if live is None or first is None:
        raise RuntimeError(f"the shard published no live vector (see {log}):\n{log.read_text(errors='replace')[-2000:]}")
    return timings(log, t_spawn, first, live, checkpoint)


def timings(log: Path, t_spawn: int, first: tuple[int, int], live: tuple[int, int], checkpoint: bool) -> dict[str, Any]:
    """Seconds from spawn to live / first vector / first live vector, and the warm-up fold's figures."""
    ev = {e["event"]: e for e in log_events(log) if e.get("event") in ("engine_warm", "shard_started")}
    warm, started = ev.get("engine_warm", {}), ev.get("shard_started", {})
    out = {"checkpoint": checkpoint, "restored_from_seq": warm.get("from_checkpoint"),
           "fold_records": warm.get("records"), "fold_s": warm.get("seconds"),
           "first_vector_s": (first[0] - t_spawn) / NS, "first_vector_backfilled": first[1] < t_spawn,
           "first_live_vector_s": (live[0] - t_spawn) / NS,
           "boundary_wait_s": (live[0] - t_spawn) / NS - (_ns(started) - t_spawn) / NS if started else None}
    if started:
        out["live_s"] = (_ns(started) - t_spawn) / NS
        out["live_vector_boundary_after_live_s"] = (live[1] - _ns(started)) / NS
    if warm and started:
        out["before_fold_s"] = (_ns(warm) - t_spawn) / NS - float(warm["seconds"])
    return out


def _ns(event: dict[str, Any]) -> int:
    """The wall-clock ns of a structlog JSON event's ISO timestamp."""
    return int(datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp() * NS)


# --- report -----------------------------------------------------------------------------------

def summary(doc: dict[str, Any]) -> dict[str, Any]:
    """Medians of each start figure, with and without a checkpoint."""
    out: dict[str, Any] = {}
    for key in ("with_checkpoint", "without_checkpoint"):
        runs = doc.get(key, [])
        out[key] = {f: statistics.median(r[f] for r in runs) for f in
                    ("live_s", "first_vector_s", "first_live_vector_s", "fold_s", "before_fold_s")
                    if runs and all(r.get(f) is not None for r in runs)}
    return out


def format_report(doc: dict[str, Any]) -> str:
    """The start figures as a fixed-width table (seconds)."""
    lines = ["", f"shard restart on a {doc['hours']:g} h journal ({doc['journal']['records']:,} records), seconds "
             "from spawn", f"{'checkpoint':<11}{'live':>7}{'1st vector':>11}{'1st live':>9}{'fold':>7}"
             f"{'records':>10}{'imports+open':>13}"]
    for r in doc.get("with_checkpoint", []) + doc.get("without_checkpoint", []):
        lines.append(f"{'yes' if r['checkpoint'] else 'no':<11}{r.get('live_s', float('nan')):>7.2f}"
                     f"{r['first_vector_s']:>11.2f}{r['first_live_vector_s']:>9.2f}{r['fold_s'] or 0:>7.2f}"
                     f"{r['fold_records'] or 0:>10,}{r.get('before_fold_s', float('nan')):>13.2f}")
    lines.append("live: the shard's shard_started log line; 1st live: first vector of a tick after the spawn "
                 "(waits for the next second boundary); fold: the shard's engine_warm seconds")
    sys.stdout.flush()
    return "\n".join(lines)
