"""Seeded synthetic journal records (already decoded) for benchmarks and long engine runs.

The gateway simulator makes Bybit *frames* for the wire; this makes the *records* the decoder
would produce from them, so engine work can be measured and soak-tested without the ingest path.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engine.record import NS_PER_MS, NS_PER_S, Kind, Record, tick


class SyntheticBook:
    """A random-walk book on a price grid whose deltas keep `u` contiguous and never cross."""

    def __init__(self, rng: np.random.Generator, depth: int, mid_ticks: int, tick: float) -> None:
        self.rng, self.depth, self.tick = rng, depth, tick
        self.mid = mid_ticks
        self.u = 1_000
        self.bids = {mid_ticks - 1 - i: self._size() for i in range(depth)}
        self.asks = {mid_ticks + 1 + i: self._size() for i in range(depth)}

    def _size(self) -> float:
        return float(self.rng.integers(1, 5000)) / 10.0

    def snapshot(self) -> dict:
        """The full book as a BOOK_SNAPSHOT payload."""
        return self._payload(sorted(self.bids.items(), reverse=True), sorted(self.asks.items()))

    def delta(self, levels: int) -> dict:
        """Move the mid a little and change `levels` levels near the top; return a BOOK_DELTA payload."""
        self.u += 1
        self.mid += int(self.rng.integers(-1, 2))
        bids, asks = [], []
        for _ in range(levels):
            side, book = (bids, self.bids) if self.rng.random() < 0.5 else (asks, self.asks)
            sign = -1 if book is self.bids else 1
            price = self.mid + sign * int(self.rng.integers(1, min(self.depth, 40) + 1))
            size = 0.0 if (price in book and self.rng.random() < 0.2) else self._size()
            side.append((price, size))
            if size == 0.0:
                book.pop(price, None)
            else:
                book[price] = size
        # Keep the book uncrossed: drop levels that crossed the moving mid on the other side.
        for p in [p for p in self.bids if p >= self.mid]:
            del self.bids[p]
            bids.append((p, 0.0))
        for p in [p for p in self.asks if p <= self.mid]:
            del self.asks[p]
            asks.append((p, 0.0))
        return self._payload(bids, asks)

    def _payload(self, bids: list, asks: list) -> dict:
        def arr(levels: list) -> np.ndarray:
            a = np.array([(p * self.tick, s) for p, s in levels], dtype=np.float64)
            return a.reshape(-1, 2)
        return {"depth": self.depth, "u": self.u, "seq": self.u * 7, "b": arr(bids), "a": arr(asks)}


def records(symbols: list[str], seconds: int, events_per_s: int = 200, depth: int = 200,
            seed: int = 7, start_ns: int = 1_786_310_800 * NS_PER_S) -> Iterator[Record]:
    """Yield `seconds` of records for `symbols`: snapshots, deltas, trades, tickers and ticks."""
    rng = np.random.default_rng(seed)
    books = {s: SyntheticBook(rng, depth, 77_000 + 1_000 * i, 0.01) for i, s in enumerate(symbols)}
    step = NS_PER_S // events_per_s
    t, trade_id = start_ns, 0
    for s, b in books.items():
        yield Record(0, t, Kind.BOOK_SNAPSHOT, s, t // NS_PER_MS, t // NS_PER_MS, b.snapshot())
        yield Record(0, t, Kind.TICKER, s, t // NS_PER_MS, 0, {"type": "snapshot", "fields": _ticker(b, 0.0001)})
    next_tick = (t // NS_PER_S + 1) * NS_PER_S
    end = start_ns + seconds * NS_PER_S
    while t < end:
        t += step
        while next_tick <= t:
            yield tick(next_tick)
            next_tick += NS_PER_S
        s = symbols[int(rng.integers(len(symbols)))]
        b, r = books[s], rng.random()
        ms = t // NS_PER_MS
        if r < 0.75:
            yield Record(0, t, Kind.BOOK_DELTA, s, ms, ms, b.delta(int(rng.integers(1, 21))))
        elif r < 0.95:
            n = int(rng.integers(1, 6))
            trade_id += n
            yield Record(0, t, Kind.TRADES, s, ms, 0, _trades(rng, b, n, trade_id, ms))
        else:
            fields = {"bid1Price": f"{(b.mid - 1) * b.tick:.2f}", "fundingRate": f"{rng.normal(1e-4, 5e-5):.8f}"}
            yield Record(0, t, Kind.TICKER, s, ms, 0, {"type": "delta", "fields": fields})


def _ticker(b: SyntheticBook, rate: float) -> dict[str, str]:
    return {"symbol": "", "fundingRate": f"{rate:.8f}", "nextFundingTime": "1786320000000",
            "fundingIntervalHour": "8", "bid1Price": f"{(b.mid - 1) * b.tick:.2f}",
            "ask1Price": f"{(b.mid + 1) * b.tick:.2f}"}


def _trades(rng: np.random.Generator, b: SyntheticBook, n: int, last_id: int, ms: int) -> dict:
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    price = (b.mid + side.astype(np.int64)) * b.tick
    return {"p": price.astype(np.float64), "v": rng.integers(1, 100, n).astype(np.float64) / 10.0,
            "side": side, "T": np.full(n, ms, dtype=np.int64),
            "id": [f"t{last_id - n + 1 + i}" for i in range(n)], "bt": [False] * n}
