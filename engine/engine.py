"""The deterministic state machine: journal records in, feature vectors and notices out.

The online shard, the offline replay and the dataset builder all drive this one class the same
way — restore a checkpoint (or start empty), then `apply` every journal record in order. Nothing
here reads a clock, a file or the environment; the same records give bit-identical state and
vectors.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, NamedTuple

import msgpack
import numpy as np

from engine.functions import FUNCTIONS, Compiled, TickContext
from engine.orderbook import APPLIED, RESET
from engine.record import Kind, Record, kind_name
from engine.symbol_state import BOOK_APPLIED, INVALIDATING, BookEvent, Horizons, SymbolState
from engine.windows import TickSeries
from registry import Registry, RegistryError, load_registry_text
from registry.catalog import FUNCTIONS as CATALOG

NAN = math.nan
NS = 1_000_000_000
CHECKPOINT_FORMAT = 1


class Vector(NamedTuple):
    """One feature vector: the tick boundary, the symbol, the book flag and the registry's columns."""

    ts_ns: int
    symbol: str
    book_valid: int
    values: np.ndarray
    registry_hash: str


class Notice(NamedTuple):
    """Side information for the caller to log and count; `resync` asks for a fresh snapshot of `topic`."""

    seq: int
    symbol: str
    topic: str
    event: str
    resync: bool


class Effects(NamedTuple):
    """What applying one record produced."""

    vectors: tuple[Vector, ...] = ()
    notices: tuple[Notice, ...] = ()


NOTHING = Effects()

# Kinds as plain ints: comparing against them is cheaper than enum attribute lookups per record.
_BOOK_SNAPSHOT, _BOOK_DELTA, _TRADES, _TICKER = (int(k) for k in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA,
                                                                    Kind.TRADES, Kind.TICKER))
_TICK, _GATEWAY_UP, _GATEWAY_DOWN, _REGISTRY_CHANGED = (int(k) for k in (Kind.TICK, Kind.GATEWAY_UP,
                                                                          Kind.GATEWAY_DOWN, Kind.REGISTRY_CHANGED))
#: Kinds the engine folds into a symbol's state (klines and executions are only counted for now).
_MARKET = frozenset(int(k) for k in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA, Kind.TRADES, Kind.TICKER, Kind.FUNDING))


