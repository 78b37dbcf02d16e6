"""`feature-service bench engine`: book updates, per-event apply, per-tick cost, replay throughput.

Each figure is printed beside a naive pure-Python version of the same work measured in the same
run (`tools/bench/baselines.py`). JIT compile time is measured separately, in a fresh process
with an empty numba cache, and kept out of every other figure by a warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.record import Kind
from tools.bench.baselines import NaiveSymbol

NS = 1_000_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the benchmark's size options."""
    p.add_argument("--deltas", type=int, default=100_000, help="book deltas in the book benchmark")
    p.add_argument("--seconds", type=int, default=600, help="synthetic seconds for apply/tick/replay")
    p.add_argument("--rate", type=int, default=200, help="synthetic events per second")
    p.add_argument("--repeats", type=int, default=5, help="repeats per throughput figure (median)")
    p.add_argument("--json", metavar="FILE", default="", help="also write the figures as JSON")
    p.add_argument("--recording", metavar="FILE", default="", help="also measure apply/tick on this capture")
    p.add_argument("--format", default="cryptofeed", help="import format of --recording (default cryptofeed)")


def run(args: argparse.Namespace) -> int:
    """Run every engine benchmark and print the figures."""
    results: dict[str, dict] = {"compile": compile_time()}
    _show("first JIT compile (fresh cache)", results["compile"])
    from tools.sim.synthetic_records import records

    recs = list(records(["BTCUSDT"], args.seconds, args.rate, seed=11))
    for name, fn in (("book", lambda: bench_book(args.deltas, args.repeats)),
                     ("apply", lambda: bench_apply(recs)),
                     ("replay", lambda: bench_replay(recs, args.repeats))):
        results[name] = fn()
        _show(name, results[name])
    if args.recording:
        results["recording"] = bench_recording(args.recording, args.format)
        _show(f"apply on {os.path.basename(args.recording)}", results["recording"])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)
    return 0


def _show(name: str, figures: dict) -> None:
    print(f"{name}:")
    for k, v in figures.items():
        print(f"  {k}: {v:,.3f}" if isinstance(v, float) else f"  {k}: {v}")
    sys.stdout.flush()


def _median_rate(work: Callable[[], int], repeats: int) -> float:
    """Median of units/second over `repeats` runs of `work` (which returns its unit count)."""
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        n = work()
        rates.append(n / ((time.perf_counter_ns() - t0) / NS))
    return float(np.median(rates))


