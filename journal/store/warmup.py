"""Where a store replay without a usable checkpoint starts: enough history to warm every window.

The engine's state at a tick is a function of a bounded past: trade and churn windows, the tick
series behind returns, volatility and z-scores, and the book since its last snapshot. So a replay
asked to begin at `from_ns` can start at the latest seq S from which all of that is rebuilt:

- `warm_ns(registry)` before `from_ns` (the longest history the registry declares, plus margin), and
  no later than each book's last snapshot before that point;
- with a prelude of the few records before S whose effect lasts: the last SESSION and the
  registry changes after it, each symbol's last ticker snapshot and the ticker deltas since, and
  its last funding record.

Vectors from `from_ns` on then equal a replay from the beginning (the tests check it), except
after pathological histories (a book invalid across the whole warm-up) the docs call out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq

from engine.engine import Plan
from engine.record import NS_PER_S, Kind, Record
from journal.store.columns import FileRef
from journal.store.layout import CONTROL_TABLE
from journal.store.tables import table_to_records
from registry import Registry

_SNAPSHOTS, _TICKER, _FUNDING = "raw_orderbook_snapshots", "raw_ticker", "raw_funding"
_LASTING = (int(Kind.SESSION), int(Kind.REGISTRY_CHANGED))


class WarmStart(NamedTuple):
    """The first seq to replay from and the records before it that must be applied first."""

    seq: int
    prelude: list[Record]
    history_ns: int


def warm_ns(registry: Registry) -> int:
    """The longest history any feature of `registry` reads (windows; tick spans plus z-scores and cadence,
    chained as a z-score of a tick-history feature would need them) plus a minute of margin."""
    plan = Plan(registry)
    h = plan.horizons
    z = max((c.zscore_n for c in plan.features), default=0)
    every = max((c.every_ns for c in plan.features), default=NS_PER_S)
    ticks_ns = (h.ticks + z + 2) * NS_PER_S + every
    return max(h.trades_ns, h.churn_ns, ticks_ns) + 60 * NS_PER_S


def warm_start(refs: list[FileRef], from_ns: int, registry: Registry) -> WarmStart | None:
    """Where to start for vectors from `from_ns`; None when that is the store's beginning anyway."""
    point = from_ns - warm_ns(registry)
    seq = _first_seq_at(refs, point)
    if seq is None:
        return None
    for ref in _of(refs, _SNAPSHOTS):
        t = pq.read_table(ref.path, columns=["seq", "recv_ns", "depth"])
        before = t.filter(pc.less(t["recv_ns"], point))
        for depth in set(before["depth"].to_pylist()):
            last = pc.max(before.filter(pc.equal(before["depth"], depth))["seq"]).as_py()
            seq = min(seq, int(last))
    if seq <= 1:
        return None
    prelude = _lasting(refs, seq) + _tickers(refs, seq) + _funding(refs, seq)
    prelude.sort(key=lambda r: r.seq)
    return WarmStart(seq, prelude, from_ns - point)


def _of(refs: Iterable[FileRef], table: str) -> list[FileRef]:
    return sorted((r for r in refs if r.table == table), key=lambda r: r.first_seq)


def _first_seq_at(refs: list[FileRef], point_ns: int) -> int | None:
    """Seq of the first control record (ticks: one a second) received at or after `point_ns`."""
    best = None
    for ref in _of(refs, CONTROL_TABLE):
        t = pq.read_table(ref.path, columns=["seq", "recv_ns"])
        later = t.filter(pc.greater_equal(t["recv_ns"], point_ns))
        if later.num_rows:
            first = int(pc.min(later["seq"]).as_py())
            best = first if best is None else min(best, first)
    return best


def _rows(ref: FileRef, mask_fn) -> list[Record]:  # noqa: ANN001 - a pyarrow expression builder
    t = pq.read_table(ref.path)
    return list(table_to_records(ref.table, t.filter(mask_fn(t)), ref.symbol))


def _lasting(refs: list[FileRef], seq: int) -> list[Record]:
    """The last SESSION before `seq` and every registry change after it (still before `seq`)."""
    found: list[Record] = []
    for ref in _of(refs, CONTROL_TABLE):
        found += _rows(ref, lambda t: pc.and_(pc.less(t["seq"], seq), pc.is_in(t["kind"], value_set=_kinds())))
    sessions = [i for i, r in enumerate(found) if r.kind == Kind.SESSION]
    return found[sessions[-1]:] if sessions else found


def _kinds():  # noqa: ANN202 - a pyarrow array
    import pyarrow as pa

    return pa.array(_LASTING, type=pa.int16())


def _tickers(refs: list[FileRef], seq: int) -> list[Record]:
    """Per symbol: its last ticker snapshot before `seq` and the ticker deltas after it (they merge)."""
    by_symbol: dict[str, list[Record]] = {}
    for ref in _of(refs, _TICKER):
        by_symbol.setdefault(ref.symbol, []).extend(_rows(ref, lambda t: pc.less(t["seq"], seq)))
    out: list[Record] = []
    for recs in by_symbol.values():
        snaps = [i for i, r in enumerate(recs) if r.payload.get("type") == "snapshot"]
        out += recs[snaps[-1]:] if snaps else recs
    return out


def _funding(refs: list[FileRef], seq: int) -> list[Record]:
    """Per symbol: its last funding record before `seq` (a funding record replaces the whole state)."""
    out: list[Record] = []
    for ref in _of(refs, _FUNDING):
        t = pq.read_table(ref.path, columns=["seq"])
        seqs = t["seq"].to_numpy()
        before = seqs[seqs < seq]
        if len(before):
            last = int(np.max(before))
            out += _rows(ref, lambda t, last=last: pc.equal(t["seq"], last))
    return out
