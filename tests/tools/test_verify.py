"""`tools.offline.verify.compare` on hand-made rows: exact bits, NaN = NaN, -0.0 ≠ 0.0, missing and extra."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tools.offline.verify import VerifyReport, compare, log_rows

NS = 1_000_000_000
H = "ab" * 32


def _log(rows: list[tuple[int, str, int, float, float]]) -> pa.Table:
    return pa.table({"ts": pa.array([r[0] for r in rows], pa.timestamp("ns", tz="UTC")),
                     "symbol": [r[1] for r in rows], "book_valid": pa.array([r[2] for r in rows], pa.int8()),
                     "a": [r[3] for r in rows], "b": [r[4] for r in rows], "registry_hash": [H] * len(rows)})


def _offline(rows: list[tuple[int, str, int, float, float]]) -> dict:
    return {(t, s, H): (v, np.array([a, b])) for t, s, v, a, b in rows}


ROWS = [(1 * NS, "BTCUSDT", 1, 100.5, np.nan), (1 * NS, "ETHUSDT", 0, np.nan, 0.0), (2 * NS, "BTCUSDT", 1, 1e-300, -2.0)]


def test_identical_rows_with_nans_match() -> None:
    report = VerifyReport()
    compare(_log(ROWS), _offline(ROWS), H, report)
    assert report.ok and report.rows_compared == 3 and report.mismatches == {} and report.registries == {H: 3}


def test_one_altered_cell_is_reported_exactly() -> None:
    changed = list(ROWS)
    changed[2] = (2 * NS, "BTCUSDT", 1, np.nextafter(1e-300, 1.0), -2.0)  # one ulp
    report = VerifyReport()
    compare(_log(changed), _offline(ROWS), H, report)
    assert not report.ok and report.mismatches == {"a": 1}
    (diff,) = report.first_diffs
    assert diff["symbol"] == "BTCUSDT" and diff["column"] == "a" and diff["ts"] == "1970-01-01T00:00:02Z"
    assert diff["offline"] == repr(1e-300) and diff["online"] == repr(float(np.nextafter(1e-300, 1.0)))


def test_signed_zero_and_book_valid_differences_count() -> None:
    changed = [ROWS[0], (1 * NS, "ETHUSDT", 1, np.nan, -0.0), ROWS[2]]
    report = VerifyReport()
    compare(_log(changed), _offline(ROWS), H, report)
    assert report.mismatches == {"b": 1, "book_valid": 1}


def test_rows_without_an_offline_twin_are_missing() -> None:
    report = VerifyReport()
    seen = compare(_log(ROWS), _offline(ROWS[:2]), H, report)
    assert report.missing == 1 and not report.ok and report.rows_compared == 2
    assert report.missing_examples == [{"ts": "1970-01-01T00:00:02Z", "symbol": "BTCUSDT", "registry_hash": H}]
    assert len(seen) == 3


def test_log_rows_keeps_the_half_open_range_and_symbols() -> None:
    t = log_rows(_log(ROWS), 1 * NS, 2 * NS, ["BTCUSDT"])
    assert t.column("symbol").to_pylist() == ["BTCUSDT"] and t.num_rows == 1
