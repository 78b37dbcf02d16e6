"""Reader: filters against a naive filter, index columns, tail-follow beside a live writer."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from engine.record import Kind, Record
from journal.codec import encode
from journal.config import JournalConfig
from journal.errors import JournalCorruption
from journal.reader import JournalReader
from journal.writer import JournalWriter
from tests.journal import make_records, numbered, same_records, segment_files


def write(d: Path, recs: list[Record], max_bytes: int = 4096, seed: int = 0) -> list[Record]:
    rng = random.Random(seed)
    out: list[Record] = []
    with JournalWriter(JournalConfig(dir=str(d), fsync="never", segment_max_bytes=max_bytes)) as w:
        i = 0
        while i < len(recs):
            n = rng.randint(1, 8)
            out += w.append(recs[i : i + n])
            i += n
    return out


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    d = tmp_path_factory.mktemp("journal")
    return d, write(d, make_records(2500, seed=21))


def test_reads_everything_in_order(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    assert len(segment_files(d)) > 20
    assert same_records(list(JournalReader(d).records()), written)


def test_filters_match_a_naive_filter(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    rng = random.Random(22)
    all_kinds = sorted({r.kind for r in written})
    lo, hi = written[0].recv_ns, written[-1].recv_ns
    cases = [(0, None, None), (len(written) + 5, None, None), (0, hi + 1, None), (0, lo, None), (1, None, [])]
    for _ in range(25):
        from_seq = rng.choice([0, 1, rng.randint(1, len(written)), len(written)])
        from_ns = rng.choice([None, rng.randint(lo - 10, hi + 10), written[rng.randrange(len(written))].recv_ns])
        kinds = rng.choice([None, rng.sample(all_kinds, rng.randint(1, len(all_kinds)))])
        cases.append((from_seq, from_ns, kinds))
    reader = JournalReader(d)
    for from_seq, from_ns, kinds in cases:
        want = [r for r in written if r.seq >= from_seq and (from_ns is None or r.recv_ns >= from_ns)
                and (kinds is None or r.kind in kinds)]
        got = list(reader.records(from_seq=from_seq, from_ns=from_ns, kinds=kinds))
        assert same_records(got, want), (from_seq, from_ns, kinds)


def test_kinds_accepts_enum_sets(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    kinds = frozenset({Kind.TRADES, Kind.TICK})
    assert [r.seq for r in JournalReader(d).records(kinds=kinds)] == [r.seq for r in written if r.kind in kinds]


def test_index_columns(journal: tuple[Path, list[Record]]) -> None:
    d, written = journal
    ix = JournalReader(d).index()
    assert ix.seq.tolist() == [r.seq for r in written]
    assert ix.recv_ns.tolist() == [r.recv_ns for r in written]
    assert ix.kind.tolist() == [int(r.kind) for r in written]
    assert [p.name for p in ix.segments] == [p.name for p in segment_files(d)]
    assert ix.tail is None
    sizes = np.array([p.stat().st_size for p in ix.segments])
    ends = ix.offset + ix.length
    assert np.all(ends <= sizes[ix.segment])
    last = np.flatnonzero(np.diff(ix.segment, append=len(ix.segments)))  # last frame of each segment
    assert ends[last].tolist() == sizes.tolist()


def test_missing_directory_reads_as_empty(tmp_path: Path) -> None:
    assert list(JournalReader(tmp_path / "nope").records()) == []
    assert len(JournalReader(tmp_path / "nope").index().seq) == 0


def test_follow_receives_every_record_from_a_live_writer(tmp_path: Path) -> None:
    recs = make_records(3000, seed=23)
    done = threading.Event()
    written: list[Record] = []

    def produce() -> None:
        rng = random.Random(24)
        with JournalWriter(JournalConfig(dir=str(tmp_path), fsync="never", segment_max_bytes=8192)) as w:
            i = 0
            while i < len(recs):
                n = rng.randint(1, 20)
                written.extend(w.append(recs[i : i + n]))
                i += n
                if rng.random() < 0.1:
                    time.sleep(0.001)
        done.set()

    t = threading.Thread(target=produce)
    t.start()  # the reader may start before the first segment exists
    got = list(JournalReader(tmp_path).records(follow=True, stop=done.is_set, poll_s=0.001))
    t.join()
    assert len(segment_files(tmp_path)) > 10
    assert same_records(got, numbered(recs)) and same_records(written, numbered(recs))


def test_follow_waits_for_a_partially_written_frame(tmp_path: Path) -> None:
    recs = make_records(12, seed=25)
    write(tmp_path, recs[:10], max_bytes=1 << 20)
    seg = segment_files(tmp_path)[0]
    frame = encode(recs[10]._replace(seq=11)) + encode(recs[11]._replace(seq=12))
    got: list[Record] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def follow() -> None:
        try:
            got.extend(JournalReader(tmp_path).records(follow=True, stop=stop.is_set, poll_s=0.001))
        except BaseException as e:  # surfaced below
            errors.append(e)

    t = threading.Thread(target=follow)
    t.start()
    prev = 0
    with open(seg, "ab", buffering=0) as f:
        for cut in (1, 6, 30, len(frame) - 1, len(frame)):  # two frames arrive in pieces
            time.sleep(0.02)
            f.write(frame[prev:cut])
            prev = cut
    time.sleep(0.05)
    stop.set()
    t.join(5)
    assert not errors
    assert same_records(got, numbered(recs))


def test_without_follow_a_torn_tail_ends_the_iteration(tmp_path: Path) -> None:
    recs = write(tmp_path, make_records(5, seed=26), max_bytes=1 << 20)
    seg = segment_files(tmp_path)[0]
    with open(seg, "ab") as f:
        f.write(b"\x50\x00\x00\x00\x01\x02")
    reader = JournalReader(tmp_path)
    assert same_records(list(reader.records()), recs)
    assert reader.tail is not None and reader.tail.path == seg


def test_a_missing_middle_segment_is_corruption(tmp_path: Path) -> None:
    write(tmp_path, make_records(200, seed=27))
    segs = segment_files(tmp_path)
    segs[2].unlink()
    with pytest.raises(JournalCorruption) as e:
        list(JournalReader(tmp_path).records())
    assert e.value.path == str(segs[1]) and e.value.offset == segs[1].stat().st_size
