"""`feature-service bench latency`: tick boundary -> vector at a SUB client in another process.

For each case (N symbols at R msgs/s in total, then 1 symbol at `--slow-rate`, the timer tick) this
starts real processes on loopback: the gateway simulator (`gateway-sim`, N generated symbols), a
shard (`shard`, features.live on ipc://, API on a free 127.0.0.1 port), and a SUB client process
(`client_main`) that stamps ``time.time_ns()`` as each features.live message arrives. Latency of a
vector = arrival wall time - ts (its tick boundary, wall clock ns). Vectors of the first
`--warmup` seconds are dropped (resync after joining the stream, first-use costs).

In the same run, while the client records, this process sends ``GET /features/latest`` at
`--http-rate` requests/s (one aiohttp connection, paced, bounded count) and times each answer.
Afterwards it reads where the time goes from the shard itself: ``fs_tick_to_publish_seconds`` in
``/metrics`` (tick boundary -> vectors sent, measured inside the shard) and the bridge's
``tick_late_*`` counters (how late after the boundary the tick was stamped) from its log.

Beside every case: the engine's own tick compute for the same symbols and rate, in process
(`Engine.apply(tick)` over `tools.sim.synthetic_records`, as `tools.bench.engine` times it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
NS = 1_000_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the latency bench options."""
    p.add_argument("--symbols", default="1,10,100", metavar="N,...", help="symbol counts (default 1,10,100)")
    p.add_argument("--rate", type=float, default=10_000, metavar="R", help="simulator msgs/s in total (default 10000)")
    p.add_argument("--seconds", type=int, default=60, metavar="S", help="measured seconds per case (default 60)")
    p.add_argument("--warmup", type=int, default=5, metavar="S", help="seconds dropped at the start (default 5)")
    p.add_argument("--slow-rate", type=float, default=10, metavar="R",
                   help="msgs/s of the extra 1-symbol timer-tick case (default 10; 0 skips it)")
    p.add_argument("--http-rate", type=float, default=500, metavar="R",
                   help="GET /features/latest per second during each case (default 500; 0 skips)")
    p.add_argument("--engine-seconds", type=int, default=30, metavar="S",
                   help="synthetic seconds for the in-process engine tick timing (default 30)")
    p.add_argument("--where", action="store_true",
                   help="also run each case with the shard in this process, timing each tick's stages")
    p.add_argument("--gc-freeze", action="store_true",
                   help="--where: gc.freeze() once the in-process shard has started (an experiment)")
    p.add_argument("--json", default="", metavar="OUT", help="also write the figures as JSON")
    p.add_argument("--dir", default="", metavar="DIR", help="scratch directory (default: a temp dir)")


def run(args: argparse.Namespace) -> int:
    """Run every case, print the table (and JSON); exit 1 if a case produced no vectors."""
    from tools.cli import UsageError
    try:
        counts = [int(x) for x in args.symbols.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"bench latency: --symbols {args.symbols!r} must be comma-separated integers") from None
    if not counts or min(counts) < 1 or max(counts) > 1000:
        raise UsageError("bench latency: --symbols: each count must be within [1, 1000]")
    if args.seconds < 1 or args.warmup < 0 or args.rate < 0:
        raise UsageError("bench latency: --seconds must be >= 1, --warmup and --rate >= 0")
    cases = [(n, args.rate) for n in counts] + ([(1, args.slow_rate)] if args.slow_rate > 0 else [])
    results = []
    with tempfile.TemporaryDirectory(dir=args.dir or None) as scratch:
        for i, (n, rate) in enumerate(cases):
            print(f"case {n} symbols at {rate:g} msgs/s ({args.warmup} + {args.seconds} s) ...", flush=True)
            r = run_case(Path(scratch) / f"case{i}", n, rate, args.seconds, args.warmup, args.http_rate)
            if args.where:  # before engine_tick: its records would be in this process's heap
                print("  ... again with the shard in this process, its stages timed", flush=True)
                r["where"] = where_case(Path(scratch) / f"where{i}", n, rate, args.seconds, args.warmup,
                                        args.http_rate, args.gc_freeze)
            r["engine_tick"] = engine_tick(n, rate, args.engine_seconds)
            results.append(r)
    doc = {"machine": machine(), "cases": results}
    print(format_table(results))
    if args.where:
        print(format_where(results))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2))
    return 0 if all(r["vectors"] > 0 for r in results) else 1


