"""Decoder fast path == general path: ``Decoder(fast=True).decode_many`` against ``Decoder(fast=False).decode``.

`Decoder.decode_many(names, payloads, recv_ns)` must return exactly what the general path returns
frame by frame, ``[r for n, p in zip(names, payloads) for r in general.decode(n, p, recv_ns)]``,
and leave the same `Decoder.counters`. "Exactly" means: same record type and fields (value and
type: an ``int`` is not a numpy integer, ``Kind`` is not a bare int), payload keys in the same
order, float64 arrays with equal dtype, shape and bytes (views are fine), floats equal bit for bit,
BAD_FRAME records with the same reason, raw bytes and hash, and equal `journal.codec.encode` bytes.
Payload dicts may be a dict subclass.

Covered:

1. every frame of the shared real recordings (../shared/data/bybit; skipped when absent, a failure
   under CI=true), on its gateway topic, in batches of 1, 7, mixed sizes and all at once, with the
   recordings' symbols, any symbol, one symbol (unknown-symbol bad frames) and one symbol with
   ``skip_unknown_symbols``;
2. named mutations of real book frames (snapshots and deltas of depth 1, 200 and 500: whitespace,
   key order, duplicate, escaped, renamed and look-alike keys, missing and extra fields, bad
   ``u``/``seq``/``ts``/``cts``, ints at msgpack's encoding boundaries, number texts, level and side
   shapes, level counts at the array ext boundaries, symbols, topics, depths, types, truncation,
   trailing bytes, BOM, invalid UTF-8, wrong gateway topics), each frame alone, between clean
   frames and interleaved with clean frames, under four symbol settings;
3. random byte edits and random digit edits of real book frames (hypothesis);
4. named mutations of real publicTrade frames (one with three trades, one with one trade) and of two
   built ones (20 trades: the id and bt arrays cross msgpack's fixarray boundary at 16; ``"data":[]``):
   key order, ``data`` before ``topic``, ``type``, ``BT``, unknown keys with every kind of value
   (including number texts JSON refuses and bytes that are not UTF-8), duplicate and escaped keys,
   bad ``T``/``S``/``s``/``i``/``p``/``v``, ids at msgpack's str boundaries, trades and ``data`` of the
   wrong shape, topics and symbols, whitespace, truncation, trailing bytes, other encodings, wrong
   gateway topics, ``ts``/``cts`` missing (the recordings' trade frames carry no ``cts``), bad and at
   msgpack's int boundaries; each alone, between clean trade and book frames and interleaved with
   them, under the same four symbol settings;
5. random byte edits and random digit edits of real publicTrade frames (hypothesis).

Records handed out by earlier `decode_many` calls are re-encoded at the end of each test: a fast
path reusing a buffer across calls would show up as a changed record.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import msgpack
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.record import Kind, Record, kind_name
from gateway_bridge.config import TopicsConfig
from gateway_bridge.decoder import TICKER_NUMBERS, Decoder
from journal.codec import encode
from tests.conftest import OB1_FRAMES, SOL_DOGE_FRAMES, XRP_OB500

T = TopicsConfig()
NAMES = T.names()
NS = 1_786_310_819_000_000_000
RECORDINGS = (SOL_DOGE_FRAMES, OB1_FRAMES, XRP_OB500)

# --- comparing records ---------------------------------------------------------------------------


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _diff_array(a: object, b: np.ndarray, path: str) -> str | None:
    if not isinstance(a, np.ndarray):
        return f"{path}: {type(a).__name__} {a!r:.200} where the general path has an ndarray"
    if (a.dtype, a.shape) != (b.dtype, b.shape):
        return f"{path}: array {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
    if a.tobytes() == b.tobytes():
        return None
    flat_a, flat_b = a.reshape(-1), b.reshape(-1)
    i = next(i for i in range(flat_b.size) if flat_a[i:i + 1].tobytes() != flat_b[i:i + 1].tobytes())
    where = np.unravel_index(i, b.shape)
    return f"{path}: array values differ, first at {tuple(map(int, where))}: {flat_a[i]!r} vs {flat_b[i]!r}"


def _diff_dict(a: object, b: dict[Any, Any], path: str) -> str | None:
    if not isinstance(a, dict):
        return f"{path}: {type(a).__name__} {a!r:.200} where the general path has a dict"
    if list(a) != list(b):
        return f"{path}: keys {list(a)!r:.300} vs {list(b)!r:.300}"
    for key, value in b.items():
        problem = _diff(a[key], value, f"{path}.{key}")
        if problem:
            return problem
    return None


def _diff(a: object, b: object, path: str) -> str | None:
    """Return where `a` (fast path) first differs from `b` (general path), or None if identical."""
    if isinstance(b, np.ndarray):
        return _diff_array(a, b, path)
    if isinstance(b, dict):
        return _diff_dict(a, b, path)
    if type(a) is not type(b):
        return f"{path}: {type(a).__name__} {a!r:.200} vs {type(b).__name__} {b!r:.200}"
    if isinstance(b, list | tuple):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            problem = _diff(x, y, f"{path}[{i}]")
            if problem:
                return problem
        return None
    same = _float_bits(a) == _float_bits(b) if isinstance(b, float) else a == b
    return None if same else f"{path}: {a!r:.300} vs {b!r:.300}"


def _diff_record(a: object, b: Record, j: int) -> str | None:
    if type(a) is not Record:
        return f"record[{j}]: {type(a).__name__} {a!r:.300}, not a Record"
    for field, x, y in zip(Record._fields, a, b, strict=True):
        problem = _diff(x, y, f"record[{j}].{field}")
        if problem:
            return problem
    try:
        if encode(a) != encode(b):
            return f"record[{j}]: journal.codec.encode bytes differ"
    except Exception as e:  # reported: the general record encodes
        return f"record[{j}]: journal.codec.encode raised {e!r} on the fast record"
    return None


def _diff_records(got: object, want: list[Record]) -> str | None:
    """Return the first difference between the fast path's records and the general path's."""
    if type(got) is not list:
        return f"decode_many returned {type(got).__name__}, not a list"
    for j, (a, b) in enumerate(zip(got, want, strict=False)):
        problem = _diff_record(a, b, j)
        if problem:
            return f"{problem}\n  fast:    {_brief(a)}\n  general: {_brief(b)}"
    if len(got) != len(want):
        extra = got[len(want):] if len(got) > len(want) else want[len(got):]
        return (f"{len(got)} records vs {len(want)}; the extra "
                f"{'fast' if len(got) > len(want) else 'general'} ones: {[_brief(r) for r in extra[:5]]}")
    return None


def _same(got: object, want: list[Record], where: str | Callable[[], str]) -> None:
    """Assert the fast path's records equal the general path's; `where` names the frame(s)."""
    problem = _diff_records(got, want)
    assert problem is None, f"fast != general for {where() if callable(where) else where}:\n{problem}"


def _brief(rec: object) -> str:
    """One line per record for failure messages."""
    if type(rec) is not Record:
        return repr(rec)[:300]
    p = rec.payload
    if rec.kind == Kind.BAD_FRAME:
        detail = f"reason={p.get('reason')!r} topic={p.get('topic')!r} raw_len={p.get('raw_len')}"
    elif rec.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA):
        detail = " ".join(f"{k}={_short(v)}" for k, v in p.items())
    else:
        detail = f"keys={list(p)}"
    return f"{kind_name(rec.kind)} {rec.symbol!r} ts={rec.ts} cts={rec.cts} recv_ns={rec.recv_ns} {detail}"


def _short(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype}{value.shape}{value.tolist()[:3]!r:.120}"
    return repr(value)[:120]


def _show(payload: bytes) -> str:
    """The frame as a Python bytes literal (head and tail only when long), with length and SHA-256."""
    digest = hashlib.sha256(payload).hexdigest()[:16]
    text = repr(payload) if len(payload) <= 700 else f"{payload[:400]!r} ... {payload[-200:]!r}"
    return f"{text} ({len(payload)} bytes, sha256 {digest}…)"


class _Pair:
    """A fast and a general decoder with the same settings, compared after every batch."""

    def __init__(self, symbols: Sequence[str] | None, skip: bool = False) -> None:
        self.symbols, self.skip = symbols, skip
        self.fast, self.general = self._new(True), self._new(False)
        self.handed_out: list[tuple[list[Record], list[Record], list[bytes], str]] = []

    def _new(self, fast: bool) -> Decoder:
        return Decoder(self.symbols, T, skip_unknown_symbols=self.skip, fast=fast)

    def check(self, names: Sequence[str], payloads: Sequence[bytes], recv_ns: int = NS, label: str = "") -> None:
        """Decode one batch both ways; assert equal records and equal counters afterwards."""
        names, payloads = list(names), list(payloads)
        want = [r for n, p in zip(names, payloads, strict=True) for r in self.general.decode(n, p, recv_ns)]
        try:
            got = self.fast.decode_many(names, payloads, recv_ns)
        except Exception as e:  # decode_many never raises: reported with the frame that makes it
            raise AssertionError(f"decode_many raised {e!r} on {label} [{self.settings}]\n"
                                 f"{self._culprit(names, payloads, recv_ns)}") from e
        _same(got, want, lambda: f"{label} [{self.settings}]\n{self._culprit(names, payloads, recv_ns)}")
        assert self.fast.counters == self.general.counters, (
            f"counters differ after {label} [{self.settings}]\n  fast:    {self.fast.counters}\n"
            f"  general: {self.general.counters}\n{self._culprit(names, payloads, recv_ns)}")
        self.handed_out.append((got, want, [encode(r) for r in got], label))

    def recheck(self) -> None:
        """Records from earlier batches must not have changed (no buffer reused across calls):
        neither their values nor their journal bytes (a prepacked body is kept apart from the arrays)."""
        for got, want, encoded, label in self.handed_out:
            problem = _diff_records(got, want)
            assert problem is None, f"after later decode_many calls, the batch {label} [{self.settings}]:\n{problem}"
            changed = [j for j, rec in enumerate(got) if encode(rec) != encoded[j]]
            assert not changed, (f"records {changed[:10]} of the batch {label} [{self.settings}] encode differently "
                                 f"after later decode_many calls: {[_brief(got[j]) for j in changed[:3]]}")

    @property
    def settings(self) -> str:
        return f"symbols={self.symbols}, skip_unknown_symbols={self.skip}"

    def _culprit(self, names: list[str], payloads: list[bytes], recv_ns: int) -> str:
        """Name the first frame that differs when decoded alone by fresh decoders (or say none does)."""
        for i, (name, payload) in enumerate(zip(names, payloads, strict=True)):
            fast, general = self._new(True), self._new(False)
            want = general.decode(name, payload, recv_ns)
            try:
                got = fast.decode_many([name], [payload], recv_ns)
            except Exception as e:  # reported in the message
                got = e
            problem = _diff_records(got, want) or (
                None if fast.counters == general.counters
                else f"counters fast {fast.counters} vs general {general.counters}")
            if problem:
                fast_recs = [_brief(r) for r in got] if isinstance(got, list) else repr(got)
                return (f"frame {i} of {len(names)}, gateway topic {name!r}: {_show(payload)}\n"
                        f"  alone: {problem}\n  fast records:    {fast_recs}\n"
                        f"  general records: {[_brief(r) for r in want]}")
        return f"no frame of this batch of {len(names)} differs when decoded alone: the batching differs"


# --- the recordings ------------------------------------------------------------------------------


def _gateway_topic(frame: bytes, index: int) -> str:
    """The gateway topic a frame comes on: by its Bybit topic; acks go round all gateway topics."""
    obj = orjson.loads(frame)
    topic = obj.get("topic")
    if topic is None:
        return NAMES[index % len(NAMES)]
    head, param = topic.split(".")[:2]
    if head == "orderbook":
        return T.orderbook_snapshot if obj["type"] == "snapshot" else T.orderbook_delta
    if head == "kline":
        assert param == "1", topic
        return T.kline_1m
    return {"publicTrade": T.trades, "tickers": T.ticker}[head]


class Recorded(NamedTuple):
    names: list[str]
    payloads: list[bytes]
    frame_symbols: list[str | None]  # the symbol of each frame's Bybit topic (None for acks)
    symbols: list[str]


@pytest.fixture(scope="module")
def recorded(shared_bybit: Path) -> Recorded:
    """Every frame of every shared recording, in file order, with its gateway topic."""
    payloads = [line for name in RECORDINGS for line in (shared_bybit / name).read_bytes().splitlines()]
    names = [_gateway_topic(p, i) for i, p in enumerate(payloads)]
    topics = [orjson.loads(p).get("topic") for p in payloads]
    frame_symbols = [t.rsplit(".", 1)[1] if t else None for t in topics]
    symbols = sorted({s for s in frame_symbols if s})
    assert len(payloads) == 1248 + 202 + 50
    assert symbols == ["AIOZUSDT", "BANDUSDT", "DOGEUSDT", "RADUSDT", "SNTUSDT", "SOLUSDT", "XRPUSDT"]
    return Recorded(names, payloads, frame_symbols, symbols)


def _batches(n: int, batch: str) -> Iterator[slice]:
    """Cut range(n) into consecutive slices: fixed size, ``all`` at once, or ``mixed`` sizes."""
    if batch == "all":
        yield slice(0, n)
        return
    sizes = [int(batch)] if batch.isdigit() else [2, 3, 64, 1, 13, 250, 5]
    start = i = 0
    while start < n:
        stop = start + sizes[i % len(sizes)]
        yield slice(start, stop)
        start, i = stop, i + 1


SYMBOL_SETTINGS = {"recorded": ("recorded", False), "any": (None, False), "one": (["SOLUSDT"], False),
                   "one_skip": (["SOLUSDT"], True)}


@pytest.mark.parametrize("batch", ["1", "7", "mixed", "all"])
@pytest.mark.parametrize("setting", list(SYMBOL_SETTINGS))
def test_recordings(recorded: Recorded, setting: str, batch: str) -> None:
    symbols, skip = SYMBOL_SETTINGS[setting]
    pair = _Pair(recorded.symbols if symbols == "recorded" else symbols, skip)
    for k, part in enumerate(_batches(len(recorded.payloads), batch)):
        pair.check(recorded.names[part], recorded.payloads[part], NS + k,
                   f"recorded frames {part.start}..{min(part.stop, len(recorded.payloads)) - 1}")
    pair.recheck()
    counters = pair.general.counters  # what the run exercised
    others = sum(s not in (None, "SOLUSDT") for s in recorded.frame_symbols)
    assert counters["frames"] == 1500 and others == 1500 - 21 - (383 + 193 + 57 + 25)
    bad, skipped = {
        "recorded": ({}, {"ack": 21}), "any": ({}, {"ack": 21}),
        "one": ({"unknown_symbol": others}, {"ack": 21}), "one_skip": ({}, {"ack": 21, "unknown_symbol": others}),
    }[setting]
    assert (counters["bad"], counters["skipped"]) == (bad, skipped)


def test_empty_batch() -> None:
    pair = _Pair(["SOLUSDT"])
    pair.check([], [], NS, "an empty batch")
    assert pair.fast.counters["frames"] == 0


# --- named mutations of real book frames ----------------------------------------------------------


class Base(NamedTuple):
    """A real book frame to mutate."""

    name: str
    gw: str
    raw: bytes
    kind: str
    symbol: str

    def tree(self) -> dict[str, Any]:
        return orjson.loads(self.raw)


def _pick_bases(payloads: list[bytes]) -> list[Base]:
    """Snapshots and deltas of every depth in the recordings, including a delta with an empty side."""
    wanted: dict[str, Callable[[dict[str, Any]], bool]] = {
        "SOLUSDT snapshot (200)": lambda o: o["topic"] == "orderbook.200.SOLUSDT" and o["type"] == "snapshot",
        "SOLUSDT delta (200)": lambda o: (o["topic"] == "orderbook.200.SOLUSDT" and o["type"] == "delta"
                                          and len(o["data"]["b"]) >= 2 and len(o["data"]["a"]) >= 2),
        "DOGEUSDT delta, no asks (200)": lambda o: (o["topic"] == "orderbook.200.DOGEUSDT" and o["type"] == "delta"
                                                    and o["data"]["b"] and not o["data"]["a"]),
        "XRPUSDT snapshot (500)": lambda o: o["topic"] == "orderbook.500.XRPUSDT" and o["type"] == "snapshot",
        "XRPUSDT delta (500)": lambda o: o["topic"] == "orderbook.500.XRPUSDT" and o["type"] == "delta",
        "BANDUSDT snapshot (1)": lambda o: o["topic"] == "orderbook.1.BANDUSDT",
    }
    bases = []
    for name, match in wanted.items():
        raw = next(p for p in payloads if p.startswith(b'{"topic":"orderbook') and match(orjson.loads(p)))
        obj = orjson.loads(raw)
        bases.append(Base(name, _gateway_topic(raw, 0), raw, obj["type"], obj["data"]["s"]))
    return bases


@pytest.fixture(scope="module")
def bases(recorded: Recorded) -> list[Base]:
    return _pick_bases(recorded.payloads)


_HOLE = "@@HOLE@@"
_HOLE_TOKEN = orjson.dumps(_HOLE)

Where = tuple[str | int, ...]


def _dump_with(tree: dict[str, Any], raw: bytes) -> bytes:
    """Dump `tree` (which holds `_HOLE` once) with the hole replaced by the raw JSON text `raw`."""
    text = orjson.dumps(tree)
    assert text.count(_HOLE_TOKEN) == 1
    return text.replace(_HOLE_TOKEN, raw)


def _put(base: Base, path: Where, raw: bytes) -> bytes:
    """The frame with the value at `path` set to the raw JSON text `raw` (a new key goes last)."""
    tree = base.tree()
    parent: Any = tree
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = _HOLE
    return _dump_with(tree, raw)


def _put_first(base: Base, path: Where, key: str, raw: bytes) -> bytes:
    """The frame with a key `key` = raw JSON text put first in the dict at `path`."""
    tree = base.tree()
    parent: Any = tree
    for k in path[:-1]:
        parent = parent[k]
    old = parent[path[-1]] if path else tree
    new = {key: _HOLE, **{k: v for k, v in old.items() if k != key}}
    if path:
        parent[path[-1]] = new
    else:
        tree = new
    return _dump_with(tree, raw)


def _drop(base: Base, *path: str) -> bytes:
    tree = base.tree()
    parent: Any = tree
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return orjson.dumps(tree)


def _edit_tree(base: Base, edit: Callable[[dict[str, Any]], dict[str, Any]]) -> bytes:
    return orjson.dumps(edit(base.tree()))


def _sub(base: Base, pattern: bytes, repl: bytes | Callable[[re.Match[bytes]], bytes]) -> bytes | None:
    """The frame with the first match of `pattern` replaced by `repl` (literal bytes, or a function of
    the match); None if it has no match."""
    out, n = re.subn(pattern, (lambda m: repl) if isinstance(repl, bytes) else repl, base.raw, count=1)
    return out if n else None


def _value_paths(base: Base) -> list[Where]:
    """Where number texts go: the first bid price, the last ask price, the last bid size."""
    data = base.tree()["data"]
    paths: list[Where] = []
    if data["b"]:
        paths.append(("data", "b", 0, 0))
    if data["a"]:
        paths.append(("data", "a", -1, 0))
    if data["b"]:
        paths.append(("data", "b", -1, 1))
    return paths


def _level_paths(base: Base) -> list[Where]:
    data = base.tree()["data"]
    return [p for p, side in ((("data", "b", 0), data["b"]), (("data", "a", -1), data["a"])) if side]


def _other_symbol(base: Base) -> str:
    return "DOGEUSDT" if base.symbol == "SOLUSDT" else "SOLUSDT"


def _retopic(base: Base, topic: str, symbol: str | None = None) -> bytes:
    tree = base.tree()
    tree["topic"] = topic
    if symbol is not None:
        tree["data"]["s"] = symbol
    return orjson.dumps(tree)


def _depth_topic(base: Base, depth: str) -> str:
    return f"orderbook.{depth}.{base.symbol}"


def _dup_after(base: Base, key: bytes, extra: Callable[[re.Match[bytes]], bytes]) -> bytes | None:
    """The frame with a second ``key`` entry right after the first one (the last one wins in orjson)."""
    return _sub(base, rb'"' + key + rb'":("[^"]*"|-?\d+)', lambda m: m.group(0) + b"," + extra(m))


#: Number texts put in place of a bid price, an ask price and a size (see `_value_paths`).
VALUE_TEXTS: dict[str, bytes] = {
    "15_significant_digits": b'"1234567.89012345"',
    "16_significant_digits": b'"1234567.890123456"',
    "16_significant_digits_fraction": b'"0.1234567890123456"',
    "16_digit_integer": b'"1234567890123456"',
    "trailing_zeros_past_16_chars": b'"1.50000000000000000000"',
    "leading_fraction_zeros": b'"0.0000000000000123"',
    "fraction_23_digits": b'"0.00000000000000000000001"',
    "below_normal_range": b'"0.' + b"0" * 310 + b'1"',
    "above_float_range": b'"1' + b"0" * 320 + b'"',
    "exponent": b'"1e3"',
    "exponent_upper": b'"1E3"',
    "exponent_negative": b'"1.5e-3"',
    "leading_zero": b'"01.5"',
    "leading_zeros": b'"00.5"',
    "trailing_dot": b'"1."',
    "leading_dot": b'".5"',
    "only_dot": b'"."',
    "two_dots": b'"1.2.3"',
    "negative": b'"-1.5"',
    "negative_zero": b'"-0"',
    "zero": b'"0"',
    "zero_with_decimals": b'"0.000"',
    "empty_string": b'""',
    "escaped_dot": rb'"1\u002e5"',
    "escaped_digit": rb'"\u0031.5"',
    "escaped_solidus": rb'"1\/5"',
    "escaped_nul": rb'"1.5\u0000"',
    "arabic_indic_digits": '"١.٥"'.encode(),
    "fullwidth_digits": '"１.５"'.encode(),
    "superscript_digit": '"²"'.encode(),
    "plus_sign": b'"+1.5"',
    "leading_space": b'" 1.5"',
    "trailing_space": b'"1.5 "',
    "nan": b'"NaN"',
    "inf": b'"inf"',
    "minus_infinity": b'"-Infinity"',
    "hex": b'"0x1A"',
    "underscore": b'"1_000"',
    "decimal_comma": b'"1,5"',
    "hundred_digits": b'"' + b"1" * 100 + b'"',
    "json_number": b"1.5",
    "json_integer": b"2",
    "json_null": b"null",
    "json_true": b"true",
    "json_list": b'["1.5"]',
    "json_object": b"{}",
}

#: Texts put in place of a whole level (the first bid, the last ask).
LEVEL_TEXTS: dict[str, bytes] = {
    "3_entries": b'["1.5","2","3"]',
    "1_entry": b'["1.5"]',
    "no_entries": b"[]",
    "numbers_not_strings": b"[1.5,2]",
    "size_a_number": b'["1.5",2]',
    "null": b"null",
    "string": b'"1.5"',
    "object": b'{"p":"1.5","s":"2"}',
    "nested": b'[["1.5","2"]]',
}

#: Texts put in place of a whole side (``b`` and ``a``).
SIDE_TEXTS: dict[str, bytes] = {
    "null": b"null",
    "object": b"{}",
    "object_of_levels": b'{"0":["1.5","2"]}',
    "string": b'"[]"',
    "number": b"0",
    "empty": b"[]",
    "list_of_empty": b"[[]]",
    "flat": b'["1.5","2"]',
}

#: A mutation turns a base frame into payloads (sent on the base's gateway topic) or (topic, payload)
#: pairs; None or an empty list when it does not apply to that base.
Mutation = Callable[[Base], Sequence[tuple[str, bytes] | bytes | None] | bytes | None]


#: Small bases (one delta, one snapshot) for mutations with many frames whose point is not the base.
SMALL = ("SOLUSDT delta (200)", "BANDUSDT snapshot (1)")


def _only(names: Sequence[str], mutation: Mutation) -> Mutation:
    """`mutation` applied to the named bases only."""
    return lambda base: mutation(base) if base.name in names else None


def _value_mutation(raw: bytes) -> Mutation:
    return lambda base: [_put(base, path, raw) for path in _value_paths(base)]


def _level_mutation(raw: bytes) -> Mutation:
    return lambda base: [_put(base, path, raw) for path in _level_paths(base)]


def _side_mutation(raw: bytes) -> Mutation:
    return lambda base: [_put(base, ("data", side), raw) for side in ("b", "a")]


def _field_mutation(path: Where, raw: bytes) -> Mutation:
    return lambda base: _put(base, path, raw)


def _on_gateway_topics(*names: str) -> Mutation:
    return lambda base: [(name, base.raw) for name in names]


def _truncated(step: int) -> Mutation:
    return lambda base: [base.raw[:cut] for cut in range(0, len(base.raw), step)]


def _invalid_utf8(base: Base) -> list[bytes | None]:
    sym = base.symbol.encode()
    bad = sym[:3] + b"\xff" + sym[3:]
    return [_sub(base, rb'"s":"' + sym, b'"s":"' + bad),  # in data.s only
            base.raw.replace(sym, bad),  # in the topic and data.s
            _sub(base, rb'"s":"' + sym, b'"s":"' + sym[:3] + b"\xc0\xaf" + sym[3:]),  # overlong encoding
            _sub(base, rb'"s":"' + sym, b'"s":"' + sym + b"\xed\xa0\x80"),  # a UTF-16 surrogate as UTF-8
            _put(base, ("note",), b'"\xff\xfe"'),  # in an unknown key's value
            _put(base, ("data", "s"), rb'"\ud800"')]  # a lone surrogate escape


#: Ints around msgpack's encoding boundaries (fixint, uint8/16/32/64) and int64's end.
INT_BOUNDARIES = (0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 10**18 - 1, 10**18, 2**63 - 1)
#: Symbols put in the topic and data.s alike (raw bytes): valid ones around msgpack's str8 boundary
#: (32 bytes) and the 64-character limit, and ones the topic grammar refuses.
SYMBOL_FORMS = (b"X", b"A" * 31, b"A" * 32, b"A" * 64, b"A" * 65, b"", b"1000PEPEUSDT", b"SOL-USDT_1", b"solusdt",
                b"SOL.USDT", b"SOL USDT", b"-SOL", b"SOL/USDT", b"SOL\x7fUSDT", "SOLUSDÉ".encode(), b"SOL\xffUSDT")
#: Top-level and data keys that look like the real ones.
SIMILAR_KEYS = {(): ("t", "tss", "ct", "ctss", "typ", "types", "topi", "topics", "dat", "datas", "Ts", "TOPIC"),
                ("data",): ("S", "ss", "bb", "A", "U", "uu", "se", "seqq", "b ", "")}


def _ints(base: Base) -> list[bytes]:
    paths: list[Where] = [("data", "u"), ("data", "seq"), ("ts",), ("cts",)]
    return [_put(base, path, str(v).encode()) for path in paths for v in INT_BOUNDARIES]


def _symbols(base: Base) -> list[bytes]:
    sym = base.symbol.encode()
    assert base.raw.count(sym) == 2  # the topic and data.s
    return [base.raw.replace(sym, form) for form in SYMBOL_FORMS]


def _similar_keys(base: Base) -> list[bytes]:
    return [_put(base, (*where, key), b"1") for where, keys in SIMILAR_KEYS.items() for key in keys]


def _renamed_keys(base: Base) -> list[bytes]:
    renames = [(("ts",), "tS"), (("cts",), "ct"), (("type",), "Type"), (("data", "seq"), "sequ"),
               (("data", "u"), "U"), (("data", "s"), "S"), (("data", "b"), "B")]
    out = []
    for path, new in renames:
        tree = base.tree()
        parent: Any = tree
        for key in path[:-1]:
            parent = parent[key]
        parent[new] = parent.pop(path[-1])
        out.append(orjson.dumps(tree))
    return out


def _level_counts(base: Base) -> list[bytes]:
    """Bids of 0..5000 distinct levels: array sizes around msgpack's ext8/ext16/ext32 boundaries."""
    counts = (0, 1, 14, 15, 4094, 4095, 5000)
    return [_put(base, ("data", "b"), orjson.dumps([[f"{70 - k / 1000:.3f}", f"{k + 1}.5"] for k in range(n)]))
            for n in counts]


