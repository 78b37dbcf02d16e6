"""Retention: old hot partitions move to the archive (or go), old archive ones go; crash-safe at every step."""

from __future__ import annotations

import errno
import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.record import Kind, Record
from journal.checkpoints import CheckpointStore
from journal.config import JournalConfig
from journal.segment import list_segments
from journal.store import retention
from journal.store.config import StoreConfig
from journal.store.layout import day_start_ns, part_name, partition_dir
from journal.store.manifest import FileEntry, Manifest, SegmentEntry
from journal.store.retention import RetentionError, Runner, cutoff, plan, run_retention
from journal.writer import JournalWriter

H = 3_600 * 1_000_000_000
NOW = day_start_ns("2026-08-20") + 12 * H  # a run at noon UTC on 2026-08-20
DATES = ["2026-08-09", "2026-08-15", "2026-08-16", "2026-08-17", "2026-08-19", "2026-08-20", "2026-08-21"]


def build_store(hot: Path, dates: list[str] = DATES, location: str = "hot", root: Path | None = None) -> Manifest:
    """Two symbols' trades plus the control table per date: real files (distinct bytes), listed in the manifest."""
    m = Manifest.load(hot)
    seq = max((f.last_seq for f in m.files), default=0) + 1
    for date in dates:
        for table, sym in (("raw_trades", "SOLUSDT"), ("raw_trades", "DOGEUSDT"), ("control", "")):
            rel = partition_dir(table, date, sym) / part_name(seq, seq + 9)
            p = (root or hot) / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(f"{rel}\n".encode() * (seq % 7 + 3))
            m.files.append(FileEntry(rel.as_posix(), table, date, sym, 10, 10, seq, seq + 9, "x", p.stat().st_size,
                                     location))
            seq += 10
    m.compacted_through = seq - 1
    m.save(hot)
    return m


