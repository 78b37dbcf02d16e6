"""`feature-service replay` mistakes as a user makes them: one line, the right exit code, no data touched."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from engine.record import Kind, Record
from journal.config import JournalConfig
from journal.segment import list_segments
from journal.writer import JournalWriter
from registry import load_registry_text
from tools.sim.synthetic_records import records

NS = 1_000_000_000
SHARD_SYMBOLS = ["AAAUSDT", "BBBUSDT"]  # CCCUSDT trades in the journal too, but is not the shard's
REG = load_registry_text("version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n"
                         "  - {name: v3, function: volume, window: 3s}\n"
                         "  - {name: mid_z, function: ref, inputs: [mid], normalise: {method: zscore, n: 5}}\n",
                         source="t")


def build_journal(d: Path, seconds: int = 20, segment_bytes: int = 256 * 1024 * 1024) -> list[Record]:
    """`seconds` of three traded symbols, a SESSION naming two of them first; returns what was written."""
    recs = list(records([*SHARD_SYMBOLS, "CCCUSDT"], seconds=seconds, events_per_s=50, depth=20))
    payload = {"shard": "t", "category": "linear", "symbols": SHARD_SYMBOLS, "registry": REG.canonical,
               "hash": REG.content_hash}
    recs.insert(0, Record(0, recs[0].recv_ns, Kind.SESSION, "", 0, 0, payload))
    with JournalWriter(JournalConfig(dir=str(d), fsync="never", segment_max_bytes=segment_bytes)) as w:
        for i in range(0, len(recs), 64):
            w.append(recs[i:i + 64])
    return recs


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    d = tmp_path_factory.mktemp("replay_cli") / "journal"
    return d, build_journal(d)


def replay(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "replay", *args], capture_output=True, text=True,
                          timeout=120, check=False, cwd=cwd)


def tree_hash(d: Path) -> str:
    """Hash of every file's relative name and bytes under `d` (the journal must stay byte for byte)."""
    h = hashlib.sha256()
    for p in sorted(d.rglob("*")):
        h.update(str(p.relative_to(d)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a refused run: exactly one line, no traceback, nothing on stdout."""
    assert "Traceback" not in done.stderr and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def ticks_of(recs: list[Record]) -> list[int]:
    return [r.recv_ns for r in recs if r.kind == Kind.TICK]


# (args after --journal J --out OUT, exit code, words the one line must hold); {out} is the output path
MISTAKES = [
    (["--symbols", "SOLUSD"], 2, ["SOLUSD", "AAAUSDT, BBBUSDT"]),
    (["--symbols", "aaausdt"], 2, ["aaausdt", "AAAUSDT"]),
    (["--symbols", "CCCUSDT"], 2, ["CCCUSDT", "AAAUSDT, BBBUSDT"]),  # traded, but not the shard's
    (["--symbols", ","], 2, ["--symbols"]),
    (["--from", "2026-08-09T21:27:00Z", "--to", "2026-08-09T21:26:50Z"], 2, ["--from", "--to", "2026-08-09T21:27:00Z"]),
    (["--from", "1786310810", "--to", "1786310810"], 2, ["--from", "1786310810"]),
    (["--from", "yesterday"], 2, ["--from", "'yesterday'"]),
    (["--to", "2026-13-01"], 2, ["--to", "'2026-13-01'"]),
    (["--from", "1786310810.5.5"], 2, ["'1786310810.5.5'"]),
    (["--registry", "{missing}"], 2, ["missing.yaml", "cannot read registry"]),
    (["--registry", "{badyaml}"], 2, ["bad.yaml:2:12: not valid YAML: mapping values are not allowed here"]),
]


@pytest.mark.parametrize("extra,code,words", MISTAKES, ids=[" ".join(m[0]) for m in MISTAKES])
def test_a_mistake_is_one_line_and_writes_nothing(journal: tuple[Path, list[Record]], tmp_path: Path,
                                                  extra: list[str], code: int, words: list[str]) -> None:
    d, _ = journal
    (tmp_path / "bad.yaml").write_text("version: 1\nfeatures: a: b\n")
    extra = [a.format(missing=tmp_path / "missing.yaml", badyaml=tmp_path / "bad.yaml") for a in extra]
    before = tree_hash(d)
    for out in (tmp_path / "out" / "x.parquet", tmp_path / "newdir"):
        done = replay("--journal", str(d), "--out", str(out), *extra)
        assert done.returncode == code, done.stderr
        line = one_line(done)
        assert line.startswith("feature-service replay: ")
        for w in words:
            assert w in line, line
        assert not out.exists()
    assert tree_hash(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


@pytest.mark.parametrize("what", ["missing", "file", "empty dir"])
def test_a_journal_that_is_not_one_is_refused(tmp_path: Path, what: str) -> None:
    path = tmp_path / "nope"
    if what == "file":
        path.write_text("not a journal\n")
    elif what == "empty dir":
        path.mkdir()
    done = replay("--journal", str(path), "--out", str(tmp_path / "x.parquet"))
    assert done.returncode == 1
    assert f"journal {path}: " in one_line(done)
    assert not (tmp_path / "x.parquet").exists()
    assert path.exists() == (what != "missing")


def test_out_in_a_missing_directory_is_one_line_and_creates_nothing(journal: tuple[Path, list[Record]],
                                                                   tmp_path: Path) -> None:
    d, _ = journal
    done = replay("--journal", str(d), "--out", "no/such/dir/x.parquet", cwd=tmp_path)
    assert done.returncode == 1
    assert "no/such/dir" in one_line(done)
    assert list(tmp_path.iterdir()) == []


def test_out_inside_the_journal_is_refused(journal: tuple[Path, list[Record]]) -> None:
    d, _ = journal
    before = tree_hash(d)
    for out in (d, d / "x.parquet", d / "sub"):
        done = replay("--journal", str(d), "--out", str(out))
        assert done.returncode == 2 and "inside the journal" in one_line(done)
    assert tree_hash(d) == before


def test_a_corrupt_closed_segment_is_one_line_naming_the_file(tmp_path: Path) -> None:
    d = tmp_path / "journal"
    build_journal(d, seconds=10, segment_bytes=32 * 1024)
    segments = [p for _, p in list_segments(d)]
    assert len(segments) >= 3
    data = bytearray(segments[1].read_bytes())
    data[len(data) // 2] ^= 0xFF
    segments[1].write_bytes(bytes(data))
    before = tree_hash(d)
    for out in (tmp_path / "x.parquet", tmp_path / "a" / "b"):
        done = replay("--journal", str(d), "--out", str(out))
        assert done.returncode == 1
        assert segments[1].name in one_line(done)
        assert not out.exists()
    assert not (tmp_path / "a").exists()
    assert tree_hash(d) == before


def iso(ns: int, z: bool = True) -> str:
    return datetime.fromtimestamp(ns // NS, UTC).strftime("%Y-%m-%dT%H:%M:%S") + ("Z" if z else "")


def test_times_in_every_accepted_form_select_the_same_ticks(journal: tuple[Path, list[Record]],
                                                            tmp_path: Path) -> None:
    """[from, to) as ISO with and without Z, epoch s, ms and ns: the same rows, ts in range, both symbols."""
    d, recs = journal
    ticks = ticks_of(recs)
    lo, hi = ticks[5], ticks[12]
    forms = [(iso(lo), iso(hi, z=False)), (str(lo // NS), str(hi // NS)), (str(lo // 1_000_000), str(hi // 1_000_000)),
             (str(lo), str(hi))]
    for i, (a, b) in enumerate(forms):
        out = tmp_path / f"f{i}.parquet"
        done = replay("--journal", str(d), "--out", str(out), "--from", a, "--to", b)
        assert done.returncode == 0, done.stderr
        t = pq.read_table(out)
        ts = sorted({v.value for v in t.column("ts")})
        assert ts == list(range(lo, hi, NS)), (a, b)
        assert sorted(set(t.column("symbol").to_pylist())) == SHARD_SYMBOLS
        assert json.loads(done.stdout)["rows"] == t.num_rows == 2 * 7


def test_symbols_filter_counts_what_it_skips_as_filtered(journal: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """--symbols AAAUSDT: BBBUSDT's and CCCUSDT's market records are `filtered`; without it CCCUSDT's are unknown."""
    d, recs = journal
    market = {s: sum(1 for r in recs if r.symbol == s) for s in ("AAAUSDT", "BBBUSDT", "CCCUSDT")}
    done = replay("--journal", str(d), "--out", str(tmp_path / "a.parquet"), "--symbols", "AAAUSDT")
    assert done.returncode == 0, done.stderr
    counters = json.loads(done.stdout)["counters"]
    assert counters.get("filtered") == market["BBBUSDT"] + market["CCCUSDT"]
    assert "unknown_symbol" not in counters
    assert set(pq.read_table(tmp_path / "a.parquet").column("symbol").to_pylist()) == {"AAAUSDT"}
    done = replay("--journal", str(d), "--out", str(tmp_path / "all.parquet"))
    counters = json.loads(done.stdout)["counters"]
    assert counters.get("unknown_symbol") == market["CCCUSDT"] and "filtered" not in counters


def test_feature_columns_carry_unit_and_description(journal: tuple[Path, list[Record]], tmp_path: Path) -> None:
    d, _ = journal
    out = tmp_path / "m.parquet"
    done = replay("--journal", str(d), "--out", str(out))
    assert done.returncode == 0, done.stderr
    sch = pq.read_schema(out)
    assert sch.field("mid").metadata[b"unit"] == b"quote currency"
    assert b"best bid" in sch.field("mid").metadata[b"description"]
    assert sch.field("v3").metadata[b"unit"] == b"base units"
    assert b"3s" in sch.field("v3").metadata[b"description"]
    assert sch.field("mid_z").metadata[b"unit"] == b"standard deviations"
    assert b"n=5" in sch.field("mid_z").metadata[b"description"]
    assert sch.field("ts").metadata is None and sch.field("symbol").metadata is None
    t = pq.read_table(out)
    assert t.num_rows == 2 * 20 and t.column_names[3:] == ["mid", "v3", "mid_z"]


def test_a_range_without_ticks_warns_and_reports_zero_rows(journal: tuple[Path, list[Record]], tmp_path: Path) -> None:
    d, _ = journal
    done = replay("--journal", str(d), "--out", str(tmp_path / "late"), "--from", "2030-01-01")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 0
    assert "replay_no_rows" in done.stderr


def test_a_terminal_gets_a_progress_bar_and_stdout_keeps_the_json(journal: tuple[Path, list[Record]],
                                                                  tmp_path: Path) -> None:
    """stderr on a pseudo-terminal: rich draws the bar there; stdout (a pipe) is still the JSON summary."""
    import os
    import pty

    d, _ = journal
    leader, follower = pty.openpty()
    try:
        done = subprocess.run([sys.executable, "-m", "tools.cli", "-q", "replay", "--journal", str(d), "--out",
                               str(tmp_path / "p.parquet")], stdout=subprocess.PIPE, stderr=follower, timeout=120,
                              check=False)
        os.close(follower)
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other end is closed and drained
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        os.close(leader)
    assert done.returncode == 0
    assert json.loads(done.stdout)["rows"] == 2 * 20
    assert b"replay" in drawn and b"s of ticks" in drawn
    plain = subprocess.run([sys.executable, "-m", "tools.cli", "-q", "replay", "--journal", str(d), "--out",
                            str(tmp_path / "q.parquet")], capture_output=True, text=True, timeout=120, check=False)
    assert plain.returncode == 0 and plain.stderr == ""  # no bar in a pipe
