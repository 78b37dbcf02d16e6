"""Every feature of every vector equals SPEC C.6, checked against the naive reference and by hand.

The scenario below is seeded and synthetic: two symbols, depth-50 books with contiguous deltas and
a depth-1 topic, trades with duplicate ids, ticker snapshot + deltas and a funding record, a u gap,
a crossed delta, a u = 1 reset, a gateway outage, events exactly on window edges, and a tick at
every whole second for 400 s across a UTC midnight. Prices sit on a 0.25 grid and sizes on a
0.125 grid, so sums of sizes and notionals are exact in float64 and compare exactly.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable

import numpy as np
import pytest

from engine.engine import Engine
from engine.record import NS_PER_MS, Kind, Record
from registry import load_registry_text
from tests.engine.naive_reference import NaiveReference, defs_from_registry
from tools.registry_file import default_registry

NS = 1_000_000_000
MIDNIGHT = 1_786_320_000 * NS  # a UTC midnight
T0 = MIDNIGHT - 200 * NS
SECONDS = 400
SYMBOLS = ("SOLUSDT", "DOGEUSDT")
PRICE_STEP = 0.25
SIZE_STEP = 0.125
GATEWAY_DOWN_S, GATEWAY_UP_S, RESNAPSHOT_S = 200.0, 204.5, 206.2


# --- the synthetic scenario -----------------------------------------------------------------------

class SimBook:
    """The 'exchange' book in integer price steps; deltas never cross and keep best prices in bounds."""

    def __init__(self, rng: random.Random, mid: int, lo: int, hi: int) -> None:
        self.rng, self.lo, self.hi = rng, lo, hi
        self.bids = {mid - 1 - i: self.size() for i in range(55)}
        self.asks = {mid + 1 + i: self.size() for i in range(55)}
        self.u = 1000
        self.d1_u, self.d1_top = 500, (0, 0)

    def size(self) -> float:
        return self.rng.randint(1, 800) * SIZE_STEP

    def best(self) -> tuple[int, int]:
        return max(self.bids), min(self.asks)

    def snapshot(self, depth: int) -> dict:
        """A snapshot of the top `depth` levels (depth 1 repeats its u while the top is unchanged)."""
        bids = sorted(self.bids.items(), reverse=True)[:depth]
        asks = sorted(self.asks.items())[:depth]
        u = self.u
        if depth == 1:
            if (bids[0], asks[0]) != self.d1_top:
                self.d1_u, self.d1_top = self.d1_u + 1, (bids[0], asks[0])
            u = self.d1_u
        return book_payload(depth, u, bids, asks)

    def delta(self) -> dict:
        """Change 1–4 levels (resize, delete, improve the top, add deep); u steps by one."""
        self.u += 1
        changes: dict[str, dict[int, float]] = {"b": {}, "a": {}}
        for _ in range(self.rng.randint(1, 4)):
            side = self.rng.choice("ba")
            price, size = self._change(side)
            if price is None or price in changes[side]:
                continue
            book = self.bids if side == "b" else self.asks
            if size == 0:
                book.pop(price, None)
            else:
                book[price] = size
            changes[side][price] = size
        for side, book in (("b", self.bids), ("a", self.asks)):
            for price in sorted(book, reverse=side == "a")[: max(0, len(book) - 60)]:
                del book[price]  # keep the exchange book bounded: delete the worst levels
                changes[side][price] = 0.0
        return book_payload(50, self.u, list(changes["b"].items()), list(changes["a"].items()))

    def _change(self, side: str) -> tuple[int | None, float]:
        book = self.bids if side == "b" else self.asks
        ranked = sorted(book, reverse=side == "b")
        best_b, best_a = self.best()
        op = self.rng.random()
        if op < 0.45:
            return ranked[self.rng.randint(0, 11)], self.size()
        if op < 0.6:
            price = ranked[self.rng.randint(0, 3)]
            after = ranked[1] if price == ranked[0] else ranked[0]
            in_bounds = after >= self.lo if side == "b" else after <= self.hi
            return (price, 0.0) if in_bounds and len(book) > 20 else (None, 0.0)
        if op < 0.8:
            if best_a - best_b < 2:
                return None, 0.0
            return (best_b + 1 if side == "b" else best_a - 1), self.size()
        step = self.rng.randint(1, 70)
        return (best_b - step if side == "b" else best_a + step), self.size()


def book_payload(depth: int, u: int, bids: list, asks: list) -> dict:
    def arr(levels: list) -> np.ndarray:
        return np.array([(p * PRICE_STEP, s) for p, s in levels], dtype=np.float64).reshape(-1, 2)
    return {"depth": depth, "u": u, "seq": u * 3, "b": arr(bids), "a": arr(asks)}


class Timeline:
    """Records merged in engine-time order; an event exactly on a whole second goes before or after its tick."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: list[tuple[int, int, int, Record]] = []

    def add(self, ns: int, kind: int, symbol: str, payload: dict) -> None:
        key = self.rng.choice((0, 2)) if ns % NS == 0 else 0  # the tick at ns sorts with key 1
        rec = Record(0, ns, int(kind), symbol, ns // NS_PER_MS, ns // NS_PER_MS, payload)
        self.items.append((ns, key, len(self.items), rec))

    def records(self) -> list[Record]:
        for s in range(1, SECONDS + 1):
            self.items.append((T0 + s * NS, 1, len(self.items), Record(0, T0 + s * NS, Kind.TICK, "", 0, 0, {})))
        ordered = sorted(self.items, key=lambda x: x[:3])
        return [r.with_seq(i + 1) for i, (_, _, _, r) in enumerate(ordered)]


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000) * NS_PER_MS


