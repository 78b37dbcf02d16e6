"""`cat(...)`: print journal records as JSON lines (arrays as lists, bytes as base64, NaN as null)."""

from __future__ import annotations

import base64
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import orjson

from engine.record import Record, kind_name, parse_kind
from journal.errors import JournalCorruption
from journal.reader import JournalReader


def cat(journal_dir: str | Path, from_seq: int = 0, kinds: Iterable[str] | None = None, limit: int = 0,
        follow: bool = False, out: BinaryIO | None = None, stop: Callable[[], bool] | None = None,
        poll_s: float = 0.2, symbols: Iterable[str] | None = None, from_ns: int | None = None,
        to_ns: int | None = None) -> int:
    """Write one JSON object per record to `out`; return the exit status (0 ok, 1 corrupt, 2 usage).

    `kinds` are kind names (``book_delta``, ``tick``, …; empty or None: all) and `symbols` symbol
    names (empty or None: all); records received before `from_ns` or after `to_ns` (inclusive
    bounds) are left out. `limit` 0 means no limit; with `follow`, keep printing as the journal
    grows until `stop()` returns True (or a record after `to_ns` arrives).
    """
    out = sys.stdout.buffer if out is None else out
    try:
        want = [parse_kind(k) for k in kinds] if kinds else None
    except ValueError as e:
        print(f"feature-service journal cat: {e}", file=sys.stderr)
        return 2
    if from_ns is not None and to_ns is not None and from_ns > to_ns:
        print("feature-service journal cat: --from is after --to", file=sys.stderr)
        return 2
    select = _Select(want, set(symbols) if symbols else None, from_ns, to_ns, limit)
    try:
        _write_lines(JournalReader(journal_dir), out, from_seq, select, follow, stop, poll_s)
    except JournalCorruption as e:
        print(f"feature-service journal cat: {e}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `journal cat | head`: the reader went away, which is fine
        return 0
    return 0


class _Select(NamedTuple):
    """What `cat` prints: kinds, symbols (None: all), an inclusive recv_ns window and a count limit."""

    kinds: list[int] | None
    symbols: set[str] | None
    from_ns: int | None
    to_ns: int | None
    limit: int


def _write_lines(reader: JournalReader, out: BinaryIO, from_seq: int, select: _Select, follow: bool,
                 stop: Callable[[], bool] | None, poll_s: float) -> None:
    """Stream the selected records to `out`, flushing each line while following."""
    n = 0
    symbols, to_ns = select.symbols, select.to_ns
    for rec in reader.records(from_seq=from_seq, from_ns=select.from_ns, kinds=select.kinds, follow=follow,
                              stop=stop, poll_s=poll_s):
        if to_ns is not None and rec.recv_ns > to_ns:
            break  # recv_ns never decreases: nothing later can be inside the window
        if symbols is not None and rec.symbol not in symbols:
            continue
        out.write(record_json(rec) + b"\n")
        if follow:
            out.flush()
        n += 1
        if select.limit and n >= select.limit:
            break
    out.flush()


def record_json(rec: Record) -> bytes:
    """Return `rec` as one JSON object: seq, recv_ns, kind (name), symbol, ts, cts, payload."""
    return orjson.dumps({"seq": rec.seq, "recv_ns": rec.recv_ns, "kind": kind_name(rec.kind),
                         "symbol": rec.symbol, "ts": rec.ts, "cts": rec.cts, "payload": rec.payload},
                        default=_json_default)


def _json_default(obj: Any) -> Any:
    """JSON for what orjson does not serialise: numpy arrays/scalars and bytes."""
    if isinstance(obj, np.ndarray | np.generic):
        return obj.tolist()
    if isinstance(obj, bytes | bytearray | memoryview):
        return {"b64": base64.b64encode(obj).decode("ascii")}
    raise TypeError(f"cannot print {type(obj).__name__} as JSON")
