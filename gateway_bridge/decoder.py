"""Bybit v5 frame decoder: gateway payload bytes -> validated `Record`s. Never raises.

Input: one WebSocket frame as received (JSON; msgpack is also accepted: a payload whose first byte
is neither ``{`` nor whitespace is tried as msgpack). Output of `Decoder.decode`:

- a market frame -> its record(s) (unnumbered, ``seq`` 0, ``recv_ns`` as given; payload layouts
  exactly as in `engine.record`): one record, except executions, which give one per symbol;
- an ack / pong / subscription reply (no ``topic``, has ``op`` or ``success``) -> ``[]``, counted
  as skipped (``ack``); a failed ack (``"success": false``) is also logged;
- anything else -> ONE ``BAD_FRAME`` record ``{reason, topic, raw, raw_len, sha256}`` (``topic`` is
  the gateway topic, ``""`` for imports, cut to 256 characters; ``raw`` cut to its first 64 KiB),
  counted per reason and logged once per reason, rate limited.

`Decoder.decode_rest_orderbook` turns a Bybit REST ``GET /v5/market/orderbook`` answer (a resync
over HTTP) into a BOOK_SNAPSHOT with ``src: "rest"``, or a ``bad_rest_snapshot`` BAD_FRAME.

Frames (Bybit v5 public/private WebSocket, see SPEC Part D):

- ``orderbook.{1,50,200,500,1000}.SYM``: ``type`` snapshot|delta, ``ts``, ``cts``,
  ``data{s, b, a, u, seq}`` (``seq`` may be absent in old captures: 0). Prices > 0; sizes >= 0 in
  deltas (0 deletes), > 0 in snapshots.
- ``publicTrade.SYM``: ``data[{T, s, S, v, p, i, BT}]`` (``BT`` absent in old captures: false);
  prices and sizes > 0; every ``s`` must equal the topic symbol.
- ``tickers.SYM``: ``type`` snapshot|delta, ``data`` dict of strings (``symbol`` = topic symbol),
  passed through as ``fields``; the numeric fields the engine reads are validated when non-empty.
- ``kline.{1,3,5,15,30,60,120,240,360,720,D,W,M,1s}.SYM``: ``data[{start, end, interval, open,
  close, high, low, volume, turnover, confirm, timestamp}]`` (``1s`` is built by the gateway).
- ``execution`` (also ``execution.{linear,inverse,spot,option}`` and ``execution.fast…``):
  ``creationTime`` (ms, -> ``ts``), ``data[{symbol, execId, execPrice, execQty, side, execTime,
  …}]``; one EXECUTION record per symbol with the fills as sent. Fills of symbols outside this
  shard are dropped (counted as skipped ``foreign_fills``), not treated as bad.
- ``funding.SYM`` — this project's frame for the gateway's ``market.funding`` topic (Bybit has
  no such stream): ``{"topic": "funding.SYM", "ts": <ms>, "data": {"symbol": "SYM",
  "fundingRate": "<decimal, may be negative>", "nextFundingTime": <ms int or digit string>,
  "fundingIntervalHour": <hours, int or decimal string, optional>}}``.

Gateway topics: `decode` checks the frame's Bybit topic against the gateway topic it came on
(`TopicsConfig`): either orderbook gateway topic carries both snapshot and delta frames (the
frame's ``type`` decides the kind: the gateway may send a resync snapshot on the delta topic);
``kline_1s`` carries ``kline.1s.*`` and ``kline_1m`` ``kline.1.*`` only; trades, ticker, funding and
executions carry their own family. A frame on the wrong topic is ``topic_mismatch``.

Bad-frame reasons: ``empty``, ``bad_json``, ``bad_msgpack``, ``not_an_object``, ``missing_topic``,
``unknown_topic``, ``topic_mismatch``, ``unknown_symbol``, ``symbol_mismatch``, ``missing_field``,
``bad_field``, and the number reasons of `gateway_bridge.numbers` (``not_a_number``,
``non_finite``, ``negative``, ``zero``, ``precision``, ``bad_level``); ``internal_error`` would
mean a bug here (logged with its traceback) — the fuzz tests assert it never happens.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import msgpack
import numpy as np
import orjson

from engine.record import Kind, Record, kind_name
from gateway_bridge import fastbook, fasttickers, fasttrades
from gateway_bridge.config import TopicsConfig
from gateway_bridge.numbers import NumberError, parse_decimal, parse_levels, parse_positive_column
from gateway_bridge.ratelog import RateLog
from journal.packed import Prepacked

log = logging.getLogger("gateway_bridge.decoder")

DEPTHS = frozenset({"1", "50", "200", "500", "1000"})
KLINE_INTERVALS = frozenset({"1", "3", "5", "15", "30", "60", "120", "240", "360", "720", "D", "W", "M", "1s"})
EXECUTION_TOPICS = frozenset({
    "execution", "execution.linear", "execution.inverse", "execution.spot", "execution.option",
    "execution.fast", "execution.fast.linear", "execution.fast.inverse", "execution.fast.spot",
    "execution.fast.option",
})
#: Ticker fields validated as decimals when present and non-empty: name -> (signed, nonzero).
TICKER_NUMBERS: dict[str, tuple[bool, bool]] = {
    "lastPrice": (False, True), "markPrice": (False, True), "indexPrice": (False, True),
    "bid1Price": (False, True), "ask1Price": (False, True), "bid1Size": (False, False),
    "ask1Size": (False, False), "fundingRate": (True, False), "fundingIntervalHour": (False, False),
    "openInterest": (False, False),
}
#: Regexes accepting a subset of what `parse_decimal` accepts (a plain decimal of at most 16 chars
#: has at most 15 significant digits and lies in the normal range), keyed by (signed, nonzero).
_PLAIN_DECIMAL = {
    (signed, nonzero): re.compile(("-?" if signed else "") + r"(?=[0-9.]{1,16}\Z)"
                                  + (r"(?![0.]*\Z)" if nonzero else "")
                                  + r"(?:0|[1-9][0-9]{0,14})(?:\.[0-9]+)?", re.ASCII).fullmatch
    for signed in (False, True) for nonzero in (False, True)
}
#: The numeric ticker fields as the compiled ticker pass reads them.
_TICKER_TABLE = fasttickers.numbers_table(TICKER_NUMBERS)
_TICKER_CHECKS = tuple((key, signed, nonzero, _PLAIN_DECIMAL[signed, nonzero])
                       for key, (signed, nonzero) in TICKER_NUMBERS.items())
#: Route cache bound (valid topics only; random topics from bad input cannot grow it further).
MAX_ROUTES = 4096
#: Largest raw message kept in a BAD_FRAME record (longer ones are cut; length and SHA-256 are kept).
MAX_RAW = 64 * 1024
#: Longest gateway topic kept in a BAD_FRAME record.
MAX_TOPIC = 256

_I64 = 1 << 63
_WHITESPACE = frozenset(b" \t\r\n")
_OPEN_BRACE = ord("{")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,63}", re.ASCII)
_DIGITS = re.compile(r"[0-9]{1,18}", re.ASCII)
_SIDES = {"Buy": 1, "Sell": -1}
_BOOK_KINDS = {"snapshot": (Kind.BOOK_SNAPSHOT, True), "delta": (Kind.BOOK_DELTA, False)}
_SNAPSHOT, _DELTA, _TRADES, _TICKER = Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA, Kind.TRADES, Kind.TICKER
#: The kinds `decode_many`'s fast paths count, in the order of its `taken` slots.
_FAST_KINDS = (_DELTA, _SNAPSHOT, _TRADES, _TICKER)
#: The frame families with a compiled path, in `Decoder._fast_paths` order.
_FAST_FAMILIES = ("orderbook", "publicTrade", "tickers")
_FILL_STRINGS = ("execId", "execPrice", "execQty", "side", "execTime")
_loads = orjson.loads
_new_record = tuple.__new__  # Record(...) without NamedTuple.__new__'s keyword handling: ~100 ns less


class BadFrame(Exception):
    """Raised inside the decoder to turn a frame into one BAD_FRAME record."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