# --- processes (restart.py uses these too) --------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_yaml(path: Path, doc: dict[str, Any]) -> Path:
    """Write `doc` as YAML to `path` and return it."""
    import yaml

    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def sim_config(root: Path, n: int, rate: float, seed: int = 1) -> dict[str, Any]:
    """A simulator config: N generated symbols (200-level books), `rate` msgs/s in total, no faults."""
    return {"endpoint": f"ipc://{root}/gw", "control_endpoint": f"ipc://{root}/gw.ctl", "source": "synthetic",
            "wait_for_subscriber": False, "log_interval_s": 10.0,
            "synthetic": {"symbols": [], "generate_symbols": n, "depth": 200, "seed": seed, "rate_hz": rate}}


def shard_config(root: Path, sim: dict[str, Any], symbols: list[str], **extra: Any) -> dict[str, Any]:
    """A shard config fed by `sim`: features.live on ipc://, API on a free port, defaults otherwise."""
    doc: dict[str, Any] = {
        "data_dir": str(root / "data"),
        "shard": {"name": "bench", "symbols": symbols},
        "gateway": {"endpoint": sim["endpoint"], "control_endpoint": sim["control_endpoint"]},
        "publish": {"endpoint": f"ipc://{root}/pub"},
        "api": {"port": free_port()},
    }
    doc.update(extra)
    return doc


def spawn(command: str, config: Path, log: Path) -> subprocess.Popen:
    """Start ``feature-service COMMAND --config FILE`` with stdout+stderr to `log`."""
    with log.open("ab") as f:
        return subprocess.Popen([sys.executable, "-m", "tools.cli", command, "--config", str(config)],
                                stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)


