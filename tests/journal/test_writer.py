"""Writer: gap-free numbering across rolls and restarts, one write per batch, fsync policies."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.record import NS_PER_S, Kind, Record
from journal.config import JournalConfig
from journal.errors import JournalError
from journal.reader import JournalReader
from journal.writer import JournalWriter
from tests.journal import SEG_HEADER, make_records, numbered, same_records, segment_files

REPO = Path(__file__).resolve().parents[2]


def cfg(d: Path, **kw: object) -> JournalConfig:
    return JournalConfig(dir=str(d), **{"fsync": "never", **kw})


def batches(records: list[Record], seed: int = 0, max_size: int = 9) -> list[list[Record]]:
    rng = random.Random(seed)
    out, i = [], 0
    while i < len(records):
        n = rng.randint(1, max_size)
        out.append(records[i : i + n])
        i += n
    return out


def read_headers(d: Path) -> list[tuple[str, int, int]]:
    """(file name, first_seq, created_recv_ns) of every segment, parsed with struct."""
    out = []
    for p in segment_files(d):
        magic, version, _, _, first_seq, created = SEG_HEADER.unpack_from(p.read_bytes(), 0)
        assert (magic, version) == (b"FSJOURN1", 1)
        out.append((p.name, first_seq, created))
    return out


def test_append_numbers_records_and_returns_them(tmp_path: Path) -> None:
    recs = make_records(50, seed=1)
    with JournalWriter(cfg(tmp_path)) as w:
        assert (w.next_seq, w.last_recv_ns) == (1, 0)
        got = [r for b in batches(recs) for r in w.append(b)]
        assert (w.next_seq, w.last_recv_ns) == (51, recs[-1].recv_ns)
    assert same_records(got, numbered(recs))
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_frames_on_disk_carry_seq_recv_ns_kind(tmp_path: Path) -> None:
    recs = make_records(10, seed=2)
    with JournalWriter(cfg(tmp_path)) as w:
        w.append(recs)
    data = segment_files(tmp_path)[0].read_bytes()
    pos, seen = SEG_HEADER.size, []
    while pos < len(data):
        length, _ = struct.unpack_from("<II", data, pos)
        seen.append(struct.unpack_from("<QqH", data, pos + 8))
        pos += 4 + length
    assert pos == len(data)
    assert seen == [(i + 1, r.recv_ns, r.kind) for i, r in enumerate(recs)]


def test_empty_append_writes_nothing(tmp_path: Path) -> None:
    with JournalWriter(cfg(tmp_path)) as w:
        assert w.append([]) == []
        assert w.next_seq == 1
    assert segment_files(tmp_path) == []


def test_size_roll_keeps_numbering_gap_free(tmp_path: Path) -> None:
    recs = make_records(600, seed=3)
    bs = batches(recs, seed=3)
    with JournalWriter(cfg(tmp_path, segment_max_bytes=4096)) as w:
        for b in bs:
            w.append(b)
    headers = read_headers(tmp_path)
    assert len(headers) > 5
    for name, first_seq, _ in headers:
        assert name == f"{first_seq:020d}.seg"
    for p in segment_files(tmp_path):
        assert p.stat().st_size <= 4096  # batches here are far smaller than a segment
    firsts = [h[1] for h in headers]
    assert firsts[0] == 1 and firsts == sorted(firsts)
    # Segments start only at batch boundaries.
    starts = set(np.cumsum([0] + [len(b) for b in bs]).tolist())
    assert {f - 1 for f in firsts} <= starts
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_time_roll_follows_recv_ns(tmp_path: Path) -> None:
    t0 = 1_786_310_800 * NS_PER_S
    recs = [Record(0, t0 + i * 300_000_000, Kind.TICK, "", 0, 0, {}) for i in range(20)]
    with JournalWriter(cfg(tmp_path, segment_max_age_s=1)) as w:
        for r in recs:
            w.append([r])
    # Naive model: a record opens a new segment when it is >= 1 s after the segment's first record.
    expected, created = [], None
    for i, r in enumerate(recs):
        if created is None or r.recv_ns - created >= NS_PER_S:
            expected.append((i + 1, r.recv_ns))
            created = r.recv_ns
    assert [(h[1], h[2]) for h in read_headers(tmp_path)] == expected
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_restart_continues_numbering_and_recv_ns(tmp_path: Path) -> None:
    recs = make_records(120, seed=4)
    for part in (recs[:50], recs[50:51], recs[51:]):
        with JournalWriter(cfg(tmp_path, segment_max_bytes=4096)) as w:
            assert w.next_seq == recs.index(part[0]) + 1
            w.append(part)
            assert w.last_recv_ns == part[-1].recv_ns
    with JournalWriter(cfg(tmp_path)) as w:
        assert (w.next_seq, w.last_recv_ns) == (121, recs[-1].recv_ns)
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_restart_on_an_empty_last_segment_takes_recv_ns_from_the_one_before(tmp_path: Path) -> None:
    recs = make_records(30, seed=5)
    with JournalWriter(cfg(tmp_path)) as w:
        w.append(recs)
    (tmp_path / "00000000000000000031.seg").write_bytes(SEG_HEADER.pack(b"FSJOURN1", 1, 0, 0, 31, recs[-1].recv_ns + 5))
    with JournalWriter(cfg(tmp_path)) as w:
        assert (w.next_seq, w.last_recv_ns) == (31, recs[-1].recv_ns)
        assert w.append(recs[:1])[0].seq == 31


def test_a_process_killed_after_append_loses_nothing(tmp_path: Path) -> None:
    script = (
        "import os, sys\n"
        "from journal.config import JournalConfig\n"
        "from journal.writer import JournalWriter\n"
        "from tests.journal import make_records\n"
        "w = JournalWriter(JournalConfig(dir=sys.argv[1], fsync='never', segment_max_bytes=8192))\n"
        "for r in make_records(400, seed=6):\n"
        "    w.append([r])\n"
        "os._exit(9)  # no close, no flush, no fsync\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], cwd=REPO, timeout=60)
    assert proc.returncode == 9
    with JournalWriter(cfg(tmp_path)) as w:
        assert w.next_seq == 401
    assert same_records(list(JournalReader(tmp_path).records()), numbered(make_records(400, seed=6)))


def test_each_batch_is_one_os_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[int] = []
    real_write = os.write

    def counting_write(fd: int, data: bytes) -> int:
        writes.append(len(data))
        return real_write(fd, data)

    recs = make_records(200, seed=7)
    with JournalWriter(cfg(tmp_path)) as w:
        w.append(recs[:1])  # creates the segment (header write + batch write)
        monkeypatch.setattr(os, "write", counting_write)
        for b in batches(recs[1:], seed=7, max_size=50):
            before = len(writes)
            w.append(b)
            assert len(writes) == before + 1
        monkeypatch.undo()
    assert sum(writes) == segment_files(tmp_path)[0].stat().st_size - SEG_HEADER.size - len(_frame_bytes(tmp_path, 1))


def _frame_bytes(d: Path, n: int) -> bytes:
    """The first n frames of the first segment."""
    data = segment_files(d)[0].read_bytes()
    pos = SEG_HEADER.size
    for _ in range(n):
        pos += 4 + struct.unpack_from("<I", data, pos)[0]
    return data[SEG_HEADER.size : pos]


class FsyncSpy:
    """Stands in for os.fsync: records the calls and fsyncs nothing."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, fd: int) -> None:
        os.fstat(fd)  # the fd must be open
        self.calls += 1


