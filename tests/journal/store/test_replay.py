"""Replay from the store (+ journal tail) gives the vectors of replaying the original journal, bit for bit."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.record import NS_PER_S, Kind, Record, session
from journal.config import JournalConfig
from journal.segment import list_segments
from journal.store.compact import compact
from journal.store.config import StoreConfig
from journal.store.layout import NS_PER_DAY, StoreRoots
from journal.store.manifest import Manifest
from journal.store.replay import replay_store, save_date_checkpoints
from journal.writer import JournalWriter
from registry import load_registry_text
from registry.packaged import default_registry, default_registry_text
from tools.offline.replay import replay
from tools.sim.synthetic_records import records as synthetic

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
#: A what-if registry with short histories (a warm-up of about 100 s fits the test's 240 s).
SHORT_REGISTRY = """
version: 1
features:
  - {name: mid_price, function: mid_price}
  - {name: return_3s, function: log_return, params: {seconds: 3}}
  - {name: vwap_15s, function: vwap, window: 15s}
  - {name: depth_imbalance_top5, function: depth_imbalance, params: {levels: 5}}
  - {name: volatility_10s, function: volatility, params: {seconds: 10}}
  - {name: imbalance_z20, function: ref, inputs: [depth_imbalance_top5], normalise: {method: zscore, n: 20}}
