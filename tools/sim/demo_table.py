"""The demo's live view: features.live over a SUB socket plus /health and /metrics, once a second.

`Watch` keeps what the shard has said so far (the newest vector per symbol, book state, gaps and
resyncs per symbol, the last book event); `table` renders it with rich for a terminal and
`plain_line` as one line for logs and pipes.
"""

from __future__ import annotations

import json
import math
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import zmq
from prometheus_client.parser import text_string_to_metric_families
from rich.table import Table

from api.wire import WireVector, decode

if TYPE_CHECKING:
    import pyarrow as pa
    from rich.console import Console

#: Features shown per symbol (those missing from the registry in force are skipped).
SHOWN = ("mid_price", "spread_rel", "return_1s", "vwap_3s", "trade_count_3s",
         "depth_imbalance_top5", "funding_rate")
#: Seconds an API request may take before the view says the API is not answering.
HTTP_TIMEOUT_S = 2.0


def http_json(url: str) -> dict:
    """GET `url` and parse its JSON body (raises OSError/ValueError when that fails)."""
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as r:
        return json.loads(r.read())


def http_text(url: str) -> str:
    """GET `url` and return its body as text."""
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as r:
        return r.read().decode()


def fmt(x: float | None) -> str:
    """Format a feature value compactly; NaN/None as a dash."""
    if x is None or not math.isfinite(x):
        return "–"
    return f"{x:.7g}"


@dataclass
class BookMetrics:
    """What the demo reads from /metrics: gaps and completed resyncs per symbol, resync time."""

    gaps: dict[str, int] = field(default_factory=dict)
    resyncs: dict[str, int] = field(default_factory=dict)
    #: ``fs_resync_duration_seconds`` sum and count (every symbol together).
    resync_s: float = 0.0
    resync_n: int = 0


@dataclass
class Watch:
    """What the demo has seen of the shard so far (`t` is seconds since the view started)."""

    api: str
    symbols: tuple[str, ...]
    t: int = 0
    latest: dict[str, WireVector] = field(default_factory=dict)
    names: dict[str, list[str]] = field(default_factory=dict)
    health: dict = field(default_factory=dict)
    metrics: BookMetrics = field(default_factory=BookMetrics)
    events: dict[str, str] = field(default_factory=dict)
    last_event: str = ""
    vectors: int = 0
    vectors_last_s: int = 0
    bad_messages: int = 0
    api_error: str = ""

    # --- input -------------------------------------------------------------------------------
    def drain(self, sub: zmq.Socket, until: float) -> None:
        """Receive features.live vectors until monotonic time `until`."""
        n = 0
        while (left := until - time.monotonic()) > 0:
            if not sub.poll(max(1, int(left * 1000))):
                continue
            while True:
                try:
                    parts = sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                try:
                    v = decode(parts)
                except ValueError:
                    self.bad_messages += 1
                    continue
                n += 1
                self._vector(v)
        self.vectors += n
        self.vectors_last_s = n

    def _vector(self, v: WireVector) -> None:
        old = self.latest.get(v.symbol)
        if old is not None and old.book_valid and not v.book_valid:
            self._event(v.symbol, "book invalid")
        self.latest[v.symbol] = v
        if v.registry_hash not in self.names:
            try:
                self.names[v.registry_hash] = self.schema(v.registry_hash)
            except (OSError, ValueError, KeyError) as e:  # asked again with the next vector
                self.api_error = str(e)

    def schema(self, registry_hash: str) -> list[str]:
        """Feature names of `registry_hash`, from GET /features/schema."""
        return http_json(f"{self.api}/features/schema?registry_hash={registry_hash}")["names"]

    def poll_api(self) -> None:
        """Read /health and /metrics; note new gaps and resyncs as book events."""
        try:
            self.health = http_json(f"{self.api}/health")
            m = parse_metrics(http_text(f"{self.api}/metrics"))
        except (OSError, ValueError) as e:
            self.api_error = str(e)
            return
        self.api_error = ""
        took = ""
        if m.resync_n > self.metrics.resync_n:  # mean time of the resyncs completed since the last look
            ms = (m.resync_s - self.metrics.resync_s) / (m.resync_n - self.metrics.resync_n) * 1e3
            took = f" {ms:.1f}ms"
        for sym in self.symbols:
            new_gaps = m.gaps.get(sym, 0) > self.metrics.gaps.get(sym, 0)
            new_resyncs = m.resyncs.get(sym, 0) > self.metrics.resyncs.get(sym, 0)
            if new_gaps or new_resyncs:
                what = "→".join(w for w, new in (("gap", new_gaps), (f"resynced{took}", new_resyncs)) if new)
                self._event(sym, what)
        self.metrics = m

    def _event(self, symbol: str, what: str) -> None:
        self.events[symbol] = f"{what} @{self.t}s"
        self.last_event = f"{symbol} {self.events[symbol]}"

    # --- derived -------------------------------------------------------------------------------
    def book_state(self, symbol: str) -> str:
        """``valid`` / ``INVALID`` from /health, ``?`` before the first answer."""
        book = self.health.get("books", {}).get(symbol)
        if book is None:
            return "?"
        return "valid" if book.get("valid") else "INVALID"

    def gateway(self) -> str:
        """``up`` / ``down`` from /health (``?`` before the first answer)."""
        gw = self.health.get("gateway")
        return "?" if gw is None else ("up" if gw.get("up") else "down")

    def value(self, symbol: str, name: str) -> float | None:
        """The newest value of feature `name` for `symbol` (None when unknown)."""
        v = self.latest.get(symbol)
        names = self.names.get(v.registry_hash, []) if v is not None else []
        if v is None or name not in names:
            return None
        return float(v.values[names.index(name)])

    def shown(self) -> list[str]:
        """The `SHOWN` features that the registry in force has."""
        have = {n for names in self.names.values() for n in names}
        return [n for n in SHOWN if n in have] if have else list(SHOWN)

    def status(self) -> str:
        """One line about the whole shard: gateway, journal, stream rate."""
        journal = self.health.get("journal", {})
        parts = [f"gateway {self.gateway()}", f"{self.vectors_last_s} vectors/s",
                 f"journal {journal.get('next_seq', 1) - 1:,} records"]
        if self.bad_messages:
            parts.append(f"{self.bad_messages} undecodable features.live messages")
        if self.api_error:
            parts.append(f"API not answering: {self.api_error}")
        return " · ".join(parts)


