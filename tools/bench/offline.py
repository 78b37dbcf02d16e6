"""`feature-service bench offline`: offline rebuild speed beside vectorised pandas and the naive baseline.

Three parts, every figure the median of `--repeats` runs after a warm-up (JIT compile time kept out):

- stream: the same in-memory synthetic stream (the bench-engine stream: `--seconds` × `--symbols`,
  200 events/s per symbol) through the engine (record by record, and with its deltas as delta runs
  when `engine.runs` is there), the vectorised pandas implementation (`tools/bench/pandas_baseline.py`)
  and the naive one (`tools/bench/baselines.py`): seconds, records/s, engine/pandas ratio.
- store: the stream as a journal (`tools/bench/synthetic_journal.py`): compaction to the Parquet store,
  replay from the store end to end (records/s and book level updates/s) and journal replay (today's
  path, the baseline). A piece not built yet prints "not available yet: …".
- scaling: 1×, 10×, 100× the seconds (`--scale`; above 100× only with `--allow-1000x`): a replay in a
  child process, timed inside it after a warm-up on a tiny journal, with its peak RSS, to show linear
  time and flat memory; each store row also carries that scale's compaction time.

Ratios ``a_vs_b`` are b's seconds over a's: how many times faster a is. The naive baseline runs
`--naive-repeats` times (default 1: about 8 s a run at 600 s). The store part replays the store and
the journal's (empty) uncompacted tail; scaling replays the store alone.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

NS = 1_000_000_000
#: Events per second per symbol of the stream (bench engine's rate).
RATE = 200
#: Seed of the stream (bench engine's).
SEED = 11
#: The goals of issue 8 §4, checked in the summary.
GOALS = {"engine_vs_pandas": 3.0, "store_replay_records_per_s": 1_000_000.0,
         "store_replay_level_updates_per_s": 5_000_000.0, "compaction_records_per_s": 200_000.0}
#: Records the in-memory stream may hold (about 1 KiB each with their arrays).
MAX_STREAM_RECORDS = 6_000_000
#: Scale factors allowed without --allow-1000x.
MAX_SCALE = 100
NA = "not available yet"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the benchmark's options."""
    p.add_argument("--seconds", type=int, default=600, help="seconds of synthetic data (1x) (default 600)")
    p.add_argument("--symbols", type=int, default=1, help="symbols in the synthetic data (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="runs per figure; figures are medians (default 5)")
    p.add_argument("--naive-repeats", type=int, default=1, help="runs of the slow naive baseline (default 1)")
    p.add_argument("--scale", default="1,10,100", help="scaling factors of --seconds, comma-separated; '' skips")
    p.add_argument("--scale-repeats", type=int, default=1, help="runs per scaling point (default 1)")
    p.add_argument("--allow-1000x", action="store_true", help="allow scaling factors above 100 (disk: ~30 GB at 1000x)")
    p.add_argument("--dir", default="", help="where the scratch journals and stores go (default: system temp)")
    p.add_argument("--json", metavar="FILE", default="", help="also write the figures as JSON")


def symbol_names(n: int) -> list[str]:
    """`n` symbol names, BTCUSDT first (the bench-engine stream's symbol)."""
    return ["BTCUSDT"] + [f"SYM{i:03d}USDT" for i in range(1, n)]


def parse_scales(text: str, allow_huge: bool) -> list[int]:
    """The scaling factors of `--scale`; UsageError naming the bad value."""
    from tools.cli import UsageError

    if not text.strip():
        return []
    try:
        scales = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"bench offline: --scale {text!r} must be comma-separated integers") from None
    if any(s < 1 for s in scales):
        raise UsageError(f"bench offline: --scale {text!r}: each factor must be >= 1")
    if not allow_huge and any(s > MAX_SCALE for s in scales):
        raise UsageError(f"bench offline: --scale {text!r}: factors above {MAX_SCALE} need --allow-1000x")
    return scales