"""
#: 100 s before a UTC midnight, so every run crosses a date boundary.
START_NS = (1_786_320_000 // 86_400 + 1) * NS_PER_DAY - 100 * NS_PER_S


def _session(recv_ns: int) -> Record:
    reg = default_registry()
    return session(recv_ns, "test", "linear", SYMBOLS, default_registry_text(), reg.content_hash)


def _faulted(seconds: int) -> list[Record]:
    """Synthetic records led by a SESSION, with faults: every 997th delta dropped (a gap) and a fresh
    snapshot 50 records later (a resync answered), and one gateway down/up halfway."""
    recs = list(synthetic(SYMBOLS, seconds, events_per_s=120, depth=50, start_ns=START_NS))
    out = [_session(START_NS)]
    books: dict[str, tuple[dict, dict]] = {}
    due: dict[int, Record] = {}
    for i, r in enumerate(recs):
        if r.kind in (Kind.BOOK_SNAPSHOT, Kind.BOOK_DELTA):
            _track(books, r)
        if i in due:
            out.append(due.pop(i))
        if r.kind == Kind.BOOK_DELTA and i % 997 == 0:
            due[i + 50] = _snapshot_of(books, r, recs[i + 50].recv_ns if i + 50 < len(recs) else r.recv_ns)
            continue  # dropped: the book sees a gap until the snapshot
        if i == len(recs) // 2:
            out.append(Record(0, r.recv_ns, Kind.GATEWAY_DOWN, "", 0, 0, {"reason": "test", "silent_ms": 5}))
            out.append(Record(0, r.recv_ns, Kind.GATEWAY_UP, "", 0, 0, {"reason": "test", "silent_ms": 0}))
        out.append(r)
    return out


def _track(books: dict, r: Record) -> None:
    """A naive dict book per symbol following every snapshot and delta (dropped ones included)."""
    if r.kind == Kind.BOOK_SNAPSHOT:
        books[r.symbol] = ({}, {})
    for side, levels in zip(books[r.symbol], (r.payload["b"], r.payload["a"]), strict=True):
        for p, q in np.asarray(levels).reshape(-1, 2).tolist():
            if q > 0:
                side[p] = q
            else:
                side.pop(p, None)
    books[r.symbol] = books[r.symbol]


def _snapshot_of(books: dict, delta: Record, recv_ns: int) -> Record:
    """A snapshot of the tracked book as of `delta` (its u): what a resync would answer."""
    bids, asks = books[delta.symbol]
    b = np.array(sorted(bids.items(), reverse=True)[:50], dtype=np.float64).reshape(-1, 2)
    a = np.array(sorted(asks.items())[:50], dtype=np.float64).reshape(-1, 2)
    payload = {"depth": 50, "u": int(delta.payload["u"]), "seq": 0, "b": b, "a": a}
    return Record(0, recv_ns, Kind.BOOK_SNAPSHOT, delta.symbol, recv_ns // 1_000_000, 0, payload)


def _write(journal: Path, recs: list[Record], max_bytes: int = 256 * 1024) -> None:
    cfg = JournalConfig(dir=str(journal), fsync="never", segment_max_bytes=max_bytes)
    with JournalWriter(cfg) as w:
        for i in range(0, len(recs), 500):
            w.append(recs[i:i + 500])


def _key(v) -> tuple:  # noqa: ANN001
    return v.ts_ns, v.symbol, v.book_valid, v.values.tobytes(), v.registry_hash


def _reference(journal: Path, tmp: Path, **kw) -> list[tuple]:  # noqa: ANN003
    """Vectors of the untouched journal (a copy taken before compaction deletes segments)."""
    return [_key(v) for v in replay(str(journal), **kw)]


@pytest.fixture(scope="module")
def compacted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, list[tuple]]:
    """A 240 s faulted journal, its untouched copy, its compacted store with date checkpoints, and a tail."""
    tmp = tmp_path_factory.mktemp("store_replay")
    journal, copy, store = tmp / "journal", tmp / "copy", tmp / "store"
    recs = _faulted(240)
    head, tail = recs[: len(recs) * 3 // 4], recs[len(recs) * 3 // 4:]
    _write(journal, head)
    compact(journal, StoreConfig(dir=str(store)))
    _write(journal, tail)  # the tail stays in the journal, not compacted
    save_date_checkpoints(StoreRoots(store))
    _write(copy, recs)
    return journal, copy, store, _reference(copy, tmp)


def test_store_plus_tail_equals_the_journal(compacted: tuple) -> None:
    journal, _copy, store, expected = compacted
    vectors, fold, reader = replay_store(StoreRoots(store), journal)
    got = [_key(v) for v in vectors]
    assert reader.info.start["from"] == "beginning"
    assert reader.info.store_records > 0 and reader.info.journal_records > 0
    assert reader.info.delta_runs > 0
    assert len(got) == len(expected) and got == expected
    assert fold.notices["gap"] > 0  # the faults did reach the engine


def test_from_a_date_checkpoint_gives_the_same_vectors(compacted: tuple) -> None:
    journal, _copy, store, expected = compacted
    assert list((store / "_checkpoints").glob("ckpt-*.bin")), "compaction's date checkpoint is missing"
    midnight = (START_NS // NS_PER_DAY + 1) * NS_PER_DAY
    from_ns = midnight + 30 * NS_PER_S
    vectors, _fold, reader = replay_store(StoreRoots(store), journal, from_ns=from_ns, to_ns=midnight + 90 * NS_PER_S)
    got = [_key(v) for v in vectors]
    assert reader.info.start["from"] == "checkpoint"
    assert reader.info.start["tick_ns"] < from_ns
    want = [k for k in expected if from_ns <= k[0] < midnight + 90 * NS_PER_S]
    assert got == want and len(want) == 60 * len(SYMBOLS)


def test_symbol_filter_from_a_checkpoint(compacted: tuple, tmp_path: Path) -> None:
    journal, copy, store, _ = compacted
    midnight = (START_NS // NS_PER_DAY + 1) * NS_PER_DAY
    want = [k for k in _reference(copy, tmp_path, symbols=["BBBUSDT"]) if k[0] >= midnight]
    vectors, _fold, reader = replay_store(StoreRoots(store), journal, symbols=["BBBUSDT"], from_ns=midnight)
    assert reader.info.start["from"] == "checkpoint"
    assert [_key(v) for v in vectors] == want and want


def test_warm_up_start_without_a_checkpoint(compacted: tuple, tmp_path: Path) -> None:
    """A what-if registry cannot use a checkpoint: the replay warms up from enough history instead."""
    journal, copy, store, _ = compacted
    midnight = (START_NS // NS_PER_DAY + 1) * NS_PER_DAY
    from_ns = midnight + 100 * NS_PER_S
    reg = load_registry_text(SHORT_REGISTRY, source="test")
    want = [k for k in _reference(copy, tmp_path, registry=reg) if k[0] >= from_ns]
    vectors, _fold, reader = replay_store(StoreRoots(store), journal, registry=reg, from_ns=from_ns)
    assert reader.info.start["from"] == "warm-up", reader.info.start
    assert reader.info.start["seq"] > 1
    assert [_key(v) for v in vectors] == want and want


def test_a_missing_seq_range_is_an_error(compacted: tuple, tmp_path: Path) -> None:
    from journal.store.replay import StoreGap

    journal, _copy, store, _ = compacted
    broken = tmp_path / "journal"
    shutil.copytree(journal, broken)
    through = Manifest.load(store).compacted_through
    segments = list_segments(broken)
    tail = [i for i, (first, _) in enumerate(segments) if first > through]
    assert tail, "the tail was written after compaction, into segments of its own"
    for _, p in segments[: tail[0] + 1]:
        p.unlink()  # the kept compacted segment and the tail's first: the records after the store's end are gone
    with pytest.raises(StoreGap, match="in neither the store"):
        list(replay_store(StoreRoots(store), broken)[0])


def test_real_capture_store_replay_equals_journal(shared_bybit: Path, tmp_path: Path) -> None:
    from gateway_bridge.importer import import_files
    from tests.conftest import SOL_DOGE_FRAMES

    journal, copy, store = tmp_path / "j", tmp_path / "copy", tmp_path / "store"
    import_files(str(journal), "frames", [str(shared_bybit / SOL_DOGE_FRAMES)])
    shutil.copytree(journal, copy)
    expected = _reference(copy, tmp_path)
    compact(journal, StoreConfig(dir=str(store)))
    vectors, _fold, reader = replay_store(StoreRoots(store), journal)
    assert [_key(v) for v in vectors] == expected and expected
    assert reader.info.store_records > 0
    assert np.isfinite([np.frombuffer(k[3])[0] for k in expected]).any()


def test_partitions_moved_to_the_archive_still_replay(compacted: tuple, tmp_path: Path) -> None:
    """Retention moves the store's date partitions to the archive; replay reads them there."""
    from journal.store.retention import run_retention

    journal, _copy, store, expected = compacted
    hot, archive = tmp_path / "store", tmp_path / "archive"
    shutil.copytree(store, hot)
    cfg = StoreConfig(dir=str(hot), archive_dir=str(archive), retention_days=1)
    run_retention(cfg, now_ns=START_NS + 10 * NS_PER_DAY)
    assert not [p for p in hot.rglob("*.parquet")], "retention should have moved every partition"
    assert Manifest.load(hot).files and all(f.location == "archive" for f in Manifest.load(hot).files)
    vectors, _fold, reader = replay_store(StoreRoots(hot, archive), journal)
    assert [_key(v) for v in vectors] == expected
    assert reader.info.store_records > 0