Handler = Callable[[dict[str, Any], "Route", int], list[Record]]


class Route(NamedTuple):
    """What a Bybit topic string means: family (for gateway-topic checks), handler, symbol, parameter."""

    family: str
    handler: Handler
    symbol: str
    param: str
    known: bool
    depth: int = 0


# --- field helpers (raise BadFrame) ------------------------------------------------------------

def _get(obj: dict[str, Any], key: str) -> Any:
    """Return ``obj[key]`` or raise missing_field."""
    value = obj.get(key)
    if value is None:
        raise BadFrame("missing_field", key)
    return value


def _int(obj: dict[str, Any], key: str, default: int | None = None) -> int:
    """Return a non-negative int64 field (``default`` when absent, if given)."""
    value = obj.get(key, default)
    if type(value) is int and 0 <= value < _I64:
        return value
    raise BadFrame("missing_field" if value is None else "bad_field", key)


def _str(obj: dict[str, Any], key: str) -> str:
    """Return a string field."""
    value = _get(obj, key)
    if type(value) is not str:
        raise BadFrame("bad_field", key)
    return value


def _dict(obj: dict[str, Any], key: str) -> dict[str, Any]:
    """Return a dict field."""
    value = _get(obj, key)
    if type(value) is not dict:
        raise BadFrame("bad_field", key)
    return value


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    """Return a list field."""
    value = _get(obj, key)
    if type(value) is not list:
        raise BadFrame("bad_field", key)
    return value