class Plan:
    """A registry compiled for the engine: features in computation order and the history they need."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.hash = registry.content_hash
        self.width = len(registry.features)
        trade_windows = sorted({f.window_ns for f in registry.features if CATALOG[f.function].history == "trades"})
        self.trade_windows = np.asarray(trade_windows, dtype=np.int64)
        self.features = [self._compile(registry, i, trade_windows) for i in registry.order]
        self.horizons = self._horizons(registry)

    @staticmethod
    def _compile(registry: Registry, i: int, trade_windows: list[int]) -> Compiled:
        f = registry.features[i]
        window = f.window_ns or 0
        slot = trade_windows.index(window) if CATALOG[f.function].history == "trades" else -1
        inputs = tuple(registry.index_of(n) for n in f.inputs)
        zscore_n = f.normalise.n if f.normalise is not None else 0
        return Compiled(i, f.name, f.function, FUNCTIONS[f.function], dict(f.params), window, f.every_ns, inputs,
                        zscore_n, slot)

    @staticmethod
    def _horizons(registry: Registry) -> Horizons:
        """The longest history each kind of state must keep, as the catalogue declares per function."""
        need = {"trades": 0, "churn": 0, "ticks": 2}
        for f in registry.features:
            kind = CATALOG[f.function].history
            if kind == "ticks":
                need["ticks"] = max(need["ticks"], int(f.param("seconds")) + 1)
            elif kind:
                need[kind] = max(need[kind], f.window_ns or 0)
        return Horizons(need["trades"], need["churn"], need["ticks"])


class Engine:
    """Order books, trade windows, funding and tick history for a fixed set of symbols."""

    def __init__(self, registry: Registry, symbols: Iterable[str]) -> None:
        self.symbols = tuple(sorted(set(symbols)))
        self.plan = Plan(registry)
        self.states = {s: SymbolState(s, self.plan.horizons) for s in self.symbols}
        self._reset_feature_state()
        self.pending_registry: Registry | None = None
        self.last_seq = 0
        self.last_tick_ns = 0
        self.counters: dict[str, int] = {}

    @property
    def registry(self) -> Registry:
        """The registry in force."""
        return self.plan.registry

    def _reset_feature_state(self) -> None:
        width = self.plan.width
        self.values = {s: np.full(width, NAN) for s in self.symbols}
        self.norm = {s: {c.index: TickSeries(c.zscore_n) for c in self.plan.features if c.zscore_n}
                     for s in self.symbols}

    def _count(self, key: str, n: int = 1) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    # --- applying records ----------------------------------------------------------------------

    def apply(self, rec: Record) -> Effects:
        """Apply one journal record; ticks return vectors, book trouble returns notices.

        A record the engine cannot apply (a malformed payload that got into a journal) never
        raises: it is counted and returned as an ``error`` notice, and the engine keeps going —
        online and offline alike, so both stay identical and a restart cannot crash-loop on it.
        """
        try:
            self.last_seq = rec.seq
            kind = rec.kind
            if kind in _MARKET:
                state = self.states.get(rec.symbol)
                if state is None:
                    self._count("unknown_symbol")
                    return NOTHING
                if kind == _BOOK_DELTA:  # the hot path: one call down to the book kernel
                    ev = state.apply_book(rec.recv_ns, False, rec.payload)
                    return NOTHING if ev is BOOK_APPLIED else self._book_event(state, rec, ev)
                return self._apply_market(state, kind, rec)
            return self._apply_control(kind, rec)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            self._count("apply_error")
            return Effects((), (Notice(rec.seq, rec.symbol, kind_name(rec.kind), f"error: {type(e).__name__}: {e}",
                                       False),))

    def _apply_control(self, kind: int, rec: Record) -> Effects:
        if kind == _TICK:
            return Effects(self.on_tick(rec), ())
        if kind == _GATEWAY_DOWN:
            return self._gateway(rec, resync=False)
        if kind == _GATEWAY_UP:
            return self._gateway(rec, resync=True)
        if kind == _REGISTRY_CHANGED:
            return self._registry_changed(rec)
        self._count(kind_name(kind))
        return NOTHING

    def _registry_changed(self, rec: Record) -> Effects:
        """Stage a journaled registry for the next tick; an invalid one is refused and the current kept."""
        self._count("registry_changed")
        try:
            self.pending_registry = load_registry_text(rec.payload["content"], source=f"journal seq {rec.seq}")
        except (RegistryError, KeyError) as e:
            self._count("registry_rejected")
            return Effects((), (Notice(rec.seq, "", "registry", f"rejected: {e}", False),))
        return NOTHING

    def _apply_market(self, state: SymbolState, kind: int, rec: Record) -> Effects:
        p = rec.payload
        if kind == _BOOK_SNAPSHOT:
            return self._book_event(state, rec, state.apply_book(rec.recv_ns, True, p))
        if kind == _TRADES:
            dups = state.apply_trades(rec.recv_ns, p)
            if dups:
                self._count("trade_duplicates", dups)
        elif kind == _TICKER:
            state.funding.apply_ticker(p["type"], p["fields"])
        else:
            state.funding.apply_funding(p)
        return NOTHING

    def _book_event(self, state: SymbolState, rec: Record, ev: BookEvent) -> Effects:
        """Count a book outcome other than a plain apply; a transition to invalid or a reset is a notice."""
        if ev.outcome == APPLIED:
            return NOTHING
        self._count(f"book_{ev.outcome}")
        if ev.became_invalid or ev.outcome == RESET:
            resync = ev.became_invalid and ev.outcome in INVALIDATING
            return Effects((), (Notice(rec.seq, state.symbol, ev.topic, ev.outcome, resync),))
        return NOTHING

    def _gateway(self, rec: Record, resync: bool) -> Effects:
        """Gateway down invalidates every book; gateway up also asks for a snapshot of each invalid one."""
        self._count(kind_name(rec.kind))
        notices = []
        for sym in self.symbols:
            state = self.states[sym]
            changed = state.invalidate_books("gateway_down")
            topics = state.invalid_topics() if resync else changed
            notices.extend(Notice(rec.seq, sym, t, "gateway_down", resync) for t in topics)
        return Effects((), tuple(notices))

    # --- ticks -----------------------------------------------------------------------------------

    def on_tick(self, rec: Record) -> tuple[Vector, ...]:
        """Compute one vector per symbol at the tick boundary `rec.recv_ns`."""
        t = rec.recv_ns
        if t <= self.last_tick_ns:
            self._count("tick_out_of_order")
            return ()
        self.last_tick_ns = t
        if self.pending_registry is not None:
            self._switch_registry(self.pending_registry)
        return tuple(self._vector(t, sym) for sym in self.symbols)

    def _vector(self, t: int, sym: str) -> Vector:
        state, values, norm = self.states[sym], self.values[sym], self.norm[sym]
        ctx = TickContext(t, state, values, self.plan.trade_windows)
        state.record_tick(t, ctx.mid())
        for c in self.plan.features:
            if c.every_ns != NS and t % c.every_ns:
                continue  # off-cadence: hold the last value
            x = c.fn(ctx, c)
            if c.zscore_n:
                hist = norm[c.index]
                hist.push(t, x)
                x = hist.zscore_of_newest(c.zscore_n)
            values[c.index] = x
        state.evict(t)
        return Vector(t, sym, int(state.book_valid()), values.copy(), self.plan.hash)

    def _switch_registry(self, registry: Registry) -> None:
        """Take a journaled registry change at this tick boundary; feature history restarts."""
        self.pending_registry = None
        if registry.content_hash == self.plan.hash:
            return
        old = {s: st.to_state() for s, st in self.states.items()}
        self.plan = Plan(registry)
        self.states = {s: SymbolState.from_state(s, self.plan.horizons, old[s]) for s in self.symbols}
        self._reset_feature_state()
        self._count("registry_switched")

    # --- checkpoints -----------------------------------------------------------------------------

    def checkpoint(self) -> bytes:
        """Serialise the whole engine state; `restore` of these bytes continues bit-identically."""
        doc = {
            "format": CHECKPOINT_FORMAT,
            "registry": self.registry.canonical,
            "registry_source": self.registry.source,
            "pending_registry": self.pending_registry.canonical if self.pending_registry else None,
            "symbols": list(self.symbols),
            "last_seq": self.last_seq,
            "last_tick_ns": self.last_tick_ns,
            "counters": self.counters,
            "states": {s: self.states[s].to_state() for s in self.symbols},
            "values": {s: self.values[s].tobytes() for s in self.symbols},
            "norm": {s: {str(i): ts.to_state() for i, ts in self.norm[s].items()} for s in self.symbols},
        }
        return msgpack.packb(doc, use_bin_type=True)

    @classmethod
    def restore(cls, data: bytes) -> Engine:
        """Rebuild an engine from `checkpoint` bytes (the registry travels inside them)."""
        doc: dict[str, Any] = msgpack.unpackb(data, raw=False, strict_map_key=False)
        if doc.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"unsupported checkpoint format {doc.get('format')!r}")
        eng = cls(load_registry_text(doc["registry"], source=doc["registry_source"]), doc["symbols"])
        if doc["pending_registry"]:
            eng.pending_registry = load_registry_text(doc["pending_registry"], source="checkpoint")
        eng.last_seq, eng.last_tick_ns = int(doc["last_seq"]), int(doc["last_tick_ns"])
        eng.counters = dict(doc["counters"])
        h = eng.plan.horizons
        eng.states = {s: SymbolState.from_state(s, h, doc["states"][s]) for s in eng.symbols}
        eng.values = {s: np.frombuffer(doc["values"][s], dtype=np.float64).copy() for s in eng.symbols}
        eng.norm = {s: {int(i): TickSeries.from_state(v) for i, v in doc["norm"][s].items()} for s in eng.symbols}
        return eng