def compile_time() -> dict:
    """Seconds the first snapshot+delta+tick take in a fresh process with an empty numba cache."""
    code = (
        "import time; t0=time.perf_counter()\n"
        "from tools.sim.synthetic_records import records\n"
        "from engine.engine import Engine\n"
        "from tools.registry_file import default_registry\n"
        "e=Engine(default_registry(), ['BTCUSDT']); t1=time.perf_counter()\n"
        "for r in records(['BTCUSDT'], 3, 50): e.apply(r)\n"
        "print(t1-t0, time.perf_counter()-t1)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        warm = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    imp, first = map(float, cold.stdout.split())
    _, cached = map(float, warm.stdout.split())
    return {"import_s": imp, "first_run_compile_s": first, "second_process_cached_s": cached}


def bench_book(n_deltas: int, repeats: int) -> dict:
    """Level updates/s and per-delta cost on a 200-level book, engine vs dict baseline."""
    from engine.orderbook import OrderBook
    from tools.bench.baselines import NaiveBook
    from tools.sim.synthetic_records import SyntheticBook

    sb = SyntheticBook(np.random.default_rng(3), 200, 100_000, 0.01)
    snap = sb.snapshot()
    deltas = [sb.delta(int(sb.rng.integers(1, 21))) for _ in range(n_deltas)]
    levels = sum(len(d["b"]) + len(d["a"]) for d in deltas)

    def engine_pass() -> int:
        book = OrderBook(200)
        book.apply_snapshot(snap["u"], snap["b"], snap["a"])
        for d in deltas:
            book.apply_delta(d["u"], d["b"], d["a"])
        return levels

    lists = [(d["b"].tolist(), d["a"].tolist()) for d in deltas]

    def naive_pass() -> int:
        book = NaiveBook(200)
        book.snapshot(snap["b"].tolist(), snap["a"].tolist())
        for b, a in lists:
            book.delta(b, a)
        return levels

    engine_pass()  # warm-up: compile outside the figures
    book = OrderBook(200)
    book.apply_snapshot(snap["u"], snap["b"], snap["a"])
    per = np.empty(len(deltas))
    for i, d in enumerate(deltas):
        t0 = time.perf_counter_ns()
        book.apply_delta(d["u"], d["b"], d["a"])
        per[i] = time.perf_counter_ns() - t0
    eng = _median_rate(engine_pass, repeats)
    naive = _median_rate(naive_pass, max(1, repeats // 2))
    return {"levels_per_delta_mean": levels / len(deltas), "engine_level_updates_per_s": eng,
            "naive_level_updates_per_s": naive, "ratio": eng / naive,
            "engine_delta_median_us": float(np.median(per)) / 1e3, "engine_delta_p99_us": float(np.percentile(per, 99)) / 1e3}


def _time_apply(recs: list, symbols: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-record apply times (ns) of market records and of ticks, after a warm-up run."""
    from engine.engine import Engine
    from tools.registry_file import default_registry

    registry = default_registry()
    warm = Engine(registry, symbols)
    for r in recs[: min(len(recs), 5_000)]:
        warm.apply(r)  # compiles every kernel outside the figures
    engine = Engine(registry, symbols)
    ev, ticks = [], []
    for r in recs:
        t0 = time.perf_counter_ns()
        engine.apply(r)
        (ticks if r.kind == Kind.TICK else ev).append(time.perf_counter_ns() - t0)
    return np.asarray(ev), np.asarray(ticks)


def bench_recording(path: str, fmt: str) -> dict:
    """Apply and tick cost on a real capture (imported into a scratch journal first)."""
    from gateway_bridge.importer import import_files
    from journal.reader import JournalReader
    from tools.offline.replay import journal_symbols

    with tempfile.TemporaryDirectory() as tmp:
        import_files(tmp, fmt, [path])
        recs, symbols = list(JournalReader(tmp).records()), journal_symbols(tmp)
    ev, ticks = _time_apply(recs, symbols)
    return {"records": len(recs), "symbols": ",".join(symbols),
            "engine_event_median_us": float(np.median(ev)) / 1e3,
            "engine_tick_median_us_all_symbols": float(np.median(ticks)) / 1e3,
            "engine_tick_median_us_per_symbol": float(np.median(ticks)) / 1e3 / len(symbols)}


def bench_apply(recs: list) -> dict:
    """Per-event apply cost (market records) and per-tick cost for one symbol, engine vs naive."""

    ev_a, tk_a = _time_apply(recs, ["BTCUSDT"])
    naive_ev, naive_ticks = _naive_apply(recs)
    trades = sum(len(r.payload["id"]) for r in recs if r.kind == Kind.TRADES)
    return {"events": len(ev_a), "ticks": len(tk_a), "trades_per_s": trades / max(len(tk_a), 1),
            "engine_event_median_us": float(np.median(ev_a)) / 1e3, "engine_event_p99_us": float(np.percentile(ev_a, 99)) / 1e3,
            "naive_event_median_us": float(np.median(naive_ev)) / 1e3,
            "engine_tick_median_us": float(np.median(tk_a)) / 1e3, "engine_tick_p99_us": float(np.percentile(tk_a, 99)) / 1e3,
            "naive_tick_median_us": float(np.median(naive_ticks)) / 1e3,
            "tick_ratio": float(np.median(naive_ticks) / np.median(tk_a))}


def _naive_apply(recs: list) -> tuple[np.ndarray, np.ndarray]:
    """Time the naive baseline over the same records: per market event and per tick."""

    sym = NaiveSymbol(200)
    ev, ticks = [], []
    for r in recs:
        t0 = time.perf_counter_ns()
        _naive_one(sym, r)
        (ticks if r.kind == Kind.TICK else ev).append(time.perf_counter_ns() - t0)
    return np.asarray(ev), np.asarray(ticks)


def _naive_one(sym: NaiveSymbol, r: Any) -> None:
    """Apply one record (or a `_Rec`) to the naive baseline, timing-for-timing with the engine."""
    p = r.payload
    if r.kind == Kind.TICK:
        sym.tick(r.recv_ns)
    elif r.kind == Kind.BOOK_SNAPSHOT:
        sym.book.snapshot(p["b"].tolist(), p["a"].tolist())
    elif r.kind == Kind.BOOK_DELTA:
        before = sym.book.best_prices()
        sym.book.delta(p["b"].tolist(), p["a"].tolist())
        if before != sym.book.best_prices():  # churn counts best-price changes, not size changes
            sym.churn.append(r.recv_ns)
    elif r.kind == Kind.TRADES:
        sym.trades.extend((r.recv_ns, float(px), float(v), int(s)) for px, v, s in zip(p["p"], p["v"], p["side"], strict=True))
    elif r.kind == Kind.TICKER and "fundingRate" in p["fields"]:
        sym.funding = float(p["fields"]["fundingRate"])


def bench_replay(recs: list, repeats: int) -> dict:
    """Records/s of journal → engine replay, against JSON lines + json.loads + naive apply."""
    from journal.config import JournalConfig
    from journal.writer import JournalWriter
    from tools.offline.replay import replay
    from tools.registry_file import default_registry

    registry = default_registry()
    with tempfile.TemporaryDirectory() as tmp:
        with JournalWriter(JournalConfig(dir=tmp, fsync="never")) as w:
            for i in range(0, len(recs), 4096):
                w.append(recs[i:i + 4096])
        eng = _median_rate(lambda: _count_replay(replay(tmp, registry, ["BTCUSDT"]), len(recs)), repeats)
        lines = os.path.join(tmp, "baseline.jsonl")
        with open(lines, "w", encoding="utf-8") as f:
            for r in recs:
                f.write(json.dumps([r.recv_ns, r.kind, r.symbol, {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                                                  for k, v in r.payload.items()}]) + "\n")

        def naive() -> int:
            sym = NaiveSymbol(200)
            with open(lines, encoding="utf-8") as f:
                for line in f:
                    recv_ns, kind, symbol, p = json.loads(line)
                    for k in ("b", "a", "p", "v", "side"):
                        if k in p:
                            p[k] = np.asarray(p[k])
                    _naive_one(sym, _Rec(recv_ns, kind, p))
            return len(recs)

        base = _median_rate(naive, 1)
    return {"records": len(recs), "engine_records_per_s": eng, "naive_records_per_s": base, "ratio": eng / base}


class _Rec:
    __slots__ = ("recv_ns", "kind", "payload")

    def __init__(self, recv_ns: int, kind: int, payload: dict) -> None:
        self.recv_ns, self.kind, self.payload = recv_ns, kind, payload


def _count_replay(vectors, n_records: int) -> int:  # noqa: ANN001
    for _ in vectors:
        pass
    return n_records
