"""The one event record every part of the service speaks: journal, bridge, engine, replay.

A `Record` is immutable. Field by field:

- ``seq``      journal sequence number: gap-free per journal, across segments and restarts.
               0 until the journal assigns it on append.
- ``recv_ns``  internal receive time, ns since the Unix epoch (wall clock at the shard, made
               non-decreasing per shard). Engine time: windows and ticks run on it alone. Live
               messages drained from the gateway socket together share one stamp: the clock
               when that drain ended (every one of them had arrived by then).
- ``kind``     one of the `Kind` constants below (stored as a plain int).
- ``symbol``   exchange symbol (``"SOLUSDT"``); ``""`` for shard-wide control records (tick, …).
- ``ts``       exchange time of the frame as sent by Bybit (``ts``, ms); 0 when absent.
- ``cts``      exchange matching-engine time (``cts``, ms); 0 when absent.
- ``payload``  kind-specific dict, documented per kind below. Arrays are numpy arrays; prices
               and sizes are float64 parsed from Bybit's decimal strings, which the decoder only
               accepts when the float reproduces the decimal exactly (≤ 15 significant digits).

Payload per kind (keys are short because they are journaled for every event):

- BOOK_SNAPSHOT / BOOK_DELTA: ``depth`` int (1, 50, 200, 500, 1000 — the topic's depth),
  ``u`` int (update id), ``seq`` int (cross-depth sequence), ``b`` / ``a`` float64 arrays of
  shape (n, 2) with columns (price, size); size 0 deletes a level (deltas only). A snapshot
  fetched over HTTP (resync via Bybit's REST shape) also has ``src`` = ``"rest"``; its ``u``
  lines up with the stream, and deltas journaled before it with ``u`` above it are applied
  after it (the Clone pattern: the stream runs ahead of a fetched snapshot).
- TRADES: ``p`` float64[n] price, ``v`` float64[n] size, ``side`` int8[n] (+1 taker Buy,
  −1 taker Sell), ``T`` int64[n] trade time (ms), ``id`` list[str] trade ids, ``bt`` list[bool]
  block-trade flags. Sorted by ``T`` as Bybit sends them.
- KLINE: ``interval`` str ("1", "5", "D", … or "1s" when the gateway builds it), ``bars`` list of
  dicts with int ``start``, ``end``, ``timestamp`` (ms), float ``open``, ``high``, ``low``,
  ``close``, ``volume``, ``turnover`` and bool ``confirm``.
- TICKER: ``type`` "snapshot" | "delta", ``fields`` dict[str, str] — Bybit's fields exactly as
  sent (strings); a delta carries only the changed ones and the engine merges them.
- FUNDING: ``rate`` float, ``next_ms`` int (next settlement, ms), ``interval_h`` float (0 unknown).
- EXECUTION: ``fills`` list[dict] — fills of our own orders for this symbol, every field as sent
  (JSON scalars: mostly strings, ``isMaker`` bool, ``seq`` int).
- TICK: empty. ``recv_ns`` is the whole-second boundary the tick stands for.
- RESYNC_REQUEST: ``topic`` str (Bybit topic, e.g. ``orderbook.200.SOLUSDT``), ``depth`` int,
  ``reason`` str (``gap`` | ``crossed`` | ``reset`` | ``gateway_down`` | ``unseen``),
  ``via`` str (``zmq`` | ``http`` | ``none``).
- GATEWAY_UP / GATEWAY_DOWN: ``reason`` str, ``silent_ms`` int (DOWN: how long it was silent).
- REGISTRY_CHANGED: ``hash`` str, ``content`` str (the canonical registry text); ``configured`` str
  when the reload re-read the configured file (its hash), absent for a registry posted in a body.
- BAD_FRAME: ``reason`` str, ``topic`` str (gateway topic it came on; empty for imports; at
  most 256 characters), ``raw`` bytes (the message as received, cut to its first 64 KiB),
  ``raw_len`` int (its full length) and ``sha256`` str (hex digest of the full message).
- SESSION: what the engine must know to rebuild this run offline, journaled at shard start,
  at import, and whenever it changes: ``shard`` str, ``category`` str (``linear`` | ``spot`` |
  ``inverse`` | ``option``), ``symbols`` list[str], ``registry`` str (canonical registry text),
  ``hash`` str (its content hash), ``configured`` str (hash of the shard's configured registry file
  at that start; a restart keeps a registry reloaded through the API unless that file changed).
  Symbols take effect at once, the registry at the next tick.
- TICK_GAP: a silence longer than ``ticks.max_backfill_s``: the ticks of the boundaries
  ``from_ns`` … ``to_ns`` (inclusive, whole seconds) were not journaled one by one. ``recv_ns``
  is ``from_ns``; ``seconds`` int is how many ticks it stands for. The engine emits no vectors
  for them and restarts tick history (returns, volatility, z-scores), online and offline alike.
- BAD_FRAME_SUMMARY: bad frames past the per-second byte budget, counted not kept:
  ``counts`` dict[str, int] by reason, ``bytes`` int (raw bytes not journaled), ``from_ns`` and
  ``to_ns`` (receive times of the first and last one summarised).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, NamedTuple


class Kind(IntEnum):
    """Record kinds. Values are journaled: never renumber, only append."""

    BOOK_SNAPSHOT = 1
    BOOK_DELTA = 2
    TRADES = 3
    KLINE = 4
    TICKER = 5
    FUNDING = 6
    EXECUTION = 7
    TICK = 32
    RESYNC_REQUEST = 33
    GATEWAY_UP = 34
    GATEWAY_DOWN = 35
    REGISTRY_CHANGED = 36
    BAD_FRAME = 37
    SESSION = 38
    TICK_GAP = 39
    BAD_FRAME_SUMMARY = 40


#: Market-data kinds (they come from the exchange through the gateway).
MARKET_KINDS = frozenset(
    {Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA, Kind.TRADES, Kind.KLINE, Kind.TICKER, Kind.FUNDING, Kind.EXECUTION}
)
#: Control kinds (the shard itself journals them).
CONTROL_KINDS = frozenset(set(Kind) - MARKET_KINDS)

KIND_NAMES: dict[int, str] = {int(k): k.name.lower() for k in Kind}
KIND_BY_NAME: dict[str, int] = {v: k for k, v in KIND_NAMES.items()}

NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000


class Record(NamedTuple):
    """One journaled event. See the module docstring for every field."""

    seq: int
    recv_ns: int
    kind: int
    symbol: str
    ts: int
    cts: int
    payload: dict[str, Any]

    def with_seq(self, seq: int) -> Record:
        """Return this record numbered `seq` (the journal does this on append)."""
        return self._replace(seq=seq)


def kind_name(kind: int) -> str:
    """Return the lower-case name of `kind` (``"book_delta"``), or ``"kind_<n>"`` if unknown."""
    return KIND_NAMES.get(int(kind), f"kind_{int(kind)}")


def parse_kind(name: str) -> int:
    """Return the kind number for a name as printed by `kind_name` (case-insensitive)."""
    try:
        return KIND_BY_NAME[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown record kind {name!r}; known: {', '.join(sorted(KIND_BY_NAME))}") from None


def tick(boundary_ns: int) -> Record:
    """Return the (unnumbered) tick record for the whole-second `boundary_ns`."""
    return Record(0, boundary_ns, Kind.TICK, "", 0, 0, {})


def session(recv_ns: int, shard: str, category: str, symbols: Iterable[str], registry_text: str,
            registry_hash: str, configured_hash: str = "") -> Record:
    """Return the (unnumbered) SESSION record: what an engine must know to rebuild this run.

    `configured_hash` is the hash of the shard's configured registry file at this start (it may
    differ from the registry in force, which a reload through the API can have replaced).
    """
    payload = {"shard": shard, "category": category, "symbols": sorted(set(symbols)),
               "registry": registry_text, "hash": registry_hash, "configured": configured_hash or registry_hash}
    return Record(0, recv_ns, Kind.SESSION, "", 0, 0, payload)
