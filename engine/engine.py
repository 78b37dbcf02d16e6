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
from engine.runs import DeltaRun, KernelRun, TradesRun, checked_trades_run, prepare
from engine.symbol_state import (
    BOOK_APPLIED,
    INVALIDATING,
    RECOVERED,
    BookEvent,
    Horizons,
    SymbolState,
)
from engine.windows import TickSeries
from registry import Registry, RegistryError, load_registry_text
from registry.catalog import FUNCTIONS as CATALOG

NAN = math.nan
NS = 1_000_000_000
CHECKPOINT_FORMAT = 2


class Vector(NamedTuple):
    """One feature vector: the tick boundary, the symbol, the book flag and the registry's columns."""

    ts_ns: int
    symbol: str
    book_valid: int
    values: np.ndarray
    registry_hash: str
    #: Mid price of the feature book at the tick (NaN while invalid): what dataset targets are taken
    #: from, whatever features the registry holds. Not on the wire or in the feature log.
    mid: float = math.nan


class Notice(NamedTuple):
    """Side information for the caller to log and count.

    `depth` names the book (``orderbook.<depth>.<symbol>``; 0 when the notice is not about a
    book); `resync` asks the caller for a fresh snapshot of it. Events: a book outcome (``gap``,
    ``crossed``, ``reset``, ``no_snapshot``, ``gateway_down``), ``recovered`` (a snapshot made the
    book valid again), ``registry rejected: …``, ``error: …`` (a record it could not apply).
    """

    seq: int
    symbol: str
    depth: int
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
_SESSION, _TICK_GAP = int(Kind.SESSION), int(Kind.TICK_GAP)
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
    """Order books, trade windows, funding and tick history for the symbols of a shard.

    The symbol set and the registry normally come from the journal itself (SESSION and
    REGISTRY_CHANGED records), so a run can be rebuilt from its journal alone; the constructor's
    `registry` and `symbols` are what holds before the first such record. Two what-if options
    for offline use: `pin_registry` ignores every journaled registry, `only_symbols` keeps just
    those symbols (records of the others are counted as ``filtered``).
    """

    def __init__(self, registry: Registry, symbols: Iterable[str] = (), *, pin_registry: bool = False,
                 only_symbols: Iterable[str] | None = None) -> None:
        self.only_symbols = frozenset(only_symbols) if only_symbols is not None else None
        self.pin_registry = pin_registry
        self.plan = Plan(registry)
        self.registries: dict[str, Registry] = {registry.content_hash: registry}
        self.symbols: tuple[str, ...] = ()
        self.states: dict[str, SymbolState] = {}
        self.values: dict[str, np.ndarray] = {}
        self.norm: dict[str, dict[int, TickSeries]] = {}
        self._set_symbols(symbols)
        self.pending_registry: Registry | None = None
        #: The last SESSION record's payload without the registry text (None before any).
        self.session: dict[str, Any] | None = None
        self.last_seq = 0
        self.last_tick_ns = 0
        self.counters: dict[str, int] = {}

    @property
    def registry(self) -> Registry:
        """The registry in force."""
        return self.plan.registry

    def _set_symbols(self, symbols: Iterable[str]) -> None:
        """Own exactly `symbols` (filtered by `only_symbols`): new ones start empty, dropped ones go."""
        wanted = set(symbols)
        if self.only_symbols is not None:
            wanted &= self.only_symbols
        self.symbols = tuple(sorted(wanted))
        self.states = {s: self.states.get(s) or SymbolState(s, self.plan.horizons) for s in self.symbols}
        self.values = {s: self.values[s] if s in self.values else self._fresh_values() for s in self.symbols}
        self.norm = {s: self.norm[s] if s in self.norm else self._fresh_norm() for s in self.symbols}

    def _fresh_values(self) -> np.ndarray:
        return np.full(self.plan.width, NAN)

    def _fresh_norm(self) -> dict[int, TickSeries]:
        return {c.index: TickSeries(c.zscore_n) for c in self.plan.features if c.zscore_n}

    def _reset_feature_state(self) -> None:
        self.values = {s: self._fresh_values() for s in self.symbols}
        self.norm = {s: self._fresh_norm() for s in self.symbols}

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
                    self._count_stranger(rec.symbol)
                    return NOTHING
                if kind == _BOOK_DELTA:  # the hot path: one call down to the book kernel
                    ev = state.apply_book(rec.recv_ns, False, rec.payload)
                    return NOTHING if ev is BOOK_APPLIED else self._book_event(state, rec.seq, ev)
                return self._apply_market(state, kind, rec)
            return self._apply_control(kind, rec)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
            self._count("apply_error")
            event = f"error: {kind_name(rec.kind)}: {type(e).__name__}: {e}"
            return Effects((), (Notice(rec.seq, rec.symbol, 0, event, False),))

    def _count_stranger(self, symbol: str, n: int = 1) -> None:
        """Count `n` market records of a symbol this engine does not keep: filtered out, or unknown."""
        filtered = self.only_symbols is not None and symbol not in self.only_symbols
        self._count("filtered" if filtered else "unknown_symbol", n)

    def _apply_control(self, kind: int, rec: Record) -> Effects:
        if kind == _TICK:
            return Effects(self.on_tick(rec), ())
        if kind == _GATEWAY_DOWN:
            return self._gateway(rec, resync=False)
        if kind == _GATEWAY_UP:
            return self._gateway(rec, resync=True)
        if kind == _REGISTRY_CHANGED:
            if self.session is not None and "configured" in rec.payload:  # a reload re-read the file
                self.session = {**self.session, "configured": rec.payload["configured"]}
            return self._stage_registry(rec, rec.payload["content"], "registry_changed")
        if kind == _SESSION:
            self._set_symbols(rec.payload["symbols"])
            self.session = {k: v for k, v in rec.payload.items() if k != "registry"}
            return self._stage_registry(rec, rec.payload["registry"], "session")
        if kind == _TICK_GAP:
            self._tick_gap(rec)
        self._count(kind_name(kind))
        return NOTHING

    def _stage_registry(self, rec: Record, content: str, what: str) -> Effects:
        """Stage a journaled registry for the next tick; an invalid one is refused and the current kept."""
        self._count(what)
        if self.pin_registry:
            return NOTHING
        try:
            registry = load_registry_text(content, source=f"journal seq {rec.seq}")
        except RegistryError as e:
            self._count("registry_rejected")
            return Effects((), (Notice(rec.seq, "", 0, f"registry rejected: {e}", False),))
        # The newest journaled registry wins; staging the one in force cancels a pending change.
        self.pending_registry = None if registry.content_hash == self.plan.hash else registry
        return NOTHING

    def _tick_gap(self, rec: Record) -> None:
        """Seconds without ticks: no vectors for them, and tick history (returns, z-scores) restarts."""
        self.last_tick_ns = max(self.last_tick_ns, int(rec.payload["to_ns"]))
        for sym in self.symbols:
            self.states[sym].restart_tick_history()
        self.norm = {s: self._fresh_norm() for s in self.symbols}

    def _apply_market(self, state: SymbolState, kind: int, rec: Record) -> Effects:
        p = rec.payload
        if kind == _BOOK_SNAPSHOT:
            return self._book_event(state, rec.seq, state.apply_book(rec.recv_ns, True, p))
        if kind == _TRADES:
            dups = state.apply_trades(rec.recv_ns, p)
            if dups:
                self._count("trade_duplicates", dups)
        elif kind == _TICKER:
            state.funding.apply_ticker(p["type"], p["fields"])
        else:
            state.funding.apply_funding(p)
        return NOTHING

    def _book_event(self, state: SymbolState, seq: int, ev: BookEvent) -> Effects:
        """Count a book outcome other than a plain apply; a transition (invalid, reset, recovered) is a notice."""
        if ev.outcome == APPLIED:
            return NOTHING
        self._count(f"book_{ev.outcome}")
        if ev.became_invalid or ev.outcome == RESET or ev.outcome == RECOVERED:
            resync = ev.became_invalid and ev.outcome in INVALIDATING
            return Effects((), (Notice(seq, state.symbol, ev.depth, ev.outcome, resync),))
        return NOTHING

    # --- runs of deltas --------------------------------------------------------------------------

    def apply_deltas(self, run: DeltaRun) -> Effects:
        """Apply a run of BOOK_DELTA records at once: the same state, counters and notices as `apply`
        of each of its records in order (the book kernel walks the run; Python sees only the deltas
        that are not a clean apply). ValueError when the run's arrays are inconsistent."""
        run, kr = prepare(run)
        n = run.n
        if n == 0:
            return NOTHING
        state = self.states.get(run.symbol)
        if state is None:
            self._count_stranger(run.symbol, n)
            self.last_seq = int(run.seq[n - 1])
            return NOTHING
        notices: list[Notice] = []
        i = 0
        while i < n:
            if run.depth not in state.books:  # first sight of the book (or a bad depth): as a record
                notices.extend(self.apply(run.record(i)).notices)
                i += 1
            else:
                i = self._run_segment(state, run, kr, i, notices)
        self.last_seq = int(run.seq[n - 1])
        return Effects((), tuple(notices)) if notices else NOTHING

    def apply_trades_run(self, run: TradesRun) -> Effects:
        """Apply a run of TRADES records of one symbol: the same state, counters and notices as `apply`
        of each in order (trade ids deduped per message at its time; the window appended once)."""
        run = checked_trades_run(run)
        n = run.n
        if n == 0:
            return NOTHING
        state = self.states.get(run.symbol)
        if state is None:
            self._count_stranger(run.symbol, n)
        elif not state.trades_in_order(run):  # some message would fail: exactly as records
            notices = [x for i in range(n) for x in self.apply(run.record(i)).notices]
            return Effects((), tuple(notices)) if notices else NOTHING
        else:
            dups = state.apply_trades_run(run)
            if dups:
                self._count("trade_duplicates", dups)
        self.last_seq = int(run.seq[n - 1])
        return NOTHING

    def _run_segment(self, state: SymbolState, run: DeltaRun, kr: KernelRun, start: int,
                     notices: list[Notice]) -> int:
        """Apply deltas from `start` up to and including the first one that is not clean; return the next index."""
        stop, ev = state.apply_run(run, kr, start)
        clean = stop if ev is BOOK_APPLIED else stop - 1
        if clean > start and run.depth == state.primary_depth:
            moved_at = kr.moved(start, clean)
            if moved_at.shape[0]:
                self._churn(state, run, kr, moved_at, notices)
        if ev is not BOOK_APPLIED:
            notices.extend(self._book_event(state, int(run.seq[stop - 1]), ev).notices)
        return stop

    def _churn(self, state: SymbolState, run: DeltaRun, kr: KernelRun, at: np.ndarray, notices: list[Notice]) -> None:
        """Add the receive times of the deltas `at` as churn; times out of order fail per delta, as in `apply`."""
        try:
            state.churn.add_many(run.recv_ns[at], ordered=kr.ordered)
            return
        except ValueError:
            pass
        for i in at.tolist():
            try:
                state.churn.add(int(run.recv_ns[i]))
            except ValueError as e:
                self._count("apply_error")
                event = f"error: {kind_name(_BOOK_DELTA)}: {type(e).__name__}: {e}"
                notices.append(Notice(int(run.seq[i]), run.symbol, 0, event, False))

    def _gateway(self, rec: Record, resync: bool) -> Effects:
        """Gateway down invalidates every book; gateway up also asks for a snapshot of each invalid one."""
        self._count(kind_name(rec.kind))
        notices = []
        for sym in self.symbols:
            state = self.states[sym]
            changed = state.invalidate_books("gateway_down")
            depths = state.invalid_depths() if resync else changed
            notices.extend(Notice(rec.seq, sym, d, "gateway_down", resync) for d in depths)
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
        mid = ctx.mid()
        state.record_tick(t, mid)
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
        return Vector(t, sym, int(state.book_valid()), values.copy(), self.plan.hash, mid)

    def _switch_registry(self, registry: Registry) -> None:
        """Take a journaled registry change at this tick boundary; feature history restarts."""
        self.pending_registry = None
        if registry.content_hash == self.plan.hash:
            return
        old = {s: st.to_state() for s, st in self.states.items()}
        self.plan = Plan(registry)
        self.registries[registry.content_hash] = registry
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
            "pending_registry": [self.pending_registry.canonical, self.pending_registry.source]
            if self.pending_registry else None,
            "symbols": list(self.symbols),
            "only_symbols": sorted(self.only_symbols) if self.only_symbols is not None else None,
            "pin_registry": self.pin_registry,
            "registries": {h: [r.canonical, r.source] for h, r in self.registries.items()},
            "session": self.session,
            "last_seq": self.last_seq,
            "last_tick_ns": self.last_tick_ns,
            "counters": dict(sorted(self.counters.items())),  # bytes independent of first-seen order
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
        eng = cls(load_registry_text(doc["registry"], source=doc["registry_source"]), doc["symbols"],
                  pin_registry=bool(doc["pin_registry"]), only_symbols=doc["only_symbols"])
        eng.registries = {h: eng.registries.get(h) or load_registry_text(text, source=source)
                          for h, (text, source) in doc["registries"].items()}  # journal order, kept
        if doc["pending_registry"]:
            text, source = doc["pending_registry"]
            eng.pending_registry = load_registry_text(text, source=source)
        eng.session = doc["session"]
        eng.last_seq, eng.last_tick_ns = int(doc["last_seq"]), int(doc["last_tick_ns"])
        eng.counters = dict(doc["counters"])
        h = eng.plan.horizons
        eng.states = {s: SymbolState.from_state(s, h, doc["states"][s]) for s in eng.symbols}
        eng.values = {s: np.frombuffer(doc["values"][s], dtype=np.float64).copy() for s in eng.symbols}
        eng.norm = {s: {int(i): TickSeries.from_state(v) for i, v in doc["norm"][s].items()} for s in eng.symbols}
        return eng