def _minimal_levels(base: Base) -> bytes:
    """30 000 of the shortest levels there are (``["1","1"]``; size 0 in a delta)."""
    size = "1" if base.kind == "snapshot" else "0"
    return _put(base, ("data", "b"), orjson.dumps([["1", size]] * 30_000))


MUTATIONS: dict[str, Mutation] = {
    # whitespace
    "ws_after_every_comma": lambda b: b.raw.replace(b",", b", "),
    "ws_after_every_colon": lambda b: b.raw.replace(b":", b": "),
    "ws_before_every_comma": lambda b: b.raw.replace(b",", b" ,"),
    "ws_after_first_level_comma": lambda b: _sub(b, rb'\[\["[^"]*",', lambda m: m.group(0) + b" "),
    "ws_newline_between_levels": lambda b: _sub(b, rb"\],\[", b"],\n["),
    "ws_tab_after_data_colon": lambda b: _sub(b, rb'"data":', b'"data":\t'),
    "ws_inside_brackets": lambda b: b.raw.replace(b"[[", b"[ [").replace(b"]]", b"] ]"),
    "ws_crlf_between_top_keys": lambda b: _sub(b, rb',"ts":', b',\r\n"ts":'),
    "leading_whitespace": lambda b: [b" " + b.raw, b"\n" + b.raw, b"\t\r\n " + b.raw],
    "trailing_whitespace": lambda b: [b.raw + b" ", b.raw + b"\n", b.raw + b"\r\n\t "],
    # key order, duplicate and escaped keys
    "keys_reversed_top": lambda b: _edit_tree(b, lambda t: dict(reversed(t.items()))),
    "keys_reversed_data": lambda b: _edit_tree(b, lambda t: {**t, "data": dict(reversed(t["data"].items()))}),
    "keys_data_first": lambda b: _edit_tree(b, lambda t: {"data": t["data"], **t}),
    "keys_u_seq_first_in_data": lambda b: _edit_tree(
        b, lambda t: {**t, "data": {"seq": t["data"]["seq"], "u": t["data"]["u"], **t["data"]}}),
    "dup_u_last_wins": lambda b: _dup_after(b, b"u", lambda m: b'"u":' + str(int(m.group(1)) + 7).encode()),
    "dup_u_first_loses": lambda b: _sub(b, rb'"data":\{', b'"data":{"u":1,'),
    "dup_seq_last_wins": lambda b: _dup_after(b, b"seq", lambda m: b'"seq":5'),
    "dup_ts_last_wins": lambda b: _dup_after(b, b"ts", lambda m: b'"ts":5'),
    "dup_type_last_wins": lambda b: _dup_after(
        b, b"type", lambda m: b'"type":"delta"' if b.kind == "snapshot" else b'"type":"snapshot"'),
    "dup_topic_last_wins": lambda b: _dup_after(
        b, b"topic", lambda m: b'"topic":"orderbook.200.' + _other_symbol(b).encode() + b'"'),
    "dup_s_last_wins": lambda b: _dup_after(b, b"s", lambda m: b'"s":"' + _other_symbol(b).encode() + b'"'),
    "dup_b_first_loses": lambda b: _sub(b, rb'"data":\{', b'"data":{"b":[["1.5","2"]],'),
    "dup_b_last_wins": lambda b: _sub(b, rb',"a":', b',"b":[["1.5","2"]],"a":'),
    "dup_data_last_wins": lambda b: b.raw[:-1] + b',"data":{"s":"' + b.symbol.encode() + b'","b":[],"a":[],"u":1}}',
    "escaped_key_u": lambda b: _sub(b, rb'"u":', rb'"\u0075":'),
    "escaped_key_b": lambda b: _sub(b, rb'"b":', rb'"\u0062":'),
    "escaped_key_data": lambda b: _sub(b, rb'"data":', rb'"d\u0061ta":'),
    "escaped_key_type": lambda b: _sub(b, rb'"type":', rb'"typ\u0065":'),
    "escaped_type_value": lambda b: _sub(b, rb'"type":"(snapshot|delta)"', lambda m: b'"type":"\\u0' + b"%03x" % m.group(1)[0] + m.group(1)[1:] + b'"'),
    "escaped_topic_dot": lambda b: _sub(b, rb'"topic":"orderbook\.', rb'"topic":"orderbook\u002e'),
    "escaped_symbol_char": lambda b: _sub(b, rb'"s":"(.)', lambda m: b'"s":"\\u00' + b"%02x" % m.group(1)[0]),
    # missing fields
    "seq_removed": lambda b: _drop(b, "data", "seq"),
    "ts_removed": lambda b: _drop(b, "ts"),
    "cts_removed": lambda b: _drop(b, "cts"),
    "ts_and_cts_removed": lambda b: _edit_tree(b, lambda t: {k: v for k, v in t.items() if k not in ("ts", "cts")}),
    "u_removed": lambda b: _drop(b, "data", "u"),
    "s_removed": lambda b: _drop(b, "data", "s"),
    "type_removed": lambda b: _drop(b, "type"),
    "topic_removed": lambda b: _drop(b, "topic"),
    "data_removed": lambda b: _drop(b, "data"),
    # extra fields
    "extra_key_top_last": _field_mutation(("zz",), b"1"),
    "extra_key_top_first": lambda b: _put_first(b, (), "id", b'"abc"'),
    "extra_key_data_last": _field_mutation(("data", "zz"), b'"x"'),
    "extra_key_data_first": lambda b: _put_first(b, ("data",), "x", b'[["1","2"]]'),
    "extra_key_top_u_s_b": lambda b: _put_first(b, (), "u", b'-1,"s":"ZZZ","b":[["0","0"]],"seq":-2'),
    "extra_nested_book_keys": _field_mutation(("meta",), b'{"b":[["0","-1"]],"a":null,"u":-1,"s":"ZZZ"}'),
    "extra_string_with_json_text": _field_mutation(("note",), orjson.dumps('"b":[["1","0"]],"u":-1}')),
    "extra_deep_nesting": _field_mutation(("deep",), b"[" * 2000 + b"]" * 2000),
    "extra_keys_similar_to_real_ones": _only(SMALL, _similar_keys),
    "keys_renamed": _renamed_keys,
    "extra_key_ok_nesting": _field_mutation(("deep",), b"[" * 200 + b"]" * 200),
    "extra_huge_string_and_bad_u": lambda b: _put(b, ("pad",), orjson.dumps("x" * 70_000)).replace(
        b'"u":', b'"u":-', 1),
    # u, seq, ts, cts
    "u_negative": _field_mutation(("data", "u"), b"-5"),
    "u_float": _field_mutation(("data", "u"), b"1.0"),
    "u_float_exponent": _field_mutation(("data", "u"), b"1e3"),
    "u_huge": _field_mutation(("data", "u"), str(2**64).encode()),
    "u_2_pow_63": _field_mutation(("data", "u"), str(2**63).encode()),
    "u_2_pow_63_minus_1": _field_mutation(("data", "u"), str(2**63 - 1).encode()),
    "u_zero": _field_mutation(("data", "u"), b"0"),
    "u_minus_zero": _field_mutation(("data", "u"), b"-0"),
    "u_string": _field_mutation(("data", "u"), b'"13783324"'),
    "u_null": _field_mutation(("data", "u"), b"null"),
    "u_true": _field_mutation(("data", "u"), b"true"),
    "u_list": _field_mutation(("data", "u"), b"[1]"),
    "u_nan_literal": _field_mutation(("data", "u"), b"NaN"),
    "u_leading_zero": _field_mutation(("data", "u"), b"0123"),
    "u_plus_sign": _field_mutation(("data", "u"), b"+5"),
    "u_wraps_int64": _field_mutation(("data", "u"), str(2**64 + 13783324).encode()),
    "u_19_digits": _field_mutation(("data", "u"), b"1" * 19),
    "u_40_digits": _field_mutation(("data", "u"), b"9" * 40),
    "ints_at_encoding_boundaries": _only(SMALL, _ints),
    "seq_negative": _field_mutation(("data", "seq"), b"-1"),
    "seq_float": _field_mutation(("data", "seq"), b"2.5"),
    "seq_huge": _field_mutation(("data", "seq"), str(2**64).encode()),
    "seq_string": _field_mutation(("data", "seq"), b'"7"'),
    "seq_null": _field_mutation(("data", "seq"), b"null"),
    "seq_wraps_int64": _field_mutation(("data", "seq"), str(2**64 + 5).encode()),
    "seq_leading_zero": _field_mutation(("data", "seq"), b"00"),
    "ts_negative": _field_mutation(("ts",), b"-1"),
    "ts_float": _field_mutation(("ts",), b"1786310819000.5"),
    "ts_string": _field_mutation(("ts",), b'"1786310819000"'),
    "ts_huge": _field_mutation(("ts",), str(2**63).encode()),
    "ts_null": _field_mutation(("ts",), b"null"),
    "cts_negative": _field_mutation(("cts",), b"-1"),
    "cts_float": _field_mutation(("cts",), b"1.0"),
    "cts_false": _field_mutation(("cts",), b"false"),
    "cts_minus_zero": _field_mutation(("cts",), b"-0"),
    "ts_leading_zero": _field_mutation(("ts",), b"01786310819000"),
    "ts_wraps_int64": _field_mutation(("ts",), str(2**64 + 1786310819000).encode()),
    # symbols, topics, types
    "data_s_other_known_symbol": lambda b: _put(b, ("data", "s"), orjson.dumps(_other_symbol(b))),
    "data_s_unknown_symbol": _field_mutation(("data", "s"), b'"ZZZUSDT"'),
    "data_s_lower_case": lambda b: _put(b, ("data", "s"), orjson.dumps(b.symbol.lower())),
    "data_s_prefix": lambda b: _put(b, ("data", "s"), orjson.dumps(b.symbol[:-1])),
    "data_s_longer": lambda b: _put(b, ("data", "s"), orjson.dumps(b.symbol + "X")),
    "symbol_forms_in_topic_and_data": _symbols,
    "data_s_number": _field_mutation(("data", "s"), b"1"),
    "data_s_null": _field_mutation(("data", "s"), b"null"),
    "data_s_non_ascii": lambda b: _put(b, ("data", "s"), orjson.dumps(b.symbol + "É")),
    "topic_unknown_symbol": lambda b: _retopic(b, "orderbook.200.ZZZUSDT", "ZZZUSDT"),
    "topic_other_known_symbol": lambda b: _retopic(b, _depth_topic(b, "200")[:-len(b.symbol)] + _other_symbol(b),
                                                   _other_symbol(b)),
    "topic_bad_depth": lambda b: [_retopic(b, _depth_topic(b, d)) for d in (
        "25", "0", "2", "100", "01", "0200", "200 ", "", "9" * 18, "1" * 19, "50x", "-50", "５０")],
    "topic_other_valid_depths": lambda b: [_retopic(b, _depth_topic(b, d)) for d in ("1", "50", "200", "500", "1000")],
    "topic_malformed": lambda b: [_retopic(b, t) for t in (
        "orderbook", "orderbook.200", "orderbook.200.", "orderbook..SOLUSDT", "orderbook.200.SOLUSDT.x",
        "orderbook.200.solusdt", "Orderbook.200.SOLUSDT", "orderbook.200.SOL USDT", "publicTrade.SOLUSDT", "")],
    "topic_not_a_string": lambda b: [_put(b, ("topic",), raw) for raw in (b"1", b"null", b'["orderbook.1.X"]')],
    "type_partial": _field_mutation(("type",), b'"partial"'),
    "type_capitalised": lambda b: _put(b, ("type",), orjson.dumps(b.kind.capitalize())),
    "type_null": _field_mutation(("type",), b"null"),
    "type_number": _field_mutation(("type",), b"1"),
    "data_not_an_object": lambda b: [_put(b, ("data",), raw) for raw in (b"[]", b"null", b'"x"', b"[{}]")],
    "both_sides_empty": lambda b: _edit_tree(b, lambda t: {**t, "data": {**t["data"], "b": [], "a": []}}),
    "b_missing": lambda b: _drop(b, "data", "b"),
    "level_counts_at_encoding_boundaries": _only(SMALL, _level_counts),
    "minimal_levels_30000": _only(SMALL, _minimal_levels),
    "a_missing": lambda b: _drop(b, "data", "a"),
    # whole payload
    "truncated_snapshot_every_17th_cut": _only(["SOLUSDT snapshot (200)"], _truncated(17)),
    "truncated_delta_every_cut": _only(["SOLUSDT delta (200)"], _truncated(1)),
    "trailing_garbage": lambda b: [b.raw + x for x in (b"x", b"}", b"]", b"{}", b",", b"\x00", b"0")],
    "utf8_bom": lambda b: b"\xef\xbb\xbf" + b.raw,
    "invalid_utf8": _invalid_utf8,
    "msgpack_encoded": lambda b: msgpack.packb(b.tree()),
    "not_an_object": lambda b: [b"[]", b"null", b'"x"', b"1", b"[" + b.raw + b"]", b""],
    # gateway topics
    "snapshot_and_delta_swap_gateway_topic": lambda b: [
        (T.orderbook_delta if b.gw == T.orderbook_snapshot else T.orderbook_snapshot, b.raw)],
    "on_trades_gateway_topic": _on_gateway_topics(T.trades),
    "on_other_gateway_topics": _on_gateway_topics(T.ticker, T.kline_1m, T.kline_1s, T.funding, T.executions),
    "on_unknown_gateway_topic": _on_gateway_topics("market.nope", "", "market.orderbook.delta "),
    **{f"value_{k}": _value_mutation(v) for k, v in VALUE_TEXTS.items()},
    **{f"level_{k}": _level_mutation(v) for k, v in LEVEL_TEXTS.items()},
    **{f"side_{k}": _side_mutation(v) for k, v in SIDE_TEXTS.items()},
}