def stop(p: subprocess.Popen, timeout: float = 30) -> int:
    """SIGINT and wait (SIGKILL after `timeout`); return the exit code."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(10)
    return p.returncode


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, bytes]:
    """One GET to 127.0.0.1:`port` (status 0 when nothing answers)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def wait_healthy(p: subprocess.Popen, port: int, log: Path, timeout: float = 60) -> None:
    """Wait until the shard's /health answers 200; raise naming its log if it exits or times out."""
    end = time.monotonic() + timeout
    while http_get(port, "/health", 1)[0] != 200:
        if p.poll() is not None or time.monotonic() > end:
            raise RuntimeError(f"the shard did not come up (see {log}):\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.05)


def log_events(log: Path) -> list[dict[str, Any]]:
    """The JSON lines of a process log."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def machine() -> dict[str, Any]:
    """CPU count and load average now (the bench machine is shared)."""
    return {"cpus": os.cpu_count(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


# --- one case ---------------------------------------------------------------------------------

def run_case(root: Path, n: int, rate: float, seconds: int, warmup: int, http_rate: float) -> dict[str, Any]:
    """Simulator + shard + SUB client process for one case; return its figures."""
    root.mkdir(parents=True)
    sim = sim_config(root, n, rate)
    symbols = [f"SYM{i:0{max(3, len(str(n)))}d}USDT" for i in range(1, n + 1)]
    shard = shard_config(root, sim, symbols)
    port = shard["api"]["port"]
    sim_p = spawn("gateway-sim", write_yaml(root / "sim.yaml", sim), root / "sim.log")
    shard_p = spawn("shard", write_yaml(root / "shard.yaml", shard), root / "shard.log")
    out = root / "client.json"
    load0 = os.getloadavg()[0]
    try:
        wait_healthy(shard_p, port, root / "shard.log")
        client = subprocess.Popen([sys.executable, "-c", "import sys; from tools.bench.latency import client_main; "
                                   "sys.exit(client_main(sys.argv[1:]))", shard["publish"]["endpoint"],
                                   str(warmup + seconds), str(out)], cwd=ROOT)
        time.sleep(warmup)
        http = http_load(port, symbols, http_rate, seconds) if http_rate > 0 else {}
        client.wait(seconds + 60)
        metrics = http_get(port, "/metrics")[1].decode()
    finally:
        stop(shard_p)
        stop(sim_p)
    got = json.loads(out.read_text())
    result = {"symbols": n, "rate": rate, "loadavg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]}
    result.update(vector_latency(got, warmup))
    result["http"] = http
    result["shard_tick_to_publish"] = histogram(metrics, "fs_tick_to_publish_seconds")
    result["bridge"] = bridge_counters(root / "shard.log")
    return result


def client_main(argv: list[str]) -> int:
    """The SUB client process: record (ts, arrival ns) of every features.live vector for S seconds."""
    import zmq

    from api.wire import TOPIC_PREFIX, decode

    endpoint, seconds, out = argv[0], float(argv[1]), Path(argv[2])
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.connect(endpoint)
    sub.subscribe(TOPIC_PREFIX)
    raw: list[tuple[int, list[bytes]]] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if sub.poll(int(left * 1000) + 1):
            parts = sub.recv_multipart()
            raw.append((time.time_ns(), parts))  # stamped before any decoding
    sub.close(linger=0)
    ctx.term()
    vecs = [(decode(parts), t) for t, parts in raw]
    out.write_text(json.dumps({"ts": [v.ts_ns for v, _ in vecs], "arrival": [t for _, t in vecs],
                               "symbol": [v.symbol for v, _ in vecs]}))
    return 0


def vector_latency(got: dict[str, list], warmup: int) -> dict[str, Any]:
    """p50/p99/max of arrival - ts (ms) over the vectors after the first `warmup` seconds of ticks."""
    ts, arrival = np.asarray(got["ts"], dtype=np.int64), np.asarray(got["arrival"], dtype=np.int64)
    if not len(ts):
        return {"vectors": 0, "ticks": 0}
    keep = ts >= ts.min() + warmup * NS
    ts, arrival = ts[keep], arrival[keep]
    lat = (arrival - ts) / 1e6
    # The last vector of each tick: when a subscriber wanting every symbol has them all.
    last = {}
    for t, a in zip(ts.tolist(), arrival.tolist(), strict=True):
        last[t] = max(last.get(t, a), a)
    whole = (np.asarray(list(last.values())) - np.asarray(list(last.keys()))) / 1e6
    return {"vectors": int(len(lat)), "ticks": len(last), **quantiles(lat, "ms"),
            "last_of_tick_p50_ms": float(np.median(whole)), "last_of_tick_p99_ms": float(np.percentile(whole, 99))}


def quantiles(x: np.ndarray, unit: str) -> dict[str, float]:
    """p50, p99 and max of `x`, keys suffixed with `unit`."""
    if not len(x):
        return {}
    return {f"p50_{unit}": float(np.median(x)), f"p99_{unit}": float(np.percentile(x, 99)),
            f"max_{unit}": float(np.max(x))}


# --- HTTP load --------------------------------------------------------------------------------

def http_load(port: int, symbols: list[str], rate: float, seconds: float) -> dict[str, Any]:
    """Send GET /features/latest at `rate`/s for `seconds` (paced, one connection); p50/p99 in ms."""
    import asyncio

    return asyncio.run(_http_load(port, symbols, rate, seconds))


async def _http_load(port: int, symbols: list[str], rate: float, seconds: float) -> dict[str, Any]:
    import asyncio

    import aiohttp

    n = int(rate * seconds)
    times: list[float] = []
    status: dict[int, int] = {}
    timeout = aiohttp.ClientTimeout(total=2.0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), timeout=timeout) as session:
        t0 = time.perf_counter()
        end = t0 + seconds  # bounded in time too: a slow machine sends fewer, never runs over
        for i in range(n):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif time.perf_counter() > end:
                break
            url = f"http://127.0.0.1:{port}/features/latest?symbol={symbols[i % len(symbols)]}"
            t = time.perf_counter_ns()
            code = 0  # no answer (refused, reset, timed out)
            try:
                async with session.get(url) as r:
                    await r.read()
                    code = r.status
            except (TimeoutError, aiohttp.ClientError):
                pass
            status[code] = status.get(code, 0) + 1
            if code:
                times.append((time.perf_counter_ns() - t) / 1e6)
        took = time.perf_counter() - t0
    sent = sum(status.values())
    return {"requests": sent, "planned": n, "achieved_rps": sent / took,
            "status": {str(k): v for k, v in sorted(status.items())}, **quantiles(np.asarray(times), "ms")}


def http_main(argv: list[str]) -> int:
    """The HTTP load process of `where_case`: wait, load, print the figures as JSON."""
    port, symbols, rate, seconds, wait = int(argv[0]), argv[1].split(","), float(argv[2]), float(argv[3]), float(argv[4])
    time.sleep(wait)
    print(json.dumps(http_load(port, symbols, rate, seconds)))
    return 0


# --- where the time goes: the real ShardNode in this process, its stages timed -----------------

def where_case(root: Path, n: int, rate: float, seconds: int, warmup: int, http_rate: float,
               gc_freeze: bool = False) -> dict[str, Any]:
    """Run the shard's own code (`ShardNode` + API) in this process with timers around each stage.

    For every batch holding a TICK: boundary -> batch returned by `Bridge.next_batch` (stamp
    lateness plus the ingest of the batch), journal append, engine fold of the batch, publish of the
    vectors; the batch size; and the garbage collector's pauses during the run. The simulator and an
    HTTP load (`http_main`) run as processes, as in `run_case`. With `gc_freeze`, everything alive
    once the shard has started is moved out of the collector's reach (`gc.freeze()`), so full
    collections no longer traverse the start-up heap (imports, numba, the restored engine).
    """
    import uvloop

    from tools.logsetup import setup_logging
    from tools.shard.config import load_shard_config

    root.mkdir(parents=True)
    sim = sim_config(root, n, rate)
    symbols = [f"SYM{i:0{max(3, len(str(n)))}d}USDT" for i in range(1, n + 1)]
    doc = shard_config(root, sim, symbols)
    cfg = load_shard_config(write_yaml(root / "shard.yaml", doc))
    import logging

    saved = logging.getLogger().handlers[:]
    log = (root / "shard.log").open("a")
    setup_logging("INFO", "json", log)
    sim_p = spawn("gateway-sim", write_yaml(root / "sim.yaml", sim), root / "sim.log")
    http = None
    if http_rate > 0:
        http = subprocess.Popen([sys.executable, "-c", "import sys; from tools.bench.latency import http_main; "
                                 "sys.exit(http_main(sys.argv[1:]))", str(doc["api"]["port"]), ",".join(symbols),
                                 str(http_rate), str(seconds), str(warmup)], cwd=ROOT, stdout=subprocess.PIPE)
    try:  # the shard outlives the HTTP load (which starts after its imports and `warmup`)
        marks, pauses = uvloop.run(_profiled(cfg, warmup + seconds + 3, gc_freeze))
    finally:
        stop(sim_p)
        http_out = http.communicate(timeout=seconds + 60)[0] if http is not None else b""
        logging.getLogger().handlers[:] = saved
        log.close()
    keep = [m for m in marks if m["b"] >= marks[0]["b"] + warmup * NS] if marks else []
    out: dict[str, Any] = {"ticks": len(keep)}
    for stage, (a, b) in STAGES.items():
        out[stage] = quantiles(np.asarray([(m[b] - m[a]) / 1e6 for m in keep]), "ms")
    out["batch_records"] = quantiles(np.asarray([m["records"] for m in keep], dtype=float), "n")
    out["gc"] = {"pauses": len(pauses), **quantiles(np.asarray([ms for _, ms in pauses]), "ms"),
                 "by_generation": {str(g): {"pauses": sum(1 for k, _ in pauses if k == g),
                                            "max_ms": max((ms for k, ms in pauses if k == g), default=0.0)}
                                   for g in (0, 1, 2)}}
    out["http"] = json.loads(http_out) if http_out.strip() else {}
    out["gc_freeze"] = gc_freeze
    out["per_tick_ms"] = [[round((m[b] - m[a]) / 1e6, 3) for a, b in STAGES.values()] + [m["records"]] for m in keep]
    return out


#: Stage name -> (from mark, to mark) of `_profiled`.
STAGES = {"total": ("b", "pub"), "to_batch": ("b", "got"), "append": ("got", "append"),
          "fold": ("append", "fold"), "publish": ("fold", "pub")}


async def _profiled(cfg: Any, seconds: float, gc_freeze: bool = False) -> tuple[list[dict[str, int]], list[tuple[int, float]]]:
    """Serve the shard (node + API) for `seconds`; return per-tick stage marks and GC pauses (ms)."""
    import asyncio
    import gc

    from api.app import create_app
    from api.server import start_server
    from engine.record import Kind
    from tools.shard.node import ShardNode
    from tools.shard.view import NodeView

    node = ShardNode(cfg)
    marks: list[dict[str, int]] = []
    cur: dict[str, int] = {}
    pauses: list[tuple[int, float]] = []
    gc_t0 = [0]

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_t0[0] = time.perf_counter_ns()
        else:
            pauses.append((int(info["generation"]), (time.perf_counter_ns() - gc_t0[0]) / 1e6))

    next_batch, append, fold, publish = node.bridge.next_batch, node.writer.append, node.fold.batch, node._publish

    async def timed_next_batch() -> list:
        recs = await next_batch()
        cur.clear()
        ticks = [r.recv_ns for r in recs if r.kind == Kind.TICK]
        if ticks:
            cur.update(b=ticks[-1], got=time.time_ns(), records=len(recs))
        return recs

    def timed(fn: Any, mark: str) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            out = fn(*a, **kw)
            if cur:
                cur[mark] = time.time_ns()
                if mark == "pub":
                    marks.append(dict(cur))
            return out
        return wrapper

    node.bridge.next_batch = timed_next_batch  # type: ignore[method-assign]
    node.writer.append = timed(append, "append")  # type: ignore[method-assign]
    node.fold.batch = timed(fold, "fold")  # type: ignore[method-assign]
    node._publish = timed(publish, "pub")  # type: ignore[method-assign]
    app = create_app(NodeView(node, {}), node.metrics, background=[node.background])
    server = await start_server(app, cfg.api.host, cfg.api.port)
    if gc_freeze:
        gc.collect()
        gc.freeze()
    gc.callbacks.append(on_gc)
    try:
        await asyncio.sleep(seconds)
    finally:
        gc.callbacks.remove(on_gc)
        await server.close()
        if gc_freeze:
            gc.unfreeze()
    return [m for m in marks if "fold" in m and "append" in m], pauses


# --- what the shard says about itself ------------------------------------------------------------

def histogram(text: str, name: str) -> dict[str, Any]:
    """A Prometheus histogram from /metrics text: count, mean (ms) and the bucket holding p50 and p99."""
    buckets = [(float(m.group(1)), float(m.group(2))) for m in
               re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} (\S+)$', text, re.M)]
    count = re.search(rf"^{name}_count (\S+)$", text, re.M)
    total = re.search(rf"^{name}_sum (\S+)$", text, re.M)
    if not buckets or count is None or total is None or float(count.group(1)) == 0:
        return {}
    n = float(count.group(1))

    def upper(q: float) -> float:
        return next(le for le, c in buckets if c >= q * n) * 1e3

    return {"count": int(n), "mean_ms": float(total.group(1)) / n * 1e3, "p50_le_ms": upper(0.5),
            "p99_le_ms": upper(0.99), "buckets": {f"{le * 1e3:g}ms": int(c) for le, c in buckets}}


def bridge_counters(log: Path) -> dict[str, int]:
    """The tick lateness counters of the bridge's last ``bridge counters``/``bridge closed`` log line."""
    out: dict[str, int] = {}
    for e in log_events(log):
        msg = str(e.get("event", ""))
        if msg.startswith(("bridge counters", "bridge closed")):
            found = dict(re.findall(r"(tick_late_\w+|batches|received)=(\d+)", msg))
            out = {k: int(v) for k, v in found.items()}
    return out


# --- the engine alone -------------------------------------------------------------------------

def engine_tick(n: int, rate: float, seconds: int) -> dict[str, float]:
    """Median/p99/max ms of `Engine.apply(tick)` for N symbols fed `rate` events/s (in process)."""
    from tools.bench.engine import _time_apply
    from tools.sim.synthetic_records import records

    symbols = [f"SYM{i:03d}USDT" for i in range(1, n + 1)]
    recs = list(records(symbols, seconds, max(1, int(rate)), seed=11))
    _, ticks = _time_apply(recs, symbols)
    ticks = ticks[2:] / 1e6  # the first ticks run on books still filling
    return {"ticks": int(len(ticks)), **quantiles(ticks, "ms")}


# --- report -----------------------------------------------------------------------------------

def format_table(results: list[dict[str, Any]]) -> str:
    """The figures as a fixed-width table (ms)."""
    head = (f"{'symbols':>7} {'msgs/s':>7} {'vectors':>7} {'p50':>7} {'p99':>7} {'max':>7} {'all-p99':>8} "
            f"{'shard p50≤':>10} {'p99≤':>6} {'late µs':>8} {'engine p50':>10} {'p99':>6} "
            f"{'http p50':>8} {'p99':>6} {'rps':>5}")
    lines = ["", "features.live latency, tick boundary -> SUB client in another process (ms)", head]
    for r in results:
        s, e, h, b = r.get("shard_tick_to_publish", {}), r["engine_tick"], r.get("http", {}), r.get("bridge", {})
        lines.append(
            f"{r['symbols']:>7} {r['rate']:>7g} {r['vectors']:>7} {r.get('p50_ms', 0):>7.2f} {r.get('p99_ms', 0):>7.2f} "
            f"{r.get('max_ms', 0):>7.2f} {r.get('last_of_tick_p99_ms', 0):>8.2f} {s.get('p50_le_ms', 0):>10g} "
            f"{s.get('p99_le_ms', 0):>6g} {b.get('tick_late_max_us', -1):>8} {e.get('p50_ms', 0):>10.3f} "
            f"{e.get('p99_ms', 0):>6.3f} {h.get('p50_ms', 0):>8.2f} {h.get('p99_ms', 0):>6.2f} "
            f"{h.get('achieved_rps', 0):>5.0f}")
    lines.append("all-p99: p99 of the last vector of each tick; shard: fs_tick_to_publish_seconds bucket "
                 "holding p50/p99; late: bridge tick_late_max_us; engine: Engine.apply(tick) in process")
    return "\n".join(lines)


def format_where(results: list[dict[str, Any]]) -> str:
    """Per case: p50 / p99 ms of each stage of a tick inside the shard, batch size, GC pauses."""
    lines = ["", "where the time goes inside the shard (ms, p50 / p99 over ticks; the shard in this process)",
             f"{'symbols':>7} {'msgs/s':>7} " + " ".join(f"{s:>13}" for s in STAGES) + f" {'batch recs':>11}"
             f" {'gc pauses':>9} {'gc max':>7} {'gen2 n/max':>11} {'http p99':>8}"]
    for r in results:
        w = r.get("where")
        if not w:
            continue
        cells = " ".join(f"{w[s].get('p50_ms', 0):>6.2f}/{w[s].get('p99_ms', 0):<6.2f}" for s in STAGES)
        g2 = w["gc"]["by_generation"]["2"]
        lines.append(f"{r['symbols']:>7} {r['rate']:>7g} {cells} {w['batch_records'].get('p50_n', 0):>5.0f}/"
                     f"{w['batch_records'].get('p99_n', 0):<5.0f} {w['gc']['pauses']:>9} "
                     f"{w['gc'].get('max_ms', 0):>7.2f} {g2['pauses']:>4}/{g2['max_ms']:<6.1f} "
                     f"{w['http'].get('p99_ms', 0):>8.2f}")
    lines.append("to_batch: boundary -> Bridge.next_batch returned the batch holding the tick (stamp lateness + "
                 "drain + ingest); append: journal; fold: engine over the batch (tick compute included); "
                 "publish: features.live + latest + feature log")
    return "\n".join(lines)
