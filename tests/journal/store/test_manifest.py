"""Manifest: empty when absent, atomic JSON round trip, damage and newer formats refused in one line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from journal.errors import JournalError
from journal.store.manifest import FileEntry, Manifest, ManifestError, RunEntry, SegmentEntry


def _entry(path: str, first: int, last: int) -> FileEntry:
    return FileEntry(path, "raw_trades", "2026-08-09", "SOLUSDT", 3, 2, first, last, "ab" * 16, 1234, "hot", 1)


def test_absent_manifest_is_empty(tmp_path: Path) -> None:
    m = Manifest.load(tmp_path / "nowhere")
    assert (m.files, m.segments, m.runs, m.compacted_through) == ([], [], [], 0)
    assert m.next_run() == 1


def test_save_load_round_trip_and_no_temp_left(tmp_path: Path) -> None:
    m = Manifest([_entry("raw_trades/date=2026-08-09/symbol=SOLUSDT/part-1-2.parquet", 1, 2)],
                 [SegmentEntry("00000000000000000001.seg", 1, 9, 9, 1)], [RunEntry(1, 1, 9, 9, 1)], 9)
    m.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_manifest.json"]
    back = Manifest.load(tmp_path)
    assert back == m and back.next_run() == 2
    raw = orjson.loads((tmp_path / "_manifest.json").read_bytes())
    assert raw["format"] == 1 and raw["compacted_through"] == 9
    assert set(raw["files"][0]) == {"path", "table", "date", "symbol", "rows", "records", "first_seq", "last_seq",
                                    "checksum", "bytes", "location", "run"}
    assert raw["segments"][0]["deleted"] is False


def test_replace_files_and_mark_deleted(tmp_path: Path) -> None:
    a, b, c = _entry("a", 1, 2), _entry("b", 3, 4), _entry("c", 1, 4)
    m = Manifest([b, a], [SegmentEntry("s1", 1, 4, 4, 1)])
    m.replace_files(["a", "b"], [c])
    assert m.files == [c]
    m.mark_deleted(["s1"])
    assert m.segments[0].deleted
    assert m.paths() == {"c"}


def test_save_overwrites_atomically(tmp_path: Path) -> None:
    Manifest(compacted_through=5).save(tmp_path)
    Manifest(compacted_through=7).save(tmp_path)
    assert Manifest.load(tmp_path).compacted_through == 7


@pytest.mark.parametrize(("text", "why"), [(b"{not json", "damaged"), (b'{"format": 2}', "format 2"),
                                           (b'{"format": 1, "files": []}', "damaged")])
def test_unreadable_manifest_is_a_one_line_journal_error(tmp_path: Path, text: bytes, why: str) -> None:
    (tmp_path / "_manifest.json").write_bytes(text)
    with pytest.raises(ManifestError, match=why) as e:
        Manifest.load(tmp_path)
    assert isinstance(e.value, JournalError) and "\n" not in str(e.value) and "_manifest.json" in str(e.value)
