"""The store's eight Arrow schemas and the lossless mapping journal records <-> table rows.

`records_to_tables` sorts records into (table, date, symbol) partitions and builds one Arrow
table per partition; `table_to_records` gives the journaled records back exactly (payload key
order as the decoder makes them, numpy dtypes and shapes, float64 bits). A market record whose
payload does not fit its table (unexpected keys, types or shapes) goes to the control table with
its whole payload, so every record lands in exactly one table and nothing is ever lost.

Book levels are list columns, one row per message: the flat child arrays and their offsets are
what the replay kernel consumes, and duckdb ``UNNEST`` / polars ``explode`` give SQL users levels.
"""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterator, Sequence
from operator import attrgetter, itemgetter
from typing import Any

import msgpack
import numpy as np
import orjson
import pyarrow as pa

from engine.record import Kind, Record, kind_name
from journal.codec import decode_body, encode_body
from journal.store.layout import CONTROL_TABLE, NS_PER_DAY, date_of

_I64 = pa.int64()
_F64 = pa.float64()
_STR = pa.string()
_F8 = np.dtype(np.float64)
_new = tuple.__new__
_LO64, _HI64 = -(1 << 63), (1 << 63) - 1

COMMON = [("seq", _I64), ("recv_ns", _I64), ("recv_time", pa.timestamp("ns", tz="UTC")), ("ts", _I64),
          ("cts", _I64)]
_BOOK = [("depth", pa.int32()), ("u", _I64), ("cross_seq", _I64), ("bid_price", pa.list_(_F64)),
         ("bid_size", pa.list_(_F64)), ("ask_price", pa.list_(_F64)), ("ask_size", pa.list_(_F64)),
         ("src", _STR), ("extra", pa.binary())]
_TICKER_NUMS = (("last_price", "lastPrice"), ("mark_price", "markPrice"), ("index_price", "indexPrice"),
                ("funding_rate", "fundingRate"), ("open_interest", "openInterest"), ("bid1_price", "bid1Price"),
                ("ask1_price", "ask1Price"))
SCHEMAS: dict[str, pa.Schema] = {name: pa.schema(COMMON + cols) for name, cols in {
    "raw_orderbook_snapshots": _BOOK,
    "raw_orderbook_deltas": _BOOK,
    "raw_trades": [("index", pa.int32()), ("trade_time", _I64), ("price", _F64), ("size", _F64),
                   ("side", pa.int8()), ("trade_id", _STR), ("block_trade", pa.bool_())],
    "raw_kline": [("index", pa.int32()), ("interval", _STR), ("start", _I64), ("end", _I64), ("bar_time", _I64),
                  ("open", _F64), ("high", _F64), ("low", _F64), ("close", _F64), ("volume", _F64),
                  ("turnover", _F64), ("confirm", pa.bool_())],
    "raw_ticker": [("type", _STR), ("fields", pa.map_(_STR, _STR)), *[(c, _F64) for c, _ in _TICKER_NUMS],
                   ("next_funding_time", _I64)],
    "raw_funding": [("rate", _F64), ("next_ms", _I64), ("interval_h", _F64)],
    "raw_executions": [("index", pa.int32()), ("fill", _STR), ("exec_id", _STR), ("order_id", _STR),
                       ("side", _STR), ("exec_price", _F64), ("exec_qty", _F64), ("is_maker", pa.bool_())],
    CONTROL_TABLE: [("symbol", _STR), ("kind", pa.int16()), ("kind_name", _STR), ("payload", pa.binary()),
                    ("payload_json", _STR), ("reason", _STR), ("topic", _STR), ("raw", pa.binary())],
}.items()}

#: Market kind -> its table.
KIND_TABLE: dict[int, str] = {Kind.BOOK_SNAPSHOT: "raw_orderbook_snapshots", Kind.BOOK_DELTA: "raw_orderbook_deltas",
                              Kind.TRADES: "raw_trades", Kind.KLINE: "raw_kline", Kind.TICKER: "raw_ticker",
                              Kind.FUNDING: "raw_funding", Kind.EXECUTION: "raw_executions"}
