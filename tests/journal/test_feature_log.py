"""Feature log: vectors in → the same vectors out, hourly parts compacted, two registries, kill -9 safe."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from engine.engine import Vector
from journal.feature_log import FeatureLog, FeatureLogError, read_feature_log
from registry import Registry
from tests.tools.test_feature_table import assert_rows_equal, make_vectors, second_registry
from tools.registry_file import default_registry

REPO = Path(__file__).resolve().parents[2]
NS = 1_000_000_000
HOUR = 3600 * NS
H0 = 1_780_002_000 * NS  # 2026-05-28T21:00:00Z, an hour boundary
assert H0 % HOUR == 0
SYMBOLS = ("XRPUSDT", "BTCUSDT", "ETHUSDT")  # engine order need not be sorted; the log reads back sorted


def ticks(vectors: list[Vector], per_tick: int) -> list[list[Vector]]:
    """Split vectors into the per-tick batches a shard would append."""
    return [vectors[i:i + per_tick] for i in range(0, len(vectors), per_tick)]


def by_ts_symbol(vectors: list[Vector]) -> list[Vector]:
    return sorted(vectors, key=lambda v: (v.ts_ns, v.symbol))


def wait_for(cond: Callable[[], bool], timeout_s: float = 10.0) -> None:
    end = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def log_rows(table: pa.Table, registry: Registry) -> None:
    assert table.column_names[-1] == "registry_hash"
    assert set(table.column("registry_hash").to_pylist()) <= {registry.content_hash}


def test_vectors_round_trip_bit_for_bit(tmp_path: Path) -> None:
    reg = default_registry()
    vecs = make_vectors(reg, 30, SYMBOLS, start_ns=H0 + 10 * NS)
    log = FeatureLog(tmp_path, flush_interval_s=0.02)
    for i, batch in enumerate(ticks(vecs, len(SYMBOLS))):
        log.append(batch, reg)
        if i % 10 == 9:
            time.sleep(0.05)  # several flushes, several parts
    wait_for(lambda: log.rows_written == len(vecs))
    hour = tmp_path / "20260528T21"
    parts = sorted(p.name for p in hour.iterdir())
    assert len(parts) >= 2 and all(p.startswith("part-") and p.endswith(f"-{reg.content_hash[:12]}.parquet")
                                   for p in parts)
    live = read_feature_log(tmp_path)  # loose parts, while the log is open
    assert_rows_equal(live, by_ts_symbol(vecs), reg)
    log.close()
    assert tree(tmp_path) == [f"20260528T21-{reg.content_hash[:12]}.parquet"]
    table = read_feature_log(tmp_path, reg.content_hash)
    assert_rows_equal(table, by_ts_symbol(vecs), reg)
    log_rows(table, reg)
    assert table.column("registry_hash").to_pylist() == [reg.content_hash] * len(vecs)
    assert str(table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"


def test_part_names_and_first_ts(tmp_path: Path) -> None:
    reg = default_registry()
    vecs = make_vectors(reg, 2, SYMBOLS, start_ns=H0 + 7 * NS)
    with FeatureLog(tmp_path, flush_interval_s=0.01) as log:
        log.append(vecs[:3], reg)
        wait_for(lambda: log.rows_written == 3)
        log.append(vecs[3:], reg)
        wait_for(lambda: log.rows_written == 6)
        names = sorted(p.name for p in (tmp_path / "20260528T21").iterdir())
        h12 = reg.content_hash[:12]
        assert names == [f"part-{H0 + 7 * NS:020d}-{h12}.parquet", f"part-{H0 + 8 * NS:020d}-{h12}.parquet"]


def test_hour_roll_compacts_the_finished_hour(tmp_path: Path) -> None:
    reg = default_registry()
    vecs = make_vectors(reg, 20, SYMBOLS, start_ns=H0 - 10 * NS)  # 10 ticks in hour 20, 10 in hour 21
    h12 = reg.content_hash[:12]
    log = FeatureLog(tmp_path, flush_interval_s=0.01)
    batches = ticks(vecs, len(SYMBOLS))
    for batch in batches[:10]:
        log.append(batch, reg)
    wait_for(lambda: log.rows_written == 30)
    assert (tmp_path / "20260528T20").is_dir()
    assert not (tmp_path / f"20260528T20-{h12}.parquet").exists()
    for batch in batches[10:]:
        log.append(batch, reg)
    wait_for(lambda: not (tmp_path / "20260528T20").exists())
    assert (tmp_path / f"20260528T20-{h12}.parquet").exists()
    assert (tmp_path / "20260528T21").is_dir()  # the current hour stays in parts until it is over
    assert_rows_equal(read_feature_log(tmp_path), by_ts_symbol(vecs), reg)
    log.close()
    assert tree(tmp_path) == [f"20260528T20-{h12}.parquet", f"20260528T21-{h12}.parquet"]
    assert_rows_equal(read_feature_log(tmp_path), by_ts_symbol(vecs), reg)


def test_two_registries_in_one_hour(tmp_path: Path) -> None:
    a, b = default_registry(), second_registry()
    va = make_vectors(a, 5, SYMBOLS, start_ns=H0, seed=1)
    vb = make_vectors(b, 5, SYMBOLS, start_ns=H0 + 5 * NS, seed=2)  # reload: b from the next tick on
    with FeatureLog(tmp_path, flush_interval_s=0.01) as log:
        for batch in ticks(va, 3):
            log.append(batch, a)
        for batch in ticks(vb, 3):
            log.append(batch, b)
    assert tree(tmp_path) == sorted([f"20260528T21-{a.content_hash[:12]}.parquet",
                                     f"20260528T21-{b.content_hash[:12]}.parquet"])
    with pytest.raises(FeatureLogError) as e:
        read_feature_log(tmp_path)
    assert a.content_hash in str(e.value) and b.content_hash in str(e.value)
    ta, tb = read_feature_log(tmp_path, a.content_hash), read_feature_log(tmp_path, b.content_hash)
    assert_rows_equal(ta, by_ts_symbol(va), a)
    assert_rows_equal(tb, by_ts_symbol(vb), b)
    log_rows(ta, a)
    log_rows(tb, b)
    assert "time_of_day" in ta.column_names and "time_of_day" not in tb.column_names
    with pytest.raises(FeatureLogError, match="no vectors of registry 0123"):
        read_feature_log(tmp_path, "0123" * 16)


def test_restart_in_the_same_hour_merges(tmp_path: Path) -> None:
    reg = default_registry()
    vecs = make_vectors(reg, 12, SYMBOLS, start_ns=H0 + 100 * NS)
    first, second = vecs[:18], vecs[18:]
    with FeatureLog(tmp_path, flush_interval_s=0.01) as log:
        log.append(first, reg)
    with FeatureLog(tmp_path, flush_interval_s=0.01) as log:
        log.append(second, reg)
    assert tree(tmp_path) == [f"20260528T21-{reg.content_hash[:12]}.parquet"]
    assert_rows_equal(read_feature_log(tmp_path), by_ts_symbol(vecs), reg)


def test_parts_left_after_a_compaction_crash_are_not_read_twice(tmp_path: Path) -> None:
    """A kill between the compacted file's rename and the parts' deletion leaves parts it already holds."""
    reg = default_registry()
    vecs = make_vectors(reg, 6, SYMBOLS, start_ns=H0 + 20 * NS)
    log = FeatureLog(tmp_path, flush_interval_s=0.01)
    for batch in ticks(vecs, 3):
        log.append(batch, reg)
    wait_for(lambda: log.rows_written == len(vecs))
    saved = tmp_path.parent / "saved-parts"
    shutil.copytree(tmp_path / "20260528T21", saved)
    log.close()
    shutil.copytree(saved, tmp_path / "20260528T21")  # the parts are back, as if never deleted
    assert_rows_equal(read_feature_log(tmp_path), by_ts_symbol(vecs), reg)
    more = make_vectors(reg, 2, SYMBOLS, start_ns=H0 + 40 * NS, seed=9)
    with FeatureLog(tmp_path, flush_interval_s=0.01) as log:
        log.append(more, reg)
    assert tree(tmp_path) == [f"20260528T21-{reg.content_hash[:12]}.parquet"]
    assert_rows_equal(read_feature_log(tmp_path), by_ts_symbol(vecs + more), reg)


def test_a_new_part_reusing_a_compacted_name_is_kept(tmp_path: Path) -> None:
    """After a restart the same first tick may be logged again: its part has an old name but is new."""
    reg = default_registry()
    before = make_vectors(reg, 1, SYMBOLS, start_ns=H0 + 50 * NS, seed=1)
    again = make_vectors(reg, 1, SYMBOLS, start_ns=H0 + 50 * NS, seed=2)
    for vecs in (before, again):
        with FeatureLog(tmp_path, flush_interval_s=0.01) as log:
            log.append(vecs, reg)
    table = read_feature_log(tmp_path)
    assert table.num_rows == 6
    values = np.column_stack([table.column(n).to_numpy() for n in reg.names])
    got = sorted(zip(table.column("symbol").to_pylist(), (r.tobytes() for r in values), strict=True))
    assert got == sorted((v.symbol, v.values.tobytes()) for v in before + again)


def test_temp_leftovers_removed_on_open(tmp_path: Path) -> None:
    (tmp_path / "20260528T21").mkdir()
    leftover = tmp_path / "20260528T21" / "part-00000000000000000001-0123456789ab.parquet.tmp"
    leftover.write_bytes(b"PAR1 half")
    top = tmp_path / "20260528T20-0123456789ab.parquet.tmp"
    top.write_bytes(b"half")
    FeatureLog(tmp_path).close()
    assert not leftover.exists() and not top.exists()


def test_writer_error_is_raised_by_the_next_append(tmp_path: Path) -> None:
    reg = default_registry()
    (tmp_path / "20260528T21").write_text("a file where the hour directory goes")
    log = FeatureLog(tmp_path, flush_interval_s=0.01)
    vecs = make_vectors(reg, 2, SYMBOLS, start_ns=H0)
    log.append(vecs[:3], reg)
    time.sleep(0.2)
    with pytest.raises(FeatureLogError, match=r"20260528T21.*3 vectors not logged"):
        log.append(vecs[3:], reg)
    log.close()  # the error was reported once; nothing else failed
    with pytest.raises(FeatureLogError, match="closed"):
        log.append(vecs, reg)


def test_error_at_close_names_the_file(tmp_path: Path) -> None:
    reg = default_registry()
    (tmp_path / "20260528T21").write_text("not a directory")
    log = FeatureLog(tmp_path, flush_interval_s=60)
    log.append(make_vectors(reg, 1, SYMBOLS, start_ns=H0), reg)
    with pytest.raises(FeatureLogError, match=str(tmp_path / "20260528T21")):
        log.close()


def test_vector_of_another_registry_is_refused(tmp_path: Path) -> None:
    a, b = default_registry(), second_registry()
    log = FeatureLog(tmp_path, flush_interval_s=0.01)
    log.append(make_vectors(b, 1, SYMBOLS, start_ns=H0), a)
    with pytest.raises(FeatureLogError, match=f"carries registry {b.content_hash}, appended with registry"):
        log.close()


def test_read_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FeatureLogError, match="no feature log"):
        read_feature_log(tmp_path / "missing")
    with pytest.raises(FeatureLogError, match="empty"):
        read_feature_log(tmp_path)
    bad = tmp_path / "20260528T21-0123456789ab.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(FeatureLogError, match=str(bad)):
        read_feature_log(tmp_path)


APPENDER = """
import sys, time
from journal.feature_log import FeatureLog
from tests.journal.test_feature_log import H0, SYMBOLS, NS
from tests.tools.test_feature_table import make_vectors
from tools.registry_file import default_registry
reg = default_registry()
vecs = make_vectors(reg, 3000, SYMBOLS, start_ns=H0 - 40 * NS, seed=7)
log = FeatureLog(sys.argv[1], flush_interval_s=float(sys.argv[2]))
n = len(SYMBOLS)
for i in range(0, len(vecs), n):
    log.append(vecs[i:i + n], reg)
    print(i + n, time.monotonic(), flush=True)
    time.sleep(0.01)
