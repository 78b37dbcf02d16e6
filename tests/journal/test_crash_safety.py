"""Crash safety: torn or corrupt tails are cut back to the last whole record; closed segments raise."""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import pytest

from engine.record import Record
from journal.config import JournalConfig
from journal.errors import JournalCorruption
from journal.reader import JournalReader
from journal.writer import JournalWriter
from tests.journal import (
    SEG_HEADER,
    frame_ends,
    make_records,
    numbered,
    same_records,
    segment_files,
)

OFFSETS = 220  # damage positions tried per test


def cfg(d: Path) -> JournalConfig:
    return JournalConfig(dir=str(d), fsync="never", segment_max_bytes=4096)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """A journal of three segments and the records written to it."""
    d = tmp_path_factory.mktemp("pristine")
    recs = make_records(60, seed=31)
    with JournalWriter(cfg(d)) as w:
        written = [r for i in range(0, len(recs), 3) for r in w.append(recs[i : i + 3])]
    assert len(segment_files(d)) == 3
    return d, written


def reopen_and_check(d: Path, written: list[Record], kept: int, extra: Record) -> None:
    """Reopening keeps exactly `kept` records; the next append continues the seq and reads back."""
    with JournalWriter(cfg(d)) as w:
        assert w.next_seq == kept + 1
        assert w.last_recv_ns == written[kept - 1].recv_ns
        assert w.append([extra])[0].seq == kept + 1
    assert same_records(list(JournalReader(d).records()), written[:kept] + numbered([extra], kept + 1))


def damage_loop(pristine: tuple[Path, list[Record]], tmp_path: Path, damage: str,
                caplog: pytest.LogCaptureFixture) -> None:
    src, written = pristine
    last = segment_files(src)[-1]
    original = last.read_bytes()
    ends = frame_ends(last)  # naive walk of the u32 length fields
    before = sum(1 for r in written if r.seq < int(last.stem))  # records in the closed segments
    extra = make_records(1, seed=99)[0]._replace(recv_ns=written[-1].recv_ns + 1)
    rng = random.Random(f"{damage}-32")
    lo = 0 if damage == "truncate" else SEG_HEADER.size
    positions = sorted({rng.randrange(lo, len(original)) for _ in range(OFFSETS)} | {lo, len(original) - 1})
    assert len(positions) >= 200
    for pos in positions:
        d = tmp_path / f"j{pos}"
        shutil.copytree(src, d)
        seg = d / last.name
        if damage == "truncate":
            seg.write_bytes(original[:pos])
        else:
            seg.write_bytes(original[:pos] + bytes([original[pos] ^ rng.randrange(1, 256)]) + original[pos + 1 :])
        whole = sum(1 for e in ends if e <= pos)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="journal.writer"):
            reopen_and_check(d, written, before + whole, extra)
        torn = pos < SEG_HEADER.size or (ends[whole - 1] if whole else SEG_HEADER.size) < pos or damage == "flip"
        if torn:
            cut = 0 if pos < SEG_HEADER.size else (ends[whole - 1] if whole else SEG_HEADER.size)
            assert any(last.name in m and f"offset {cut}" in m for m in caplog.messages), (pos, caplog.messages)
        shutil.rmtree(d)


def test_truncated_last_segment_keeps_every_whole_record(pristine: tuple[Path, list[Record]], tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    damage_loop(pristine, tmp_path, "truncate", caplog)


def test_flipped_byte_in_last_segment_keeps_every_record_before_it(pristine: tuple[Path, list[Record]],
                                                                   tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    damage_loop(pristine, tmp_path, "flip", caplog)


def test_cut_bytes_are_kept_beside_the_segment(pristine: tuple[Path, list[Record]], tmp_path: Path) -> None:
    src, _ = pristine
    d = tmp_path / "j"
    shutil.copytree(src, d)
    last = segment_files(d)[-1]
    data = last.read_bytes()
    ends = frame_ends(last)
    last.write_bytes(data[: ends[2] + 10])
    JournalWriter(cfg(d)).close()
    assert last.stat().st_size == ends[2]
    assert (d / f"{last.name}.torn-{ends[2]}").read_bytes() == data[ends[2] : ends[2] + 10]


def test_bad_header_on_an_empty_last_segment_is_rewritten(pristine: tuple[Path, list[Record]], tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    src, written = pristine
    d = tmp_path / "j"
    shutil.copytree(src, d)
    name = f"{len(written) + 1:020d}.seg"
    (d / name).write_bytes(b"GARBAGE!" + bytes(24))
    extra = make_records(1, seed=98)[0]._replace(recv_ns=written[-1].recv_ns + 1)
    with caplog.at_level(logging.WARNING, logger="journal.writer"):
        reopen_and_check(d, written, len(written), extra)
    assert any(name in m and "offset 0" in m for m in caplog.messages)


def test_bad_header_with_records_after_it_refuses_to_open(pristine: tuple[Path, list[Record]], tmp_path: Path) -> None:
    src, _ = pristine
    d = tmp_path / "j"
    shutil.copytree(src, d)
    last = segment_files(d)[-1]
    last.write_bytes(b"GARBAGE!" + last.read_bytes()[8:])
    with pytest.raises(JournalCorruption) as e:
        JournalWriter(cfg(d))
    assert e.value.path == str(last) and e.value.offset == 0
    JournalWriter(JournalConfig(dir=str(d / "other"))).close()  # the failed open released its lock
    with pytest.raises(JournalCorruption):
        JournalWriter(cfg(d))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damage_in_a_closed_segment_raises_naming_file_and_offset(pristine: tuple[Path, list[Record]], tmp_path: Path,
                                                                  damage: str) -> None:
    src, written = pristine
    rng = random.Random(33)
    for trial in range(20):
        d = tmp_path / f"j{trial}"
        shutil.copytree(src, d)
        middle = segment_files(d)[1]
        data = middle.read_bytes()
        ends = frame_ends(middle)
        pos = rng.randrange(SEG_HEADER.size, len(data) - 1)
        if damage == "flip":
            middle.write_bytes(data[:pos] + bytes([data[pos] ^ 0x20]) + data[pos + 1 :])
        else:
            middle.write_bytes(data[:pos])
        start = max([SEG_HEADER.size] + [e for e in ends if e <= pos])  # the damaged frame starts here
        got: list[Record] = []
        with pytest.raises(JournalCorruption) as e:
            got.extend(JournalReader(d).records())
        assert (e.value.path, e.value.offset) == (str(middle), start)
        assert str(middle) in str(e.value) and f"offset {start}" in str(e.value)
        assert same_records(got, written[: len(got)])  # everything before the damage was yielded
        shutil.rmtree(d)


def test_damage_in_a_closed_segment_stops_a_follower_too(pristine: tuple[Path, list[Record]], tmp_path: Path) -> None:
    src, _ = pristine
    d = tmp_path / "j"
    shutil.copytree(src, d)
    first = segment_files(d)[0]
    data = bytearray(first.read_bytes())
    data[-5] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(JournalCorruption):
        list(JournalReader(d).records(follow=True, stop=lambda: True))