TABLE_KIND = {t: k for k, t in KIND_TABLE.items()}
BOOK_KEYS = ("depth", "u", "seq", "b", "a")
TRADE_KEYS = ("p", "v", "side", "T", "id", "bt")
BAR_KEYS = ("start", "end", "timestamp", "open", "high", "low", "close", "volume", "turnover", "confirm")
_BAR_TYPES = (int, int, int, float, float, float, float, float, float, bool)
_TRADE_DTYPES = (_F8, _F8, np.dtype(np.int8), np.dtype(np.int64))
_BODY_HEAD = encode_body("", 0, 0, {})[:4]  # msgpack array(4), "", 0, 0: what precedes a payload


# -- payload packing (the codec's own msgpack, arrays and bytes kept) ------------------------------

def pack_payload(payload: Any) -> bytes:
    """msgpack bytes of a payload exactly as the journal codec packs it (numpy arrays as ExtType)."""
    return encode_body("", 0, 0, payload)[len(_BODY_HEAD):]


def unpack_payload(data: bytes) -> Any:
    """Inverse of `pack_payload` (arrays come back as read-only numpy arrays, as from the journal)."""
    return decode_body(_BODY_HEAD + data)[3]


def _json_default(obj: Any) -> Any:
    if isinstance(obj, bytes | bytearray | memoryview):
        import base64

        return {"$bytes_b64": base64.b64encode(bytes(obj)).decode("ascii")}
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return repr(obj)


def payload_json(payload: Any) -> str:
    """A readable JSON form of a payload (bytes as ``{"$bytes_b64": …}``, arrays as lists); not for rebuilding."""
    try:
        return orjson.dumps(payload, default=_json_default, option=orjson.OPT_NON_STR_KEYS).decode()
    except (TypeError, orjson.JSONEncodeError):
        return orjson.dumps(repr(payload)).decode()


# -- which records fit their market table ----------------------------------------------------------

def _is_int(v: Any, lo: int = _LO64, hi: int = _HI64) -> bool:
    return type(v) is int and lo <= v <= hi


def _levels_ok(a: Any) -> bool:
    return type(a) is np.ndarray and a.dtype == _F8 and a.ndim == 2 and a.shape[1] == 2


def _packable(obj: Any) -> bool:
    try:
        pack_payload(obj)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


def _book_fits(p: Any) -> bool:
    """A book payload the book tables hold: the five keys in order, then maybe ``src``, then extras."""
    if type(p) is not dict:
        return False
    keys = tuple(p)
    if keys[:5] != BOOK_KEYS or not (_is_int(p["depth"], -(1 << 31), (1 << 31) - 1) and _is_int(p["u"])
                                     and _is_int(p["seq"]) and _levels_ok(p["b"]) and _levels_ok(p["a"])):
        return False
    rest = keys[5:]
    if "src" in rest and (rest[0] != "src" or type(p["src"]) is not str or not p["src"]):
        return False
    extra = rest[1:] if rest[:1] == ("src",) else rest
    return not extra or _packable({k: p[k] for k in extra})


def _books_fit_fast(payloads: list[Any]) -> bool:
    """Whole-batch check of the common case: every payload has exactly the decoder's keys and types."""
    if set(map(type, payloads)) != {dict}:
        return False
    keys = set(map(tuple, payloads))
    if not keys <= {BOOK_KEYS, (*BOOK_KEYS, "src")}:
        return False
    depth, u, xs, b, a = zip(*map(itemgetter(*BOOK_KEYS), payloads), strict=False)
    if set(map(type, depth + u + xs)) != {int} or set(map(type, b + a)) != {np.ndarray}:
        return False
    # float64 with strides (16, 8): C-ordered (n, 2) (an (n, 1) column view also has them: the level
    # sizes below catch it, as one array of 2n values per message must add up)
    if set(map(attrgetter("dtype", "strides"), b + a)) != {(_F8, (16, 8))}:
        return False
    if sum(map(attrgetter("size"), b + a)) != 2 * sum(map(len, b + a)):
        return False
    if not (-(1 << 31) <= min(depth) and max(depth) < 1 << 31 and _LO64 <= min(u + xs) and max(u + xs) <= _HI64):
        return False
    src = [p["src"] for p in payloads if len(p) == 6]
    return all(type(s) is str and s for s in src)