def _check(args: argparse.Namespace) -> list[int]:
    from tools.cli import UsageError

    for name, lo, hi in (("seconds", 5, 86_400 * 31), ("symbols", 1, 1000), ("repeats", 1, 100),
                         ("naive_repeats", 1, 100), ("scale_repeats", 1, 100)):
        v = getattr(args, name)
        if not lo <= v <= hi:
            raise UsageError(f"bench offline: --{name.replace('_', '-')} {v} is not within [{lo}, {hi}]")
    if args.seconds * args.symbols * RATE > MAX_STREAM_RECORDS:
        raise UsageError(f"bench offline: --seconds {args.seconds} x --symbols {args.symbols} would hold "
                         f"{args.seconds * args.symbols * RATE:,} records in memory (at most {MAX_STREAM_RECORDS:,})")
    if args.dir and not Path(args.dir).is_dir():
        raise UsageError(f"bench offline: --dir {args.dir}: not a directory")
    return parse_scales(args.scale, args.allow_1000x)


def run(args: argparse.Namespace) -> int:
    """Run the three parts and print the figures (and write them as JSON with --json)."""
    scales = _check(args)
    logging.getLogger("journal").setLevel(logging.WARNING)  # not a line per segment and compaction run
    symbols = symbol_names(args.symbols)
    doc: dict[str, Any] = {"seconds": args.seconds, "symbols": len(symbols), "repeats": args.repeats}
    with tempfile.TemporaryDirectory(dir=args.dir or None, prefix="bench-offline-") as tmp:
        root = Path(tmp)
        doc["stream"] = bench_stream(symbols, args.seconds, args.repeats, args.naive_repeats)
        _show("stream (in memory, same records for each)", doc["stream"])
        doc["store"] = bench_store(root / "x1", symbols, args.seconds, args.repeats)
        _show("store and journal (from disk)", doc["store"])
        doc["scaling"] = bench_scaling(root, symbols, args.seconds, scales, args.scale_repeats)
    doc["goals"] = goals(doc)
    _show("goals (issue 8 §4)", doc["goals"])
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return 0


# --- helpers -------------------------------------------------------------------------------------