class SymbolScript:
    """The event plan of one symbol: what happens when, driven second by second."""

    def __init__(self, symbol: str, rng: random.Random, line: Timeline, mid: int, specials: dict) -> None:
        self.symbol, self.rng, self.line = symbol, rng, line
        self.sim = SimBook(rng, mid, mid - 150, mid + 150)
        self.specials = specials
        self.trade_no = 0
        self.recent: list[tuple[int, str, float, float, int]] = []  # (ns, id, p, v, side)

    def emit(self, ns: int, kind: int, payload: dict) -> None:
        self.line.add(ns, kind, self.symbol, payload)

    def plan(self) -> list[tuple[int, Callable[[int], None]]]:
        """(ns, action) for every event of this symbol over the scenario."""
        sp = self.specials
        acts: list[tuple[int, Callable[[int], None]]] = [(at(t), fn) for t, fn in sp["at"]]
        for s in range(SECONDS + 1):
            base = T0 + s * NS
            if s >= sp["deltas_from"]:
                offsets = sorted(self.rng.sample(range(1, 1000), self.rng.randint(3, 8)))
                acts += [(base + ms * NS_PER_MS + self.rng.randint(0, 999), self.delta) for ms in offsets]
                if self.rng.random() < 0.25:
                    acts.append((base, self.delta))  # exactly on the whole second
            if s >= sp["d1_from"]:
                acts += [(base + sp["d1_phase"], self.d1), (base + sp["d1_phase"] + NS // 2, self.d1)]
            if not sp["quiet"][0] <= s < sp["quiet"][1]:
                n_msgs = self.rng.choice((0, 1, 1, 2, 3))
                acts += [(base + self.rng.randint(1, 999) * NS_PER_MS, self.trades) for _ in range(n_msgs)]
                if self.rng.random() < 0.3:
                    acts.append((base, self.trades))  # exactly on the whole second
            if s % 7 == 3:
                acts.append((base + 450 * NS_PER_MS, self.ticker_delta))
        return [(ns, fn) for ns, fn in acts if not at(GATEWAY_DOWN_S) <= ns < at(GATEWAY_UP_S)]

    def run(self) -> None:
        for ns, fn in sorted(self.plan(), key=lambda x: x[0]):
            fn(ns)

    # --- actions ---------------------------------------------------------------------------------

    def delta(self, ns: int) -> None:
        self.emit(ns, Kind.BOOK_DELTA, self.sim.delta())

    def d1(self, ns: int) -> None:
        self.emit(ns, Kind.BOOK_SNAPSHOT, self.sim.snapshot(1))

    def snapshot(self, ns: int) -> None:
        self.emit(ns, Kind.BOOK_SNAPSHOT, self.sim.snapshot(50))

    def gap(self, ns: int) -> None:
        """Skip one u: the next delta arrives with u = last + 2."""
        self.sim.u += 1
        self.delta(ns)

    def stale(self, ns: int) -> None:
        """Re-send update id u − 1 with a different best-bid size: it must be dropped."""
        best_b = self.sim.best()[0]
        self.emit(ns, Kind.BOOK_DELTA, book_payload(50, self.sim.u - 1, [(best_b, 999 * SIZE_STEP)], []))

    def crossed(self, ns: int) -> None:
        """A delta putting a bid above the best ask (the exchange book itself stays sane)."""
        self.sim.u += 1
        best_a = self.sim.best()[1]
        self.emit(ns, Kind.BOOK_DELTA, book_payload(50, self.sim.u, [(best_a + 1, 3.0)], []))

    def reset(self, ns: int) -> None:
        """An exchange restart: a snapshot with u = 1, then deltas from 2."""
        self.sim.u = 1
        self.snapshot(ns)

    def trades(self, ns: int) -> None:
        best_b, best_a = self.sim.best()
        rows = []
        for _ in range(self.rng.randint(1, 4)):
            self.trade_no += 1
            side = 1 if self.specials["buys_only"][0] <= (ns - T0) // NS < self.specials["buys_only"][1] \
                else self.rng.choice((1, -1))
            price = (best_a if side > 0 else best_b) + self.rng.randint(-2, 2)
            rows.append((ns, f"{self.symbol}-{self.trade_no}", price * PRICE_STEP, self.size(), side))
        old = [r for r in self.recent if r[0] > ns - 5 * NS]
        if old and self.rng.random() < 0.2:
            rows.append(self.rng.choice(old))  # a duplicate trade id (same trade sent again)
        self.recent = old + rows
        self.emit(ns, Kind.TRADES, {
            "p": np.array([r[2] for r in rows]), "v": np.array([r[3] for r in rows]),
            "side": np.array([r[4] for r in rows], dtype=np.int8),
            "T": np.full(len(rows), ns // NS_PER_MS, dtype=np.int64),
            "id": [r[1] for r in rows], "bt": [False] * len(rows),
        })

    def size(self) -> float:
        return self.rng.randint(1, 400) * SIZE_STEP

    def ticker_delta(self, ns: int) -> None:
        fields = {"markPrice": f"{self.sim.best()[0] * PRICE_STEP:.2f}"}
        if self.rng.random() < 0.4:
            fields["fundingRate"] = f"{self.rng.randint(-30, 30) * 1e-5:.5f}"
        self.emit(ns, Kind.TICKER, {"type": "delta", "fields": fields})

    def ticker(self, kind: str, **fields: str) -> Callable[[int], None]:
        return lambda ns: self.emit(ns, Kind.TICKER, {"type": kind, "fields": dict(fields)})

    def funding(self, rate: float, next_ms: int) -> Callable[[int], None]:
        return lambda ns: self.emit(ns, Kind.FUNDING, {"rate": rate, "next_ms": next_ms, "interval_h": 8.0})


def scenario(seed: int = 11) -> list[Record]:
    """The whole scenario as numbered records in journal order."""
    rng = random.Random(seed)
    line = Timeline(rng)
    ms = MIDNIGHT // NS_PER_MS
    sol = SymbolScript("SOLUSDT", rng, line, 4720, {  # mid ≈ 1180
        "deltas_from": 6, "d1_from": 0, "d1_phase": 100 * NS_PER_MS, "quiet": (0, 0), "buys_only": (300, 365),
    })
    sol.specials["at"] = [
        (0.0, sol.ticker("snapshot", fundingRate="0.0001", nextFundingTime=str(ms + 60_000),
                         fundingIntervalHour="8", markPrice="1180.00")),
        (5.5, sol.snapshot), (30.3, sol.stale), (100.3, sol.gap), (104.7, sol.snapshot),
        (120.25, sol.funding(-0.0002, ms + 120_000)), (RESNAPSHOT_S, sol.snapshot),
        (77.45, sol.ticker("delta", fundingRate="", markPrice="1181.00")),
        (270.45, sol.ticker("delta", fundingRate="0.00015", nextFundingTime=str(ms + 8 * 3_600_000))),
    ]
    doge = SymbolScript("DOGEUSDT", rng, line, 8240, {  # mid ≈ 2060
        "deltas_from": 1, "d1_from": 10, "d1_phase": 300 * NS_PER_MS, "quiet": (290, 352), "buys_only": (0, 0),
    })
    doge.specials["at"] = [
        (0.0, doge.ticker("snapshot", fundingRate="-0.00005", nextFundingTime=str(ms + 3_600_000),
                          fundingIntervalHour="1")),
        (0.2, doge.snapshot), (150.2, doge.crossed), (153.1, doge.snapshot), (RESNAPSHOT_S, doge.snapshot),
        (250.4, doge.reset),
    ]
    sol.run()
    doge.run()
    line.add(at(GATEWAY_DOWN_S), Kind.GATEWAY_DOWN, "", {"reason": "silence", "silent_ms": 3000})
    line.add(at(GATEWAY_UP_S), Kind.GATEWAY_UP, "", {"reason": "traffic", "silent_ms": 0})
    return line.records()


# --- the engine against the reference ---------------------------------------------------------------

#: Functions whose values are exact on the scenario's dyadic grid (or a single rounding of exact terms).
EXACT = frozenset({
    "mid_price", "spread_abs", "spread_rel", "vwap", "volume", "signed_volume", "buy_sell_ratio", "trade_count",
    "net_aggressor_pressure", "depth", "depth_imbalance", "churn_rate", "liquidity_density", "funding_rate",
    "time_to_funding", "time_of_day",
})
#: Relative tolerance of the other values (different but exact-enough summation orders).
REL_TOL = 1e-12


def same(got: float, want: float, exact: bool, floor: float) -> bool:
    """NaN where expected; otherwise equal (exact) or within REL_TOL of max(|want|, floor)."""
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if exact:
        return got == want
    return abs(got - want) <= REL_TOL * max(abs(want), floor)


def run_against_reference(records: list[Record]) -> tuple[list[str], dict[str, list[float]]]:
    """Run engine and reference side by side; return the mismatches and every engine column seen."""
    registry = default_registry()
    defs = defs_from_registry(registry)
    engine, ref = Engine(registry, SYMBOLS), NaiveReference(defs, list(SYMBOLS))
    bad: list[str] = []
    columns: dict[str, list[float]] = {d.name: [] for d in defs}
    for rec in records:
        vectors, expected = engine.apply(rec).vectors, ref.apply(rec)
        if expected is None:
            assert not vectors
            continue
        assert [v.symbol for v in vectors] == sorted(SYMBOLS)
        for v in vectors:
            valid, want = expected[v.symbol]
            where = f"t={(v.ts_ns - T0) / NS:.0f}s {v.symbol}"
            if v.book_valid != valid:
                bad.append(f"{where} book_valid: got {v.book_valid}, want {valid}")
            for i, d in enumerate(defs):
                got = float(v.values[i])
                columns[d.name].append(got)
                # A z-score's rounding error is absolute (x − mean cancels), so its floor is 1.
                exact, floor = d.function in EXACT and not d.zscore_n, 1.0 if d.zscore_n else 1e-3
                if not same(got, want[d.name], exact, floor):
                    bad.append(f"{where} {d.name}: got {got!r}, want {want[d.name]!r}")
    return bad, columns


@pytest.mark.parametrize("seed", [11, 2, 6])  # 2 and 6 start with flat z-score histories
def test_every_feature_of_every_vector_matches_the_naive_reference(seed: int) -> None:
    bad, columns = run_against_reference(scenario(seed))
    assert not bad, f"{len(bad)} mismatches, first ones:\n" + "\n".join(bad[:25])
    assert all(len(c) == SECONDS * len(SYMBOLS) for c in columns.values())
    # The scenario must exercise every feature: two distinct finite values, and NaN where it can be.
    for name, col in columns.items():
        assert len({x for x in col if math.isfinite(x)}) >= 2, f"{name} never varies"
    always_defined = {"funding_rate", "time_to_funding", "time_of_day", "vol_3s", "vol_15s", "vol_1m",
                      "signed_volume_3s", "signed_volume_15s", "signed_volume_1m", "trade_count_3s",
                      "net_aggressor_pressure_1m", "orderbook_churn_rate_1m"}
    for name, col in columns.items():
        assert any(math.isnan(x) for x in col) == (name not in always_defined), name


def test_scenario_puts_trades_and_deltas_exactly_on_window_edges() -> None:
    """Events at a whole second t, journaled before tick t (in its windows) and after it (not)."""
    seen: dict[tuple[int, str], int] = {}
    ticked: set[int] = set()
    for r in scenario():
        if r.kind == Kind.TICK:
            ticked.add(r.recv_ns)
        elif r.recv_ns % NS == 0 and r.kind in (Kind.TRADES, Kind.BOOK_DELTA):
            key = (int(r.kind), "after" if r.recv_ns in ticked else "before")
            seen[key] = seen.get(key, 0) + 1
    assert len(seen) == 4 and min(seen.values()) >= 20, seen


def test_scenario_books_are_invalid_exactly_while_out_of_sync() -> None:
    """Hand-known validity: no snapshot yet, u gap, crossed delta, gateway outage (ticks are whole seconds)."""
    engine = Engine(default_registry(), SYMBOLS)
    invalid: dict[str, list[int]] = {s: [] for s in SYMBOLS}
    for rec in scenario():
        for v in engine.apply(rec).vectors:
            if not v.book_valid:
                invalid[v.symbol].append(round((v.ts_ns - T0) / NS))
    outage = list(range(200, 207))  # gateway down at 200.0 (before or after that tick), snapshots at 206.2
    assert invalid["SOLUSDT"] in ([*range(101, 105), *outage[1:]], [*range(101, 105), *outage])
    assert invalid["DOGEUSDT"] in ([*range(151, 154), *outage[1:]], [*range(151, 154), *outage])


def test_default_registry_definitions_match_their_names() -> None:
    """The reference reads the parsed registry: check each name means what the parse says."""
    units = {"s": 1, "m": 60}
    for d in defs_from_registry(default_registry()):
        if m := re.fullmatch(r"(\w+)_z(\d+)", d.name):
            assert (d.function, d.input, d.zscore_n) == ("ref", m[1], int(m[2]))
            continue
        assert d.zscore_n == 0 and d.every_ns == NS
        if m := re.fullmatch(r"(vwap|vol|signed_volume|buy_sell_ratio|trade_count|net_aggressor_pressure|"
                             r"orderbook_churn_rate)_(\d+)([sm])", d.name):
            assert d.window_ns == int(m[2]) * units[m[3]] * NS, d.name
        elif m := re.fullmatch(r"(return|volatility)_(\d+)([sm])", d.name):
            assert d.params == {"seconds": int(m[2]) * units[m[3]]}, d.name
        elif m := re.fullmatch(r"depth_(bid|ask)_top(\d+)", d.name):
            assert (d.function, d.params) == ("depth", {"side": m[1], "levels": int(m[2])})
        elif m := re.fullmatch(r"depth_imbalance_top(\d+)", d.name):
            assert d.params == {"levels": int(m[1])}
        elif m := re.fullmatch(r"slope_(bid|ask)", d.name):
            assert d.params == {"side": m[1], "levels": 10}
        elif m := re.fullmatch(r"local_liquidity_density_(\d+)bps", d.name):
            assert d.params == {"bps": float(m[1])}
        else:
            assert d.name == d.function and d.params == {}, d.name


# --- hand-calculated features, one small record sequence each -------------------------------------------

SYM = "XUSDT"
BASE = MIDNIGHT + 6 * 3600 * NS  # 06:00 UTC


def ns(s: float) -> int:
    return BASE + round(s * 1000) * NS_PER_MS


def rec(s: float, kind: int, payload: dict, symbol: str = SYM) -> Record:
    return Record(0, ns(s), int(kind), symbol, 0, 0, payload)


def snap(s: float, bids: list, asks: list, u: int = 100, depth: int = 50) -> Record:
    return rec(s, Kind.BOOK_SNAPSHOT, levels_payload(depth, u, bids, asks))


def delta(s: float, u: int, bids: list, asks: list, depth: int = 50) -> Record:
    return rec(s, Kind.BOOK_DELTA, levels_payload(depth, u, bids, asks))


def levels_payload(depth: int, u: int, bids: list, asks: list) -> dict:
    def arr(levels: list) -> np.ndarray:
        return np.array(levels, dtype=np.float64).reshape(-1, 2)
    return {"depth": depth, "u": u, "seq": u, "b": arr(bids), "a": arr(asks)}


def trades(s: float, *rows: tuple[float, float, int, str]) -> Record:
    """A TRADES record of (price, size, side, id) rows."""
    return rec(s, Kind.TRADES, {
        "p": np.array([r[0] for r in rows]), "v": np.array([r[1] for r in rows]),
        "side": np.array([r[2] for r in rows], dtype=np.int8), "T": np.zeros(len(rows), dtype=np.int64),
        "id": [r[3] for r in rows], "bt": [False] * len(rows),
    })


def tick_at(s: int) -> Record:
    return Record(0, ns(s), Kind.TICK, "", 0, 0, {})


def run(features: list[str], records: list[Record]) -> dict[str, list[float]]:
    """Drive an engine over `records` with a registry of `features` (YAML flow mappings); columns by name."""
    registry = load_registry_text("version: 1\nfeatures:\n" + "".join(f"  - {f}\n" for f in features),
                                  source="test")
    engine = Engine(registry, [SYM])
    vectors = [v for r in records for v in engine.apply(r).vectors]
    out = {name: [float(v.values[i]) for v in vectors] for i, name in enumerate(registry.names)}
    out["book_valid"] = [float(v.book_valid) for v in vectors]
    return out


def assert_column(got: list[float], want: list[float]) -> None:
    """Equal element by element, NaN in the same places (exact: the hand values are exact)."""
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert (math.isnan(g) and math.isnan(w)) or g == w, f"tick {i + 1}: got {g!r}, want {w!r}"


NAN = math.nan
# bids 100.0×2, 99.5×4, 99.0×9; asks 100.5×1, 101.0×3, 101.5×5, 102.0×7
BIDS3 = [(100.0, 2.0), (99.5, 4.0), (99.0, 9.0)]
ASKS4 = [(100.5, 1.0), (101.0, 3.0), (101.5, 5.0), (102.0, 7.0)]


def test_book_features_of_a_small_book() -> None:
    cols = run([
        "{name: mid, function: mid_price}",
        "{name: spread, function: spread_abs}",
        "{name: spread_rel, function: spread_rel}",
        "{name: bid2, function: depth, params: {side: bid, levels: 2}}",
        "{name: bid5, function: depth, params: {side: bid, levels: 5}}",
        "{name: ask5, function: depth, params: {side: ask, levels: 5}}",
        "{name: imb5, function: depth_imbalance, params: {levels: 5}}",
        "{name: slope_bid, function: slope, params: {side: bid}}",
        "{name: slope_ask, function: slope, params: {side: ask, levels: 10}}",
        "{name: slope_bid2, function: slope, params: {side: bid, levels: 2}}",
        "{name: dens10, function: liquidity_density, params: {bps: 10}}",
        "{name: dens30, function: liquidity_density, params: {bps: 30}}",
        "{name: dens_default, function: liquidity_density}",
    ], [snap(0.5, BIDS3, ASKS4), tick_at(1)])
    # mid (100 + 100.5)/2 = 100.25; spread 0.5; top-5 depths: bid 2+4+9 = 15 (3 levels only), ask 16.
    assert cols["mid"] == [100.25] and cols["spread"] == [0.5] and cols["spread_rel"] == [0.5 / 100.25]
    assert (cols["bid2"], cols["bid5"], cols["ask5"]) == ([6.0], [15.0], [16.0])
    assert cols["imb5"] == [(15.0 - 16.0) / 31.0]
    # bid sizes 2, 4, 9 at x = 1, 2, 3: x̄ = 2, ȳ = 5, Sxy = (−1)(−3) + 0 + (1)(4) = 7, Sxx = 2 → 3.5.
    # ask sizes 1, 3, 5, 7: a straight line of slope 2. Best two bids 2, 4: slope 2.
    assert (cols["slope_bid"], cols["slope_ask"], cols["slope_bid2"]) == ([3.5], [2.0], [2.0])
    # Band = bps·1e−4·100.25: 10 bps → 0.10025 (best levels are 0.25 away: none); 30 bps → 0.30075
    # (100.0×2 and 100.5×1: 3); default 10 bps as well (catalogue default).
    assert (cols["dens10"], cols["dens30"], cols["dens_default"]) == ([0.0], [3.0], [0.0])
    assert cols["book_valid"] == [1.0]


def test_liquidity_density_counts_levels_inside_the_band_on_both_sides() -> None:
    cols = run(["{name: dens80, function: liquidity_density, params: {bps: 80}}"],
               [snap(0.5, BIDS3, ASKS4), tick_at(1)])
    # 80 bps of 100.25 = 0.802: 100.0, 99.5 (0.75 away) and 100.5, 101.0 (0.75 away): 2 + 4 + 1 + 3.
    assert cols["dens80"] == [10.0]


def test_thin_books_give_partial_depths_and_nan_where_undefined() -> None:
    cols = run([
        "{name: mid, function: mid_price}",
        "{name: bid5, function: depth, params: {side: bid, levels: 5}}",
        "{name: ask5, function: depth, params: {side: ask, levels: 5}}",
        "{name: imb5, function: depth_imbalance, params: {levels: 5}}",
        "{name: slope_bid, function: slope, params: {side: bid}}",
    ], [
        snap(0.5, [(100.0, 2.0)], [], u=100), tick_at(1),  # one bid, no asks
        snap(1.5, [], [], u=200), tick_at(2),  # empty book
    ])
    assert_column(cols["mid"], [NAN, NAN])
    assert_column(cols["bid5"], [2.0, 0.0])
    assert_column(cols["ask5"], [0.0, 0.0])
    assert_column(cols["imb5"], [1.0, NAN])  # (2 − 0)/(2 + 0); zero total depth → NaN
    assert_column(cols["slope_bid"], [NAN, NAN])  # fewer than 2 levels


def test_book_rules_stale_gap_crossed_gateway_and_resnapshot() -> None:
    bid5 = "{name: bid5, function: depth, params: {side: bid, levels: 5}}"
    cols = run([bid5, "{name: mid, function: mid_price}"], [
        tick_at(1),  # no book yet
        snap(1.5, BIDS3, ASKS4, u=10), delta(1.6, 11, [(99.0, 1.0)], []), tick_at(2),  # 2+4+1 = 7
        delta(2.1, 11, [(99.0, 5.0)], []), tick_at(3),  # stale (u ≤ 11): still 7
        delta(3.1, 13, [(99.0, 5.0)], []), tick_at(4),  # gap: invalid
        delta(4.1, 14, [(99.0, 6.0)], []), tick_at(5),  # still invalid: deltas wait for a snapshot
        snap(5.5, BIDS3, ASKS4, u=40), tick_at(6),  # 15
        delta(6.1, 41, [(101.0, 1.0)], []), tick_at(7),  # a bid above the best ask: crossed
        snap(7.5, BIDS3, ASKS4, u=50), tick_at(8),
        rec(8.2, Kind.GATEWAY_DOWN, {"reason": "silence", "silent_ms": 3000}, ""), tick_at(9),
        rec(9.2, Kind.GATEWAY_UP, {"reason": "traffic", "silent_ms": 0}, ""),
        delta(9.3, 51, [(99.0, 1.0)], []), tick_at(10),  # contiguous, but still waiting for a snapshot
        snap(10.5, BIDS3, ASKS4, u=1), delta(10.6, 2, [(100.0, 0.0)], []), tick_at(11),  # u = 1 restart: 4+9
    ])
    assert_column(cols["bid5"], [NAN, 7.0, 7.0, NAN, NAN, 15.0, NAN, 15.0, NAN, NAN, 13.0])
    assert_column(cols["book_valid"], [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 1])
    assert_column(cols["mid"], [NAN, 100.25, 100.25, NAN, NAN, 100.25, NAN, 100.25, NAN, NAN, 100.0])


def test_feature_book_is_the_deepest_topic_seen_and_truncated_to_its_depth() -> None:
    bid5 = "{name: bid5, function: depth, params: {side: bid, levels: 5}}"
    cols = run([bid5], [
        snap(0.5, [(100.0, 3.0)], [(100.5, 1.0)], depth=1), tick_at(1),  # depth 1 only: 3
        snap(1.5, [(100.0, 2.0), (99.5, 4.0)], [(100.5, 1.0)], u=7, depth=2), tick_at(2),  # depth 2: 6
        delta(2.1, 8, [(100.25, 8.0)], [], depth=2), tick_at(3),  # 8 + 2; 99.5 falls off the 2-level book
        delta(3.1, 9, [(100.25, 0.0)], [], depth=2), tick_at(4),  # only 100.0×2 is left
        snap(4.5, [(100.0, 5.0)], [(100.5, 1.0)], u=9, depth=1), tick_at(5),  # depth 1 no longer counts
        delta(5.1, 11, [], [], depth=2), tick_at(6),  # gap on depth 2: NaN though depth 1 is valid
    ])
    assert_column(cols["bid5"], [3.0, 6.0, 10.0, 2.0, 2.0, NAN])


def test_trade_window_sums_of_two_trades() -> None:
    w = "window: 3s"
    cols = run([f"{{name: {n}, function: {n}, {w}}}" for n in
                ("vwap", "volume", "signed_volume", "buy_sell_ratio", "trade_count", "net_aggressor_pressure")],
               [trades(0.4, (100.0, 1.0, 1, "a"), (102.0, 3.0, -1, "b")), tick_at(1)])
    # buy 1 @ 100, sell 3 @ 102: vwap (100 + 306)/4 = 101.5; volume 4; signed 1 − 3 = −2;
    # ratio 1/3; count 2; pressure 100 − 306 = −206.
    assert cols["vwap"] == [101.5] and cols["volume"] == [4.0] and cols["signed_volume"] == [-2.0]
    assert cols["buy_sell_ratio"] == [1.0 / 3.0] and cols["trade_count"] == [2.0]
    assert cols["net_aggressor_pressure"] == [-206.0]


def test_trade_windows_are_half_open_dedupe_on_id_and_are_empty_without_trades() -> None:
    feats = ["{name: count, function: trade_count, window: 3s}", "{name: vol, function: volume, window: 3s}",
             "{name: vwap, function: vwap, window: 3s}", "{name: ratio, function: buy_sell_ratio, window: 3s}"]
    cols = run(feats, [
        tick_at(1),
        trades(2.0, (10.0, 1.0, 1, "a")),  # exactly at t = 2 s, journaled before tick 2: in (t − 3 s, t]
        tick_at(2),
        tick_at(3),
        trades(3.0, (20.0, 2.0, -1, "b")),  # at 3 s but after tick 3: first counted at tick 4
        trades(3.5, (10.0, 1.0, 1, "a"), (30.0, 4.0, 1, "c"), (30.0, 4.0, 1, "c")),  # a: old id; c twice
        tick_at(4),
        tick_at(5),  # "a" at exactly t − 3 s = 2 s: out
        tick_at(6),  # "b" at exactly t − 3 s = 3 s: out
        tick_at(7),
    ])
    assert_column(cols["count"], [0, 1, 1, 3, 2, 1, 0])
    assert_column(cols["vol"], [0, 1, 1, 7, 6, 4, 0])
    assert_column(cols["vwap"], [NAN, 10.0, 10.0, (10 + 40 + 120) / 7, (40 + 120) / 6, 30.0, NAN])
    assert_column(cols["ratio"], [NAN, NAN, NAN, 5 / 2, 4 / 2, NAN, NAN])  # NaN without sells


def test_log_returns_and_volatility_of_tick_mids() -> None:
    def book(s: float, mid: float, u: int) -> Record:
        return snap(s, [(mid - 0.5, 1.0)], [(mid + 0.5, 1.0)], u=u)

    cols = run([
        "{name: r1, function: log_return, params: {seconds: 1}}",
        "{name: r2, function: log_return, params: {seconds: 2}}",
        "{name: vol2, function: volatility, params: {seconds: 2}}",
        "{name: vol3, function: volatility, params: {seconds: 3}}",
    ], [
        book(0.5, 100.0, 10), tick_at(1),
        book(1.5, 101.0, 20), tick_at(2),
        book(2.5, 100.0, 30), tick_at(3),
        book(3.5, 101.0, 40), tick_at(4),
        delta(4.5, 99, [], []), tick_at(5),  # gap: no mid
        book(5.5, 101.0, 60), tick_at(6),
    ])
    a = math.log(101.0 / 100.0)  # mids 100, 101, 100, 101, NaN, 101
    assert_column(cols["r1"], [NAN, a, math.log(100.0 / 101.0), a, NAN, NAN])
    assert_column(cols["r2"], [NAN, NAN, 0.0, 0.0, NAN, 0.0])
    # Returns at ticks: −, a, −a, a, NaN, NaN. Over (t − 2 s, t]: two finite values a, −a → std a·√2.
    # Over (t − 3 s, t] at tick 4: a, −a, a → mean a/3, Σ(d²) = (4 + 16 + 4)a²/9 → std = 2a/√3.
    vol2, vol3 = cols["vol2"], cols["vol3"]
    for got, want in zip(vol2 + vol3, [NAN, NAN, a * math.sqrt(2), a * math.sqrt(2), NAN, NAN,
                                       NAN, NAN, a * math.sqrt(2), 2 * a / math.sqrt(3), a * math.sqrt(2), NAN],
                         strict=True):
        assert (math.isnan(got) and math.isnan(want)) or math.isclose(got, want, rel_tol=1e-12), (got, want)


def test_churn_counts_deltas_that_move_a_best_price() -> None:
    cols = run(["{name: churn, function: churn_rate, window: 3s}"], [
        snap(0.5, BIDS3, ASKS4, u=10),
        delta(1.0, 11, [(100.25, 1.0)], []),  # new best bid (exactly at 1 s, before tick 1)
        tick_at(1),
        delta(1.2, 12, [(99.5, 7.0)], [(101.0, 2.0)]),  # sizes only: no
        delta(1.4, 13, [], [(100.5, 0.0)]),  # best ask 100.5 → 101.0
        snap(1.6, BIDS3, [(100.75, 1.0)], u=20),  # snapshots do not count
        delta(1.8, 20, [(100.5, 1.0)], []),  # stale: not applied
        tick_at(2),
        delta(2.5, 21, [(100.5, 1.0)], []),  # new best bid (100.0 → 100.5)
        tick_at(3), tick_at(4),  # at 4 s the delta at exactly 1 s leaves the window
        tick_at(5), tick_at(6),
    ])
    assert_column(cols["churn"], [1 / 3, 2 / 3, 3 / 3, 2 / 3, 1 / 3, 0.0])


def test_funding_rate_and_time_to_funding() -> None:
    next_ms = ns(90) // NS_PER_MS
    cols = run(["{name: rate, function: funding_rate}", "{name: ttf, function: time_to_funding}"], [
        tick_at(1),  # nothing known yet
        rec(1.5, Kind.TICKER, {"type": "snapshot", "fields": {"fundingRate": "0.0001",
                                                              "nextFundingTime": str(next_ms)}}),
        tick_at(2),  # 88 s to go: 88/60 minutes
        rec(2.5, Kind.TICKER, {"type": "delta", "fields": {"markPrice": "100.5"}}), tick_at(3),
        rec(3.5, Kind.TICKER, {"type": "delta", "fields": {"fundingRate": ""}}), tick_at(4),
        rec(4.5, Kind.TICKER, {"type": "delta", "fields": {"fundingRate": "-0.0002"}}), tick_at(5),
        rec(5.5, Kind.FUNDING, {"rate": 0.0003, "next_ms": next_ms + 60_000, "interval_h": 8.0}), tick_at(6),
    ])
    assert_column(cols["rate"], [NAN, 0.0001, 0.0001, 0.0001, -0.0002, 0.0003])
    assert_column(cols["ttf"], [NAN, 88 / 60, 87 / 60, 86 / 60, 85 / 60, 144 / 60])


def test_a_stale_next_funding_time_rolls_forward_on_the_interval_grid_and_is_never_negative() -> None:
    """A recording replayed months later: nextFundingTime is long past; take the grid's next settlement."""
    stale_ms = ns(0) // NS_PER_MS - 114 * 86_400_000 - 3_600_000  # 114 days and 1 h before BASE
    cols = run(["{name: ttf, function: time_to_funding}"], [
        rec(0.5, Kind.TICKER, {"type": "snapshot", "fields": {"nextFundingTime": str(stale_ms)}}),
        tick_at(1),  # interval unknown: NaN, never a negative number
        rec(1.5, Kind.TICKER, {"type": "delta", "fields": {"fundingIntervalHour": "8"}}),
        tick_at(2),  # stale + k·8 h first after t: 114 d + 1 h is 342 intervals + 1 h, so 7 h left, less 2 s
        rec(2.5, Kind.TICKER, {"type": "delta", "fields": {"fundingIntervalHour": "4"}}),
        tick_at(3),  # on the 4 h grid: 3 h left, less 3 s
        rec(3.5, Kind.TICKER, {"type": "delta", "fields": {"nextFundingTime": str(ns(4) // NS_PER_MS)}}),
        tick_at(4),  # a settlement exactly at t: 0
    ])
    assert_column(cols["ttf"], [NAN, (7 * 3600 - 2) / 60, (3 * 3600 - 3) / 60, 0.0])


def test_time_of_day_is_the_fraction_of_the_utc_day() -> None:
    cols = run(["{name: tod, function: time_of_day}"],
               [Record(0, t, Kind.TICK, "", 0, 0, {}) for t in (BASE, BASE + 18 * 3600 * NS - NS,
                                                               MIDNIGHT + 86_400 * NS)])
    assert_column(cols["tod"], [0.25, (86_400 - 1) / 86_400, 0.0])


def test_rolling_zscore_of_a_referenced_feature() -> None:
    def book(s: float, mid: float, u: int) -> Record:
        return snap(s, [(mid - 0.5, 1.0)], [(mid + 0.5, 1.0)], u=u)

    # The z-score is declared before its input: computation order follows the inputs, columns the file.
    cols = run(["{name: mid_z3, function: ref, inputs: [mid], normalise: {method: zscore, n: 3}}",
                "{name: mid, function: mid_price}"], [
        book(0.5, 100.0, 10), tick_at(1),
        book(1.5, 101.0, 20), tick_at(2),
        book(2.5, 102.0, 30), tick_at(3),
        tick_at(4),
        delta(4.5, 99, [], []), tick_at(5),
        book(5.5, 102.0, 60), tick_at(6),
    ])
    assert_column(cols["mid"], [100.0, 101.0, 102.0, 102.0, NAN, 102.0])
    # tick 1: one value → NaN; tick 2: [100, 101] → 0.5/√0.5 = 1/√2; tick 3: [100, 101, 102] → 1/1;
    # tick 4: [101, 102, 102], mean 305/3, std √(1/3) → (1/3)/√(1/3) = 1/√3;
    # tick 5: x is NaN → NaN; tick 6: finite [102, 102] has std 0 → NaN.
    want = [NAN, 1 / math.sqrt(2), 1.0, 1 / math.sqrt(3), NAN, NAN]
    for got, w in zip(cols["mid_z3"], want, strict=True):
        assert (math.isnan(got) and math.isnan(w)) or math.isclose(got, w, rel_tol=1e-12), (got, w)


def test_zscore_of_a_flat_series_is_nan_not_rounding_noise() -> None:
    # 0.1 + 0.1 + 0.1 = 0.30000000000000004: a float mean of the flat history is not 0.1, but its std is 0.
    cols = run(["{name: rate_z3, function: ref, inputs: [rate], normalise: {method: zscore, n: 3}}",
                "{name: rate, function: funding_rate}"], [
        rec(0.5, Kind.FUNDING, {"rate": 0.1, "next_ms": 0, "interval_h": 8.0}),
        tick_at(1), tick_at(2), tick_at(3), tick_at(4),
    ])
    assert_column(cols["rate"], [0.1] * 4)
    assert_column(cols["rate_z3"], [NAN] * 4)