def _cases(name: str, base: Base, mutations: dict[str, Mutation] | None = None) -> list[tuple[str, bytes]]:
    """The (gateway topic, payload) frames a mutation (of `mutations`, default `MUTATIONS`) makes of one base frame."""
    out = (MUTATIONS if mutations is None else mutations)[name](base)
    if out is None:
        return []
    items = [out] if isinstance(out, bytes) else out
    return [item if isinstance(item, tuple) else (base.gw, item) for item in items if item is not None]


#: (symbols, skip_unknown_symbols): the recordings' book symbols, any symbol, one symbol, one skipping others.
MUTATION_SETTINGS = [
    (["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"], False),
    (None, False),
    (["SOLUSDT"], False),
    (["SOLUSDT"], True),
]


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_mutated_book_frames(bases: list[Base], mutation: str) -> None:
    """Each mutated frame alone, between two clean frames, and all of them interleaved with clean ones."""
    cases = [(base, gw, frame) for base in bases for gw, frame in _cases(mutation, base)]
    assert cases, f"{mutation} applies to none of the base frames"
    assert any(frame != base.raw or gw != base.gw for base, gw, frame in cases), f"{mutation} changes nothing"
    delta, snap = (next(b for b in bases if b.name == name) for name in SMALL)
    for symbols, skip in MUTATION_SETTINGS:
        pair = _Pair(symbols, skip)
        for i, (base, gw, frame) in enumerate(cases):
            label = f"{mutation} #{i} of {base.name} on {gw!r}"
            pair.check([gw], [frame], NS, label)
            pair.check([snap.gw, gw, delta.gw], [snap.raw, frame, delta.raw], NS + 1, f"{label}, between clean frames")
        mixed: list[tuple[str, bytes]] = []
        for k, (_, gw, frame) in enumerate(cases):
            clean = bases[k % len(bases)]
            mixed += [(clean.gw, clean.raw), (gw, frame)]
        pair.check([n for n, _ in mixed], [p for _, p in mixed], NS + 2, f"all {mutation} frames mixed with clean ones")
        pair.recheck()


