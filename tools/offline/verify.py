"""The identity proof: every vector in the feature log (online) against the offline rebuild, bit for bit.

The rebuild is `replay --config` (the store, then the journal tail) over the same range. Rows pair
on (ts, symbol, registry hash); a cell matches when its float64 bits are equal, any NaN matching any
NaN (the log keeps NaN; datasets hold nulls there). `missing` are log rows the rebuild lacks — a
failure; `extra` are rebuilt rows the log lacks, reported only: a `kill -9` may cost the log its
last flush interval, never the journal its ticks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from journal.feature_log import LEADING, REGISTRY_HASH, feature_log_hashes, read_feature_log

Key = tuple[int, str, str]


@dataclass
class VerifyReport:
    """What `verify` found; `ok` is no mismatch and no missing row."""

    rows_compared: int = 0
    registries: dict[str, int] = field(default_factory=dict)
    mismatches: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    extra: int = 0
    first_diffs: list[dict[str, Any]] = field(default_factory=list)
    missing_examples: list[dict[str, Any]] = field(default_factory=list)
    extra_examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every log row has its offline twin, equal in every cell."""
        return not self.mismatches and self.missing == 0

    def to_json(self) -> dict[str, Any]:
        """The JSON summary `feature-service verify` prints."""
        return {"ok": self.ok, "rows_compared": self.rows_compared, "registries": self.registries,
                "mismatched_cells": sum(self.mismatches.values()), "mismatches": self.mismatches,
                "missing": self.missing, "extra": self.extra, "first_diffs": self.first_diffs,
                "missing_examples": self.missing_examples, "extra_examples": self.extra_examples}


def _iso(ns: int) -> str:
    from tools.dataset.build import iso

    return iso(ns)


def _cell(x: float) -> str:
    return repr(float(x))


def log_rows(table: pa.Table, from_ns: int, to_ns: int, symbols: list[str] | None) -> pa.Table:
    """The log's rows with from ≤ ts < to (and of `symbols`)."""
    ts = table.column("ts").cast(pa.int64())
    keep = pc.and_(pc.greater_equal(ts, from_ns), pc.less(ts, to_ns))
    if symbols is not None:
        keep = pc.and_(keep, pc.is_in(table.column("symbol"), pa.array(symbols)))
    return table.filter(keep)


def compare(table: pa.Table, offline: dict[Key, tuple[int, np.ndarray]], registry_hash: str,
            report: VerifyReport, max_diffs: int = 20) -> set[Key]:
    """Compare one registry's log rows with the offline vectors; return the keys seen."""
    names = [c for c in table.column_names if c not in (*LEADING, REGISTRY_HASH)]
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    syms = table.column("symbol").to_pylist()
    valid = table.column("book_valid").to_numpy()
    cols = np.column_stack([table.column(c).to_numpy(zero_copy_only=False) for c in names]) if names else \
        np.zeros((len(ts), 0))
    seen: set[Key] = set()
    for i, (t, s) in enumerate(zip(ts.tolist(), syms, strict=True)):
        key = (t, s, registry_hash)
        seen.add(key)
        twin = offline.get(key)
        if twin is None:
            report.missing += 1
            if len(report.missing_examples) < max_diffs:
                report.missing_examples.append({"ts": _iso(t), "symbol": s, "registry_hash": registry_hash})
            continue
        report.rows_compared += 1
        report.registries[registry_hash] = report.registries.get(registry_hash, 0) + 1
        _compare_row(t, s, registry_hash, int(valid[i]), cols[i], twin, names, report, max_diffs)
    return seen


def _compare_row(t: int, s: str, h: str, valid: int, got: np.ndarray, twin: tuple[int, np.ndarray],
                 names: list[str], report: VerifyReport, max_diffs: int) -> None:
    off_valid, want = twin
    differ = (got.view(np.uint64) != want.view(np.uint64)) & ~(np.isnan(got) & np.isnan(want))
    cells = [(names[j], _cell(got[j]), _cell(want[j])) for j in np.flatnonzero(differ)]
    if valid != off_valid:
        cells.insert(0, ("book_valid", str(valid), str(off_valid)))
    for col, a, b in cells:
        report.mismatches[col] = report.mismatches.get(col, 0) + 1
        if len(report.first_diffs) < max_diffs:
            report.first_diffs.append({"ts": _iso(t), "symbol": s, "registry_hash": h, "column": col,
                                       "online": a, "offline": b})


def verify(config_path: str, from_ns: int, to_ns: int, symbols: list[str] | None,
           max_diffs: int = 20) -> VerifyReport:
    """Rebuild [from, to) offline from the shard's store + journal tail and compare its feature log."""
    from tools.offline.replay import ConfigSource, ReplaySummary
    from tools.shard.config import load_shard_config

    log_dir = Path(load_shard_config(config_path).data) / "feature_log"
    tables = {h: log_rows(read_feature_log(log_dir, h), from_ns, to_ns, symbols) for h in feature_log_hashes(log_dir)}
    if not any(t.num_rows for t in tables.values()):
        raise NoLogRows(f"the feature log {log_dir} holds no row in [{_iso(from_ns)}, {_iso(to_ns)})"
                        + (f" for {', '.join(symbols)}" if symbols else ""))
    offline = {(v.ts_ns, v.symbol, v.registry_hash): (int(v.book_valid), v.values)
               for v in ConfigSource.open(config_path).replay(None, symbols, from_ns, to_ns, ReplaySummary())}
    report = VerifyReport()
    seen: set[Key] = set()
    for h, t in sorted(tables.items()):
        seen |= compare(t, offline, h, report, max_diffs)
    extra = sorted(k for k in offline if k not in seen)
    report.extra = len(extra)
    report.extra_examples = [{"ts": _iso(t), "symbol": s, "registry_hash": h} for t, s, h in extra[:max_diffs]]
    return report


class NoLogRows(ValueError):
    """Nothing to verify: the feature log has no row in the range."""