def tree(d: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of every file under `d` (the empty lock file aside)."""
    return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(d.rglob("*")) if p.is_file() and p.name != retention.LOCK_NAME} if d.exists() else {}


def reachable(hot: Path, archive: Path | None) -> None:
    """The invariant: every manifest entry's file is where its location says, with the verified size."""
    for e in Manifest.load(hot).files:
        root = hot if e.location == "hot" else archive
        assert root is not None and (root / e.path).is_file(), e
        assert (root / e.path).stat().st_size == e.bytes, e


def test_cutoff_is_counted_in_whole_utc_days_from_today() -> None:
    assert cutoff(NOW, 0) is None
    assert cutoff(NOW, 1) == "2026-08-19"
    assert cutoff(NOW, 3) == "2026-08-17"
    assert cutoff(day_start_ns("2026-03-01"), 1) == "2026-02-28"  # 00:00 sharp is still 03-01


def test_plan_moves_old_partitions_and_deletes_very_old_archive_ones(tmp_path: Path) -> None:
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    m = build_store(hot)
    build_store(hot, ["2026-08-01", "2026-08-12"], location="archive", root=arch)
    m = Manifest.load(hot)
    cfg = StoreConfig(dir=str(hot), archive_dir=str(arch), retention_days=3, archive_retention_days=10)
    acts = plan(cfg, m, None, NOW)
    by = {(a.action, a.date) for a in acts}
    # hot kept from 08-17, archive kept from 08-10: 08-09 (hot) is past both -> deleted outright
    assert by == {("delete_hot", "2026-08-09"), ("archive", "2026-08-15"), ("archive", "2026-08-16"),
                  ("delete_archive", "2026-08-01")}
    assert len(acts) == 4 * 3 and all(a.bytes > 0 for a in acts)


def test_run_moves_files_with_their_bytes_and_flips_the_manifest(tmp_path: Path) -> None:
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    build_store(hot)
    before = tree(hot)
    cfg = StoreConfig(dir=str(hot), archive_dir=str(arch), retention_days=3)
    summary = run_retention(cfg, now_ns=NOW)
    moved = {k for k in before if "date=2026-08-09" in k or "date=2026-08-15" in k or "date=2026-08-16" in k}
    assert len(moved) == 9 and summary["counts"] == {"archive": 9}
    assert tree(arch) == {k: before[k] for k in moved}
    assert set(tree(hot)) == (set(before) - moved) | {"_manifest.json"}
    m = Manifest.load(hot)
    assert {e.path for e in m.files if e.location == "archive"} == moved and len(m.files) == 21
    assert not (hot / "raw_trades" / "date=2026-08-15").exists()  # emptied partition directories go
    reachable(hot, arch)
    assert run_retention(cfg, now_ns=NOW)["actions"] == []  # idempotent


def test_a_copy_across_filesystems_is_checked_and_gives_the_same_result(tmp_path: Path) -> None:
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    build_store(hot, ["2026-08-15"])
    before = tree(hot)
    cfg = StoreConfig(dir=str(hot), archive_dir=str(arch), retention_days=3)
    m = Manifest.load(hot)
    runner = Runner(cfg, m, None, link=_no_link)
    runner.run(plan(cfg, m, None, NOW))
    assert tree(arch) == {k: v for k, v in before.items() if k != "_manifest.json"}
    assert all(os.stat(arch / k).st_nlink == 1 for k in tree(arch))  # real copies, not links
    reachable(hot, arch)


def test_without_an_archive_old_partitions_are_deleted(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    build_store(hot)
    summary = run_retention(StoreConfig(dir=str(hot), retention_days=1), now_ns=NOW)
    assert summary["counts"] == {"delete_hot": 4 * 3}  # 08-09, 08-15, 08-16, 08-17: all before 08-19
    assert sorted({e.date for e in Manifest.load(hot).files}) == ["2026-08-19", "2026-08-20", "2026-08-21"]
    assert {k.split("/")[1] for k in tree(hot) if "/" in k} == {"date=2026-08-19", "date=2026-08-20",
                                                                "date=2026-08-21"}


def test_today_and_zero_retention_are_never_touched(tmp_path: Path) -> None:
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    build_store(hot, ["2026-08-19", "2026-08-20", "2026-08-21"])
    before = tree(hot)
    assert run_retention(StoreConfig(dir=str(hot), archive_dir=str(arch)), now_ns=NOW)["actions"] == []
    summary = run_retention(StoreConfig(dir=str(hot), retention_days=1), now_ns=NOW)
    assert summary["actions"] == [] and tree(hot) == before


def test_dry_run_lists_and_changes_nothing(tmp_path: Path) -> None:
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    build_store(hot)
    before = tree(hot)
    cfg = StoreConfig(dir=str(hot), archive_dir=str(arch), retention_days=3)
    summary = run_retention(cfg, now_ns=NOW, dry_run=True)
    assert summary["dry_run"] and summary["counts"] == {"archive": 9} and len(summary["actions"]) == 9
    assert {a["action"] for a in summary["actions"]} == {"archive"}
    assert tree(hot) == before and not arch.exists()


def test_unlisted_files_are_never_touched(tmp_path: Path) -> None:
    """An uncommitted part file in the hot store (a crashed compaction's) stays, old as it is."""
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    build_store(hot, ["2026-08-09"])
    stray = hot / "raw_trades" / "date=2026-08-01" / "symbol=SOLUSDT" / part_name(900, 901)
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"uncommitted")
    mine = arch / "notes" / "readme.txt"  # something of the operator's in the archive
    mine.parent.mkdir(parents=True)
    mine.write_text("keep")
    run_retention(StoreConfig(dir=str(hot), archive_dir=str(arch), retention_days=1, archive_retention_days=5),
                  now_ns=NOW)
    assert stray.read_bytes() == b"uncommitted" and mine.read_text() == "keep"


def test_a_file_changed_since_compaction_is_refused(tmp_path: Path) -> None:
    hot, arch = tmp_path / "hot", tmp_path / "arch"
    m = build_store(hot, ["2026-08-09"])
    (hot / m.files[0].path).write_bytes(b"tampered")
    with pytest.raises(RetentionError, match="the manifest says"):
        run_retention(StoreConfig(dir=str(hot), archive_dir=str(arch), retention_days=1), now_ns=NOW)
    assert Manifest.load(hot).files[0].location == "hot" and (hot / m.files[0].path).read_bytes() == b"tampered"


class Crash(Exception):
    """A simulated power cut."""


class CrashAt:
    """Counts the steps of a run (place a copy, save the manifest, remove a file); the k-th one crashes."""

    def __init__(self, k: int) -> None:
        self.k, self.calls = k, 0

    def wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def step(*a: Any, **kw: Any) -> Any:
            self.calls += 1
            if self.calls == self.k:
                raise Crash(name)
            return real(*a, **kw)
        return step


def _no_link(src: Path, dst: Path) -> None:
    raise OSError(errno.EXDEV, "Invalid cross-device link")


def _cfg(d: Path) -> StoreConfig:
    return StoreConfig(dir=str(d / "hot"), archive_dir=str(d / "arch"), retention_days=3, archive_retention_days=9)


@pytest.mark.parametrize("copy", [False, True], ids=["link", "copy"])
def test_a_crash_at_any_step_leaves_every_file_reachable_and_a_rerun_finishes(tmp_path: Path, copy: bool,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Crash at the k-th step for every k: every listed file stays reachable; a rerun gives the crash-free result."""
    reference = tmp_path / "ref"
    dates = ["2026-08-09", "2026-08-10", "2026-08-15", "2026-08-20"]
    build_store(reference / "hot", dates)
    run_retention(_cfg(reference), now_ns=NOW)
    expected = (tree(reference / "hot"), tree(reference / "arch"), Manifest.load(reference / "hot").files)
    if copy:
        monkeypatch.setattr(retention.os, "link", _no_link)
    copies = [0]
    real_copy = retention._copy_checked

    def counted_copy(src: Path, tmp: Path) -> None:
        copies[0] += 1
        real_copy(src, tmp)

    monkeypatch.setattr(retention, "_copy_checked", counted_copy)
    k, crashed = 0, True
    while crashed:
        k += 1
        d = tmp_path / f"k{k}"
        build_store(d / "hot", dates)
        crash = CrashAt(k)
        with monkeypatch.context() as mp:
            mp.setattr(Runner, "_place", crash.wrap("_place", Runner._place))
            mp.setattr(Manifest, "save", crash.wrap("save", Manifest.save))
            mp.setattr(retention, "_remove", crash.wrap("_remove", retention._remove))
            try:
                run_retention(_cfg(d), now_ns=NOW)
                crashed = False
            except Crash:
                pass
        reachable(d / "hot", d / "arch")
        run_retention(_cfg(d), now_ns=NOW)
        hot_tree = tree(d / "hot")
        listed = Manifest.load(d / "hot").paths() | {"_manifest.json"}
        # a hot delete cut short after its manifest save leaves an unlisted (uncommitted) file, which
        # readers ignore and the next compaction removes; retention never touches unlisted hot files
        strays = {p for p in hot_tree if p not in listed}
        assert len(strays) <= 1 and all(p.split("/")[1] in ("date=2026-08-09", "date=2026-08-10")
                                        for p in strays), strays
        got = ({p: h for p, h in hot_tree.items() if p in listed}, tree(d / "arch"), Manifest.load(d / "hot").files)
        assert got == expected, f"crash at step {k}"
    assert k > 10
    assert (copies[0] > 0) == copy  # the copy variant really copied; the link one never did  # every step of 12 files was tried


# -- journal segments -----------------------------------------------------------------------------

def _journal(d: Path, days: list[str]) -> list[tuple[int, Path]]:
    """One segment per day: 5 trade records each, received at 10:00 UTC that day."""
    payload = {"p": np.array([1.5]), "v": np.array([1.0]), "side": np.array([1], dtype=np.int8),
               "T": np.array([1], dtype=np.int64), "id": ["a"], "bt": [False]}
    with JournalWriter(JournalConfig(dir=str(d), fsync="never")) as w:
        for day in days:  # a day apart: past segment_max_age_s, so each day opens a segment
            t = day_start_ns(day) + 10 * H
            w.append([Record(0, t + i, Kind.TRADES, "SOLUSDT", 0, 0, payload) for i in range(5)])
    return list_segments(d)


def test_only_compacted_old_segments_go_and_never_the_newest(tmp_path: Path) -> None:
    j, hot = tmp_path / "journal", tmp_path / "hot"
    segs = _journal(j, ["2026-08-09", "2026-08-10", "2026-08-11", "2026-08-12", "2026-08-19"])
    assert len(segs) == 5
    names = [p.name for _, p in segs]
    m = Manifest()
    first = [s for s, _ in segs]
    entries = [SegmentEntry(n, f, f + 4, 5, 1) for n, f in zip(names, first, strict=True)]
    entries[1] = entries[1]._replace(records=4)  # the manifest does not match what the segment holds
    entries[2] = entries[2]._replace(deleted=True)  # listed as deleted already (still on disk): left alone
    m.segments = entries[:1] + entries[1:3] + entries[4:]  # segment 4 (08-12) was never compacted
    m.compacted_through = 25
    m.save(hot)
    cfg = StoreConfig(dir=str(hot), retention_days=3)
    dry = run_retention(cfg, j, now_ns=NOW, dry_run=True)
    assert [(a["action"], a["path"]) for a in dry["actions"]] == [("delete_segment", names[0])]
    # the shard's newest checkpoint is at seq 3: segment 1 (seqs 1-5) holds its tail and stays
    ckpts = tmp_path / "checkpoints"
    CheckpointStore(ckpts).save(3, b"state", {})
    assert run_retention(cfg, j, checkpoints_dir=ckpts, now_ns=NOW, dry_run=True)["actions"] == []
    assert run_retention(cfg, j, checkpoints_dir=tmp_path / "none", now_ns=NOW, dry_run=True)["actions"] == []
    CheckpointStore(ckpts).save(5, b"state", {})
    run_retention(cfg, j, checkpoints_dir=ckpts, now_ns=NOW)
    assert [p.name for _, p in list_segments(j)] == names[1:]
    assert Manifest.load(hot).segment(names[0]).deleted
    # 08-19 is newest and within retention either way; even 30 days later the newest one stays
    later = day_start_ns("2026-09-30")
    run_retention(cfg, j, now_ns=later)
    assert [p.name for _, p in list_segments(j)] == names[1:]


def test_a_run_while_the_store_is_locked_is_refused(tmp_path: Path) -> None:
    hot = tmp_path / "hot"
    build_store(hot, ["2026-08-09"])
    before = tree(hot)
    with retention.store_lock(hot), pytest.raises(RetentionError, match="locked by another"):
        run_retention(StoreConfig(dir=str(hot), retention_days=1), now_ns=NOW)
    assert tree(hot) == before
    assert run_retention(StoreConfig(dir=str(hot), retention_days=1), now_ns=NOW)["counts"] == {"delete_hot": 3}
