"""`feature-service bench journal`: journal write/scan/decode throughput beside a naive baseline.

Writes N synthetic records (book deltas with a few levels per side as float64 (n, 2) arrays,
trades, ticks) with each fsync policy, then reads them back two ways: `scan` (frames found,
CRC-verified and indexed by seq/recv_ns/kind, no body decoded) and `decode` (every record
fully rebuilt). The baseline does the same with one JSON line per record (arrays as lists) and
with pickle, in the same run, on the same records. Each figure is the median of --repeats runs,
after one untimed warm-up run of its own (numba compilation and cold caches stay out, even with
--repeats 1). One JSON object per output line.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from engine.record import NS_PER_MS, NS_PER_S, Kind, Record

POLICIES = ("never", "interval_ms", "always")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the benchmark's options."""
    p.add_argument("--records", type=int, default=100_000, metavar="N", help="records per run (default 100000)")
    p.add_argument("--repeats", type=int, default=3, metavar="R", help="runs per figure; the median is printed")
    p.add_argument("--batch", type=int, default=16, metavar="B", help="records per append (default 16)")
    p.add_argument("--always-records", type=int, default=20_000, metavar="N",
                   help="records for fsync=always, where every batch waits for the disk (default 20000)")
    p.add_argument("--dir", default=None, metavar="DIR", help="scratch directory (default: a temporary one)")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print one JSON line per figure."""
    records = list(synthetic_records(args.records))
    scratch = Path(tempfile.mkdtemp(prefix="bench-journal-", dir=args.dir))
    try:
        _bench(records, scratch, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _bench(records: list[Record], scratch: Path, args: argparse.Namespace) -> None:
    """Measure and print every figure."""
    from journal.reader import JournalReader

    emit({"op": "setup", "records": len(records), "batch": args.batch, "repeats": args.repeats, "dir": str(scratch)})
    _warm_up(scratch / "warm", records[:1000])
    write_rate = {}
    for policy in POLICIES:
        recs = records[: args.always_records] if policy == "always" else records
        write_rate[policy] = median_rate(len(recs), args.repeats,
                                         lambda p=policy, r=recs: _write_journal(scratch, r, p, args.batch),
                                         warm=lambda p=policy: _write_journal(scratch, records[:1000], p, args.batch))
        emit({"op": "write", "fsync": policy, "records": len(recs), "records_per_s": round(write_rate[policy])})
    journal = _write_journal(scratch, records, "never", args.batch)
    nbytes = sum(p.stat().st_size for p in journal.glob("*.seg"))
    reader = JournalReader(journal)
    scan = median_rate(len(records), args.repeats, lambda: _check(len(reader.index().seq), len(records)))
    emit({"op": "scan", "what": "frames found + CRC-verified + indexed (seq, recv_ns, kind), no body decoded",
          "records_per_s": round(scan), "mb_per_s": round(scan * nbytes / len(records) / 1e6, 1)})
    decode = median_rate(len(records), args.repeats, lambda: _check(sum(1 for _ in reader.records()), len(records)))
    emit({"op": "decode", "what": "records fully decoded (payload arrays rebuilt)", "records_per_s": round(decode)})
    trades = sum(1 for r in records if r.kind == Kind.TRADES)
    filt = median_rate(len(records), args.repeats,
                       lambda: _check(sum(1 for _ in reader.records(kinds=[Kind.TRADES])), trades))
    emit({"op": "decode_filtered", "what": f"kinds=[trades]: {trades} of {len(records)} decoded",
          "records_scanned_per_s": round(filt)})
    _baselines(records, scratch, args, write_rate["never"], scan, decode)


def _baselines(records: list[Record], scratch: Path, args: argparse.Namespace, write: float, scan: float,
               decode: float) -> None:
    """Measure the naive JSON-lines and pickle journals and print them with our ratios."""
    for name, dump, load in (("json_lines", _json_write, _json_read), ("pickle", _pickle_write, _pickle_read)):
        path = scratch / f"baseline.{name}"
        w = median_rate(len(records), args.repeats, lambda d=dump, p=path: d(p, records, args.batch))
        r = median_rate(len(records), args.repeats, lambda ld=load, p=path: _check(ld(p), len(records)))
        emit({"op": "baseline", "impl": name, "write_records_per_s": round(w), "read_records_per_s": round(r),
              "bytes": path.stat().st_size})
        emit({"op": "ratio", "vs": name, "write_never": round(write / w, 2), "scan": round(scan / r, 2),
              "decode": round(decode / r, 2)})


def emit(fields: dict[str, Any]) -> None:
    """Print one result line."""
    print(json.dumps({"bench": "journal", **fields}), flush=True)


def median_rate(n: int, repeats: int, fn: Callable[[], object], warm: Callable[[], object] | None = None) -> float:
    """Run `warm` (default `fn`) once untimed, then `fn` `repeats` times; return the median of n / seconds.

    The untimed run keeps numba compilation and cold caches out of every figure, even with --repeats 1.
    """
    (warm or fn)()
    rates = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        rates.append(n / (time.perf_counter() - t0))
    return statistics.median(rates)


def _check(got: int, want: int) -> int:
    if got != want:
        raise SystemExit(f"bench journal: read {got} records, wrote {want}")
    return got


def _warm_up(d: Path, records: list[Record]) -> None:
    """Load the compiled scan kernels and touch every code path once, outside the timings."""
    from journal.reader import JournalReader

    _write_journal(d, records, "never", 16)
    sum(1 for _ in JournalReader(d).records())


def _write_journal(scratch: Path, records: list[Record], policy: str, batch: int) -> Path:
    """Write `records` into a fresh journal with `policy`; return its directory."""
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    d = scratch / f"journal-{policy}"
    shutil.rmtree(d, ignore_errors=True)
    with JournalWriter(JournalConfig(dir=str(d), fsync=policy)) as w:  # type: ignore[arg-type]
        for i in range(0, len(records), batch):
            w.append(records[i : i + batch])
    return d


# -- naive baseline -----------------------------------------------------------------------------

def _jsonable(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, bytes):
        return v.hex()
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_jsonable(x) for x in v]
    return v


def _json_write(path: Path, records: list[Record], batch: int) -> None:
    """One json.dumps line per record, each batch handed to the OS (flush) like the journal does."""
    with open(path, "w") as f:
        for i in range(0, len(records), batch):
            f.write("".join(json.dumps([r.seq, r.recv_ns, int(r.kind), r.symbol, r.ts, r.cts, _jsonable(r.payload)])
                            + "\n" for r in records[i : i + batch]))
            f.flush()


def _json_read(path: Path) -> int:
    """json.loads every line (arrays stay lists: cheaper than the journal's exact rebuild)."""
    with open(path) as f:
        return sum(1 for line in f if json.loads(line))


def _pickle_write(path: Path, records: list[Record], batch: int) -> None:
    """pickle.dump every record, each batch handed to the OS (flush)."""
    with open(path, "wb") as f:
        for i in range(0, len(records), batch):
            for r in records[i : i + batch]:
                pickle.dump(r, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()


def _pickle_read(path: Path) -> int:
    """pickle.load until the end of the file."""
    n = 0
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        while f.tell() < size:
            pickle.load(f)
            n += 1
    return n


# -- synthetic records ----------------------------------------------------------------------------

def synthetic_records(n: int, seed: int = 7, symbols: tuple[str, ...] = ("SOLUSDT", "DOGEUSDT", "XRPUSDT"),
                      events_per_s: int = 2_000) -> Iterator[Record]:
    """Yield n unnumbered records: ~75% book deltas (1-5 levels a side), ~20% trades, ticks each second."""
    rng = np.random.default_rng(seed)
    t = 1_786_310_800 * NS_PER_S
    next_tick, u, trade_id, made = t + NS_PER_S, 1_000, 0, 0
    while made < n:
        t += int(rng.integers(1, 2 * NS_PER_S // events_per_s))
        if t >= next_tick:
            yield Record(0, next_tick, Kind.TICK, "", 0, 0, {})
            next_tick += NS_PER_S
        else:
            u, trade_id = u + 1, trade_id + 3
            yield _market(rng, t, symbols[int(rng.integers(len(symbols)))], u, trade_id)
        made += 1


def _market(rng: np.random.Generator, t: int, symbol: str, u: int, trade_id: int) -> Record:
    """One book delta (p 0.79) or trades message at recv time t."""
    ms = t // NS_PER_MS
    mid = 150.0 + float(rng.integers(-500, 500)) * 0.01
    if rng.random() < 0.79:
        def side(sign: int) -> np.ndarray:
            k = int(rng.integers(1, 6))
            prices = mid + sign * 0.01 * rng.integers(1, 50, k)
            return np.column_stack([prices, rng.integers(0, 5000, k) / 10.0])
        return Record(0, t, Kind.BOOK_DELTA, symbol, ms, ms - 2,
                      {"depth": 200, "u": u, "seq": u * 7, "b": side(-1), "a": side(1)})
    k = int(rng.integers(1, 6))
    side_ = np.where(rng.random(k) < 0.5, 1, -1).astype(np.int8)
    payload = {"p": mid + 0.01 * side_, "v": rng.integers(1, 100, k) / 10.0, "side": side_,
               "T": np.full(k, ms, dtype=np.int64), "id": [f"{trade_id + i}" for i in range(k)], "bt": [False] * k}
    return Record(0, t, Kind.TRADES, symbol, ms, 0, payload)