def _trades_fit_fast(payloads: list[Any]) -> bool:
    """Whole-batch check of the common case: the decoder's keys, dtypes and equal lengths everywhere."""
    if set(map(type, payloads)) != {dict} or set(map(tuple, payloads)) != {TRADE_KEYS}:
        return False
    p, v, side, t, ids, bt = zip(*map(itemgetter(*TRADE_KEYS), payloads), strict=True)
    arrays = p + v + side + t
    if set(map(type, arrays)) != {np.ndarray} or set(map(type, ids + bt)) != {list}:
        return False
    got = set(map(attrgetter("dtype", "ndim"), p + v)), set(map(attrgetter("dtype", "ndim"), side)), \
        set(map(attrgetter("dtype", "ndim"), t))
    if got != ({(_F8, 1)}, {(_TRADE_DTYPES[2], 1)}, {(_TRADE_DTYPES[3], 1)}):
        return False
    n = list(map(len, p))
    if any(list(map(len, x)) != n for x in (v, side, t, ids, bt)):
        return False
    return (set(map(type, itertools.chain.from_iterable(ids))) <= {str}
            and set(map(type, itertools.chain.from_iterable(bt))) <= {bool})


def _trades_fit(p: Any) -> bool:
    if type(p) is not dict or tuple(p) != TRADE_KEYS:
        return False
    arrays = (p["p"], p["v"], p["side"], p["T"])
    if not all(type(x) is np.ndarray and x.ndim == 1 and x.dtype == d for x, d in zip(arrays, _TRADE_DTYPES,
                                                                                          strict=True)):
        return False
    n = len(arrays[0])
    ids, bt = p["id"], p["bt"]
    return (all(len(x) == n for x in arrays) and type(ids) is list and type(bt) is list and len(ids) == n
            and len(bt) == n and all(type(i) is str for i in ids) and all(type(b) is bool for b in bt))


def _bar_fits(bar: Any) -> bool:
    if type(bar) is not dict or tuple(bar) != BAR_KEYS:
        return False
    return all(type(v) is t for v, t in zip(bar.values(), _BAR_TYPES, strict=True)) and all(
        _is_int(bar[k]) for k in ("start", "end", "timestamp"))


def _kline_fits(p: Any) -> bool:
    return (type(p) is dict and tuple(p) == ("interval", "bars") and type(p["interval"]) is str
            and type(p["bars"]) is list and all(_bar_fits(b) for b in p["bars"]))


def _ticker_fits(p: Any) -> bool:
    if type(p) is not dict or tuple(p) != ("type", "fields") or type(p["type"]) is not str:
        return False
    f = p["fields"]
    return type(f) is dict and all(type(k) is str and type(v) is str for k, v in f.items())


def _funding_fits(p: Any) -> bool:
    return (type(p) is dict and tuple(p) == ("rate", "next_ms", "interval_h") and type(p["rate"]) is float
            and _is_int(p["next_ms"]) and type(p["interval_h"]) is float)


def _fill_fits(fill: Any) -> bool:
    """A fill kept as JSON text must come back identical (same types, key order, values)."""
    if type(fill) is not dict:
        return False
    try:
        return msgpack.packb(orjson.loads(orjson.dumps(fill))) == msgpack.packb(fill)
    except (TypeError, ValueError, OverflowError, orjson.JSONEncodeError):
        return False


def _execution_fits(p: Any) -> bool:
    return (type(p) is dict and tuple(p) == ("fills",) and type(p["fills"]) is list
            and all(_fill_fits(f) for f in p["fills"]))


_FITS = {Kind.BOOK_SNAPSHOT: _book_fits, Kind.BOOK_DELTA: _book_fits, Kind.TRADES: _trades_fit,
         Kind.KLINE: _kline_fits, Kind.TICKER: _ticker_fits, Kind.FUNDING: _funding_fits,
         Kind.EXECUTION: _execution_fits}


def _fit_mask(kind: int, payloads: list[Any]) -> np.ndarray:
    """Which payloads of one market kind fit its table (batch check first for books)."""
    fast = _books_fit_fast if kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA) else \
        _trades_fit_fast if kind == Kind.TRADES else None
    if fast is not None:
        try:
            if fast(payloads):
                return np.ones(len(payloads), dtype=bool)
        except (TypeError, KeyError, IndexError, AttributeError, ValueError):
            pass
    fits = _FITS[kind]
    return np.fromiter(map(fits, payloads), dtype=bool, count=len(payloads))


def symbol_ok(sym: str) -> bool:
    """A symbol usable as a partition directory name (``symbol=SYM``)."""
    return bool(sym) and sym[0] not in "._" and all(c.isascii() and (c.isalnum() or c in "-_.") for c in sym)


