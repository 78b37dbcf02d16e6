"""A synthetic journal of N symbols × S seconds, written fast straight through `journal/writer.py`.

`tools/sim/synthetic_records.py` makes realistic records but slowly (tens of µs each: a random
walk per level). For the long journals of `bench offline`'s scaling runs this generates one block
of it (at most `block_s` seconds) and repeats it, shifted in time: each repeat starts with a fresh
book snapshot per symbol (update ids keep increasing, so every delta stays contiguous), trade ids
keep increasing, ticks stay whole, contiguous seconds. A journal of S seconds therefore costs one
block's generation plus the writer's own speed. A SESSION record at the head names the symbols and
the packaged registry, as a shard writes it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.record import NS_PER_MS, NS_PER_S, Kind, Record

#: Start of every synthetic journal unless told otherwise (the bench-engine stream's start).
START_NS = 1_786_310_800 * NS_PER_S
#: Records held in memory for the repeated block (the block is shortened to stay under it).
MAX_BLOCK_RECORDS = 400_000
#: Records per `JournalWriter.append` call.
BATCH = 8192

_SNAPSHOT, _DELTA, _TRADES = int(Kind.BOOK_SNAPSHOT), int(Kind.BOOK_DELTA), int(Kind.TRADES)


@dataclass
class SyntheticJournal:
    """What `write_journal` wrote."""

    records: int
    seconds: int
    symbols: list[str]
    #: Book levels in every snapshot and delta (the unit of "book level updates/s").
    level_updates: int
    bytes: int
    build_s: float


def block_seconds(n_symbols: int, seconds: int, rate: int, block_s: int = 600) -> int:
    """Seconds of the repeated block: at most `block_s`, `seconds` and MAX_BLOCK_RECORDS records."""
    fit = MAX_BLOCK_RECORDS // max(rate * n_symbols, 1)
    return max(1, min(block_s, seconds, fit))


def session_record(t_ns: int, symbols: list[str]) -> Record:
    """The SESSION record a shard named ``bench`` with the packaged registry journals at start."""
    from tools.registry_file import default_registry

    reg = default_registry()
    payload = {"shard": "bench", "category": "linear", "symbols": list(symbols),
               "registry": reg.canonical, "hash": reg.content_hash}
    return Record(0, t_ns, Kind.SESSION, "", 0, 0, payload)


class _Block:
    """One generated block of records and what shifting it by one repeat changes."""

    def __init__(self, symbols: list[str], seconds: int, rate: int, seed: int, start_ns: int) -> None:
        from tools.sim.synthetic_records import records

        self.recs = list(records(symbols, seconds, rate * len(symbols), seed=seed, start_ns=start_ns))
        self.span_ns = seconds * NS_PER_S
        first_u: dict[str, int] = {}
        last_u: dict[str, int] = {}
        self.trades = 0
        self.levels = 0
        for r in self.recs:
            if r.kind in (_SNAPSHOT, _DELTA):
                first_u.setdefault(r.symbol, r.payload["u"])
                last_u[r.symbol] = r.payload["u"]
                self.levels += len(r.payload["b"]) + len(r.payload["a"])
            elif r.kind == _TRADES:
                self.trades += len(r.payload["id"])
        #: Update ids one repeat takes per symbol: the next repeat's snapshot follows the last delta.
        self.u_step = {s: last_u[s] - first_u[s] + 1 for s in last_u}

    def shifted(self, rep: int, end_ns: int) -> Iterator[Record]:
        """The block's records moved `rep` blocks later (ids and update ids too), up to `end_ns`."""
        if rep == 0:
            yield from (r for r in self.recs if r.recv_ns <= end_ns)
            return
        dt, dms, tid = rep * self.span_ns, rep * self.span_ns // NS_PER_MS, rep * self.trades
        for r in self.recs:
            t = r.recv_ns + dt
            if t > end_ns:
                return
            yield Record(0, t, r.kind, r.symbol, r.ts + dms if r.ts else 0, r.cts + dms if r.cts else 0,
                         self._payload(r, rep, dms, tid))

    def _payload(self, r: Record, rep: int, dms: int, tid: int) -> dict[str, Any]:
        p = r.payload
        if r.kind in (_SNAPSHOT, _DELTA):
            u = p["u"] + rep * self.u_step[r.symbol]
            return {**p, "u": u, "seq": u * 7}
        if r.kind == _TRADES:
            return {**p, "T": p["T"] + dms, "id": [f"t{int(i[1:]) + tid}" for i in p["id"]]}
        return p


def synthetic_stream(symbols: list[str], seconds: int, rate: int = 200, seed: int = 7,
                     start_ns: int = START_NS, block_s: int = 600) -> tuple[Iterator[Record], _Block, int]:
    """Records of `seconds` for `symbols` (`rate` events per second per symbol), the block, and its repeats."""
    bs = block_seconds(len(symbols), seconds, rate, block_s)
    block = _Block(symbols, bs, rate, seed, start_ns)
    reps = -(-seconds // bs)
    end_ns = start_ns + seconds * NS_PER_S

    def stream() -> Iterator[Record]:
        for rep in range(reps):
            yield from block.shifted(rep, end_ns)

    return stream(), block, reps


def write_journal(journal_dir: str | Path, symbols: list[str], seconds: int, *, rate: int = 200, seed: int = 7,
                  start_ns: int = START_NS, block_s: int = 600, session: bool = True,
                  segment_max_bytes: int = 256 * 1024 * 1024) -> SyntheticJournal:
    """Write `seconds` of synthetic records for `symbols` into a new journal at `journal_dir` (fsync never)."""
    from journal.config import JournalConfig
    from journal.writer import JournalWriter

    t0 = time.perf_counter()
    stream, _, _ = synthetic_stream(symbols, seconds, rate, seed, start_ns, block_s)
    n = levels = 0
    cfg = JournalConfig(dir=str(journal_dir), fsync="never", segment_max_bytes=segment_max_bytes)
    with JournalWriter(cfg) as w:
        batch: list[Record] = [session_record(start_ns, symbols)] if session else []
        for rec in stream:
            if rec.kind == _DELTA or rec.kind == _SNAPSHOT:
                levels += len(rec.payload["b"]) + len(rec.payload["a"])
            batch.append(rec)
            if len(batch) >= BATCH:
                n += len(w.append(batch))
                batch = []
        n += len(w.append(batch))
        w.sync()
    size = sum(p.stat().st_size for p in Path(journal_dir).glob("*.seg"))
    return SyntheticJournal(n, seconds, list(symbols), levels, size, time.perf_counter() - t0)