def parse_metrics(text: str) -> BookMetrics:
    """Read gaps, completed resyncs and resync time from the shard's Prometheus text."""
    m = BookMetrics()
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "fs_book_gaps_total":
                m.gaps[s.labels["symbol"]] = int(s.value)
            elif s.name == "fs_resyncs_total" and s.labels.get("outcome") == "completed":
                sym = s.labels["symbol"]
                m.resyncs[sym] = m.resyncs.get(sym, 0) + int(s.value)
            elif s.name == "fs_resync_duration_seconds_sum":
                m.resync_s = s.value
            elif s.name == "fs_resync_duration_seconds_count":
                m.resync_n = int(s.value)
    return m


def table(w: Watch, duration: int) -> Table:
    """The live table: a column per symbol, a row per feature, then book state and events."""
    t = Table(title=f"feature-service demo · features.live · {w.t}s of {duration}s",
              caption=f"{w.status()} · Ctrl-C ends early", title_style="bold", caption_justify="left")
    t.add_column("", style="bold")
    for sym in w.symbols:
        t.add_column(sym, justify="right", min_width=14)
    states = [w.book_state(s) for s in w.symbols]
    t.add_row("book (/health)", *(f"[green]{s}" if s == "valid" else f"[bold red]{s}" for s in states))
    for name in w.shown():
        t.add_row(name, *(fmt(w.value(s, name)) for s in w.symbols))
    flags = [w.latest[s].book_valid if s in w.latest else None for s in w.symbols]
    t.add_row("book_valid", *("–" if f is None else "1" if f else "[bold red]0" for f in flags), end_section=True)
    m = w.metrics
    t.add_row("gaps / resyncs", *(f"{m.gaps.get(s, 0)} / {m.resyncs.get(s, 0)}" for s in w.symbols))
    t.add_row("last book event", *(f"[yellow]{w.events[s]}" if s in w.events else "–" for s in w.symbols))
    return t