def test_fsync_always_syncs_every_batch(tmp_path: Path) -> None:
    spy = FsyncSpy()
    recs = make_records(60, seed=8)
    with JournalWriter(cfg(tmp_path, fsync="always"), fsync=spy) as w:
        w.append(recs[:1])
        for i, b in enumerate(batches(recs[1:], seed=8), start=1):
            before = spy.calls
            w.append(b)
            assert spy.calls == before + 1, f"batch {i}"


def test_fsync_interval_is_group_commit_on_the_injected_clock(tmp_path: Path) -> None:
    now = [0]
    spy = FsyncSpy()
    recs = make_records(10, seed=9)
    with JournalWriter(cfg(tmp_path, fsync="interval_ms", fsync_interval_ms=5), clock_ns=lambda: now[0],
                       fsync=spy) as w:
        w.append(recs[:1])
        base = spy.calls  # segment creation syncs file and directory
        now[0] = 1_000_000
        w.append(recs[1:2])
        assert spy.calls == base and not w.maybe_sync()  # 1 ms: too early
        now[0] = 5_000_000
        assert w.maybe_sync() and spy.calls == base + 1  # 5 ms since the last sync: idle commit
        assert not w.maybe_sync()  # nothing new to sync
        now[0] = 6_000_000
        w.append(recs[2:3])
        assert spy.calls == base + 1
        now[0] = 10_000_000
        w.append(recs[3:4])  # 5 ms after the last sync: this append commits
        assert spy.calls == base + 2
        now[0] = 99_000_000
        assert not w.maybe_sync()
    assert spy.calls == base + 2  # close had nothing dirty


