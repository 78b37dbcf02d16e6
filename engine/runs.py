"""Runs: many journal records of one symbol as flat columns, applied by the engine at once.

A `DeltaRun` is n consecutive BOOK_DELTA records of one (symbol, depth topic) with nothing else
of that symbol between them: their seq, recv_ns and u as int64 columns and their level changes
as flat float64 price / size arrays with offsets (delta i's bids are ``b_px[b_off[i]:b_off[i+1]]``
and ``b_sz[…]``, its asks likewise). This is the layout the store's list columns decode to, and
the one the book kernel (`engine.orderbook.apply_run`) walks without a Python call per delta.
`Engine.apply_deltas(run)` gives exactly what `Engine.apply` of the n records one by one gives.

A run carries what the engine reads of a delta, not the whole record: ``ts``, ``cts`` and the
payload's cross-depth ``seq`` are not in it (the engine never uses them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from engine.jit import kernel
from engine.orderbook import IX_A, IX_B, IX_COLS, IX_MOVED, IX_U
from engine.record import Kind, Record

_BOOK_DELTA = int(Kind.BOOK_DELTA)
_TRADES = int(Kind.TRADES)
_I64 = np.dtype(np.int64)
_F64 = np.dtype(np.float64)
_INT_TYPES = (int, np.integer)
_I64_MIN, _I64_MAX = -(2 ** 63), 2 ** 63 - 1


class DeltaRun(NamedTuple):
    """n BOOK_DELTA records of one (symbol, depth): int64 columns and flat level arrays with offsets."""

    symbol: str
    depth: int
    seq: np.ndarray
    recv_ns: np.ndarray
    u: np.ndarray
    b_off: np.ndarray
    b_px: np.ndarray
    b_sz: np.ndarray
    a_off: np.ndarray
    a_px: np.ndarray
    a_sz: np.ndarray

    @property
    def n(self) -> int:
        """Number of deltas (journal records) in the run."""
        return int(self.seq.shape[0])

    def levels(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Delta i's bids and asks as (n, 2) float64 arrays (price, size), as in its record."""
        b0, b1, a0, a1 = int(self.b_off[i]), int(self.b_off[i + 1]), int(self.a_off[i]), int(self.a_off[i + 1])
        return (np.column_stack((self.b_px[b0:b1], self.b_sz[b0:b1])),
                np.column_stack((self.a_px[a0:a1], self.a_sz[a0:a1])))

    def record(self, i: int) -> Record:
        """Delta i as a Record (``ts``, ``cts`` 0; payload ``depth``, ``u``, ``b``, ``a``)."""
        b, a = self.levels(i)
        payload = {"depth": self.depth, "u": int(self.u[i]), "b": b, "a": a}
        return Record(int(self.seq[i]), int(self.recv_ns[i]), _BOOK_DELTA, self.symbol, 0, 0, payload)


class KernelRun(NamedTuple):
    """A run as the book kernel takes it: the (n + 1, IX_COLS) int64 index and (m, 2) level changes;
    `ordered` says the receive times never decrease (churn can then take them in one append)."""

    index: np.ndarray
    bids: np.ndarray
    asks: np.ndarray
    ordered: bool

    def moved(self, start: int, stop: int) -> np.ndarray:
        """Indices of the deltas in ``[start, stop)`` the kernel applied and found moving the top."""
        return _moved(self.index, start, stop)