def _ms_text(value: object, key: str) -> int:
    """Return ms from an int or a digit string (Bybit sends both forms for times)."""
    if type(value) is int and 0 <= value < _I64:
        return value
    if type(value) is str and _DIGITS.fullmatch(value):
        return int(value)
    raise BadFrame("missing_field" if value is None else "bad_field", key)


def _number(obj: dict[str, Any], key: str, signed: bool = False, nonzero: bool = False) -> float:
    """Return a decimal-string field as an exact float (number reasons on failure)."""
    value = obj.get(key)
    if type(value) is str and _PLAIN_DECIMAL[signed, nonzero](value):  # the usual short decimal
        number = float(value)
        return number if number else 0.0  # "-0.0" is 0.0, as parse_decimal gives it
    try:
        return parse_decimal(_get(obj, key), signed=signed, nonzero=nonzero)
    except NumberError as e:
        raise BadFrame(e.reason, key) from None


def _symbol_matches(value: object, symbol: str) -> None:
    """Raise unless a frame's symbol field equals its topic symbol."""
    if value != symbol:
        raise BadFrame("missing_field" if value is None else "symbol_mismatch", str(value)[:64])


def _as_bytes(payload: object) -> bytes | memoryview:
    """Return the payload as a bytes-like object (a repr for anything else; never raises)."""
    if isinstance(payload, bytes | bytearray | memoryview):
        return payload
    return repr(payload).encode("utf-8", "replace")


def bad_frame(recv_ns: int, reason: str, topic: str, parts: Sequence[object]) -> Record:
    """Return a BAD_FRAME record: raw = `parts` joined, cut to `MAX_RAW`, with full length and SHA-256.

    `parts` are the message bytes as received (several for a bad multipart message); they are
    hashed one by one and never joined whole, so a huge message costs no copy of itself.
    """
    digest = hashlib.sha256()
    head: list[bytes] = []
    kept = total = 0
    for part in parts:
        data = _as_bytes(part)
        digest.update(data)
        total += len(data)
        if kept < MAX_RAW:
            piece = bytes(data[:MAX_RAW - kept])
            head.append(piece)
            kept += len(piece)
    payload = {"reason": reason, "topic": topic[:MAX_TOPIC], "raw": b"".join(head), "raw_len": total,
               "sha256": digest.hexdigest()}
    return Record(0, recv_ns, Kind.BAD_FRAME, "", 0, 0, payload)


def parse_payload(payload: bytes) -> Any:
    """Return the frame object of a JSON or msgpack payload, or raise BadFrame."""
    if not payload:
        raise BadFrame("empty")
    first = payload[0]
    if first == _OPEN_BRACE or first in _WHITESPACE:
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise BadFrame("bad_json") from None
    try:
        return msgpack.unpackb(payload, raw=False)
    except Exception:  # msgpack raises many types (ExtraData, ValueError, TypeError, …)
        pass
    try:  # valid JSON that is not an object (``[1,2,3]``) reads as broken msgpack: say what it is
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise BadFrame("bad_msgpack") from None