def test_fsync_never_does_not_sync(tmp_path: Path) -> None:
    spy = FsyncSpy()
    with JournalWriter(cfg(tmp_path, fsync="never", segment_max_bytes=4096), fsync=spy) as w:
        for b in batches(make_records(300, seed=10), seed=10):
            w.append(b)
            w.maybe_sync()
    assert spy.calls == 0
    assert len(segment_files(tmp_path)) > 1


@pytest.mark.parametrize("policy", ["always", "interval_ms", "never"])
def test_every_policy_writes_a_readable_journal(tmp_path: Path, policy: str) -> None:
    recs = make_records(100, seed=11)
    with JournalWriter(cfg(tmp_path, fsync=policy, segment_max_bytes=4096)) as w:
        for b in batches(recs, seed=11):
            w.append(b)
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_a_batch_that_cannot_be_encoded_writes_nothing(tmp_path: Path) -> None:
    recs = make_records(5, seed=12)
    with JournalWriter(cfg(tmp_path)) as w:
        w.append(recs[:2])
        size = segment_files(tmp_path)[0].stat().st_size
        bad = Record(0, recs[2].recv_ns, Kind.TRADES, "SOLUSDT", 0, 0, {"x": np.array([object()])})
        with pytest.raises(TypeError):
            w.append([recs[2], bad])
        assert w.next_seq == 3 and segment_files(tmp_path)[0].stat().st_size == size
        assert w.append(recs[2:])[0].seq == 3
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    with JournalWriter(cfg(tmp_path)):
        with pytest.raises(JournalError, match="another writer"):
            JournalWriter(cfg(tmp_path))
    JournalWriter(cfg(tmp_path)).close()  # released on close


def _enospc_write(real: object, after: int) -> object:
    """An os.write that writes `after` bytes of the first call's data then fails with ENOSPC (a full disk)."""
    import errno

    state = {"left": after}

    def write(fd: int, data: bytes) -> int:
        if state["left"] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data)[: state["left"]])  # type: ignore[operator]
        state["left"] -= n
        return n

    return write


def test_a_full_disk_is_one_journal_error_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = make_records(40, seed=11)
    with JournalWriter(cfg(tmp_path)) as w:
        w.append(recs[:10])
        size = segment_files(tmp_path)[0].stat().st_size
        monkeypatch.setattr(os, "write", _enospc_write(os.write, 100))  # part of the batch goes, then ENOSPC
        with pytest.raises(JournalError) as e:
            w.append(recs[10:20])
        monkeypatch.undo()
        msg = str(e.value)
        assert msg.startswith(f"journal {tmp_path}: cannot append ") and "No space left on device" in msg
        assert "\n" not in msg and "nothing of the batch was journaled" in msg
        assert w.next_seq == 11 and segment_files(tmp_path)[0].stat().st_size == size  # the partial frame is cut
        assert w.append(recs[10:])[0].seq == 11  # space again: it goes on
    assert same_records(list(JournalReader(tmp_path).records()), numbered(recs))


def test_a_full_disk_while_creating_a_segment_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "write", _enospc_write(os.write, 0))
    with JournalWriter(cfg(tmp_path)) as w:
        with pytest.raises(JournalError, match=f"journal {tmp_path}: cannot create segment 0+1.seg: No space left"):
            w.append(make_records(1))
    assert segment_files(tmp_path) == []


@pytest.mark.parametrize("layout", ["file", "under_file"])
def test_a_journal_dir_that_is_or_lies_under_a_file_is_one_journal_error(tmp_path: Path, layout: str) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"keep")
    d = f if layout == "file" else f / "j"
    with pytest.raises(JournalError) as e:
        JournalWriter(cfg(d))
    assert str(e.value).startswith(f"journal {d}: ") and "file" in str(e.value)
    assert f.read_bytes() == b"keep" and sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_a_read_only_journal_dir_is_one_journal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Read-only by permissions when not root; as root (permissions do not bind) the OS error is injected."""
    import errno

    d = tmp_path / "j"
    d.mkdir()
    if os.geteuid() != 0:
        d.chmod(0o555)
        try:
            with pytest.raises(JournalError, match=f"journal {d}: directory is not writable"):
                JournalWriter(cfg(d))
        finally:
            d.chmod(0o755)
        return
    real_open = os.open

    def read_only_open(path: object, flags: int, *a: object) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *a)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", read_only_open)
    with pytest.raises(JournalError) as e:
        JournalWriter(cfg(d))
    assert str(e.value) == (f"journal {d}: cannot open the lock file .lock: Read-only file system "
                            "(is the directory read-only?)")
    monkeypatch.undo()
    assert list(d.iterdir()) == []
