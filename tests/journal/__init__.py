"""Journal tests, plus the seeded record generator and exact comparisons they share."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np

from engine.record import NS_PER_MS, Kind, Record

START_NS = 1_786_310_800_000_000_000
SEG_HEADER = struct.Struct("<8sHHIQq")


def make_records(n: int, seed: int = 0, start_ns: int = START_NS) -> list[Record]:
    """Return `n` unnumbered records of every payload shape the service journals (seeded)."""
    rng = np.random.default_rng(seed)
    out, t = [], start_ns
    for i in range(n):
        t += int(rng.integers(0, 3_000_000))  # non-decreasing, sometimes equal
        out.append(_one(rng, i, t))
    return out


def _one(rng: np.random.Generator, i: int, t: int) -> Record:
    sym = ["SOLUSDT", "DOGEUSDT", "XRPUSDT"][int(rng.integers(3))]
    ms = t // NS_PER_MS
    r = float(rng.random())
    if r < 0.5:
        nb, na = int(rng.integers(0, 6)), int(rng.integers(0, 6))
        payload = {"depth": 50, "u": 1000 + i, "seq": 7 * i, "b": rng.random((nb, 2)) * 100,
                   "a": rng.random((na, 2)) * 100}
        return Record(0, t, Kind.BOOK_DELTA, sym, ms, ms - 1, payload)
    if r < 0.8:
        k = int(rng.integers(1, 5))
        payload = {"p": rng.random(k) * 150, "v": rng.random(k), "side": np.where(rng.random(k) < 0.5, 1, -1).astype(np.int8),
                   "T": np.full(k, ms, dtype=np.int64), "id": [f"t{i}-{j}" for j in range(k)], "bt": [bool(j % 2) for j in range(k)]}
        return Record(0, t, Kind.TRADES, sym, ms, 0, payload)
    if r < 0.9:
        return Record(0, t, Kind.TICK, "", 0, 0, {})
    if r < 0.95:
        payload = {"rate": float("nan") if i % 2 else -0.0001, "next_ms": ms + 3_600_000, "interval_h": 8.0}
        return Record(0, t, Kind.FUNDING, sym, ms, 0, payload)
    raw = rng.bytes(int(rng.integers(0, 40)))
    return Record(0, t, Kind.BAD_FRAME, "", 0, 0, {"reason": "json", "topic": "market.trades", "raw": raw})


def same(a: Any, b: Any) -> bool:
    """Exact equality: arrays by dtype, shape and bytes; floats by their bits; dict key order too."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and a.shape == b.shape and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes())
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a))
    if isinstance(a, list | tuple):
        return (isinstance(b, list | tuple) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True)))
    if isinstance(a, int) and not isinstance(a, bool):  # Kind (an IntEnum) comes back as int
        return isinstance(b, int) and not isinstance(b, bool) and int(a) == int(b)
    return type(a) is type(b) and a == b


def same_records(got: list[Record], want: list[Record]) -> bool:
    """True when both lists hold exactly the same records (all fields, payloads exact)."""
    return len(got) == len(want) and all(same(tuple(g), tuple(w)) for g, w in zip(got, want, strict=True))


def numbered(records: list[Record], first_seq: int = 1) -> list[Record]:
    """Number records the way the journal must: first_seq, first_seq + 1, …"""
    return [r._replace(seq=first_seq + i) for i, r in enumerate(records)]


def frame_ends(path: Path) -> list[int]:
    """File offsets where each frame of a segment ends, by walking u32 length fields (naive)."""
    data = path.read_bytes()
    ends, pos = [], SEG_HEADER.size
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from("<I", data, pos)
        if pos + 4 + length > len(data):
            break
        pos += 4 + length
        ends.append(pos)
    return ends


def segment_files(d: Path) -> list[Path]:
    """The segment files of a journal directory, oldest first."""
    return sorted(d.glob("*.seg"))