# -- partitioning ----------------------------------------------------------------------------------

def _ints(values: Sequence[Any], what: str, seqs: Sequence[int]) -> np.ndarray:
    """An int64 array of Python ints; ValueError naming the record when one is not an int64."""
    bad = next((i for i, v in enumerate(values) if type(v) is not int or not _LO64 <= v <= _HI64), None) \
        if set(map(type, values)) != {int} or (values and (min(values) < _LO64 or max(values) > _HI64)) else None
    if bad is not None:
        raise ValueError(f"record seq {seqs[bad]}: {what} {values[bad]!r} is not an int64")
    return np.array(values, dtype=np.int64)


def partition_indices(records: Sequence[Record]) -> dict[tuple[str, str, str], np.ndarray]:
    """Indices into `records` of each (table, date, symbol) partition, in input order within each."""
    n = len(records)
    if not n:
        return {}
    seqs, recv, kinds, syms, _, _, payloads = zip(*records, strict=False)
    kind = np.array(kinds, dtype=np.int64)
    days = _ints(recv, "recv_ns", seqs) // NS_PER_DAY
    names = (*KIND_TABLE.values(), CONTROL_TABLE)
    tid = np.full(n, len(names) - 1, dtype=np.int64)
    sym_ids = {s: i for i, s in enumerate(sorted(set(syms)))}
    sid = np.fromiter(map(sym_ids.__getitem__, syms), dtype=np.int64, count=n)
    good_sym = np.array([symbol_ok(s) for s in sym_ids], dtype=bool)[sid]
    for t, k in enumerate(KIND_TABLE):
        idx = np.flatnonzero((kind == k) & good_sym)
        if len(idx):
            tid[idx[_fit_mask(k, [payloads[i] for i in idx])]] = t
    sid[tid == len(names) - 1] = -1  # control: partitioned by date only
    order = np.lexsort((sid, days, tid))
    t_s, d_s, s_s = tid[order], days[order], sid[order]
    cut = np.flatnonzero((t_s[1:] != t_s[:-1]) | (d_s[1:] != d_s[:-1]) | (s_s[1:] != s_s[:-1])) + 1
    sym_names = list(sym_ids)
    out: dict[tuple[str, str, str], np.ndarray] = {}
    for lo, hi in zip(np.r_[0, cut].tolist(), np.r_[cut, n].tolist(), strict=True):
        t, d, s = int(t_s[lo]), int(d_s[lo]), int(s_s[lo])
        out[(names[t], date_of(d * NS_PER_DAY), "" if s < 0 else sym_names[s])] = order[lo:hi]
    return out


def records_to_tables(records: Sequence[Record]) -> dict[tuple[str, str, str], pa.Table]:
    """One Arrow table per (table, date, symbol) partition, rows sorted by seq (then index).

    Automatic GC is paused meanwhile: the transposes allocate a tuple per record, and with many
    live records the collections they trigger cost more than the work (nothing here is cyclic).
    """
    records = list(records)
    out = {}
    was = gc.isenabled()
    gc.disable()
    try:
        for key, idx in partition_indices(records).items():
            part = [records[i] for i in idx.tolist()]
            seqs = np.fromiter(map(itemgetter(0), part), dtype=np.int64, count=len(part))
            if len(seqs) > 1 and (np.diff(seqs) < 0).any():
                part.sort(key=lambda r: r.seq)
            out[key] = build_table(key[0], part)
    finally:
        if was:
            gc.enable()
    return out


def build_table(table: str, records: list[Record]) -> pa.Table:
    """The Arrow table of records that all fit `table` (see `partition_indices`)."""
    return _BUILDERS[table](records)


# -- builders --------------------------------------------------------------------------------------

def _common(seq: Sequence[int], recv: Sequence[int], ts: Sequence[int], cts: Sequence[int],
            repeat: np.ndarray | None = None) -> list[pa.Array]:
    """The five leading columns (each value repeated `repeat[i]` times for multi-row messages)."""
    cols = [np.array(seq, dtype=np.int64), np.array(recv, dtype=np.int64),
            _ints(ts, "ts", seq), _ints(cts, "cts", seq)]
    if repeat is not None:
        cols = [np.repeat(c, repeat) for c in cols]
    s, r, t, c = (pa.array(x) for x in cols)
    return [s, r, r.view(pa.timestamp("ns", tz="UTC")), t, c]


