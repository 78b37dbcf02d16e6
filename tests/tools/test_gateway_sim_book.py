"""The synthetic book stays realistic for ever: depth, spread, prices and mid within bounds.

The model's changes are applied to an independent dict book here and the bounds are checked on
that book after every step (best prices tracked incrementally, the whole window every 1000 steps).
"""

from __future__ import annotations

import random
import time

import orjson
import pytest

from gateway_bridge.config import TopicsConfig
from tools.sim.gateway.book import BookModel
from tools.sim.gateway.config import SyntheticConfig
from tools.sim.gateway.synthetic import SyntheticMarket

#: "A few ticks": the widest spread the simulator may show.
SPREAD_TICKS = 4
T0_MS = 1_786_310_819_000


class RefSide:
    """A naive book side: price -> lots, best tracked by rescanning when the best is deleted."""

    def __init__(self, levels: dict[int, int], is_bid: bool) -> None:
        self.levels = dict(levels)
        self.is_bid = is_bid
        self.best = max(levels) if is_bid else min(levels)

    def apply(self, changes: dict[int, int]) -> None:
        pick = max if self.is_bid else min
        rescan = False
        for p, q in changes.items():
            assert p >= 1 and q >= 0, (p, q)
            if q == 0:
                assert p in self.levels, f"delete of absent level {p}"
                del self.levels[p]
                rescan |= p == self.best
            else:
                self.levels[p] = q
                self.best = pick(self.best, p)
        if rescan:
            self.best = pick(self.levels)


def _run_book(steps: int, start: int, depth: int, seed: int) -> float:
    """Step a BookModel `steps` times checking every bound; return steps per second."""
    rng = random.Random(seed)
    book = BookModel(start, depth, rng, lambda p: rng.randint(1, 5000))
    bids = RefSide(book.bids.levels, True)
    asks = RefSide(book.asks.levels, False)
    band = start // 20  # ±5 % of the start price
    lo, hi = depth // 2, depth
    t0 = time.perf_counter()
    for i in range(steps):
        cb, ca = book.step()
        assert cb or ca, "every delta changes something"
        bids.apply(cb)
        asks.apply(ca)
        assert lo <= len(bids.levels) <= hi and lo <= len(asks.levels) <= hi, (i, len(bids.levels), len(asks.levels))
        assert 1 <= asks.best - bids.best <= SPREAD_TICKS, (i, bids.best, asks.best)
        assert abs(bids.best + asks.best - 2 * start) <= 2 * (band + SPREAD_TICKS), (i, bids.best, asks.best)
        if i % 1000 == 0:
            assert min(bids.levels) >= max(1, bids.best - 2 * depth), i
            assert max(asks.levels) <= asks.best + 2 * depth, i
            assert bids.best == max(bids.levels) and asks.best == min(asks.levels)
    return steps / (time.perf_counter() - t0)


@pytest.mark.timeout(120)
def test_book_model_holds_its_bounds_for_a_million_deltas() -> None:
    rate = _run_book(1_000_000, start=7730, depth=200, seed=11)  # SOLUSDT: 77.30 at tick 0.01
    print(f"book model + checks: {rate:,.0f} deltas/s")


def test_book_model_on_a_cheap_instrument_and_depth_50() -> None:
    # Smallest price the config accepts for depth 50: 4 ticks per level.
    _run_book(200_000, start=200, depth=50, seed=3)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_book_model_holds_its_bounds_for_ten_million_deltas() -> None:
    _run_book(10_000_000, start=7730, depth=200, seed=12)


class FrameBook:
    """A naive book rebuilt from published frames (decimal strings), per topic."""

    def __init__(self) -> None:
        self.b: dict[float, str] = {}
        self.a: dict[float, str] = {}

    def apply(self, data: dict, snapshot: bool) -> None:
        if snapshot:
            self.b, self.a = {}, {}
        for side, levels in ((self.b, data["b"]), (self.a, data["a"])):
            for p, v in levels:
                if float(v) == 0:
                    assert float(p) in side, f"delete of absent level {p}"
                    side.pop(float(p))
                else:
                    side[float(p)] = v


def _check_market(n: int, symbols: tuple[str, ...], depth: int, starts: dict[str, float]) -> float:
    """Run a SyntheticMarket for `n` frames; check u, depth, spread and price bounds per topic."""
    market = SyntheticMarket(SyntheticConfig(symbols=symbols, depth=depth, seed=9), TopicsConfig(), T0_MS)
    books: dict[str, FrameBook] = {}
    last_u: dict[str, int] = {}
    t0 = time.perf_counter()
    for i in range(n):
        f = market.next(T0_MS + i // 10)
        if f.kind not in ("snapshot", "delta"):
            continue
        obj = orjson.loads(f.payload)
        topic, data = obj["topic"], obj["data"]
        assert obj["type"] == "snapshot" or data["u"] == last_u[topic] + 1, "u contiguous per topic"
        last_u[topic] = data["u"]
        book = books.setdefault(topic, FrameBook())
        book.apply(data, obj["type"] == "snapshot")
        if i % 50 == 0:
            bb, ba = max(book.b), min(book.a)
            assert depth // 2 <= len(book.b) <= depth and depth // 2 <= len(book.a) <= depth
            assert 0 < bb < ba and min(book.b) > 0
            start = starts[data["s"]]
            assert abs((bb + ba) / 2 - start) <= 0.05 * start + 0.1 * start / 100, (data["s"], bb, ba)
    assert set(last_u) == {f"orderbook.{depth}.{s}" for s in symbols}
    return n / (time.perf_counter() - t0)


@pytest.mark.timeout(120)
def test_generated_frames_keep_u_contiguous_and_books_bounded() -> None:
    starts = {"BTCUSDT": 60000.0, "ETHUSDT": 3000.0, "SOLUSDT": 77.3}
    _check_market(150_000, ("BTCUSDT", "ETHUSDT", "SOLUSDT"), 200, starts)


@pytest.mark.timeout(600)
def test_market_generator_speed() -> None:
    """Measure the whole generator (book, trades, tickers, klines, JSON encoding), no checks."""
    for syms, gen in ((("BTCUSDT", "ETHUSDT", "SOLUSDT"), 0), ((), 100)):
        market = SyntheticMarket(SyntheticConfig(symbols=syms, generate_symbols=gen), TopicsConfig(), T0_MS)
        n = 50_000
        t0 = time.perf_counter()
        for i in range(n):
            market.next(T0_MS + i // 10)
        rate = n / (time.perf_counter() - t0)
        print(f"generator, {len(market.symbols)} symbols: {rate:,.0f} frames/s")
        assert rate > 10_000, "the generator must outpace the 10 000 msgs/s benchmark load"