class Decoder:
    """Validate and convert gateway frames for one shard's symbols; see the module docstring."""

    def __init__(self, symbols: Iterable[str] | None = None, topics: TopicsConfig | None = None, *,
                 skip_unknown_symbols: bool = False, log_interval_s: float = 60.0, fast: bool = True) -> None:
        self.symbols = None if symbols is None else frozenset(symbols)
        #: Imports filtering by symbol skip other symbols' frames instead of journaling them as bad.
        self.skip_unknown_symbols = skip_unknown_symbols
        #: `decode_many` scans orderbook frames in one compiled pass (False: the general path only).
        self.fast = fast
        self._families = self._gateway_families(topics or TopicsConfig())
        self._routes: dict[str, Route] = {}
        #: Known orderbook / publicTrade / tickers routes by their topic's bytes (the fast paths' lookups).
        self._book_routes: dict[bytes, Route] = {}
        self._trade_routes: dict[bytes, Route] = {}
        self._ticker_routes: dict[bytes, Route] = {}
        #: The compiled paths `decode_many` runs, (scanner, record builder), and which one each gateway
        #: topic feeds: the first of these families it carries (a topic's other frames go the general way).
        self._fast_paths = ((fastbook.scan, self._fast_book), (fasttrades.scan, self._fast_trades),
                            (functools.partial(fasttickers.scan, table=_TICKER_TABLE), self._fast_ticker))
        self._fast_family = {name: next(i for i, fam in enumerate(_FAST_FAMILIES) if fam in fams)
                             for name, fams in self._families.items() if fams & set(_FAST_FAMILIES)}
        self._kinds: Counter[int] = Counter()
        self._bad: Counter[str] = Counter()
        #: BAD_FRAME records made so far (a caller compares it before and after a batch).
        self.bad_frames = 0
        #: Batches a compiled scanner failed on (a bug: they went the general way instead).
        self.fast_path_errors = 0
        self._skipped: Counter[str] = Counter()
        self._frames = 0
        self._ratelog = RateLog(log, log_interval_s)

    # --- public ---------------------------------------------------------------------------------

    @property
    def counters(self) -> dict[str, Any]:
        """Return frames seen, records per kind, bad frames per reason, skipped per reason, totals."""
        return {
            "frames": self._frames,
            "records": {kind_name(k): n for k, n in sorted(self._kinds.items())},
            "bad": dict(self._bad),
            "bad_total": sum(self._bad.values()),
            "skipped": dict(self._skipped),
            "skipped_total": sum(self._skipped.values()),
            "fast_path_errors": self.fast_path_errors,
        }

    @staticmethod
    def warm_up() -> None:
        """Load the compiled number kernels now (~0.2 s the first time), not on the first live frame."""
        parse_levels([["1.5", "2"]], [["1.6", "3"]], snapshot=True)
        parse_positive_column(["1.5"])
        fastbook.scan([b'{"topic":"orderbook.1.X","type":"snapshot","data":{"s":"X","b":[["1","1"]],"a":[],"u":1}}'])
        fasttrades.scan([b'{"topic":"publicTrade.X","data":[{"T":1,"s":"X","S":"Buy","v":"1","p":"1","i":"a","BT":false}]}'])
        fasttickers.scan([b'{"topic":"tickers.X","type":"delta","data":{"symbol":"X","bid1Price":"1.5"}}'], _TICKER_TABLE)

    def decode(self, gateway_topic: str, payload: bytes, recv_ns: int) -> list[Record]:
        """Decode a frame that came on `gateway_topic`; never raises."""
        families = self._families.get(gateway_topic)
        if families is None:
            self._frames += 1
            return [self._bad_frame("unknown_topic", f"gateway topic {gateway_topic!r}",
                                    str(gateway_topic), payload, recv_ns)]
        return self._decode(families, gateway_topic, payload, recv_ns)

    def decode_many(self, names: Sequence[str], payloads: Sequence[bytes], recv_ns: int) -> list[Record]:
        """Decode frames that came on gateway topics `names`, all at `recv_ns`; never raises.

        The same records, in order, as `decode` frame by frame: orderbook, publicTrade and tickers
        frames are scanned in one compiled pass per family (`gateway_bridge.fastbook`,
        `fasttrades`, `fasttickers`); what a scanner hands over goes through `decode`.
        """
        if not self.fast:
            return [r for n, p in zip(names, payloads, strict=True) for r in self.decode(n, p, recv_ns)]
        families = [self._fast_family.get(name) for name in names]  # which compiled path, once per frame
        picked: list[list[bytes]] = [[] for _ in self._fast_paths]
        for f, payload in zip(families, payloads, strict=True):
            if f is not None:
                picked[f].append(payload)
        scans = [self._run_scan(scan, frames) for (scan, _), frames in zip(self._fast_paths, picked, strict=True)]
        rows = [iter(() if scan is None else scan.rows) for scan in scans]
        builders = [build for _, build in self._fast_paths]
        out: list[Record] = []
        decode = self.decode
        taken = [0, 0, 0, 0]  # deltas, snapshots, trades, tickers taken by the fast paths (counted once per batch)
        for name, payload, f in zip(names, payloads, families, strict=True):
            rec = None if f is None or scans[f] is None else builders[f](next(rows[f]), scans[f], recv_ns, taken)
            if rec is None:
                out += decode(name, payload, recv_ns)
            else:
                out.append(rec)
        self._frames += sum(taken)
        for kind, n in zip(_FAST_KINDS, taken, strict=True):
            if n:
                self._kinds[kind] += n
        return out

    def decode_frame(self, payload: bytes, recv_ns: int) -> list[Record]:
        """Decode a frame with no gateway topic (imports); never raises."""
        return self._decode(None, "", payload, recv_ns)

    def decode_rest_orderbook(self, body: bytes, recv_ns: int, depth: int, symbol: str | None = None) -> Record:
        """Return the BOOK_SNAPSHOT (``src: "rest"``) of a REST orderbook answer, else a BAD_FRAME; never raises."""
        self._frames += 1
        topic = f"orderbook.{depth}.{symbol or ''}"
        try:
            rec = self._rest_book(body, recv_ns, depth, symbol)
        except BadFrame as e:
            return self._bad_frame("bad_rest_snapshot", f"{e.reason} {e.detail}", topic, body, recv_ns)
        except Exception:  # a bug, not bad input (as in _decode)
            log.exception("decoder internal error rest topic=%s", topic)
            return self._bad_frame("internal_error", "", topic, body, recv_ns)
        self._kinds[rec.kind] += 1
        return rec

    # --- dispatch -------------------------------------------------------------------------------

    def _decode(self, families: frozenset[str] | None, gw_topic: str, payload: bytes,
                recv_ns: int) -> list[Record]:
        """Parse, route and convert one frame; every failure becomes one BAD_FRAME record."""
        self._frames += 1
        try:
            if payload[:1] == b"{":  # the hot path: a JSON frame (parse_payload handles the rest)
                try:
                    obj = _loads(payload)
                except orjson.JSONDecodeError:
                    raise BadFrame("bad_json") from None
            else:
                obj = parse_payload(payload)
            if type(obj) is not dict:
                raise BadFrame("not_an_object", type(obj).__name__)
            topic = obj.get("topic")
            route = self._routes.get(topic) if type(topic) is str else None
            if route is None:
                if topic is None:
                    return self._not_data(obj)
                route = self._route(topic)
            if families is not None and route.family not in families:
                raise BadFrame("topic_mismatch", f"{topic} on {gw_topic}")
            if not route.known:
                return self._unknown_symbol(route)
            records = route.handler(obj, route, recv_ns)
        except BadFrame as e:
            return [self._bad_frame(e.reason, e.detail, gw_topic, payload, recv_ns)]
        except Exception:  # a bug, not bad input: keep the loop alive, journal the frame, shout
            log.exception("decoder internal error topic=%s", gw_topic)
            return [self._bad_frame("internal_error", "", gw_topic, payload, recv_ns)]
        kinds = self._kinds
        for rec in records:
            kinds[rec.kind] += 1
        return records

    def _fast_book(self, row: list[int], scan: fastbook.Scan, recv_ns: int, taken: list[int]) -> Record | None:
        """Return the record of a frame `fastbook` scanned whole (counted in `taken`), or None: general path."""
        st, snap, ts, cts, u, seq, t0, t1, br, nb, ar, na, b0, b1 = row
        if st:
            return None
        topic = scan.buf[t0:t1]
        route = self._book_routes.get(topic) or self._fast_route(topic, "orderbook", self._book_routes)
        if route is None:
            return None
        levels = scan.levels
        payload = Prepacked()  # filled key by key: ~70 ns less than keyword arguments, same order
        payload["depth"], payload["u"], payload["seq"] = route.depth, u, seq
        payload["b"], payload["a"] = levels[br:br + nb], levels[ar:ar + na]
        payload.body = scan.bodies[b0:b1]
        payload.key = (route.symbol, ts, cts)
        taken[snap] += 1
        return _new_record(Record, (0, recv_ns, _SNAPSHOT if snap else _DELTA, route.symbol, ts, cts, payload))

    def _fast_trades(self, row: list[int], scan: fasttrades.Scan, recv_ns: int, taken: list[int]) -> Record | None:
        """Return the TRADES record of a frame `fasttrades` scanned whole (counted in `taken`), or None."""
        st, ts, cts, t0, t1, r, n, i0, i1, any_bt, b0, b1, _, _ = row
        if st:
            return None
        topic = scan.buf[t0:t1]
        route = self._trade_routes.get(topic) or self._fast_route(topic, "publicTrade", self._trade_routes)
        if route is None:
            return None
        e = r + n
        payload = Prepacked(p=scan.p[r:e], v=scan.v[r:e], side=scan.side[r:e], T=scan.T[r:e],
                            id=scan.ids[i0:i1].split("\x00") if n else [],
                            bt=[b == 1 for b in scan.bt[r:e].tolist()] if any_bt else [False] * n)
        payload.body = scan.bodies[b0:b1]
        payload.key = (route.symbol, ts, cts)
        taken[2] += 1
        return _new_record(Record, (0, recv_ns, _TRADES, route.symbol, ts, cts, payload))

    def _run_scan(self, scan: Callable[[list[bytes]], Any], frames: list[bytes]) -> Any:
        """Return ``scan(frames)``, or None (no frames, or a bug in the scanner: then the general path)."""
        if not frames:
            return None
        try:
            return scan(frames)
        except Exception as e:  # a bug, not bad input: decode the batch the general way, count it, shout
            self.fast_path_errors += 1
            self._ratelog.warning("fast_path_error", "fast path failed, %d frames decoded by the general path: %r",
                                  len(frames), e)
            return None

    def _fast_ticker(self, row: list[int], scan: fasttickers.Scan, recv_ns: int, taken: list[int]) -> Record | None:
        """Return the TICKER record of a frame `fasttickers` checked whole (counted in `taken`), or None."""
        st, snap, ts, cts, t0, t1, d0, d1, b0, b1 = row
        if st:
            return None
        topic = scan.buf[t0:t1]
        route = self._ticker_routes.get(topic) or self._fast_route(topic, "tickers", self._ticker_routes)
        if route is None:
            return None
        payload = Prepacked()
        payload["type"], payload["fields"] = ("snapshot" if snap else "delta"), _loads(scan.buf[d0:d1])
        payload.body = scan.bodies[b0:b1]
        payload.key = (route.symbol, ts, cts)
        taken[3] += 1
        return _new_record(Record, (0, recv_ns, _TICKER, route.symbol, ts, cts, payload))

    def _fast_route(self, topic: bytes, family: str, cache: dict[bytes, Route]) -> Route | None:
        """Learn the route of a `family` topic for a fast path: None unless valid and known."""
        try:
            text = topic.decode("utf-8")
        except UnicodeDecodeError:
            return None
        route = self._routes.get(text) or self._parse_topic(text)
        if route is None or route.family != family or not route.known:
            return None
        if len(cache) < MAX_ROUTES:
            cache[topic] = route
        return route

    def _unknown_symbol(self, route: Route) -> list[Record]:
        """Skip (imports filtering by symbol) or reject a frame for a symbol outside this shard."""
        if self.skip_unknown_symbols:
            self._skipped["unknown_symbol"] += 1
            return []
        raise BadFrame("unknown_symbol", route.symbol)

    def _not_data(self, obj: dict[str, Any]) -> list[Record]:
        """Skip an ack/pong (logging failed ones); raise missing_topic for anything else."""
        if "op" not in obj and "success" not in obj:
            raise BadFrame("missing_topic")
        self._skipped["ack"] += 1
        if obj.get("success") is False:
            self._ratelog.warning("ack_failed", "gateway ack failed op=%s ret_msg=%s",
                                  str(obj.get("op"))[:64], str(obj.get("ret_msg"))[:200])
        return []

    def _route(self, topic: object) -> Route:
        """Parse a Bybit topic string into a Route (cached while the cache is small)."""
        if type(topic) is not str:
            raise BadFrame("bad_field", "topic")
        route = self._parse_topic(topic)
        if route is None:
            raise BadFrame("unknown_topic", topic[:100])
        if len(self._routes) < MAX_ROUTES:
            self._routes[topic] = route
        return route

    def _parse_topic(self, topic: str) -> Route | None:
        """Return the Route of a Bybit topic, or None if it is not one this decoder handles."""
        if topic in EXECUTION_TOPICS:
            return Route("execution", self._executions, "", "", True)
        head, _, rest = topic.partition(".")
        param = ""
        if head in ("orderbook", "kline"):
            param, _, rest = rest.partition(".")
            if param not in (DEPTHS if head == "orderbook" else KLINE_INTERVALS):
                return None
        handler = {"orderbook": self._book, "publicTrade": self._trades, "tickers": self._ticker,
                   "kline": self._kline, "funding": self._funding}.get(head)
        if handler is None or not _SYMBOL.fullmatch(rest):
            return None
        family = f"kline.{param}" if head == "kline" else head
        known = self.symbols is None or rest in self.symbols
        return Route(family, handler, rest, param, known, int(param) if head == "orderbook" else 0)

    @staticmethod
    def _gateway_families(topics: TopicsConfig) -> dict[str, frozenset[str]]:
        """Return, per gateway topic name, the frame families it may carry."""
        pairs = [(topics.orderbook_snapshot, "orderbook"), (topics.orderbook_delta, "orderbook"),
                 (topics.trades, "publicTrade"), (topics.kline_1s, "kline.1s"),
                 (topics.kline_1m, "kline.1"), (topics.ticker, "tickers"),
                 (topics.funding, "funding"), (topics.executions, "execution")]
        out: dict[str, set[str]] = {}
        for name, family in pairs:
            out.setdefault(name, set()).add(family)
        return {name: frozenset(fams) for name, fams in out.items()}

    def _bad_frame(self, reason: str, detail: str, gw_topic: str, payload: object,
                   recv_ns: int) -> Record:
        """Count, log (rate limited) and return the BAD_FRAME record of a rejected frame."""
        self._bad[reason] += 1
        self.bad_frames += 1
        rec = bad_frame(recv_ns, reason, gw_topic, (payload,))
        raw = rec.payload["raw"]
        self._ratelog.warning(reason, "bad frame reason=%s topic=%s detail=%s len=%d head=%r",
                              reason, gw_topic[:MAX_TOPIC], detail, rec.payload["raw_len"], raw[:160])
        return rec

    # --- handlers -------------------------------------------------------------------------------

    def _book(self, obj: dict[str, Any], route: Route, recv_ns: int) -> list[Record]:
        """Return the BOOK_SNAPSHOT / BOOK_DELTA record of an orderbook frame (the hot path)."""
        data = obj.get("data")
        typ = obj.get("type")
        kind_snap = _BOOK_KINDS.get(typ) if type(typ) is str else None
        if type(data) is not dict or kind_snap is None or data.get("s") != route.symbol:
            self._book_header_error(obj, route)
        bids, asks = data.get("b"), data.get("a")
        if bids is None or asks is None:
            raise BadFrame("missing_field", "b" if bids is None else "a")
        u, seq, ts, cts = data.get("u"), data.get("seq", 0), obj.get("ts", 0), obj.get("cts", 0)
        if not (type(u) is int and type(seq) is int and type(ts) is int and type(cts) is int
                and 0 <= u < _I64 and 0 <= seq < _I64 and 0 <= ts < _I64 and 0 <= cts < _I64):
            u, seq, ts, cts = _int(data, "u"), _int(data, "seq", 0), _int(obj, "ts", 0), _int(obj, "cts", 0)
        try:
            b, a = parse_levels(bids, asks, snapshot=kind_snap[1])
        except NumberError as e:
            raise BadFrame(e.reason, "b/a") from None
        payload = {"depth": route.depth, "u": u, "seq": seq, "b": b, "a": a}
        return [_new_record(Record, (0, recv_ns, kind_snap[0], route.symbol, ts, cts, payload))]

    def _rest_book(self, body: bytes, recv_ns: int, depth: int, symbol: str | None) -> Record:
        """Parse ``{"retCode": 0, "result": {s, b, a, ts, u, seq, cts}}`` (prices as strings)."""
        obj = parse_payload(body)
        if type(obj) is not dict:
            raise BadFrame("not_an_object", type(obj).__name__)
        code = obj.get("retCode")
        if code != 0 or type(code) is not int:
            raise BadFrame("bad_field", f"retCode={str(code)[:32]} retMsg={str(obj.get('retMsg'))[:100]}")
        res = _dict(obj, "result")
        sym = res.get("s")
        if type(sym) is not str or not _SYMBOL.fullmatch(sym) or (symbol is not None and sym != symbol):
            raise BadFrame("missing_field" if sym is None else "symbol_mismatch", str(sym)[:64])
        if self.symbols is not None and sym not in self.symbols:
            raise BadFrame("unknown_symbol", sym)
        u, seq, ts, cts = _int(res, "u"), _int(res, "seq", 0), _int(res, "ts", 0), _int(res, "cts", 0)
        try:
            b, a = parse_levels(_get(res, "b"), _get(res, "a"), snapshot=True)
        except NumberError as e:
            raise BadFrame(e.reason, "b/a") from None
        payload = {"depth": depth, "u": u, "seq": seq, "b": b, "a": a, "src": "rest"}
        return Record(0, recv_ns, Kind.BOOK_SNAPSHOT, sym, ts, cts, payload)

    @staticmethod
    def _book_header_error(obj: dict[str, Any], route: Route) -> None:
        """Raise the BadFrame naming what is wrong with an orderbook frame's type, data or symbol."""
        data = _dict(obj, "data")
        typ = obj.get("type")
        if type(typ) is not str or typ not in _BOOK_KINDS:
            raise BadFrame("missing_field" if typ is None else "bad_field", "type")
        _symbol_matches(data.get("s"), route.symbol)

    def _trades(self, obj: dict[str, Any], route: Route, recv_ns: int) -> list[Record]:
        """Return the TRADES record of a publicTrade frame (columns per engine.record)."""
        data = _list(obj, "data")
        sym = route.symbol
        prices, sizes, sides, times, ids, block = [], [], [], [], [], []
        for t in data:
            if type(t) is not dict:
                raise BadFrame("bad_field", "data[]")
            if t.get("s") != sym:
                _symbol_matches(t.get("s"), sym)
            taker = t.get("S")
            side = _SIDES.get(taker) if type(taker) is str else None
            if side is None:
                raise BadFrame("missing_field" if taker is None else "bad_field", "S")
            bt = t.get("BT", False)
            if type(bt) is not bool:
                raise BadFrame("bad_field", "BT")
            prices.append(_get(t, "p"))
            sizes.append(_get(t, "v"))
            sides.append(side)
            times.append(_int(t, "T"))
            ids.append(_str(t, "i"))
            block.append(bt)
        n = len(prices)
        try:  # one pass over prices and sizes together: half the calls of two columns
            pv = parse_positive_column(prices + sizes)
        except NumberError as e:
            raise BadFrame(e.reason, "p/v") from None
        p, v = pv[:n], pv[n:]
        payload = {"p": p, "v": v, "side": np.array(sides, dtype=np.int8), "T": np.array(times, dtype=np.int64),
                   "id": ids, "bt": block}
        return [_new_record(Record, (0, recv_ns, Kind.TRADES, sym, _int(obj, "ts", 0), _int(obj, "cts", 0), payload))]

    def _ticker(self, obj: dict[str, Any], route: Route, recv_ns: int) -> list[Record]:
        """Return the TICKER record: Bybit's string fields passed through with the frame type."""
        typ = obj.get("type")
        if typ != "snapshot" and typ != "delta":
            raise BadFrame("missing_field" if typ is None else "bad_field", "type")
        fields = _dict(obj, "data")
        _symbol_matches(fields.get("symbol"), route.symbol)
        for key, value in fields.items():
            if type(value) is not str:
                raise BadFrame("bad_field", str(key)[:64])
        for key, signed, nonzero, plain in _TICKER_CHECKS:
            value = fields.get(key)
            if value and plain(value) is None:  # the usual short decimal passes one regex
                _number(fields, key, signed, nonzero)  # anything else: the full check names the reason
        if fields.get("nextFundingTime"):
            _ms_text(fields["nextFundingTime"], "nextFundingTime")
        payload = {"type": typ, "fields": fields}
        return [_new_record(Record, (0, recv_ns, Kind.TICKER, route.symbol, _int(obj, "ts", 0), _int(obj, "cts", 0),
                                     payload))]

    def _kline(self, obj: dict[str, Any], route: Route, recv_ns: int) -> list[Record]:
        """Return the KLINE record with its bars converted (ints, exact floats, bool)."""
        bars = [self._bar(bar, route.param) for bar in _list(obj, "data")]
        payload = {"interval": route.param, "bars": bars}
        return [Record(0, recv_ns, Kind.KLINE, route.symbol, _int(obj, "ts", 0), _int(obj, "cts", 0), payload)]

    @staticmethod
    def _bar(bar: object, interval: str) -> dict[str, Any]:
        """Return one kline bar converted per engine.record."""
        if type(bar) is not dict:
            raise BadFrame("bad_field", "data[]")
        if bar.get("interval") != interval:
            raise BadFrame("missing_field" if bar.get("interval") is None else "bad_field", "interval")
        confirm = bar.get("confirm")
        if type(confirm) is not bool:
            raise BadFrame("missing_field" if confirm is None else "bad_field", "confirm")
        out: dict[str, Any] = {k: _int(bar, k) for k in ("start", "end", "timestamp")}
        for k in ("open", "high", "low", "close"):
            out[k] = _number(bar, k, nonzero=True)
        out["volume"] = _number(bar, "volume")
        out["turnover"] = _number(bar, "turnover")
        out["confirm"] = confirm
        return out

    def _funding(self, obj: dict[str, Any], route: Route, recv_ns: int) -> list[Record]:
        """Return the FUNDING record of this project's funding frame (see the module docstring)."""
        data = _dict(obj, "data")
        _symbol_matches(data.get("symbol"), route.symbol)
        interval = data.get("fundingIntervalHour")
        if interval is None or interval == "":
            interval_h = 0.0
        elif type(interval) is int and 0 <= interval < 10_000:
            interval_h = float(interval)
        else:
            interval_h = _number(data, "fundingIntervalHour")
        payload = {"rate": _number(data, "fundingRate", signed=True),
                   "next_ms": _ms_text(data.get("nextFundingTime"), "nextFundingTime"),
                   "interval_h": interval_h}
        return [Record(0, recv_ns, Kind.FUNDING, route.symbol, _int(obj, "ts", 0), _int(obj, "cts", 0), payload)]

    def _executions(self, obj: dict[str, Any], route: Route, recv_ns: int) -> list[Record]:
        """Return one EXECUTION record per symbol (first-seen order) with that symbol's fills."""
        ts = _int(obj, "creationTime", 0)
        by_symbol: dict[str, list[dict[str, Any]]] = {}
        for fill in _list(obj, "data"):
            sym = self._check_fill(fill)
            if self.symbols is not None and sym not in self.symbols:
                self._skipped["foreign_fills"] += 1
                continue
            by_symbol.setdefault(sym, []).append(fill)
        return [Record(0, recv_ns, Kind.EXECUTION, sym, ts, 0, {"fills": fills}) for sym, fills in by_symbol.items()]

    @staticmethod
    def _check_fill(fill: object) -> str:
        """Validate one execution fill; return its symbol."""
        if type(fill) is not dict:
            raise BadFrame("bad_field", "data[]")
        sym = _str(fill, "symbol")
        if not _SYMBOL.fullmatch(sym):
            raise BadFrame("bad_field", "symbol")
        for key in _FILL_STRINGS:
            _str(fill, key)
        if fill["side"] not in _SIDES:
            raise BadFrame("bad_field", "side")
        _number(fill, "execPrice")
        _number(fill, "execQty")
        _ms_text(fill["execTime"], "execTime")
        return sym
