"""The synthetic order book of one symbol, in integer ticks and lots, realistic for ever.

`BookModel.step()` makes one random book delta and returns its changes. Whatever the number of
steps, it keeps these invariants (the test runs millions of steps against them):

- each side holds between ``depth // 2`` and ``depth`` levels, all within ``2 * depth`` ticks of
  its own best price, all at prices >= 1;
- the book is never crossed and the spread is 1 .. `MAX_SPREAD` ticks;
- the mid stays within `band` ticks (5 % of the start price) of the start mid, plus one spread:
  touch moves mean-revert towards the start and are forced back at the edge of the band.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: Widest spread, in ticks, the book ever shows.
MAX_SPREAD = 4
#: Share of deltas that move the touch one tick.
MOVE_PROB = 0.15
#: Mean number of extra level changes per delta (capped at `MAX_CHANGES`).
MEAN_CHANGES = 3.0
MAX_CHANGES = 20


class Side:
    """One side of the book: price (ticks) -> size (lots), and its best price.

    `sign` is +1 for asks (better = lower price) and -1 for bids (better = higher price), so
    ``best + sign * k`` is `k` ticks behind the best on either side.
    """

    __slots__ = ("levels", "best", "sign", "fresh", "improved")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, int] = {}
        self.best = 0
        #: Prices inserted during the current delta (deleting one again leaves no change at all).
        self.fresh: set[int] = set()
        #: Whether the best price improved during the current delta (the window must follow it).
        self.improved = False

    def farthest(self) -> int:
        """Return the level farthest from the touch."""
        return max(self.levels) if self.sign > 0 else min(self.levels)

    def nearest(self) -> int:
        """Return the best level, computed from the levels (after the best was removed)."""
        return min(self.levels) if self.sign > 0 else max(self.levels)


class BookModel:
    """One symbol's book; `step()` returns ``(bid_changes, ask_changes)``: price -> lots, 0 deletes."""

    def __init__(self, mid: int, depth: int, rng: random.Random, lots: Callable[[int], int]) -> None:
        self.depth = depth
        self.min_levels = depth // 2
        #: Every level lies within `span` ticks behind its side's best price.
        self.span = 2 * depth
        self.start2 = 2 * mid  # start mid, in half ticks (bid + ask)
        self.band = max(2 * MAX_SPREAD, mid // 20)
        self.rng = rng
        self.lots = lots
        self.bids = Side(-1)
        self.asks = Side(+1)
        for i in range(depth):
            self.bids.levels[mid - 1 - i] = lots(mid)
            self.asks.levels[mid + i] = lots(mid)
        self.bids.best, self.asks.best = mid - 1, mid

    def mid2(self) -> int:
        """Return best bid + best ask (the mid in half ticks)."""
        return self.bids.best + self.asks.best

    # --- one delta ------------------------------------------------------------------------
    def step(self) -> tuple[dict[int, int], dict[int, int]]:
        """Make one delta: maybe a touch move, then 1..20 level changes; the invariants hold after."""
        rng = self.rng
        cb: dict[int, int] = {}
        ca: dict[int, int] = {}
        bids, asks = self.bids, self.asks
        for side in (bids, asks):
            side.fresh.clear()
            side.improved = False
        if rng.random() < MOVE_PROB:
            self._move(self._direction_up(), cb, ca)
        for _ in range(min(MAX_CHANGES, 1 + int(rng.expovariate(1 / MEAN_CHANGES)))):
            if rng.random() < 0.5:
                self._change(bids, cb)
            else:
                self._change(asks, ca)
        if bids.improved or len(bids.levels) > self.depth:  # the window follows the touch
            self._trim(bids, cb)
        if asks.improved or len(asks.levels) > self.depth:
            self._trim(asks, ca)
        self._refill(bids, cb)
        self._refill(asks, ca)
        if not cb and not ca:
            p = bids.best
            self._put(bids, p, bids.levels[p] + 1, cb)
        return cb, ca

    def _direction_up(self) -> bool:
        """Draw the touch's direction, mean-reverting to the start; forced back at the band's edge."""
        x = (self.mid2() - self.start2) / (2 * self.band)
        if x >= 1:
            return False
        if x <= -1:
            return True
        return self.rng.random() < 0.5 - 0.45 * x

    def _move(self, up: bool, cb: dict[int, int], ca: dict[int, int]) -> None:
        """Shift the touch a tick: the retreating side loses its best, the other improves by one."""
        adv, ret = (self.bids, self.asks) if up else (self.asks, self.bids)
        ch_adv, ch_ret = (cb, ca) if up else (ca, cb)
        self._drop(ret, ret.best, ch_ret)
        ret.best = ret.nearest()
        p = adv.best - adv.sign
        if (ret.best - p) * ret.sign > 0:
            self._put(adv, p, self.lots(p), ch_adv)
        if self.asks.best - self.bids.best > MAX_SPREAD:  # a hole behind the old best: refill it
            q = adv.best + ret.sign * self.rng.randint(1, MAX_SPREAD)
            self._put(ret, q, self.lots(q), ch_ret)

    def _change(self, side: Side, ch: dict[int, int]) -> None:
        """One random resize (near the top), insert (within the window) or delete (not the best)."""
        rng = self.rng
        r = rng.random()
        if r < 0.55:
            p = side.best + side.sign * min(int(rng.expovariate(1 / 8)), self.span)
            if p in side.levels:
                self._put(side, p, self.lots(p), ch)
        elif r < 0.8:
            if len(side.levels) < self.depth:
                off = 1 + int(rng.expovariate(4 / self.span)) if rng.random() < 0.95 else -1
                self._insert(side, off, ch)
        elif len(side.levels) > self.min_levels:
            p = side.best + side.sign * rng.randint(1, self.span)
            if p in side.levels:
                self._drop(side, p, ch)

    def _insert(self, side: Side, offset: int, ch: dict[int, int]) -> None:
        """Insert a level `offset` ticks behind the best (-1: inside the spread) if free and valid."""
        if offset > self.span:
            return
        p = side.best + side.sign * offset
        other = self.asks.best if side.sign < 0 else self.bids.best
        if p < 1 or p in side.levels or (other - p) * side.sign >= 0:
            return
        self._put(side, p, self.lots(p), ch)

    def _refill(self, side: Side, ch: dict[int, int]) -> None:
        """Bring a side back up to `min_levels` levels with random levels inside its window."""
        for _ in range(8 * self.span):  # bounded: at least 3/4 of the window is free here
            if len(side.levels) >= self.min_levels:
                return
            self._insert(side, self.rng.randint(1, self.span), ch)

    def _trim(self, side: Side, ch: dict[int, int]) -> None:
        """Delete levels beyond `depth` or outside the window, farthest first (as Bybit does)."""
        far = side.farthest()
        while len(side.levels) > self.depth or (far - side.best) * side.sign > self.span:
            self._drop(side, far, ch)
            far = side.farthest()

    @staticmethod
    def _put(side: Side, p: int, lots: int, ch: dict[int, int]) -> None:
        """Set level `p` to `lots` and record the change."""
        if p not in side.levels and p not in ch:
            side.fresh.add(p)
        side.levels[p] = lots
        ch[p] = lots
        if (p - side.best) * side.sign < 0:
            side.best = p
            side.improved = True

    @staticmethod
    def _drop(side: Side, p: int, ch: dict[int, int]) -> None:
        """Delete level `p`; a level inserted in this same delta leaves no change behind."""
        del side.levels[p]
        if p in side.fresh:
            side.fresh.discard(p)
            del ch[p]
        else:
            ch[p] = 0

    # --- reading --------------------------------------------------------------------------
    def top(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Return the best `limit` levels per side: bids descending, asks ascending."""
        b, a = self.bids.levels, self.asks.levels
        bids = [(p, b[p]) for p in sorted(b, reverse=True)[:limit]]
        asks = [(p, a[p]) for p in sorted(a)[:limit]]
        return bids, asks