# --- named mutations of real trade frames ---------------------------------------------------------

#: The trade bases: a real frame with several trades, a real one with one trade, one built of 20 trades
#: (its id and bt arrays cross msgpack's fixarray boundary at 16; one trade is a block trade) and one
#: built with ``"data":[]``.
MULTI_TRADES, ONE_TRADE, TWENTY_TRADES, NO_TRADES = (
    "SOLUSDT 3 trades", "SOLUSDT 1 trade", "SOLUSDT 20 trades (built)", "SOLUSDT no trades (built)")


def _pick_trade_bases(payloads: list[bytes]) -> list[Base]:
    frames = [p for p in payloads if p.startswith(b'{"topic":"publicTrade.SOLUSDT"')]
    multi = next(p for p in frames if len(orjson.loads(p)["data"]) == 3)
    one = next(p for p in frames if len(orjson.loads(p)["data"]) == 1)
    tree = orjson.loads(multi)
    trades = tree["data"]
    tree["data"] = [{**trades[k % 3], "T": trades[0]["T"] + k, "p": f"{77.3 + k / 1000:.3f}",
                     "i": f"{trades[k % 3]['i'][:-2]}{k:02d}", "BT": k == 17} for k in range(20)]
    twenty = orjson.dumps(tree)
    empty = orjson.dumps({**orjson.loads(one), "data": []})
    out = [Base(name, _gateway_topic(raw, 0), raw, "trades", "SOLUSDT")
           for name, raw in ((MULTI_TRADES, multi), (ONE_TRADE, one), (TWENTY_TRADES, twenty), (NO_TRADES, empty))]
    assert [len(b.tree()["data"]) for b in out] == [3, 1, 20, 0] and {b.gw for b in out} == {T.trades}
    return out


@pytest.fixture(scope="module")
def trade_bases(recorded: Recorded) -> list[Base]:
    return _pick_trade_bases(recorded.payloads)


def _trade_paths(base: Base) -> list[Where]:
    """The trades a per-trade mutation edits: the first and (when there is another) the last."""
    n = len(base.tree()["data"])
    return [("data", k) for k in sorted({0, n - 1})] if n else []


def _in_trades(key: str, raw: bytes) -> Mutation:
    """Trade field `key` set to the raw JSON text `raw` (a new key goes last), in the first and last trade."""
    return lambda base: [_put(base, (*path, key), raw) for path in _trade_paths(base)]


def _price_size_mutation(raw: bytes) -> Mutation:
    """The raw JSON text `raw` as ``p``, then as ``v``, of the first and last trade."""
    return lambda base: [_put(base, (*path, col), raw) for path in _trade_paths(base) for col in ("p", "v")]


def _edit_trades(base: Base, edit: Callable[[dict[str, Any]], Any]) -> list[bytes]:
    """The frame with its first, then its last trade replaced by ``edit(trade)``."""
    out = []
    for _, k in _trade_paths(base):
        tree = base.tree()
        tree["data"][k] = edit(tree["data"][k])
        out.append(orjson.dumps(tree))
    return out


def _edit_all_trades(base: Base, edit: Callable[[dict[str, Any]], Any]) -> bytes | None:
    """The frame with every trade replaced by ``edit(trade)``; None when it has no trades."""
    tree = base.tree()
    if not tree["data"]:
        return None
    tree["data"] = [edit(t) for t in tree["data"]]
    return orjson.dumps(tree)


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda trade: {k: v for k, v in trade.items() if k != key}


def _trade_retopic(base: Base, topic: Any, symbol: str | None = None) -> bytes:
    """The frame with its topic set to `topic` (and, if given, every trade's ``s`` to `symbol`)."""
    tree = base.tree()
    tree["topic"] = topic
    if symbol is not None:
        tree["data"] = [{**t, "s": symbol} for t in tree["data"]]
    return orjson.dumps(tree)


def _unknown_everywhere(base: Base, raw: bytes) -> list[bytes]:
    """The raw JSON text `raw` as the value of a new key first and last at the top level and in the first
    and last trade, and in place of the values of the keys the fast path skips (``type``, ``L``, ``seq``)."""
    out = [_put_first(base, (), "x", raw), _put(base, ("x",), raw), _put(base, ("type",), raw)]
    for path in _trade_paths(base):
        out += [_put_first(base, path, "x", raw), _put(base, (*path, "x"), raw), _put(base, (*path, "L"), raw),
                _put(base, (*path, "seq"), raw)]
    return out


def _unknown_texts(*texts: bytes) -> Mutation:
    return lambda base: [frame for raw in texts for frame in _unknown_everywhere(base, raw)]


def _invalid_utf8_trades(base: Base) -> list[bytes | None]:
    """Bytes that are not UTF-8 in skipped values and keys, in the symbols, the topic and an id."""
    out: list[bytes | None] = []
    for bad in (b'"\xff"', b'"Minus\xc0\xafTick"', b'"\xed\xa0\x80"', b'"\xf8\x88\x80\x80\x80"'):
        out += _unknown_everywhere(base, bad)
    out += [_put_first(base, (), "x", b"1").replace(b'"x":', b'"\xff":', 1),
            _put(base, ("x",), b"1").replace(b'"x":', b'"\xfe\xff":', 1)]
    for path in _trade_paths(base):
        out += [_put(base, (*path, "x"), b"true").replace(b'"x":', b'"R\xffI":', 1),
                _put(base, (*path, "i"), b'"4b08\xff32c3"'), _put(base, (*path, "s"), b'"SOL\xffUSDT"')]
    out.append(base.raw.replace(b"SOLUSDT", b"SOL\xffUSDT"))
    return out