def _levels(arrays: Sequence[np.ndarray]) -> tuple[pa.Array, pa.Array]:
    """Price and size list arrays of (n, 2) level arrays, sharing one offsets buffer."""
    n = len(arrays)
    lens = np.fromiter(map(len, arrays), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    if offsets[-1] >= 1 << 31:
        raise ValueError(f"{offsets[-1]} book levels in one table: too many for list offsets (split the batch)")
    try:  # one join of the arrays' buffers is ~2x faster than np.concatenate of many small arrays
        flat = np.frombuffer(b"".join(arrays), dtype=_F8) if n else np.empty(0, dtype=_F8)
    except (BufferError, TypeError):
        flat = np.concatenate(arrays).ravel()
    if len(flat) != 2 * offsets[-1]:
        raise ValueError("book levels are not (n, 2) arrays")
    off = pa.array(offsets.astype(np.int32))
    return (pa.ListArray.from_arrays(off, pa.array(np.ascontiguousarray(flat[0::2]))),
            pa.ListArray.from_arrays(off, pa.array(np.ascontiguousarray(flat[1::2]))))


def _book_table(name: str, records: list[Record]) -> pa.Table:
    """One row per book message; ``src`` and extra keys only where present."""
    seq, recv, _, _, ts, cts, payloads = zip(*records, strict=False) if records else ((),) * 7
    depth, u, xs, b, a = zip(*map(itemgetter(*BOOK_KEYS), payloads), strict=False) if records else ((),) * 5
    bp, bs = _levels(b)
    ap, as_ = _levels(a)
    src: list[str] = [""] * len(records)
    extra: list[bytes | None] = [None] * len(records)
    for i in np.flatnonzero(np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads)) > 5).tolist():
        p = payloads[i]
        rest = list(p)[5:]
        if rest[0] == "src":
            src[i] = p["src"]
            rest = rest[1:]
        if rest:
            extra[i] = pack_payload({k: p[k] for k in rest})
    cols = [*_common(seq, recv, ts, cts), pa.array(np.array(depth, dtype=np.int32)), pa.array(np.array(u, np.int64)),
            pa.array(np.array(xs, np.int64)), bp, bs, ap, as_, pa.array(src, _STR), pa.array(extra, pa.binary())]
    return pa.Table.from_arrays(cols, schema=SCHEMAS[name])