@kernel
def _moved(index: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Indices i in [start, stop) with ``index[i, IX_MOVED]`` set."""
    out = np.empty(stop - start, dtype=np.int64)
    k = 0
    for i in range(start, stop):
        if index[i, IX_MOVED]:
            out[k] = i
            k += 1
    return out[:k]


@kernel
def _layout(u: np.ndarray, b_off: np.ndarray, b_px: np.ndarray, b_sz: np.ndarray, a_off: np.ndarray,
            a_px: np.ndarray, a_sz: np.ndarray, recv_ns: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Check a run's offsets and lay it out for the book kernel: (status, index, bids, asks).

    Status: 0 sound and receive times non-decreasing, 1 sound, -1 bid or -2 ask offsets unsound
    (not n + 1 non-decreasing entries inside the arrays; then the arrays are empty).
    """
    n = u.shape[0]
    index = np.zeros((n + 1, IX_COLS), dtype=np.int64)
    bids = np.empty((0, 2), dtype=np.float64)
    asks = np.empty((0, 2), dtype=np.float64)
    if not _offsets_sound(b_off, n, b_px.shape[0]):
        return -1, index, bids, asks
    if not _offsets_sound(a_off, n, a_px.shape[0]):
        return -2, index, bids, asks
    for i in range(n):
        index[i, IX_U] = u[i]
    for i in range(n + 1):
        index[i, IX_B] = b_off[i]
        index[i, IX_A] = a_off[i]
    bids = np.empty((b_px.shape[0], 2), dtype=np.float64)
    for j in range(b_px.shape[0]):
        bids[j, 0] = b_px[j]
        bids[j, 1] = b_sz[j]
    asks = np.empty((a_px.shape[0], 2), dtype=np.float64)
    for j in range(a_px.shape[0]):
        asks[j, 0] = a_px[j]
        asks[j, 1] = a_sz[j]
    return (0 if _non_decreasing(recv_ns) else 1), index, bids, asks


@kernel
def _offsets_sound(off: np.ndarray, n: int, m: int) -> bool:
    """True when `off` has n + 1 non-decreasing entries within [0, m]."""
    if off.shape[0] != n + 1 or off[0] < 0 or off[n] > m:
        return False
    for i in range(n):
        if off[i + 1] < off[i]:
            return False
    return True


@kernel
def _non_decreasing(t: np.ndarray) -> bool:
    """True when the times never decrease."""
    for i in range(1, t.shape[0]):
        if t[i] < t[i - 1]:
            return False
    return True


def prepare(run: DeltaRun) -> tuple[DeltaRun, KernelRun]:
    """Return `run` with contiguous int64 / float64 columns and its kernel layout (one kernel call).

    ValueError unless the columns are consistent: the kernel does not bounds-check, so offsets must
    be n + 1 non-decreasing entries inside the level arrays.
    """
    seq, recv_ns, u, b_off, a_off = (np.ascontiguousarray(x, dtype=_I64)
                                     for x in (run.seq, run.recv_ns, run.u, run.b_off, run.a_off))
    b_px, b_sz, a_px, a_sz = (np.ascontiguousarray(x, dtype=_F64) for x in (run.b_px, run.b_sz, run.a_px, run.a_sz))
    if seq.ndim != 1 or recv_ns.shape != seq.shape or u.shape != seq.shape:
        raise ValueError(f"delta run {run.symbol}: seq, recv_ns and u must be 1-D of one length")
    if b_off.ndim != 1 or a_off.ndim != 1 or b_px.ndim != 1 or b_sz.shape != b_px.shape or a_px.ndim != 1 \
            or a_sz.shape != a_px.shape:
        raise ValueError(f"delta run {run.symbol}: offsets, prices and sizes must be 1-D, prices and sizes of one length")
    status, index, bids, asks = _layout(u, b_off, b_px, b_sz, a_off, a_px, a_sz, recv_ns)
    if status < 0:
        side = "bid" if status == -1 else "ask"
        raise ValueError(f"delta run {run.symbol}: {side} offsets must be n + 1 non-decreasing entries inside the arrays")
    checked = DeltaRun(run.symbol, int(run.depth), seq, recv_ns, u, b_off, b_px, b_sz, a_off, a_px, a_sz)
    return checked, KernelRun(index, bids, asks, status == 0)


def checked_run(run: DeltaRun) -> DeltaRun:
    """Return `run` with contiguous int64 / float64 columns; ValueError unless its offsets are sound."""
    return prepare(run)[0]


def kernel_run(run: DeltaRun) -> KernelRun:
    """Lay a run out for the kernel: one index row per delta, prices and sizes side by side."""
    return prepare(run)[1]


def runnable(rec: Record) -> bool:
    """True when `rec` is a BOOK_DELTA a run can carry exactly: int depth and u, float64 (n, 2) levels."""
    if rec.kind != _BOOK_DELTA or type(rec.payload) is not dict:
        return False
    p = rec.payload
    u, depth, b, a = p.get("u"), p.get("depth"), p.get("b"), p.get("a")
    if not (isinstance(u, _INT_TYPES) and isinstance(depth, _INT_TYPES)) or isinstance(u, bool):
        return False
    if not _I64_MIN <= u <= _I64_MAX or isinstance(depth, bool):
        return False
    return _is_levels(b) and _is_levels(a)


def _is_levels(x: Any) -> bool:
    """True for a float64 array of shape (n, 2)."""
    return isinstance(x, np.ndarray) and x.dtype == _F64 and x.ndim == 2 and x.shape[1] == 2


def delta_run_from_records(records: Sequence[Record]) -> DeltaRun:
    """Build the run of `records`: BOOK_DELTA records of one symbol and depth (ValueError otherwise)."""
    if not records:
        raise ValueError("a delta run needs at least one record")
    symbol, depth = records[0].symbol, records[0].payload.get("depth") if type(records[0].payload) is dict else None
    for r in records:
        if not runnable(r) or r.symbol != symbol or r.payload["depth"] != depth:
            raise ValueError(f"record seq {r.seq} cannot join the delta run of {symbol} depth {depth}")
    n = len(records)
    seq = np.fromiter((r.seq for r in records), _I64, n)
    recv_ns = np.fromiter((r.recv_ns for r in records), _I64, n)
    u = np.fromiter((r.payload["u"] for r in records), _I64, n)
    b_off, b_px, b_sz = _flatten([r.payload["b"] for r in records])
    a_off, a_px, a_sz = _flatten([r.payload["a"] for r in records])
    return DeltaRun(symbol, int(depth), seq, recv_ns, u, b_off, b_px, b_sz, a_off, a_px, a_sz)


def _flatten(sides: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (n + 1), prices and sizes of a list of (k, 2) level arrays."""
    off = np.zeros(len(sides) + 1, dtype=_I64)
    np.cumsum([s.shape[0] for s in sides], out=off[1:])
    flat = np.concatenate(sides) if sides else np.empty((0, 2), _F64)
    return off, np.ascontiguousarray(flat[:, 0]), np.ascontiguousarray(flat[:, 1])


class TradesRun(NamedTuple):
    """n TRADES records (messages) of one symbol: message i's trades are rows ``off[i]:off[i + 1]``."""

    symbol: str
    seq: np.ndarray
    recv_ns: np.ndarray
    off: np.ndarray
    p: np.ndarray
    v: np.ndarray
    side: np.ndarray
    ids: list[str]

    @property
    def n(self) -> int:
        """Number of messages (journal records) in the run."""
        return int(self.seq.shape[0])

    def record(self, i: int) -> Record:
        """Message i as a Record (``ts``, ``cts`` 0; payload ``p``, ``v``, ``side``, ``id``; no ``T``, ``bt``)."""
        a, b = int(self.off[i]), int(self.off[i + 1])
        payload = {"p": self.p[a:b].copy(), "v": self.v[a:b].copy(), "side": self.side[a:b].copy(),
                   "id": list(self.ids[a:b])}
        return Record(int(self.seq[i]), int(self.recv_ns[i]), _TRADES, self.symbol, 0, 0, payload)


def checked_trades_run(run: TradesRun) -> TradesRun:
    """Return `run` with contiguous columns (int64 times, float64 p / v, int8 side); ValueError
    unless its offsets are non-decreasing and every trade column is as long as the last offset."""
    seq, recv_ns, off = (np.ascontiguousarray(x, dtype=_I64) for x in (run.seq, run.recv_ns, run.off))
    p, v = (np.ascontiguousarray(x, dtype=_F64) for x in (run.p, run.v))
    side = np.ascontiguousarray(run.side, dtype=np.int8)
    n = seq.shape[0]
    if recv_ns.shape != (n,) or off.shape != (n + 1,) or off[0] != 0 or bool((off[1:] < off[:-1]).any()):
        raise ValueError(f"trades run {run.symbol}: offsets must be n + 1 non-decreasing entries from 0")
    m = int(off[n])
    if p.shape != (m,) or v.shape != (m,) or side.shape != (m,) or len(run.ids) != m:
        raise ValueError(f"trades run {run.symbol}: p, v, side and ids must hold {m} trades")
    return TradesRun(run.symbol, seq, recv_ns, off, p, v, side, list(run.ids))


def trades_runnable(rec: Record) -> bool:
    """True when `rec` is a TRADES record a run can carry exactly: 1-D p, v (float64), side (int8), str ids."""
    if rec.kind != _TRADES or type(rec.payload) is not dict:
        return False
    p, v, side, ids = (rec.payload.get(k) for k in ("p", "v", "side", "id"))
    if not all(isinstance(x, np.ndarray) and x.ndim == 1 for x in (p, v, side)) or type(ids) is not list:
        return False
    n = len(ids)
    return (p.dtype == _F64 and v.dtype == _F64 and side.dtype == np.int8 and p.shape == v.shape == side.shape == (n,)
            and all(type(i) is str for i in ids))


def trades_run_from_records(records: Sequence[Record]) -> TradesRun:
    """Build the run of `records`: TRADES records of one symbol (ValueError otherwise)."""
    if not records:
        raise ValueError("a trades run needs at least one record")
    symbol = records[0].symbol
    for r in records:
        if not trades_runnable(r) or r.symbol != symbol:
            raise ValueError(f"record seq {r.seq} cannot join the trades run of {symbol}")
    n = len(records)
    off = np.zeros(n + 1, dtype=_I64)
    np.cumsum([len(r.payload["id"]) for r in records], out=off[1:])
    ids: list[str] = []
    for r in records:
        ids.extend(r.payload["id"])
    return TradesRun(symbol, np.fromiter((r.seq for r in records), _I64, n),
                     np.fromiter((r.recv_ns for r in records), _I64, n), off,
                     np.concatenate([r.payload["p"] for r in records]), np.concatenate([r.payload["v"] for r in records]),
                     np.concatenate([r.payload["side"] for r in records]), ids)


def _run_key(rec: Record, trades: bool) -> tuple[Any, ...] | None:
    """The run a record can join (kind, symbol[, depth]), None when it must stay a record."""
    if runnable(rec):
        return (_BOOK_DELTA, rec.symbol, int(rec.payload["depth"]))
    if trades and trades_runnable(rec):
        return (_TRADES, rec.symbol)
    return None


def _make_run(key: tuple[Any, ...], records: list[Record]) -> DeltaRun | TradesRun:
    return delta_run_from_records(records) if key[0] == _BOOK_DELTA else trades_run_from_records(records)


def runs_of(records: Iterable[Record], max_len: int = 1 << 16,
            trades: bool = False) -> Iterator[Record | DeltaRun | TradesRun]:
    """Yield `records` in order with each stretch of consecutive runnable deltas of one (symbol,
    depth) as one DeltaRun (and with `trades`, of TRADES records of one symbol as one TradesRun),
    at most `max_len` records each; everything else as the Record itself."""
    pending: list[Record] = []
    key: tuple[Any, ...] | None = None
    for rec in records:
        k = _run_key(rec, trades)
        if k is not None:
            if k == key and len(pending) < max_len:
                pending.append(rec)
                continue
            if pending:
                yield _make_run(key, pending)  # type: ignore[arg-type]
            pending, key = [rec], k
            continue
        if pending:
            yield _make_run(key, pending)  # type: ignore[arg-type]
            pending, key = [], None
        yield rec
    if pending:
        yield _make_run(key, pending)  # type: ignore[arg-type]