def _trade_ints(base: Base) -> list[bytes]:
    """ts, cts and the first trade's T at msgpack's int encoding boundaries and int64's end."""
    values = [str(v).encode() for v in (*INT_BOUNDARIES, 2**63)]
    out = [_put(base, (key,), v) for key in ("ts", "cts") for v in values]
    return out + [_put(base, (*path, "T"), v) for path in _trade_paths(base)[:1] for v in values]


def _id_lengths(base: Base) -> list[bytes]:
    """Ids of lengths around msgpack's fixstr / str8 / str16 boundaries (31, 32, 255, 256, 65535, 65536)."""
    return [_put(base, (*path, "i"), orjson.dumps("a" * n)) for path in _trade_paths(base)
            for n in (31, 32, 255, 256, 65535, 65536)]


def _trade_symbols(base: Base) -> list[bytes]:
    """The symbol forms of `SYMBOL_FORMS` in the topic and every trade's ``s`` alike."""
    return [base.raw.replace(b"SOLUSDT", form) for form in SYMBOL_FORMS]


#: Texts a JSON parser refuses as a number, or orjson does (out of float range), that a scanner
#: skipping an unknown key's value might take for one.
INVALID_NUMBER_TEXTS = (b"01", b"-01", b"00", b"1.", b".5", b"+1", b"-", b"--1", b"1-2", b"1+2", b"1e", b"1e+",
                        b"1.2.3", b"e5", b"E", b"1ee2", b"1e5.5", b"-.5", b"1e999", b"-1e999", b"0x1F", b"NaN",
                        b"Infinity", b"-Infinity", b"True", b"nul", b"tru", b"fals", b"truex", b"nullnull")

TRADE_MUTATIONS: dict[str, Mutation] = {
    # key order
    "keys_reversed_in_trades": lambda b: _edit_all_trades(b, lambda t: dict(reversed(t.items()))),
    "keys_rotated_in_trades": lambda b: _edit_all_trades(b, lambda t: dict([*list(t.items())[4:],
                                                                             *list(t.items())[:4]])),
    "keys_reversed_in_first_and_last_trade": lambda b: _edit_trades(b, lambda t: dict(reversed(t.items()))),
    "keys_reversed_top": lambda b: _edit_tree(b, lambda t: dict(reversed(t.items()))),
    "keys_reordered_top_topic_before_data": lambda b: _edit_tree(
        b, lambda t: {"ts": t["ts"], "topic": t["topic"], "data": t["data"], "type": t["type"]}),
    "keys_data_first": lambda b: _edit_tree(b, lambda t: {"data": t["data"], **t}),
    "keys_data_before_topic": lambda b: _edit_tree(
        b, lambda t: {"type": t["type"], "data": t["data"], "topic": t["topic"], "ts": t["ts"]}),
    # type
    "type_removed": lambda b: _drop(b, "type"),
    "type_object": lambda b: [_put(b, ("type",), raw) for raw in (b"{}", b'{"snapshot":1}', b"[]")],
    "type_delta": _field_mutation(("type",), b'"delta"'),
    # BT
    "bt_removed": lambda b: _edit_trades(b, _without("BT")),
    "bt_removed_in_all": lambda b: _edit_all_trades(b, _without("BT")),
    "bt_true": _in_trades("BT", b"true"),
    "bt_true_in_all": lambda b: _edit_all_trades(b, lambda t: {**t, "BT": True}),
    "bt_string_true": _in_trades("BT", b'"true"'),
    "bt_one": _in_trades("BT", b"1"),
    "bt_null": _in_trades("BT", b"null"),
    "bt_first_in_trade": lambda b: [_put_first(b, path, "BT", b"true") for path in _trade_paths(b)],
    # unknown keys
    "unknown_key_object_or_array": _unknown_texts(b"{}", b"[1]", b"[]", b'{"p":"1"}', b"[[]]"),
    "unknown_key_scalar": _unknown_texts(b'"abc"', b'""', b'"' + b"a" * 300 + b'"', rb'"a\"b"', b"0", b"-1",
                                         b"1.5e-3", b"-0", b"1E+2", b"0.0", b"9" * 30, b"true", b"false", b"null"),
    "unknown_key_invalid_number": _unknown_texts(*INVALID_NUMBER_TEXTS),
    "invalid_utf8": _invalid_utf8_trades,
    "extra_keys_similar_to_trade_ones": lambda b: [
        _put(b, (*path, key), b'"1"') for path in _trade_paths(b)
        for key in ("t", "TT", "ss", "SS", "V", "P", "I", "ii", "bt", "B", "BTT", "", "p ")],
    # duplicate keys
    "dup_p_last_wins": lambda b: _sub(b, rb'"p":"[^"]*"', lambda m: m.group(0) + b',"p":"78.5"'),
    "dup_p_first_loses": lambda b: _sub(b, rb"\[\{", b'[{"p":"0",'),
    "dup_unknown_key_in_trade": lambda b: _sub(b, rb'"L":"[^"]*"', lambda m: m.group(0) + b',"L":"PlusTick"'),
    "dup_unknown_key_top": lambda b: _sub(b, rb'"type":"[^"]*"', lambda m: m.group(0) + b',"type":"delta"'),
    "dup_unknown_object_key": lambda b: _put(b, ("x",), b"{}").replace(b'"x":{}', b'"x":{},"x":{}'),
    "dup_ts": lambda b: _sub(b, rb'"ts":\d+', lambda m: m.group(0) + b',"ts":5'),
    "dup_topic": lambda b: _sub(b, rb'"topic":"[^"]*"', lambda m: m.group(0) + b',"topic":"publicTrade.DOGEUSDT"'),
    "dup_data": lambda b: b.raw[:-1] + b',"data":[]}',
    "dup_s_and_i": lambda b: [_sub(b, rb'"s":"SOLUSDT"', b'"s":"SOLUSDT","s":"SOLUSDT"'),
                              _sub(b, rb'"i":"[^"]*"', lambda m: m.group(0) + b',"i":"x"')],
    "escaped_keys": lambda b: [_sub(b, rb'"p":', rb'"\u0070":'), _sub(b, rb'"BT":', rb'"B\u0054":'),
                               _sub(b, rb'"topic":', rb'"t\u006fpic":'), _sub(b, rb'"ts":', rb'"t\u0073":')],
    # T
    "t_negative": _in_trades("T", b"-1"),
    "t_float": _in_trades("T", b"1786310834644.0"),
    "t_exponent": _in_trades("T", b"1786310834644e0"),
    "t_19_digits": _in_trades("T", b"1" * 19),
    "t_18_digits": _in_trades("T", b"9" * 18),
    "t_string_digits": _in_trades("T", b'"1786310834644"'),
    "t_leading_zero": _in_trades("T", b"01786310834644"),
    "t_null": _in_trades("T", b"null"),
    "t_removed": lambda b: _edit_trades(b, _without("T")),
    # S
    "side_lower_case": _in_trades("S", b'"buy"'),
    "side_empty": _in_trades("S", b'""'),
    "side_removed": lambda b: _edit_trades(b, _without("S")),
    "side_buy": _in_trades("S", b'"Buy"'),
    "side_others": lambda b: [_put(b, (*path, "S"), raw) for path in _trade_paths(b)
                              for raw in (b'"SELL"', b'"Sel"', b'"Sells"', b'"B"', b"1", b"null", b'"Bu\\u0079"')],
    # s
    "s_other_symbol": _in_trades("s", b'"DOGEUSDT"'),
    "s_unknown_symbol": _in_trades("s", b'"ZZZUSDT"'),
    "s_prefix_and_longer": lambda b: [_put(b, (*path, "s"), raw) for path in _trade_paths(b)
                                      for raw in (b'"SOLUSD"', b'"SOLUSDTX"', b'"solusdt"', b'""')],
    "s_removed": lambda b: _edit_trades(b, _without("s")),
    "s_non_ascii": _in_trades("s", orjson.dumps("SOLUSDTÉ")),
    "s_null_or_number": lambda b: [_put(b, (*path, "s"), raw) for path in _trade_paths(b) for raw in (b"null", b"1")],
    # i
    "id_empty": _in_trades("i", b'""'),
    "id_empty_in_all": lambda b: _edit_all_trades(b, lambda t: {**t, "i": ""}),
    "id_non_ascii": lambda b: [_put(b, (*path, "i"), raw) for path in _trade_paths(b)
                               for raw in (orjson.dumps("é"), orjson.dumps("4b0832c3-é"), orjson.dumps("€"))],
    "id_escape": lambda b: [_put(b, (*path, "i"), raw) for path in _trade_paths(b)
                            for raw in (rb'"\u0041"', rb'"a\"b"', rb'"a\\b"', rb'"a\/b"', rb'"\u0000"')],
    "id_number": _in_trades("i", b"1"),
    "id_null": _in_trades("i", b"null"),
    "id_removed": lambda b: _edit_trades(b, _without("i")),
    "id_lengths_at_encoding_boundaries": _only([ONE_TRADE, TWENTY_TRADES], _id_lengths),
    # p and v
    **{f"p_v_{k}": _price_size_mutation(v) for k, v in VALUE_TEXTS.items()},
    "p_v_removed": lambda b: [*_edit_trades(b, _without("p")), *_edit_trades(b, _without("v"))],
    # trades that are not objects, data that is not a list
    "trade_not_an_object": lambda b: [frame for raw in (b"1", b"[]", b'["1.5","2"]', b"null", b'"x"', b"true")
                                      for frame in (_put(b, path, raw) for path in _trade_paths(b))],
    "trade_a_list_of_its_values": lambda b: _edit_trades(b, lambda t: list(t.values())),
    "trade_empty_object": lambda b: [_put(b, path, b"{}") for path in _trade_paths(b)],
    "data_not_a_list": lambda b: [_put(b, ("data",), raw) for raw in (b"{}", b"null", b'"x"', b"1", b'{"T":1}',
                                                                     b"[[]]", b"[{}]")],
    "data_removed": lambda b: _drop(b, "data"),
    # topics and symbols
    "topic_nothing_after_prefix": lambda b: [_trade_retopic(b, "publicTrade."), _trade_retopic(b, "publicTrade.", "")],
    "topic_extra_part": lambda b: [_trade_retopic(b, "publicTrade.SOLUSDT.x"),
                                   _trade_retopic(b, "publicTrade.SOLUSDT.x", "SOLUSDT.x")],
    "topic_unknown_symbol": lambda b: [_trade_retopic(b, "publicTrade.ZZZUSDT", "ZZZUSDT"),
                                       _trade_retopic(b, "publicTrade.ZZZUSDT")],
    "topic_other_known_symbol": lambda b: [_trade_retopic(b, "publicTrade.DOGEUSDT", "DOGEUSDT"),
                                           _trade_retopic(b, "publicTrade.DOGEUSDT")],
    "topic_malformed": lambda b: [_trade_retopic(b, t, t.partition(".")[2]) for t in (
        "publicTrade", "publictrade.SOLUSDT", "PublicTrade.SOLUSDT", "publicTrade..SOLUSDT", "publicTrade.solusdt",
        "publicTrade.SOL USDT", "publicTrade.SOLUSDTÉ", "publicTrade.SOL/USDT", "publicTrades.SOLUSDT",
        "orderbook.1.SOLUSDT", "tickers.SOLUSDT", "")],
    "topic_not_a_string": lambda b: [_put(b, ("topic",), raw) for raw in (b"1", b"null", b'["publicTrade.SOLUSDT"]')],
    "topic_removed": lambda b: _drop(b, "topic"),
    "topic_escaped": lambda b: _sub(b, rb'"topic":"publicTrade\.', rb'"topic":"publicTrade\u002e'),
    "symbol_forms_in_topic_and_trades": _trade_symbols,
    # whitespace, truncation, trailing bytes, other encodings
    "ws_after_colon": lambda b: [b.raw.replace(b":", b": "), _sub(b, rb'"p":', b'"p": '), _sub(b, rb'"T":', b'"T":\t'),
                                 _sub(b, rb'"data":', b'"data": '), _sub(b, rb'"ts":', b'"ts":\n'),
                                 _sub(b, rb'"topic":', b'"topic": '), _sub(b, rb'"L":', b'"L": ')],
    "ws_elsewhere": lambda b: [b.raw.replace(b",", b", "), b.raw.replace(b",", b" ,"), b.raw.replace(b"[{", b"[ {"),
                               b.raw.replace(b"}]", b"} ]"), b.raw.replace(b"{", b"{ "), _sub(b, rb"\},\{", b"},\n{")],
    "leading_and_trailing_whitespace": lambda b: [b" " + b.raw, b"\n" + b.raw, b.raw + b" ", b.raw + b"\r\n\t "],
    "trailing_garbage": lambda b: [b.raw + x for x in (b"x", b"}", b"]", b"{}", b",", b"\x00", b"0", b" x", b"\xff")],
    "truncated_every_13th_cut": _only([MULTI_TRADES], _truncated(13)),
    "truncated_near_the_end": lambda b: [b.raw[:-k] for k in range(1, 40)],
    "utf8_bom": lambda b: b"\xef\xbb\xbf" + b.raw,
    "msgpack_encoded": lambda b: msgpack.packb(b.tree()),
    "not_an_object": lambda b: [b"[]", b"null", b'"x"', b"1", b"[" + b.raw + b"]", b""],
    # gateway topics
    "on_book_delta_and_ticker_gateway_topics": _on_gateway_topics(T.orderbook_delta, T.ticker),
    "on_other_gateway_topics": _on_gateway_topics(T.orderbook_snapshot, T.kline_1s, T.kline_1m, T.funding,
                                                  T.executions, "market.nope", ""),
    # ts and cts
    "ts_removed": lambda b: _drop(b, "ts"),
    "cts_added": _field_mutation(("cts",), b"1786310834640"),
    "ts_bad": lambda b: [_put(b, ("ts",), raw) for raw in (b"-1", b"1.5", b"1e3", b'"1786310834644"', b"null",
                                                           b"true", b"01", b"1" * 19, b"[]")],
    "cts_bad": lambda b: [_put(b, ("cts",), raw) for raw in (b"-1", b"1.0", b'"5"', b"null", b"false", b"-0")],
    "ints_at_encoding_boundaries": _trade_ints,
}