def median_seconds(work: Callable[[], Any], repeats: int) -> float:
    """Median wall seconds of `repeats` runs of `work`."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


class Unavailable(Exception):
    """A piece a figure needs is not there (yet): the figure reads "not available yet: <why>"."""


def optional(name: str, fn: Callable[[], dict[str, Any]], *keys: str) -> dict[str, Any]:
    """`fn()`'s figures; every key of `keys` reads "not available yet: …" when a piece is missing, "failed: …"
    when it is there but raised (the bench goes on either way)."""
    try:
        return fn()
    except (ImportError, Unavailable) as e:
        return dict.fromkeys(keys, f"{NA}: {name}: {e}")
    except Exception as e:  # noqa: BLE001 - a piece being built by someone else must not stop the bench
        return dict.fromkeys(keys, f"failed: {name}: {type(e).__name__}: {e}")


def _rate(n: int, seconds: Any) -> Any:
    return n / seconds if isinstance(seconds, float) and seconds > 0 else seconds


def _ratio(a: Any, b: Any) -> Any:
    """a / b when both are numbers, else the one that is not (its "not available" text)."""
    if isinstance(a, float) and isinstance(b, float) and b > 0:
        return a / b
    return a if not isinstance(a, float) else b


# --- (a) the in-memory stream ------------------------------------------------------------------------

def stream_records(symbols: list[str], seconds: int) -> list[Any]:
    """The bench-engine stream (`seconds` × `symbols`, RATE events/s per symbol, seed SEED) as a list."""
    from tools.bench.synthetic_journal import synthetic_stream

    stream, _, _ = synthetic_stream(symbols, seconds, RATE, SEED)
    return list(stream)


def bench_stream(symbols: list[str], seconds: int, repeats: int, naive_repeats: int) -> dict[str, Any]:
    """Engine, engine with delta runs, vectorised pandas and naive on one in-memory stream."""
    from engine.record import Kind
    from tools.bench import pandas_baseline
    from tools.registry_file import default_registry

    registry = default_registry()
    recs = stream_records(symbols, seconds)
    n = len(recs)
    out: dict[str, Any] = {"records": n, "ticks": sum(1 for r in recs if r.kind == Kind.TICK),
                           "features": len(registry.features), "symbols": len(symbols)}
    out["engine_s"] = _time_engine(recs, registry, symbols, repeats)
    out["engine_records_per_s"] = _rate(n, out["engine_s"])
    out.update(optional("engine delta runs (engine/runs.py)", lambda: _time_engine_runs(recs, registry, symbols, repeats),
                        "engine_runs_s", "engine_runs_records_per_s"))
    pandas_baseline.compute(recs[: min(n, 5000)], registry, symbols)  # warm-up (imports, first calls)
    out["pandas_s"] = median_seconds(lambda: pandas_baseline.compute(recs, registry, symbols), repeats)
    out["pandas_records_per_s"] = _rate(n, out["pandas_s"])
    out["pandas_uncovered"] = ",".join(pandas_baseline.uncovered(registry)) or "none"
    out["naive_s"] = median_seconds(lambda: _naive(recs, symbols), naive_repeats)
    out["naive_records_per_s"] = _rate(n, out["naive_s"])
    out["engine_vs_pandas"] = _ratio(out["pandas_s"], out["engine_s"])
    out["engine_runs_vs_pandas"] = _ratio(out["pandas_s"], out["engine_runs_s"])
    out["engine_vs_naive"] = _ratio(out["naive_s"], out["engine_s"])
    return out


def _time_engine(recs: list[Any], registry: Any, symbols: list[str], repeats: int) -> float:
    """Median seconds of one fold (`engine.replay.Fold`) over `recs`, after a warm-up fold."""
    from engine.engine import Engine
    from engine.replay import Fold

    Fold(Engine(registry, symbols)).batch(recs[: min(len(recs), 20_000)])  # compile outside the figure
    return median_seconds(lambda: Fold(Engine(registry, symbols)).batch(recs), repeats)


def _time_engine_runs(recs: list[Any], registry: Any, symbols: list[str], repeats: int) -> dict[str, Any]:
    """The fold with consecutive deltas as delta runs (the store replay's input; built outside the figure)."""
    from engine.engine import Engine
    from engine.replay import Fold
    from engine.runs import runs_of

    items = list(runs_of(recs))
    want = len(Fold(Engine(registry, symbols)).batch(recs).vectors)
    got = len(Fold(Engine(registry, symbols)).batch(items).vectors)  # also the warm-up
    if got != want:
        raise Unavailable(f"the fold of delta runs gave {got} vectors, the records {want}")
    s = median_seconds(lambda: Fold(Engine(registry, symbols)).batch(items), repeats)
    return {"engine_runs_s": s, "engine_runs_records_per_s": len(recs) / s}


def _naive(recs: list[Any], symbols: list[str]) -> None:
    """The naive pure-Python baseline over `recs` (one `NaiveSymbol` per symbol, a vector per tick)."""
    from engine.record import Kind
    from tools.bench.baselines import NaiveSymbol
    from tools.bench.engine import _naive_one

    states = {s: NaiveSymbol(200) for s in symbols}
    tick = int(Kind.TICK)
    for r in recs:
        if r.kind == tick:
            for st in states.values():
                st.tick(r.recv_ns)
        elif r.symbol in states:
            _naive_one(states[r.symbol], r)


# --- (b) compaction, store replay, journal replay -------------------------------------------------

def bench_store(root: Path, symbols: list[str], seconds: int, repeats: int) -> dict[str, Any]:
    """Write the stream as a journal; time compaction, store replay and journal replay on it."""
    from tools.bench.synthetic_journal import write_journal

    journal = root / "journal"
    info = write_journal(journal, symbols, seconds, rate=RATE, seed=SEED)
    out: dict[str, Any] = {"journal_records": info.records, "journal_mib": info.bytes / 2**20,
                           "level_updates": info.level_updates}
    out.update(optional("compaction (journal/store/compact.py)", lambda: _compaction(journal, root, repeats, info.records),
                        "compaction_s", "compaction_records_per_s"))
    store = root / "store"
    out.update(optional("replay from the store (journal/store/replay.py replay_store)",
                        lambda: _store_replay(journal, store, repeats, info.records, info.level_updates),
                        "store_replay_s", "store_replay_records_per_s", "store_replay_level_updates_per_s"))
    out["journal_replay_s"] = median_seconds(lambda: journal_replay(journal), repeats)
    out["journal_replay_records_per_s"] = _rate(info.records, out["journal_replay_s"])
    out["store_vs_journal_replay"] = _ratio(out["journal_replay_s"], out["store_replay_s"])
    return out


def compact_into(journal: Path, store: Path) -> Any:
    """Compact every segment of `journal` into a store at `store`; segments kept, no date checkpoints."""
    from journal.store.compact import compact
    from journal.store.config import StoreConfig

    return compact(journal, StoreConfig(dir=str(store), delete_segments=False, checkpoints=False))


def _compaction(journal: Path, root: Path, repeats: int, records: int) -> dict[str, Any]:
    """Median seconds of compacting the whole journal into a fresh store (the last one is kept as `store`)."""
    times = []
    for i in range(repeats + 1):  # the first run is the warm-up
        store = root / f"store-{i}"
        t0 = time.perf_counter()
        summary = compact_into(journal, store)
        times.append(time.perf_counter() - t0)
        if summary.records != records:
            raise Unavailable(f"compaction stored {summary.records} of {records} records")
        if i < repeats:
            shutil.rmtree(store)
    (root / f"store-{repeats}").rename(root / "store")
    s = float(statistics.median(times[1:]))
    return {"compaction_s": s, "compaction_records_per_s": records / s}


def store_replay(store: Path, journal: Path | None) -> int:
    """Replay the store (and `journal`'s uncompacted tail) through the engine; return the vectors."""
    from journal.store.layout import StoreRoots
    from journal.store.replay import replay_store

    vectors, _, _ = replay_store(StoreRoots(store), journal)
    return sum(1 for _ in vectors)


def journal_replay(journal: Path) -> int:
    """Replay the journal through the engine (`tools/offline/replay.py`, today's path); return the vectors."""
    from tools.offline.replay import replay

    return sum(1 for _ in replay(str(journal)))


def _store_replay(journal: Path, store: Path, repeats: int, records: int, levels: int) -> dict[str, Any]:
    if not (store / "_manifest.json").exists():
        raise Unavailable("no store to replay (compaction did not run)")
    want = journal_replay(journal)
    got = store_replay(store, journal)  # also the warm-up
    if got != want:
        raise Unavailable(f"store replay gave {got} vectors, journal replay {want}")
    s = median_seconds(lambda: store_replay(store, journal), repeats)
    return {"store_replay_s": s, "store_replay_records_per_s": records / s, "store_replay_level_updates_per_s": levels / s}


# --- (c) scaling -----------------------------------------------------------------------------------

_CHILD = "from tools.bench.offline import child_main; child_main()"


def bench_scaling(root: Path, symbols: list[str], seconds: int, scales: list[int], repeats: int) -> list[dict[str, Any]]:
    """For each factor: write `seconds` × factor of data, replay it in a child process (journal, store)."""
    from tools.bench.synthetic_journal import write_journal

    _scaling_header(scales)
    if not scales:
        return []
    warm = root / "warm"
    write_journal(warm / "journal", symbols, 5, rate=RATE, seed=SEED + 1)
    warm_store = _try_compact(warm / "journal", warm / "store")
    rows = []
    for k in scales:
        data = root / f"scale-{k}"
        info = write_journal(data / "journal", symbols, seconds * k, rate=RATE, seed=SEED)
        base = {"scale": k, "seconds": seconds * k, "records": info.records, "journal_mib": info.bytes / 2**20}
        rows.append({**base, "path": "journal", **_child_runs("journal", data / "journal", warm / "journal",
                                                               info.records, repeats)})
        _scaling_row(rows[-1])
        t0 = time.perf_counter()
        store = _try_compact(data / "journal", data / "store") if warm_store else None
        compaction = {"compaction_s": time.perf_counter() - t0}
        compaction["compaction_records_per_s"] = info.records / compaction["compaction_s"]
        if store is None:
            rows.append({**base, "path": "store", "status": f"{NA}: compaction or replay_store"})
        else:
            rows.append({**base, "path": "store", **_child_runs("store", store, warm_store, info.records, repeats),
                         **compaction})
        _scaling_row(rows[-1])
        shutil.rmtree(data)
    return rows


def _try_compact(journal: Path, store: Path) -> Path | None:
    """Compact `journal` into `store`; None when compaction or the store replay is not there yet."""
    try:
        importlib.import_module("journal.store.replay")  # the store path needs both pieces
        compact_into(journal, store)
    except ImportError:
        return None
    return store


def _child_runs(mode: str, path: Path, warm: Path, records: int, repeats: int) -> dict[str, Any]:
    """Median replay seconds, records/s and peak RSS over `repeats` child processes."""
    runs = [_child(mode, path, warm) for _ in range(repeats)]
    s = float(statistics.median(r["seconds"] for r in runs))
    peak = float(statistics.median(r["peak_rss_kib"] for r in runs)) / 1024
    start = float(statistics.median(r["start_rss_kib"] for r in runs)) / 1024
    return {"replay_s": s, "records_per_s": records / s, "peak_rss_mib": peak, "start_rss_mib": start,
            "rss_growth_bytes_per_record": (peak - start) * 2**20 / max(records, 1), "vectors": runs[0]["vectors"]}


def _child(mode: str, path: Path, warm: Path) -> dict[str, Any]:
    """Run one replay in a child process; its JSON line of figures."""
    done = subprocess.run([sys.executable, "-c", _CHILD, mode, str(path), str(warm)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"bench offline: the {mode} replay child failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _status_kib(key: str) -> int:
    """One KiB figure of /proc/self/status (``VmRSS``, ``VmHWM``); 0 where there is no /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _reset_peak() -> bool:
    """Reset this process's peak RSS (VmHWM) to its current RSS (Linux clear_refs 5); False if impossible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
    except OSError:
        return False
    return True


def child_main(argv: list[str] | None = None) -> None:
    """Child process: replay `warm` (compile, caches), then time the replay of `path`; print figures as JSON.

    The peak RSS is the measured replay's (VmHWM reset after the warm-up; ru_maxrss, which also
    holds the warm-up's peak, where /proc cannot reset it).
    """
    import resource

    mode, path, warm = (argv if argv is not None else sys.argv[1:])[:3]
    replay = journal_replay if mode == "journal" else (lambda p: store_replay(p, None))
    replay(Path(warm))
    reset = _reset_peak()  # the peak of the measured replay, not of imports and compiling
    start = _status_kib("VmRSS")
    t0 = time.perf_counter()
    vectors = replay(Path(path))
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB
    print(json.dumps({"seconds": seconds, "vectors": vectors, "start_rss_kib": start, "peak_rss_kib": peak}))


# --- output ------------------------------------------------------------------------------------------

def goals(doc: dict[str, Any]) -> dict[str, Any]:
    """Each goal of issue 8 §4: the measured figure against its target (engine: its faster path)."""
    found = {**doc["stream"], **doc["store"]}
    paths = {"records": found.get("engine_vs_pandas"), "delta runs": found.get("engine_runs_vs_pandas")}
    numbers = {k: v for k, v in paths.items() if isinstance(v, float)}
    if numbers:
        best = max(numbers, key=numbers.__getitem__)
        found["engine_vs_pandas"] = numbers[best]
    out = {}
    for key, target in GOALS.items():
        v = found.get(key)
        out[key] = f"{v:,.2f} vs goal >= {target:,.0f}: {'met' if v >= target else 'NOT met'}" \
            if isinstance(v, float) else v
    if numbers:
        out["engine_vs_pandas"] += f" (engine fed {best})"
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def _show(title: str, figures: dict[str, Any]) -> None:
    print(f"{title}:")
    width = max((len(k) for k in figures), default=0)
    for k, v in figures.items():
        print(f"  {k:<{width}}  {_fmt(v)}")
    sys.stdout.flush()


_SCALING_COLUMNS = ("scale", "path", "seconds", "records", "replay_s", "records_per_s", "start_rss_mib",
                    "peak_rss_mib", "rss_growth_bytes_per_record")


def _scaling_header(scales: list[int]) -> None:
    print("scaling (replay in a child process, after a warm-up):")
    if scales:
        print("  " + "  ".join(f"{c:>14}" for c in _SCALING_COLUMNS))
    else:
        print("  skipped (--scale '')")
    sys.stdout.flush()


def _scaling_row(r: dict[str, Any]) -> None:
    if "status" in r:
        print(f"  {r['scale']:>14}  {r['path']:>14}  {r['status']}")
    else:
        extra = f"  (compaction {_fmt(r['compaction_s'])} s, {_fmt(r['compaction_records_per_s'])} records/s)" \
            if "compaction_s" in r else ""
        print("  " + "  ".join(f"{_fmt(r[c]):>14}" for c in _SCALING_COLUMNS) + extra)
    sys.stdout.flush()