"""


@pytest.mark.parametrize("run_s", [0.6, 1.3])
def test_kill_9_loses_at_most_the_last_interval(tmp_path: Path, run_s: float) -> None:
    interval = 0.25
    proc = subprocess.Popen([sys.executable, "-c", APPENDER, str(tmp_path), str(interval)], cwd=REPO,
                            stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert first, "appender died"
        # The first flush of a fresh process is slow (imports, first Parquet write): start the clock once
        # something is on disk, so the test measures steady flushing, not a cold start.
        end = time.monotonic() + 20
        while not any(tmp_path.rglob("*.parquet")) and time.monotonic() < end:
            time.sleep(0.01)
        time.sleep(run_s)
    finally:
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        out = first + proc.stdout.read()
        proc.wait(timeout=10)
        proc.stdout.close()
    appended = [(int(n), float(t)) for n, t in (line.split() for line in out.splitlines())]
    total = appended[-1][0]
    table = read_feature_log(tmp_path)  # whatever is on disk reads
    rows = table.num_rows
    # What is there is exactly the first `rows` vectors (ts then symbol order), bit for bit.
    reg = default_registry()
    vecs = make_vectors(reg, (total + len(SYMBOLS)) // len(SYMBOLS), SYMBOLS, start_ns=H0 - 40 * NS, seed=7)
    assert_rows_equal(table, by_ts_symbol(vecs[:rows]), reg)
    assert rows <= total
    # What is missing was appended in the last flush interval (+ slack for one part's write), + one batch.
    recent = total - max((n for n, t in appended if t <= killed_at - interval - 0.15), default=0)
    assert total - rows <= recent + len(SYMBOLS), (total, rows, recent)
    assert rows > 0 and total - rows < total
    # Reopening removes leftovers and compacts; nothing changes in what reads back.
    FeatureLog(tmp_path).close()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".parquet")]
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == []
    assert_rows_equal(read_feature_log(tmp_path), by_ts_symbol(vecs[:rows]), reg)


def test_append_is_cheap_for_the_caller(tmp_path: Path) -> None:
    """append only enqueues: 2 000 appends of 3 vectors take well under a millisecond each."""
    reg = default_registry()
    vecs = make_vectors(reg, 2000, SYMBOLS, start_ns=H0)
    batches = [tuple(b) for b in ticks(vecs, 3)]
    with FeatureLog(tmp_path, flush_interval_s=0.05) as log:
        t0 = time.perf_counter()
        for b in batches:
            log.append(b, reg)
        per_call = (time.perf_counter() - t0) / len(batches)
    assert per_call < 2e-4, per_call
    assert read_feature_log(tmp_path).num_rows == len(vecs)


def test_flush_interval_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^flush_interval_s: "):
        FeatureLog(tmp_path, flush_interval_s=0)


def test_values_stay_float64(tmp_path: Path) -> None:
    reg = default_registry()
    v = Vector(H0, "BTCUSDT", 1, np.full(len(reg), -0.0), reg.content_hash)
    with FeatureLog(tmp_path) as log:
        log.append([v], reg)
    got = read_feature_log(tmp_path)
    assert np.signbit(got.column("mid_price").to_numpy()).all()
