"""journal repair: a corrupt closed segment's tail goes aside, the lost seqs are reported, later segments survive."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from engine.record import Record
from journal.config import JournalConfig
from journal.errors import JournalCorruption, JournalError
from journal.reader import JournalReader
from journal.repair import repair
from journal.stats import journal_stats
from journal.writer import JournalWriter
from tests.journal import frame_ends, make_records, same_records, segment_files

SEG_HEADER_SIZE = 32


def _three_segments(d: Path) -> list[Record]:
    """Write batches of 5 until a third segment holds two batches; return every record as numbered."""
    written: list[Record] = []
    recs = make_records(2000, seed=7)
    with JournalWriter(JournalConfig(dir=str(d), fsync="never", segment_max_bytes=6000)) as w:
        for i in range(0, len(recs), 5):
            written += w.append(recs[i : i + 5])
            segs = segment_files(d)
            if len(segs) == 3 and len(frame_ends(segs[2])) >= 10:
                break
    assert len(segment_files(d)) == 3
    return written


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def _first_seq(path: Path) -> int:
    return int(path.name[:20])


def test_repair_moves_the_damaged_tail_aside_and_keeps_later_segments(tmp_path: Path) -> None:
    written = _three_segments(tmp_path)
    first, mid, last = segment_files(tmp_path)
    ends = frame_ends(mid)
    k = len(ends) // 2  # frames 0..k-1 of the middle segment stay; frame k gets a flipped byte
    cut = ends[k - 1]
    (length,) = struct.unpack_from("<I", mid.read_bytes(), cut)
    _flip(mid, cut + 4 + length // 2)  # inside frame k's CRC-covered bytes
    damaged = mid.read_bytes()
    with pytest.raises(JournalCorruption, match=f"{mid}: .* at offset {cut} .*journal repair --journal {tmp_path}"):
        journal_stats(tmp_path)

    report = repair(tmp_path)

    lost = [_first_seq(mid) + k, _first_seq(last) - 1]  # by hand: frame k to the seq before the last segment
    assert report["lost_records"] == lost[1] - lost[0] + 1 > 0
    (entry,) = report["repaired"]
    assert entry["segment"] == mid.name and entry["offset"] == cut and entry["lost_seq"] == lost
    assert entry["kept_in"] == f"{mid.name}.torn-{cut}" and entry["bytes_moved"] == len(damaged) - cut
    assert (tmp_path / entry["kept_in"]).read_bytes() == damaged[cut:]  # nothing deleted
    assert mid.read_bytes() == damaged[:cut]
    marker = json.loads((tmp_path / f"{mid.name}.lost-{lost[0]}-{lost[1]}.json").read_text())
    assert marker["lost_seq"] == lost
    # what survived, by seq, against what was written
    want = [r for r in written if not lost[0] <= r.seq <= lost[1]]
    got = list(JournalReader(tmp_path).records())
    assert same_records(got, want)
    assert [r.seq for r in got if r.seq > lost[1]] == list(range(lost[1] + 1, written[-1].seq + 1))
    s = journal_stats(tmp_path)
    assert s["records"] == len(want) and s["seq"] == {"first": 1, "last": written[-1].seq}
    assert s["lost_seq"] == [lost] and report["live_tail"] is None
    # the journal opens and goes on; a second repair finds nothing to do
    with JournalWriter(JournalConfig(dir=str(tmp_path), fsync="never")) as w:
        assert w.next_seq == written[-1].seq + 1
        w.append(make_records(3, seed=8, start_ns=written[-1].recv_ns))
    assert repair(tmp_path)["repaired"] == []
    assert len(list(JournalReader(tmp_path).records(from_seq=lost[0]))) == len(want) - (lost[0] - 1) + 3


def test_a_closed_segment_with_a_foreign_header_loses_all_of_its_records(tmp_path: Path) -> None:
    written = _three_segments(tmp_path)
    _, mid, last = segment_files(tmp_path)
    original = mid.read_bytes()
    _flip(mid, 0)  # the magic
    report = repair(tmp_path)
    lost = [_first_seq(mid), _first_seq(last) - 1]
    assert report["repaired"][0]["lost_seq"] == lost and report["repaired"][0]["offset"] == 0
    assert (tmp_path / f"{mid.name}.torn-0").read_bytes()[1:] == original[1:]
    assert mid.stat().st_size == SEG_HEADER_SIZE  # a fresh header: still a valid, now empty, segment
    got = list(JournalReader(tmp_path).records())
    assert same_records(got, [r for r in written if not lost[0] <= r.seq <= lost[1]])


def test_a_gap_without_a_repair_marker_is_still_corruption(tmp_path: Path) -> None:
    _three_segments(tmp_path)
    _, mid, _ = segment_files(tmp_path)
    ends = frame_ends(mid)
    mid.write_bytes(mid.read_bytes()[: ends[2]])  # cut by hand, no marker
    with pytest.raises(JournalCorruption, match="next segment .* starts at seq"):
        list(JournalReader(tmp_path).records())
    report = repair(tmp_path)
    assert report["repaired"][0]["lost_seq"][0] == _first_seq(mid) + 3
    assert report["repaired"][0]["bytes_moved"] == 0 and report["repaired"][0]["kept_in"] is None
    list(JournalReader(tmp_path).records())


def test_repair_refuses_while_a_writer_holds_the_journal(tmp_path: Path) -> None:
    _three_segments(tmp_path)
    _, mid, _ = segment_files(tmp_path)
    _flip(mid, frame_ends(mid)[1] + 6)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with JournalWriter(JournalConfig(dir=str(tmp_path), fsync="never")):
        with pytest.raises(JournalError, match="open by another writer"):
            repair(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_repair_of_a_missing_journal_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no such directory"):
        repair(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_repair_names_a_torn_live_tail_and_leaves_it_to_the_writer(tmp_path: Path) -> None:
    _three_segments(tmp_path)
    last = segment_files(tmp_path)[-1]
    size = last.stat().st_size
    with open(last, "ab") as f:
        f.write(b"\x40\x00")
    report = repair(tmp_path)
    assert report["repaired"] == [] and last.stat().st_size == size + 2
    assert report["live_tail"] == {"segment": last.name, "offset": size, "reason": "incomplete frame", "bytes": 2}
    assert journal_stats(tmp_path)["lost_seq"] == []