def _row_plan(lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows per message (an empty message keeps one row), each row's index (-1 empty), item-row mask."""
    rows = np.maximum(lens, 1)
    starts = np.repeat(np.cumsum(rows) - rows, rows)
    index = np.arange(int(rows.sum()), dtype=np.int64) - starts
    empty = np.repeat(lens == 0, rows)
    index[empty] = -1
    return rows, index.astype(np.int32), ~empty


def _spread(values: np.ndarray | list[Any], has: np.ndarray, type_: pa.DataType) -> pa.Array:
    """An array with `values` on the rows where `has` is set and nulls elsewhere."""
    if has.all():
        return pa.array(values, type_)
    if isinstance(values, np.ndarray):
        full = np.zeros(len(has), dtype=values.dtype)
        full[has] = values
        return pa.array(full, type_, mask=~has)
    obj = np.full(len(has), None, dtype=object)
    obj[has] = values
    return pa.array(obj, type_, from_pandas=True)


def _trades_table(records: list[Record]) -> pa.Table:
    """One row per trade; a message with no trades keeps one row (index -1, trade columns null)."""
    seq, recv, _, _, ts, cts, payloads = zip(*records, strict=False)
    p, v, side, t, ids, bt = zip(*map(itemgetter(*TRADE_KEYS), payloads), strict=False)
    lens = np.fromiter(map(len, p), dtype=np.int64, count=len(p))
    rows, index, has = _row_plan(lens)
    cols = [*_common(seq, recv, ts, cts, rows), pa.array(index),
            _spread(np.concatenate(t), has, _I64), _spread(np.concatenate(p), has, _F64),
            _spread(np.concatenate(v), has, _F64), _spread(np.concatenate(side), has, pa.int8()),
            _spread(list(itertools.chain.from_iterable(ids)), has, _STR),
            _spread(list(itertools.chain.from_iterable(bt)), has, pa.bool_())]
    return pa.Table.from_arrays(cols, schema=SCHEMAS["raw_trades"])


def _kline_table(records: list[Record]) -> pa.Table:
    """One row per bar; a message with no bars keeps one row (index -1, interval kept, bar columns null)."""
    seq, recv, _, _, ts, cts, payloads = zip(*records, strict=False)
    bars = [p["bars"] for p in payloads]
    lens = np.fromiter(map(len, bars), dtype=np.int64, count=len(bars))
    rows, index, has = _row_plan(lens)
    flat = list(itertools.chain.from_iterable(bars))
    interval = np.repeat(np.array([p["interval"] for p in payloads], dtype=object), rows)
    cols: list[pa.Array] = [*_common(seq, recv, ts, cts, rows), pa.array(index), pa.array(interval, _STR)]
    for key, name in zip(BAR_KEYS, SCHEMAS["raw_kline"].names[7:], strict=True):
        type_ = SCHEMAS["raw_kline"].field(name).type
        cols.append(_spread([b[key] for b in flat], has, type_))
    return pa.Table.from_arrays(cols, schema=SCHEMAS["raw_kline"])


def _num(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _ms(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.isdigit() and len(text) <= 18 else None


def _ticker_table(records: list[Record]) -> pa.Table:
    """One row per message: Bybit's fields as a map (order kept) plus derived numeric columns."""
    seq, recv, _, _, ts, cts, payloads = zip(*records, strict=False)
    fields = [p["fields"] for p in payloads]
    lens = np.fromiter(map(len, fields), dtype=np.int64, count=len(fields))
    offsets = np.zeros(len(fields) + 1, dtype=np.int32)
    np.cumsum(lens, out=offsets[1:])
    keys = pa.array(list(itertools.chain.from_iterable(fields)), _STR)
    items = pa.array(list(itertools.chain.from_iterable(f.values() for f in fields)), _STR)
    cols = [*_common(seq, recv, ts, cts), pa.array([p["type"] for p in payloads], _STR),
            pa.MapArray.from_arrays(pa.array(offsets), keys, items)]
    cols += [pa.array([_num(f.get(key)) for f in fields], _F64) for _, key in _TICKER_NUMS]
    cols.append(pa.array([_ms(f.get("nextFundingTime")) for f in fields], _I64))
    return pa.Table.from_arrays(cols, schema=SCHEMAS["raw_ticker"])


def _funding_table(records: list[Record]) -> pa.Table:
    seq, recv, _, _, ts, cts, payloads = zip(*records, strict=False)
    rate, nxt, ih = zip(*map(itemgetter("rate", "next_ms", "interval_h"), payloads), strict=False)
    cols = [*_common(seq, recv, ts, cts), pa.array(np.array(rate, _F8)), pa.array(np.array(nxt, np.int64)),
            pa.array(np.array(ih, _F8))]
    return pa.Table.from_arrays(cols, schema=SCHEMAS["raw_funding"])


def _fill_num(fill: dict[str, Any], key: str) -> float | None:
    v = fill.get(key)
    return _num(v) if type(v) is str else None


def _executions_table(records: list[Record]) -> pa.Table:
    """One row per fill (JSON text, key order kept) plus derived columns; an empty message keeps one row."""
    seq, recv, _, _, ts, cts, payloads = zip(*records, strict=False)
    fills = [p["fills"] for p in payloads]
    lens = np.fromiter(map(len, fills), dtype=np.int64, count=len(fills))
    rows, index, has = _row_plan(lens)
    flat = list(itertools.chain.from_iterable(fills))

    def text(key: str) -> list[str | None]:
        return [f[key] if type(f.get(key)) is str else None for f in flat]

    cols = [*_common(seq, recv, ts, cts, rows), pa.array(index),
            _spread([orjson.dumps(f).decode() for f in flat], has, _STR),
            _spread(text("execId"), has, _STR), _spread(text("orderId"), has, _STR), _spread(text("side"), has, _STR),
            _spread([_fill_num(f, "execPrice") for f in flat], has, _F64),
            _spread([_fill_num(f, "execQty") for f in flat], has, _F64),
            _spread([f.get("isMaker") if type(f.get("isMaker")) is bool else None for f in flat], has, pa.bool_())]
    return pa.Table.from_arrays(cols, schema=SCHEMAS["raw_executions"])


def _opt(p: Any, key: str, type_: type) -> Any:
    v = p.get(key) if type(p) is dict else None
    return v if type(v) is type_ else None


def _control_table(records: list[Record]) -> pa.Table:
    """Every other record: its whole payload packed losslessly, plus readable and convenience columns."""
    seq, recv, kinds, syms, ts, cts, payloads = zip(*records, strict=False)
    kind16 = np.array([k - 65536 if k > 32767 else k for k in kinds], dtype=np.int16)  # u16 kinds, bit for bit
    cols = [*_common(seq, recv, ts, cts), pa.array(list(syms), _STR), pa.array(kind16),
            pa.array([kind_name(k) for k in kinds], _STR), pa.array([pack_payload(p) for p in payloads], pa.binary()),
            pa.array([payload_json(p) for p in payloads], _STR),
            pa.array([_opt(p, "reason", str) for p in payloads], _STR),
            pa.array([_opt(p, "topic", str) for p in payloads], _STR),
            pa.array([_opt(p, "raw", bytes) for p in payloads], pa.binary())]
    return pa.Table.from_arrays(cols, schema=SCHEMAS[CONTROL_TABLE])


def _book_builder(name: str) -> Any:
    def build(records: list[Record]) -> pa.Table:
        return _book_table(name, records) if records else SCHEMAS[name].empty_table()
    return build


_BUILDERS = {"raw_orderbook_snapshots": _book_builder("raw_orderbook_snapshots"),
             "raw_orderbook_deltas": _book_builder("raw_orderbook_deltas"), "raw_trades": _trades_table,
             "raw_kline": _kline_table, "raw_ticker": _ticker_table, "raw_funding": _funding_table,
             "raw_executions": _executions_table, CONTROL_TABLE: _control_table}


# -- rows back to records --------------------------------------------------------------------------

def _np(table: pa.Table, name: str) -> np.ndarray:
    col = table.column(name)
    return col.to_numpy() if col.num_chunks != 1 else col.chunk(0).to_numpy(zero_copy_only=False)


def flat_list(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets (int64, from 0) and flat float64 values of a list<float64> column (nulls as empty lists)."""
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if arr.null_count:
        arr = arr.fill_null(pa.scalar([], type=arr.type))
    offsets = arr.offsets.to_numpy().astype(np.int64)
    values = arr.values.to_numpy(zero_copy_only=False)
    start, end = int(offsets[0]), int(offsets[-1])
    return offsets - start, np.ascontiguousarray(values[start:end], dtype=_F8)


def _level_rows(table: pa.Table, price: str, size: str) -> tuple[list[int], np.ndarray]:
    """Offsets and one (n, 2) array of every level of a side; a message's levels are a row slice of it."""
    off, px = flat_list(table.column(price))
    off2, sz = flat_list(table.column(size))
    if not np.array_equal(off, off2):
        raise ValueError(f"{price}/{size}: list lengths differ")
    levels = np.empty((len(px), 2), dtype=_F8)
    levels[:, 0] = px
    levels[:, 1] = sz
    return off.tolist(), levels


def _common_lists(table: pa.Table) -> tuple[list[int], list[int], list[int], list[int]]:
    return tuple(_np(table, c).tolist() for c in ("seq", "recv_ns", "ts", "cts"))  # type: ignore[return-value]


def _book_records(table: pa.Table, kind: int, symbol: str) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    depth, u, xs = (_np(table, c).tolist() for c in ("depth", "u", "cross_seq"))
    bo, bl = _level_rows(table, "bid_price", "bid_size")
    ao, al = _level_rows(table, "ask_price", "ask_size")
    src = table.column("src").to_pylist()
    extra_col = table.column("extra")
    extra = extra_col.to_pylist() if extra_col.null_count != len(extra_col) else None
    for i in range(len(seq)):
        p = {"depth": depth[i], "u": u[i], "seq": xs[i], "b": bl[bo[i]:bo[i + 1]], "a": al[ao[i]:ao[i + 1]]}
        if src[i]:
            p["src"] = src[i]
        if extra is not None and extra[i] is not None:
            p.update(unpack_payload(extra[i]))
        yield _new(Record, (seq[i], recv[i], kind, symbol, ts[i], cts[i], p))


def _messages(table: pa.Table) -> Iterator[tuple[int, int, int]]:
    """(first row, end row, first row again) of each message of a multi-row table (rows grouped by seq)."""
    seq = _np(table, "seq")
    cut = np.flatnonzero(seq[1:] != seq[:-1]) + 1
    for lo, hi in zip(np.r_[0, cut].tolist(), np.r_[cut, len(seq)].tolist(), strict=True):
        yield lo, hi, lo


def _trade_records(table: pa.Table, symbol: str) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    index = _np(table, "index")
    cols = [table.column(c).fill_null(0).to_numpy() for c in ("price", "size", "side", "trade_time")]
    p, v = (np.ascontiguousarray(c, dtype=_F8) for c in cols[:2])
    side, t = np.ascontiguousarray(cols[2], np.int8), np.ascontiguousarray(cols[3], np.int64)
    ids, bts = table.column("trade_id").to_pylist(), table.column("block_trade").to_pylist()
    for lo, hi, first in _messages(table):
        if index[lo] < 0:
            lo = hi
        payload = {"p": p[lo:hi], "v": v[lo:hi], "side": side[lo:hi], "T": t[lo:hi], "id": ids[lo:hi],
                   "bt": bts[lo:hi]}
        yield _new(Record, (seq[first], recv[first], Kind.TRADES, symbol, ts[first], cts[first], payload))


def _kline_records(table: pa.Table, symbol: str) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    index = _np(table, "index")
    interval = table.column("interval").to_pylist()
    names = SCHEMAS["raw_kline"].names[7:]
    values = [table.column(n).to_pylist() for n in names]
    for lo, hi, first in _messages(table):
        rows = range(lo, hi) if index[lo] >= 0 else range(0)
        bars = [dict(zip(BAR_KEYS, (col[r] for col in values), strict=True)) for r in rows]
        yield _new(Record, (seq[first], recv[first], Kind.KLINE, symbol, ts[first], cts[first],
                            {"interval": interval[first], "bars": bars}))


def _ticker_records(table: pa.Table, symbol: str) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    typ = table.column("type").to_pylist()
    col = table.column("fields")
    arr = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    off = arr.offsets.to_numpy().tolist()
    keys, items = arr.keys.to_pylist(), arr.items.to_pylist()
    for i in range(len(seq)):
        fields = dict(zip(keys[off[i]:off[i + 1]], items[off[i]:off[i + 1]], strict=True))
        yield _new(Record, (seq[i], recv[i], Kind.TICKER, symbol, ts[i], cts[i], {"type": typ[i], "fields": fields}))


def _funding_records(table: pa.Table, symbol: str) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    rate, nxt, ih = (table.column(c).to_pylist() for c in ("rate", "next_ms", "interval_h"))
    for i in range(len(seq)):
        payload = {"rate": rate[i], "next_ms": nxt[i], "interval_h": ih[i]}
        yield _new(Record, (seq[i], recv[i], Kind.FUNDING, symbol, ts[i], cts[i], payload))


def _execution_records(table: pa.Table, symbol: str) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    index = _np(table, "index")
    fill = table.column("fill").to_pylist()
    for lo, hi, first in _messages(table):
        fills = [orjson.loads(f) for f in fill[lo:hi]] if index[lo] >= 0 else []
        yield _new(Record, (seq[first], recv[first], Kind.EXECUTION, symbol, ts[first], cts[first], {"fills": fills}))


def _control_records(table: pa.Table) -> Iterator[Record]:
    seq, recv, ts, cts = _common_lists(table)
    syms = table.column("symbol").to_pylist()
    kinds = (_np(table, "kind").astype(np.int64) & 0xFFFF).tolist()
    payloads = table.column("payload").to_pylist()
    for i in range(len(seq)):
        yield _new(Record, (seq[i], recv[i], kinds[i], syms[i], ts[i], cts[i], unpack_payload(payloads[i])))


def table_to_records(table_name: str, table: pa.Table, symbol: str) -> Iterator[Record]:
    """The journaled records of a table's rows (rows of one message must be together, in seq order)."""
    if table.num_rows == 0:
        return iter(())
    if table_name in ("raw_orderbook_snapshots", "raw_orderbook_deltas"):
        return _book_records(table, TABLE_KIND[table_name], symbol)
    readers = {"raw_trades": _trade_records, "raw_kline": _kline_records, "raw_ticker": _ticker_records,
               "raw_funding": _funding_records, "raw_executions": _execution_records}
    if table_name == CONTROL_TABLE:
        return _control_records(table)
    return readers[table_name](table, symbol)