@pytest.mark.parametrize("mutation", list(TRADE_MUTATIONS))
def test_mutated_trade_frames(trade_bases: list[Base], bases: list[Base], mutation: str) -> None:
    """Each mutated trade frame alone, between clean frames (trade and book: both scans in one batch),
    and all of them interleaved with clean ones."""
    cases = [(base, gw, frame) for base in trade_bases for gw, frame in _cases(mutation, base, TRADE_MUTATIONS)]
    assert cases, f"{mutation} applies to none of the trade frames"
    assert any(frame != base.raw or gw != base.gw for base, gw, frame in cases), f"{mutation} changes nothing"
    multi, one = trade_bases[0], trade_bases[1]
    book = next(b for b in bases if b.name == SMALL[0])
    clean = [multi, book, *trade_bases[1:]]
    for symbols, skip in MUTATION_SETTINGS:
        pair = _Pair(symbols, skip)
        for i, (base, gw, frame) in enumerate(cases):
            label = f"{mutation} #{i} of {base.name} on {gw!r}"
            pair.check([gw], [frame], NS, label)
            pair.check([multi.gw, gw, book.gw, one.gw], [multi.raw, frame, book.raw, one.raw], NS + 1,
                       f"{label}, between clean frames")
        mixed: list[tuple[str, bytes]] = []
        for k, (_, gw, frame) in enumerate(cases):
            other = clean[k % len(clean)]
            mixed += [(other.gw, other.raw), (gw, frame)]
        pair.check([n for n, _ in mixed], [p for _, p in mixed], NS + 2, f"all {mutation} frames mixed with clean ones")
        pair.recheck()


# --- random byte edits ----------------------------------------------------------------------------


class _Frames(list[tuple[str, bytes]]):
    """(gateway topic, frame) pairs with a short repr: hypothesis prints a failing example's arguments,
    fixtures included, and refuses (HypothesisWarning, an error here) to print a repr of many kB."""

    def __repr__(self) -> str:
        return f"<{len(self)} real frames>"


@pytest.fixture(scope="module")
def book_frames(recorded: Recorded) -> list[tuple[str, bytes]]:
    frames = _Frames((n, p) for n, p in zip(recorded.names, recorded.payloads, strict=True)
                     if p.startswith(b'{"topic":"orderbook'))
    assert len(frames) == 1 + 382 + 1 + 379 + 198 + 50  # README counts
    return frames


_SPECIAL = list(b'0123456789".,:[]{}-+eE \\')
#: Where an edit lands: anywhere, or on the n-th byte of a class (so digit edits keep the JSON valid).
_CLASSES = {"any": None, "digit": frozenset(b"0123456789"), "quote": frozenset(b'"'),
            "bracket": frozenset(b"[]{}"), "punctuation": frozenset(b",:.")}
EDITS = st.lists(st.tuples(st.sampled_from(("replace", "insert", "delete")), st.sampled_from(list(_CLASSES)),
                           st.integers(0, 300) | st.integers(0, 1 << 20),
                           st.sampled_from(list(b"0123456789")) | st.sampled_from(_SPECIAL) | st.integers(0, 255)),
                 min_size=1, max_size=3)


def _apply(frame: bytes, edits: list[tuple[str, str, int, int]]) -> bytes:
    """Apply (op, where, n, byte) edits: ``where`` picks the n-th byte of a class, or byte n of the frame."""
    buf = bytearray(frame)
    for op, where, n, byte in edits:
        cls = _CLASSES[where]
        spots = list(range(len(buf) + (op == "insert"))) if cls is None else [i for i, c in enumerate(buf) if c in cls]
        if not spots:
            continue
        pos = spots[n % len(spots)]
        if op == "insert":
            buf.insert(pos, byte)
        elif op == "replace":
            buf[pos] = byte
        else:
            del buf[pos]
    return bytes(buf)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 1 << 16), edits=EDITS, swap_topic=st.booleans(), one_symbol=st.booleans())
def test_random_byte_edits(book_frames: list[tuple[str, bytes]], pick: int, edits: list[tuple[str, str, int, int]],
                           swap_topic: bool, one_symbol: bool) -> None:
    gw, frame = book_frames[pick % len(book_frames)]
    if swap_topic:
        gw = T.orderbook_delta if gw == T.orderbook_snapshot else T.orderbook_snapshot
    edited = _apply(frame, edits)
    clean_gw, clean = book_frames[(pick + 1) % len(book_frames)]
    pair = _Pair(["SOLUSDT"] if one_symbol else ["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])
    pair.check([gw], [edited], NS, f"edits {edits} of a real frame")
    pair.check([clean_gw, gw, clean_gw], [clean, edited, clean], NS + 1, f"edits {edits}, between clean frames")
    pair.recheck()


#: Edits of digits only (a digit, dot or minus put in, taken out or swapped): the JSON mostly stays
#: valid, so these exercise number parsing (prices, sizes, u, seq, ts, cts, the topic's depth).
DIGIT_EDITS = st.lists(st.tuples(st.sampled_from(("replace", "insert", "delete")), st.just("digit"),
                                 st.integers(0, 1 << 20), st.sampled_from(list(b"0123456789.-"))),
                       min_size=1, max_size=3)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 1 << 16), edits=DIGIT_EDITS)
def test_random_digit_edits(book_frames: list[tuple[str, bytes]], pick: int,
                            edits: list[tuple[str, str, int, int]]) -> None:
    gw, frame = book_frames[pick % len(book_frames)]
    pair = _Pair(["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])
    pair.check([gw, gw], [_apply(frame, edits), frame], NS, f"digit edits {edits} of a real frame")
    pair.recheck()


# --- random edits of real trade frames ------------------------------------------------------------


@pytest.fixture(scope="module")
def trade_frames(recorded: Recorded) -> list[tuple[str, bytes]]:
    frames = _Frames((n, p) for n, p in zip(recorded.names, recorded.payloads, strict=True)
                     if p.startswith(b'{"topic":"publicTrade'))
    assert len(frames) == 74 and {n for n, _ in frames} == {T.trades}
    return frames


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 1 << 16), edits=EDITS, one_symbol=st.booleans())
def test_random_trade_byte_edits(trade_frames: list[tuple[str, bytes]], pick: int,
                                 edits: list[tuple[str, str, int, int]], one_symbol: bool) -> None:
    gw, frame = trade_frames[pick % len(trade_frames)]
    edited = _apply(frame, edits)
    clean_gw, clean = trade_frames[(pick + 1) % len(trade_frames)]
    pair = _Pair(["SOLUSDT"] if one_symbol else ["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])
    pair.check([gw], [edited], NS, f"edits {edits} of a real trade frame")
    pair.check([clean_gw, gw, clean_gw], [clean, edited, clean], NS + 1, f"edits {edits}, between clean frames")
    pair.recheck()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 1 << 16), edits=DIGIT_EDITS)