def plain_line(w: Watch) -> str:
    """One line per second for logs and pipes: the state of every symbol and the last book event."""
    per = [f"{s} mid={fmt(w.value(s, 'mid_price'))} book={w.book_state(s)} "
           f"gaps={w.metrics.gaps.get(s, 0)} resyncs={w.metrics.resyncs.get(s, 0)}" for s in w.symbols]
    tail = f" | last book event: {w.last_event}" if w.last_event else ""
    return f"[{w.t:3d}s] {w.status()} | " + " | ".join(per) + tail


def watch(w: Watch, sub: zmq.Socket, duration: int, show: Callable[[Watch], None],
          alive: Callable[[], bool]) -> None:
    """Sample the stream and the API once a second for `duration` s, calling `show` after each."""
    start = time.monotonic()
    for second in range(1, duration + 1):
        w.drain(sub, start + second)
        w.t = second
        w.poll_api()
        show(w)
        if not alive():
            return


# --- the dataset built by replay -------------------------------------------------------------
def dataset_summary(summary: dict, w: Watch, console: Console) -> bool:
    """Print rows, registry and the last row per symbol of replay's output; check it against live.

    False when a symbol has no row or a vector received live differs from its replayed row.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    tables = [pq.read_table(path) for path in summary["files"].values()]
    data = pa.concat_tables(tables, promote_options="permissive") if len(tables) > 1 else tables[0]
    hashes = ", ".join(h[:12] for h in summary["registry_hashes"])
    notices = ", ".join(f"{k} {v}" for k, v in sorted(summary.get("notices", {}).items())) or "none"
    print(f"dataset built: {summary['rows']} rows × {data.num_columns} columns in {len(tables)} file(s); "
          f"registry {hashes}; {summary['records']:,} journal records replayed; book notices: {notices}",
          flush=True)
    for path in summary["files"].values():
        print(f"  {path}", flush=True)
    rows = _last_rows(data)
    missing = [s for s in w.symbols if s not in rows]
    if missing:
        print(f"feature-service demo: the dataset has no row for {', '.join(missing)}", file=sys.stderr)
        return False
    console.print(_last_row_table(rows, w.symbols, data.schema.names))
    return _live_equals_replay(w, data)


def _last_rows(data: pa.Table) -> dict[str, dict]:
    """The last row of each symbol (ts as int ns)."""
    import pyarrow as pa

    ts = data.column("ts").cast(pa.int64()).to_pylist()
    rows: dict[str, dict] = {}
    for i, row in enumerate(data.to_pylist()):
        row["ts"] = ts[i]
        if row["symbol"] not in rows or ts[i] >= rows[row["symbol"]]["ts"]:
            rows[row["symbol"]] = row
    return rows


def _last_row_table(rows: dict[str, dict], symbols: tuple[str, ...], columns: list[str]) -> Table:
    from api.app import iso_ns

    t = Table(title="last row per symbol", title_style="bold")
    t.add_column("column", style="bold")
    for s in symbols:
        t.add_column(s, justify="right", min_width=14)
    t.add_row("ts", *(iso_ns(rows[s]["ts"])[11:19] for s in symbols))
    for name in ("book_valid", *SHOWN):
        if name in columns:
            t.add_row(name, *(fmt(rows[s][name]) for s in symbols))
    return t


def _live_equals_replay(w: Watch, data: pa.Table) -> bool:
    """Compare the last features.live vector of each symbol with the replayed row of the same tick."""
    import numpy as np
    import pyarrow as pa

    ts = data.column("ts").cast(pa.int64()).to_pylist()
    index = {(s, t): i for i, (s, t) in enumerate(zip(data.column("symbol").to_pylist(), ts, strict=True))}
    bad = []
    for sym, v in w.latest.items():
        names = w.names.get(v.registry_hash)
        i = index.get((sym, v.ts_ns))
        if names is None or i is None:
            bad.append(f"{sym}: no replayed row for tick {v.ts_ns}")
            continue
        row = np.array([np.nan if (x := data.column(n)[i].as_py()) is None else x for n in names], dtype=float)
        if not np.array_equal(row, v.values, equal_nan=True):
            bad.append(f"{sym}: replayed row of tick {v.ts_ns} differs from the vector received live")
    if bad:
        print(f"feature-service demo: live != replay: {'; '.join(bad)}", file=sys.stderr)
        return False
    print(f"live = replay: the last vector received over features.live for each of the {len(w.latest)} "
          "symbols equals its replayed row (NaN in the same places)", flush=True)
    return True