def test_random_trade_digit_edits(trade_frames: list[tuple[str, bytes]], pick: int,
                                  edits: list[tuple[str, str, int, int]]) -> None:
    """Digit edits of trade frames: prices, sizes, T, ts and the skipped ``seq`` numbers."""
    gw, frame = trade_frames[pick % len(trade_frames)]
    pair = _Pair(["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])
    pair.check([gw, gw], [_apply(frame, edits), frame], NS, f"digit edits {edits} of a real trade frame")
    pair.recheck()


# --- named mutations of real tickers frames -------------------------------------------------------

#: The ticker bases, all real SOLUSDT frames: the full snapshot, a delta of three fields and a delta
#: carrying ``fundingRate`` (the one signed numeric field).
TICKER_SNAPSHOT, TICKER_DELTA, TICKER_FUNDING = (
    "SOLUSDT ticker snapshot", "SOLUSDT ticker delta (3 fields)", "SOLUSDT ticker delta with fundingRate")


def _pick_ticker_bases(payloads: list[bytes]) -> list[Base]:
    frames = [(p, orjson.loads(p)) for p in payloads if p.startswith(b'{"topic":"tickers.SOLUSDT"')]
    snap = next(p for p, o in frames if o["type"] == "snapshot")
    delta = next(p for p, o in frames if o["type"] == "delta" and len(o["data"]) == 3)
    funding = next(p for p, o in frames if o["type"] == "delta" and "fundingRate" in o["data"])
    out = [Base(name, _gateway_topic(raw, 0), raw, orjson.loads(raw)["type"], "SOLUSDT")
           for name, raw in ((TICKER_SNAPSHOT, snap), (TICKER_DELTA, delta), (TICKER_FUNDING, funding))]
    assert [len(b.tree()["data"]) for b in out[:2]] == [27, 3] and {b.gw for b in out} == {T.ticker}
    assert all(list(b.tree()) == ["topic", "type", "data", "cs", "ts"] for b in out)  # no cts in the recording
    return out


@pytest.fixture(scope="module")
def ticker_bases(recorded: Recorded) -> list[Base]:
    return _pick_ticker_bases(recorded.payloads)


def _ticker_numbers(raw: bytes) -> Mutation:
    """The raw JSON text `raw` as each numeric field of `TICKER_NUMBERS` in turn (added last when absent)."""
    return lambda base: [_put(base, ("data", key), raw) for key in TICKER_NUMBERS]


def _in_data(key: str, *raws: bytes) -> Mutation:
    """Data field `key` set to each raw JSON text of `raws` (added last when absent)."""
    return lambda base: [_put(base, ("data", key), raw) for raw in raws]


def _members(base: Base) -> bytes:
    """The data object's members as JSON text, without the braces."""
    return orjson.dumps(base.tree()["data"])[1:-1]


def _data_text(base: Base, members: bytes) -> bytes:
    """The frame with its data object's members replaced by the raw JSON text `members`."""
    return _put(base, ("data",), b"{" + members + b"}")


def _last_key(base: Base) -> str:
    return list(base.tree()["data"])[-1]


def _first_number_key(base: Base) -> str:
    return next(k for k in base.tree()["data"] if k in TICKER_NUMBERS)


def _dup_in_data(base: Base) -> list[bytes]:
    """Data keys repeated: the same value again, another value last (orjson keeps it) or first (dropped)."""
    members, last, num = _members(base), _last_key(base).encode(), _first_number_key(base).encode()
    value = orjson.dumps(base.tree()["data"][last.decode()])
    return [_data_text(base, members + b',"symbol":"SOLUSDT"'),
            _data_text(base, members + b',"' + last + b'":' + value),
            _data_text(base, members + b',"' + num + b'":' + orjson.dumps(base.tree()["data"][num.decode()])),
            _data_text(base, members + b',"' + last + b'":"1.5"'),
            _data_text(base, members + b',"' + num + b'":"-7"'),  # the last (bad) value wins
            _data_text(base, b'"' + num + b'":"x",' + members),  # a bad value first: the last (good) one wins
            _data_text(base, members + b',"symbol":"DOGEUSDT"'),
            _data_text(base, b'"symbol":"DOGEUSDT",' + members),
            _data_text(base, members + b',"' + num + b'":""'),
            _data_text(base, members + b',"nextFundingTime":"1",' + b'"nextFundingTime":"x"')]


def _dup_top(base: Base) -> list[bytes | None]:
    return [_sub(base, rb'"type":"[^"]*"', lambda m: m.group(0) + b"," + m.group(0)),
            _sub(base, rb'"type":"[^"]*"', lambda m: m.group(0) + (b',"type":"delta"' if base.kind == "snapshot"
                                                                     else b',"type":"snapshot"')),
            _sub(base, rb'"type":"[^"]*"', lambda m: m.group(0) + b',"type":"partial"'),
            _sub(base, rb'"topic":"[^"]*"', lambda m: m.group(0) + b"," + m.group(0)),
            _sub(base, rb'"topic":"[^"]*"', lambda m: m.group(0) + b',"topic":"tickers.DOGEUSDT"'),
            _sub(base, rb'"ts":\d+', lambda m: m.group(0) + b',"ts":5'),
            _sub(base, rb'"ts":\d+', lambda m: m.group(0) + b"," + m.group(0)),
            _sub(base, rb'"cs":\d+', lambda m: m.group(0) + b',"cs":5'),
            _sub(base, rb'"cs":\d+', lambda m: m.group(0) + b',"cs":{}'),
            base.raw[:-1] + b',"cts":1,"cts":2}',
            base.raw[:-1] + b',"data":{"symbol":"SOLUSDT"}}',
            base.raw[:-1] + b',"data":{"symbol":"SOLUSDT","bid1Price":"0"}}',
            base.raw[:-1] + b',"data":' + orjson.dumps(base.tree()["data"]) + b"}"]


def _data_sized(n: int) -> Mutation:
    """The data object cut to, or padded to, `n` fields (symbol first; padding keys are not numeric fields)."""
    def mutate(base: Base) -> bytes:
        items = list(base.tree()["data"].items())[:n]
        items += [(f"x{k:02d}", f"{k}.5" if k % 2 else "abc") for k in range(n - len(items))]
        return _edit_tree(base, lambda t: {**t, "data": dict(items)})
    return mutate


def _ticker_ints(base: Base) -> list[bytes]:
    """ts and cts at msgpack's int encoding boundaries, int64's end and the 10**18 the scanner stops at."""
    values = [str(v).encode() for v in (*INT_BOUNDARIES, 2**63, 2**64 - 1, 2**64)]
    return [_put(base, (key,), v) for key in ("ts", "cts") for v in values]


def _ticker_str_lengths(base: Base) -> list[bytes]:
    """Keys and values of lengths around msgpack's fixstr / str8 / str16 boundaries (in the body)."""
    out = [_put(base, ("data", "x"), orjson.dumps("a" * n)) for n in (31, 32, 255, 256, 65535, 65536)]
    out += [_put(base, ("data", "tickDirection"), orjson.dumps("Z" * n)) for n in (0, 31, 32, 256)]
    out += [_put(base, ("data", "k" * n), b'"1"') for n in (1, 31, 32, 255, 256, 65536)]
    out.append(_put(base, ("data", "bid1Price"), b'"' + b"1" * 15 + b'"'))
    return out


def _str32_members(base: Base) -> list[bytes]:
    """The data object grown to 63 and 64 fields (`MAX_FIELDS`) by members whose key and value both take
    msgpack's str32 form (65536 bytes each): 10 header bytes in the body for 6 bytes of JSON punctuation."""
    out = []
    for total in (63, 64):
        tree = base.tree()
        tree["data"].update({f"{k:02d}" + "k" * 65534: "7" * 65536 for k in range(total - len(tree["data"]))})
        assert len(tree["data"]) == total
        out.append(orjson.dumps(tree))
    return out


def _ticker_retopic(base: Base, topic: Any, symbol: Any = None) -> bytes:
    """The frame with its topic set to `topic` (and, if given, data.symbol to `symbol`)."""
    tree = base.tree()
    tree["topic"] = topic
    if symbol is not None:
        tree["data"]["symbol"] = symbol
    return orjson.dumps(tree)


def _ticker_symbols(base: Base) -> list[bytes]:
    """The symbol forms of `SYMBOL_FORMS` in the topic and data.symbol alike."""
    assert base.raw.count(b"SOLUSDT") == 2
    return [base.raw.replace(b"SOLUSDT", form) for form in SYMBOL_FORMS]


def _unknown_top(*texts: bytes) -> Mutation:
    """Each raw JSON text as a new top-level key's value (first, last) and as ``cs``'s."""
    return lambda base: [frame for raw in texts
                         for frame in (_put_first(base, (), "x", raw), _put(base, ("x",), raw),
                                       _put(base, ("cs",), raw))]


def _ticker_invalid_utf8(base: Base) -> list[bytes | None]:
    out: list[bytes | None] = []
    for bad in (b'"\xff"', b'"1\xff"', b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\xf8\x88\x80\x80\x80"'):
        out += [_put(base, ("data", "tickDirection"), bad), _put(base, ("data", "bid1Price"), bad),
                _put(base, ("data", "x"), bad), _put(base, ("x",), bad)]
    out += [_put(base, ("data", "x"), b'"1"').replace(b'"x":', b'"\xff":', 1),
            _put(base, ("data", "x"), b'"1"').replace(b'"x":', b'"bid\xff":', 1),
            _put_first(base, ("data",), "x", b'"1"').replace(b'"x":', b'"\xfe\xff":', 1),
            _put(base, ("x",), b"1").replace(b'"x":', b'"\xff":', 1),
            _sub(base, rb'"symbol":"SOLUSDT"', b'"symbol":"SOL\xffUSDT"'),
            base.raw.replace(b"SOLUSDT", b"SOL\xffUSDT"),
            _put(base, ("data", "x"), rb'"\ud800"')]
    return out


#: Number texts put in place of each numeric ticker field (see `_ticker_numbers`).
TICKER_NUMBER_TEXTS: dict[str, bytes] = {
    "zero": b'"0"',
    "zero_point_zero": b'"0.0"',
    "minus_zero": b'"-0"',
    "minus_zero_point_zero": b'"-0.0"',
    "negative": b'"-1.5"',
    "leading_zero": b'"01"',
    "trailing_dot": b'"1."',
    "leading_dot": b'".5"',
    "exponent": b'"1e5"',
    "16_significant_digits": b'"1234567.890123456"',
    "16_digit_integer": b'"1234567890123456"',
    "15_digit_integer": b'"123456789012345"',
    "15_digit_integer_and_fraction": b'"123456789012345.5"',
    "16_chars_fraction": b'"0.00000000000001"',
    "17_chars_fraction": b'"0.000000000000001"',
    "leading_fraction_zeros": b'"0.0000000000000123"',
    "nan": b'"nan"',
    "inf": b'"inf"',
    "leading_space": b'" 1"',
    "trailing_space": b'"1 "',
    "plus_sign": b'"+1"',
    "minus_alone": b'"-"',
    "dot_alone": b'"."',
    "two_dots": b'"1.2.3"',
    "double_minus": b'"--1"',
    "negative_leading_zero": b'"-01"',
    "arabic_indic_digit": '"١"'.encode(),
    "plain": b'"77.300"',
}

TICKER_MUTATIONS: dict[str, Mutation] = {
    # key order
    "keys_reversed_top": lambda b: _edit_tree(b, lambda t: dict(reversed(t.items()))),
    "keys_reversed_data": lambda b: _edit_tree(b, lambda t: {**t, "data": dict(reversed(t["data"].items()))}),
    "keys_rotated_data_symbol_last": lambda b: _edit_tree(
        b, lambda t: {**t, "data": {**{k: v for k, v in t["data"].items() if k != "symbol"}, "symbol": "SOLUSDT"}}),
    "keys_data_before_topic": lambda b: _edit_tree(b, lambda t: {"data": t["data"], **t}),
    "keys_data_before_topic_after_type": lambda b: _edit_tree(
        b, lambda t: {"type": t["type"], "data": t["data"], "topic": t["topic"], "ts": t["ts"], "cs": t["cs"]}),
    "keys_data_before_topic_symbol_empty": lambda b: _edit_tree(  # the topic's symbol is not known yet
        b, lambda t: {"data": {**t["data"], "symbol": ""}, **{k: v for k, v in t.items() if k != "data"}}),
    "keys_ts_cs_first": lambda b: _edit_tree(b, lambda t: {"ts": t["ts"], "cs": t["cs"], **t}),
    "keys_type_last": lambda b: _edit_tree(b, lambda t: {**{k: v for k, v in t.items() if k != "type"},
                                                         "type": t["type"]}),
    # type
    "type_removed": lambda b: _drop(b, "type"),
    "type_partial": _field_mutation(("type",), b'"partial"'),
    "type_number": lambda b: [_put(b, ("type",), raw) for raw in (b"1", b"0", b"1.5")],
    "type_others": lambda b: [_put(b, ("type",), raw) for raw in (
        b"null", b'""', b'"Snapshot"', b'"DELTA"', b'"delta "', b'"snapshotx"', b"{}", b"[]", b"true",
        rb'"\u0064elta"', rb'"snapsho\u0074"', '"deltà"'.encode())],
    "type_swapped": lambda b: _put(b, ("type",), b'"delta"' if b.kind == "snapshot" else b'"snapshot"'),
    # cs and unknown top-level keys
    "cs_object": lambda b: [_put(b, ("cs",), raw) for raw in (b"{}", b'{"a":1}', b'{"cs":{"x":[]}}')],
    "cs_other_shapes": lambda b: [_put(b, ("cs",), raw) for raw in (b"[]", b"[1]", b'"272903625291"', b"null",
                                                                   b"-1", b"1.5", b"1e3", b"9" * 19, b"9" * 30)],
    "cs_removed": lambda b: _drop(b, "cs"),
    "unknown_top_scalar": _unknown_top(b'"abc"', b'""', rb'"a\"b"', b"0", b"-1", b"1.5e-3", b"-0", b"9" * 18,
                                       b"true", b"false", b"null", '"é"'.encode()),
    "unknown_top_invalid_number": _unknown_top(*INVALID_NUMBER_TEXTS),
    # ts and cts
    "ints_at_encoding_boundaries": _ticker_ints,
    "ts_removed": lambda b: _drop(b, "ts"),
    "ts_and_cs_removed": lambda b: _edit_tree(b, lambda t: {k: v for k, v in t.items() if k not in ("ts", "cs")}),
    "cts_added": _field_mutation(("cts",), b"1786310819270"),
    "cts_added_first": lambda b: _put_first(b, (), "cts", b"1786310819270"),
    "ts_bad": lambda b: [_put(b, ("ts",), raw) for raw in (
        b"-1", b"-0", b"1.5", b"1786310819280.0", b"1e3", b"1E3", b'"1786310819280"', b"null", b"true", b"01",
        b"00", b"[]", b"{}", b"1" * 19, b"-" + b"9" * 18)],
    "cts_bad": lambda b: [_put(b, ("cts",), raw) for raw in (
        b"-1", b"-0", b"1.0", b"2.5", b"1e0", b'"5"', b"null", b"false", b"01", b"[]", b"1" * 19)],
    # data keys: duplicates, counts, empty
    "dup_in_data": _dup_in_data,
    "dup_top": _dup_top,
    **{f"data_{n}_fields": _data_sized(n) for n in (1, 2, 15, 16, 17, 63, 64, 65, 100)},
    "data_empty": _field_mutation(("data",), b"{}"),
    "data_not_an_object": lambda b: [_put(b, ("data",), raw) for raw in (
        b"[]", b'[{"symbol":"SOLUSDT"}]', b"null", b'"x"', b"1", b"true")],
    "data_removed": lambda b: _drop(b, "data"),
    # symbol
    "symbol_removed": lambda b: _drop(b, "data", "symbol"),
    "symbol_mismatching": _in_data("symbol", b'"DOGEUSDT"', b'"ZZZUSDT"', b'"solusdt"', b'"SOLUSD"', b'"SOLUSDTX"',
                                   b'"SOLUSDT "', b'" SOLUSDT"'),
    "symbol_empty": _in_data("symbol", b'""'),
    "symbol_not_a_string": _in_data("symbol", b"1", b"null", b"true", b"{}", b'["SOLUSDT"]'),
    "symbol_escaped": _in_data("symbol", rb'"SOLUSD\u0054"', rb'"\u0053OLUSDT"', rb'"SOL\/USDT"'),
    # values that are not strings
    "value_number": lambda b: [_put(b, ("data", key), raw) for key in (_first_number_key(b), "x", "nextFundingTime")
                               for raw in (b"1.5", b"1", b"0", b"-1")],
    "value_null": lambda b: [_put(b, ("data", key), b"null") for key in (_first_number_key(b), "x", _last_key(b))],
    "value_true": lambda b: [_put(b, ("data", key), raw) for key in (_first_number_key(b), "x")
                             for raw in (b"true", b"false")],
    "value_object": lambda b: [_put(b, ("data", key), raw) for key in (_first_number_key(b), "x")
                               for raw in (b"{}", b'{"a":"1"}')],
    "value_list": lambda b: [_put(b, ("data", key), raw) for key in (_first_number_key(b), "x")
                             for raw in (b"[]", b'["1.5"]')],
    # number texts
    "number_empty_every_field": _ticker_numbers(b'""'),
    **{f"number_{k}": _ticker_numbers(v) for k, v in TICKER_NUMBER_TEXTS.items()},
    "number_empty_non_numeric_fields": lambda b: [_put(b, ("data", k), b'""') for k in (
        "tickDirection", "price24hPcnt", "prevPrice24h", "fundingCap", "x")],
    "number_texts_in_non_numeric_fields": lambda b: [_put(b, ("data", k), raw) for k in ("price24hPcnt", "x")
                                                     for raw in (b'"nan"', b'"-0"', b'"1e5"', b'" 1"')],
    # nextFundingTime
    "next_funding_time": _in_data("nextFundingTime", b'""', b'"0123"', b'"' + b"1" * 19 + b'"',
                                  b'"' + b"9" * 18 + b'"', b'"12a"', b"1786320000000", b'"-1"', b'" 1"',
                                  b'"1.5"', b'"0"', b'"1786320000000 "', '"١"'.encode()),
    # non-ASCII, invalid UTF-8, escapes
    "non_ascii_key": lambda b: [_put(b, ("data", "é"), b'"1"'), _put(b, ("data", "bid1Pricé"), b'"1"'),
                                _put_first(b, ("data",), "€", b'"1"'), _put(b, ("é",), b"1")],
    "non_ascii_value": lambda b: [_put(b, ("data", k), orjson.dumps(v)) for k, v in (
        ("tickDirection", "é"), ("x", "é"), ("bid1Price", "1é"), ("x", "€"), ("symbol", "SOLUSDTé"))],
    "invalid_utf8": _ticker_invalid_utf8,
    "escape_in_key": lambda b: [_put(b, ("data", "x"), b'"1"').replace(b'"x":', rb'"\u0041":', 1),
                                _put(b, ("data", "x"), b'"1"').replace(b'"x":', rb'"a\"b":', 1),
                                _sub(b, rb'"symbol":', rb'"\u0073ymbol":'),
                                _put(b, ("data", "bid1Price"), b'"-5"').replace(b'"bid1Price":', rb'"bid1Pric\u0065":'),
                                _sub(b, rb'"type":', rb'"typ\u0065":'), _sub(b, rb'"data":', rb'"d\u0061ta":'),
                                _sub(b, rb'"ts":', rb'"t\u0073":'), _sub(b, rb'"topic":', rb'"t\u006fpic":')],
    "escape_in_value": lambda b: [_put(b, ("data", k), raw) for k, raw in (
        ("tickDirection", rb'"\u0041"'), ("x", rb'"a\"b"'), ("x", rb'"a\\b"'), ("x", rb'"\u0000"'),
        ("bid1Price", rb'"\u0037"'), ("bid1Price", rb'"1\u002e5"'), ("nextFundingTime", rb'"\u0031"'))],
    "str_lengths_at_encoding_boundaries": _only([TICKER_DELTA], _ticker_str_lengths),
    "str32_keys_and_values_in_63_and_64_fields": _only([TICKER_DELTA], _str32_members),
    # whitespace, trailing bytes, truncation, other encodings
    "ws_after_colon": lambda b: [b.raw.replace(b":", b": "), _sub(b, rb'"symbol":', b'"symbol": '),
                                 _sub(b, rb'"data":', b'"data": '), _sub(b, rb'"ts":', b'"ts":\t'),
                                 _sub(b, rb'"cs":', b'"cs":\n'), _sub(b, rb'"type":', b'"type": '),
                                 _sub(b, rb'"topic":', b'"topic": ')],
    "ws_elsewhere": lambda b: [b.raw.replace(b",", b", "), b.raw.replace(b",", b" ,"), b.raw.replace(b"{", b"{ "),
                               b.raw.replace(b"}", b" }"), _sub(b, rb'"symbol"', b' "symbol"')],
    "leading_and_trailing_whitespace": lambda b: [b" " + b.raw, b"\n" + b.raw, b.raw + b" ", b.raw + b"\r\n\t "],
    "trailing_garbage": lambda b: [b.raw + x for x in (b"x", b"}", b"]", b"{}", b",", b"\x00", b"0", b" x", b"\xff")],
    "truncated_snapshot_every_11th_cut": _only([TICKER_SNAPSHOT], _truncated(11)),
    "truncated_near_the_end": lambda b: [b.raw[:-k] for k in range(1, 30)],
    "utf8_bom": lambda b: b"\xef\xbb\xbf" + b.raw,
    "msgpack_encoded": lambda b: msgpack.packb(b.tree()),
    "not_an_object": lambda b: [b"[]", b"null", b'"x"', b"1", b"[" + b.raw + b"]", b""],
    # topics and symbols
    "topic_prefix_alone": lambda b: [_ticker_retopic(b, "tickers."), _ticker_retopic(b, "tickers.", "")],
    "topic_extra_part": lambda b: [_ticker_retopic(b, "tickers.SOLUSDT.x"),
                                   _ticker_retopic(b, "tickers.SOLUSDT.x", "SOLUSDT.x")],
    "topic_unknown_symbol": lambda b: [_ticker_retopic(b, "tickers.ZZZUSDT", "ZZZUSDT"),
                                       _ticker_retopic(b, "tickers.ZZZUSDT")],
    "topic_other_known_symbol": lambda b: [_ticker_retopic(b, "tickers.DOGEUSDT", "DOGEUSDT"),
                                           _ticker_retopic(b, "tickers.DOGEUSDT")],
    "topic_malformed": lambda b: [_ticker_retopic(b, t, t.partition(".")[2]) for t in (
        "tickers", "ticker.SOLUSDT", "Tickers.SOLUSDT", "tickers..SOLUSDT", "tickers.solusdt", "tickers.SOL USDT",
        "tickers.SOLUSDTÉ", "tickerss.SOLUSDT", "publicTrade.SOLUSDT", "orderbook.1.SOLUSDT", "kline.1.SOLUSDT",
        "tickers.SOLUSDT ", "")],
    "topic_not_a_string": lambda b: [_put(b, ("topic",), raw) for raw in (b"1", b"null", b'["tickers.SOLUSDT"]')],
    "topic_removed": lambda b: _drop(b, "topic"),
    "topic_escaped": lambda b: [_sub(b, rb'"topic":"tickers\.', rb'"topic":"tickers\u002e'),
                                _sub(b, rb'"topic":"tickers\.SOLUSD', rb'"topic":"tickers.SOLUSD\u0054')],
    "symbol_forms_in_topic_and_data": _ticker_symbols,
    # gateway topics
    "on_trades_and_book_gateway_topics": _on_gateway_topics(T.trades, T.orderbook_snapshot, T.orderbook_delta),
    "on_other_gateway_topics": _on_gateway_topics(T.kline_1s, T.kline_1m, T.funding, T.executions, "market.nope",
                                                  ""),
}


def test_ticker_bases_take_the_fast_path(ticker_bases: list[Base]) -> None:
    """The clean ticker bases are built by the compiled path (else the mutations compare general with general)."""
    dec = Decoder(["SOLUSDT"], T, fast=True)
    recs = dec.decode_many([b.gw for b in ticker_bases], [b.raw for b in ticker_bases], NS)
    assert [type(r.payload).__name__ for r in recs] == ["Prepacked"] * len(ticker_bases)


@pytest.mark.parametrize("mutation", list(TICKER_MUTATIONS))
def test_mutated_ticker_frames(ticker_bases: list[Base], trade_bases: list[Base], bases: list[Base],
                               mutation: str) -> None:
    """Each mutated ticker frame alone, between clean ticker, book and trade frames (three scans in one
    batch), and all of them interleaved with clean ones."""
    cases = [(base, gw, frame) for base in ticker_bases for gw, frame in _cases(mutation, base, TICKER_MUTATIONS)]
    assert cases, f"{mutation} applies to none of the ticker frames"
    assert any(frame != base.raw or gw != base.gw for base, gw, frame in cases), f"{mutation} changes nothing"
    snap, delta, funding = ticker_bases
    book = next(b for b in bases if b.name == SMALL[0])
    trade = trade_bases[0]
    clean = [snap, book, delta, trade, funding]
    around = [delta, None, book, trade, snap]
    for symbols, skip in MUTATION_SETTINGS:
        pair = _Pair(symbols, skip)
        for i, (base, gw, frame) in enumerate(cases):
            label = f"{mutation} #{i} of {base.name} on {gw!r}"
            pair.check([gw], [frame], NS, label)
            pair.check([gw if c is None else c.gw for c in around], [frame if c is None else c.raw for c in around],
                       NS + 1, f"{label}, between clean frames")
        mixed: list[tuple[str, bytes]] = []
        for k, (_, gw, frame) in enumerate(cases):
            other = clean[k % len(clean)]
            mixed += [(other.gw, other.raw), (gw, frame)]
        pair.check([n for n, _ in mixed], [p for _, p in mixed], NS + 2, f"all {mutation} frames mixed with clean ones")
        pair.recheck()


# --- random edits of real tickers frames ----------------------------------------------------------


@pytest.fixture(scope="module")
def ticker_frames(recorded: Recorded) -> list[tuple[str, bytes]]:
    frames = _Frames((n, p) for n, p in zip(recorded.names, recorded.payloads, strict=True)
                     if p.startswith(b'{"topic":"tickers'))
    assert len(frames) == 357 and {n for n, _ in frames} == {T.ticker}
    return frames


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 1 << 16), edits=EDITS, one_symbol=st.booleans())
def test_random_ticker_byte_edits(ticker_frames: list[tuple[str, bytes]], pick: int,
                                  edits: list[tuple[str, str, int, int]], one_symbol: bool) -> None:
    gw, frame = ticker_frames[pick % len(ticker_frames)]
    edited = _apply(frame, edits)
    clean_gw, clean = ticker_frames[(pick + 1) % len(ticker_frames)]
    pair = _Pair(["SOLUSDT"] if one_symbol else ["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])
    pair.check([gw], [edited], NS, f"edits {edits} of a real ticker frame")
    pair.check([clean_gw, gw, clean_gw], [clean, edited, clean], NS + 1, f"edits {edits}, between clean frames")
    pair.recheck()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pick=st.integers(0, 1 << 16), edits=DIGIT_EDITS)
def test_random_ticker_digit_edits(ticker_frames: list[tuple[str, bytes]], pick: int,
                                   edits: list[tuple[str, str, int, int]]) -> None:
    """Digit edits of ticker frames: the numeric fields, nextFundingTime, ts and the skipped ``cs``."""
    gw, frame = ticker_frames[pick % len(ticker_frames)]
    pair = _Pair(["BANDUSDT", "DOGEUSDT", "SOLUSDT", "XRPUSDT"])
    pair.check([gw, gw], [_apply(frame, edits), frame], NS, f"digit edits {edits} of a real ticker frame")
    pair.recheck()
