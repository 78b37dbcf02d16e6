"""`feature-service store export --format frames`: the store back as Bybit frames; importing them gives the records."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest

from engine.record import MARKET_KINDS, Kind, Record
from gateway_bridge.importer import import_records
from journal.store.layout import part_name, partition_dir
from journal.store.manifest import FileEntry, Manifest
from journal.store.tables import records_to_tables
from tests.conftest import SOL_DOGE_FRAMES
from tests.gateway_bridge.test_encoder import same

#: Runs the real CLI; `store` is added to COMMANDS only if the lead has not wired it yet.
LAUNCH = ("import sys, tools.cli as c; "
          "c.COMMANDS.setdefault('store', ('tools.offline.cmd_store', 'store')); "
          "c.COMMANDS.setdefault('retention', ('tools.offline.cmd_retention', 'retention')); "
          "sys.exit(c.main(sys.argv[1:]))")


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-c", LAUNCH, *args], capture_output=True, timeout=120, check=False)


def write_store(hot: Path, records: list[Record]) -> None:
    """A store holding `records`: one Parquet file per partition, named in the manifest (what compaction commits)."""
    m = Manifest.load(hot)
    for (table, date, sym), t in records_to_tables(records).items():
        seqs = t.column("seq").to_pylist()
        rel = partition_dir(table, date, sym) / part_name(seqs[0], seqs[-1])
        (hot / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, hot / rel, compression="zstd")
        m.files.append(FileEntry(rel.as_posix(), table, date, sym, t.num_rows, len(set(seqs)), seqs[0], seqs[-1],
                                 "-", (hot / rel).stat().st_size))
    m.compacted_through = max(r.seq for r in records)
    m.save(hot)


def numbered(records: list[Record]) -> list[Record]:
    return [r.with_seq(i) for i, r in enumerate(records, 1)]


def market(records: list[Record]) -> list[Record]:
    return [r for r in records if r.kind in MARKET_KINDS]


def check_equal(got: list[Record], want: list[Record]) -> None:
    """Same market records: receive times, kinds, symbols, exchange times, payloads numerically equal."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert (g.recv_ns, g.kind, g.symbol, g.ts, g.cts) == (w.recv_ns, w.kind, w.symbol, w.ts, w.cts)
        same(g.payload, w.payload)


@pytest.fixture(scope="module")
def sol_doge(shared_bybit: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Record]]:
    """A shard config whose store holds the shared SOL/DOGE recording, and the records stored."""
    d = tmp_path_factory.mktemp("export")
    recs = numbered(list(import_records("frames", [str(shared_bybit / SOL_DOGE_FRAMES)])))
    write_store(d / "data" / "store", recs)
    cfg = d / "shard.yaml"
    cfg.write_text(f"data_dir: {d / 'data'}\nshard: {{symbols: [SOLUSDT, DOGEUSDT]}}\n")
    return cfg, recs


def reimport(path: Path) -> list[Record]:
    return market(list(import_records("frames", [str(path)])))


def test_export_then_import_gives_the_stored_records(sol_doge: tuple[Path, list[Record]], tmp_path: Path) -> None:
    cfg, recs = sol_doge
    proc = cli("store", "export", "--config", str(cfg), "--format", "frames")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == len(market(recs)) > 1000
    first = orjson.loads(lines[0])
    assert set(first) == {"recv_ns", "frame"} and isinstance(first["frame"], dict)
    out = tmp_path / "all.frames.jsonl"
    out.write_bytes(proc.stdout)
    check_equal(reimport(out), market(recs))
    kinds = {Kind(r.kind).name for r in market(recs)}
    assert kinds == {"BOOK_SNAPSHOT", "BOOK_DELTA", "TICKER", "TRADES", "KLINE"}


def test_time_and_symbol_filters(sol_doge: tuple[Path, list[Record]], tmp_path: Path) -> None:
    cfg, recs = sol_doge
    mk = market(recs)
    lo, hi = mk[300].recv_ns, mk[900].recv_ns
    out = tmp_path / "part.jsonl.gz"
    proc = cli("store", "export", "--config", str(cfg), "--from", str(lo), "--to", str(hi), "--symbols", "DOGEUSDT",
               "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = orjson.loads(proc.stdout)
    want = [r for r in mk if lo <= r.recv_ns < hi and r.symbol == "DOGEUSDT"]  # naive filter
    assert summary["frames"] == len(want) > 50
    check_equal(reimport(out), want)
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed into place


def test_the_archive_is_exported_too(sol_doge: tuple[Path, list[Record]], tmp_path: Path) -> None:
    """After retention moves every partition to the archive, the export is byte for byte the same."""
    import shutil

    cfg, _ = sol_doge
    d = tmp_path / "d"
    shutil.copytree(cfg.parent / "data", d / "data")
    moved = tmp_path / "shard.yaml"
    moved.write_text(f"data_dir: {d / 'data'}\nshard: {{symbols: [SOLUSDT]}}\n"
                     f"store: {{archive_dir: {d / 'archive'}, retention_days: 1}}\n")
    before = cli("store", "export", "--config", str(moved))
    ran = cli("retention", "run", "--config", str(moved), "--now", "2026-08-20")
    assert ran.returncode == 0, ran.stderr
    assert {e.location for e in Manifest.load(d / "data" / "store").files} == {"archive"}
    after = cli("store", "export", "--config", str(moved))
    assert after.returncode == 0 and after.stdout == before.stdout and len(after.stdout) > 100_000


@pytest.mark.parametrize("args,text", [
    (("--symbols", "BTCUSDT"), "--symbols: BTCUSDT not in the store"),
    (("--symbols", "solusdt"), "solusdt (did you mean SOLUSDT?)"),
    (("--from", "tomorrow"), "--from: 'tomorrow' is not a time"),
    (("--from", "2026-08-10", "--to", "2026-08-09"), "is not before --to"),
    (("--format", "parquet"), "--format 'parquet': not supported"),
])
def test_mistakes_are_one_line_exit_2(sol_doge: tuple[Path, list[Record]], args: tuple[str, ...], text: str) -> None:
    cfg, _ = sol_doge
    proc = cli("store", "export", "--config", str(cfg), *args)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and text in err, err
    assert proc.stdout == b""


def test_an_empty_or_missing_store_and_out_inside_it(sol_doge: tuple[Path, list[Record]], tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text(f"data_dir: {tmp_path / 'nothing'}\n")
    proc = cli("store", "export", "--config", str(empty))
    err = proc.stderr.decode()
    assert proc.returncode == 2 and err.count("\n") == 1 and "holds no compacted records" in err, err
    (tmp_path / "nothing" / "store").mkdir(parents=True)
    Manifest().save(tmp_path / "nothing" / "store")
    assert cli("store", "export", "--config", str(empty)).returncode == 2
    cfg, _ = sol_doge
    inside = cfg.parent / "data" / "store" / "x.jsonl"
    proc = cli("store", "export", "--config", str(cfg), "--out", str(inside))
    assert proc.returncode == 2 and b"lies inside the store" in proc.stderr and not inside.exists()


def test_journal_compacted_then_archived_exports_its_market_records(shared_bybit: Path, tmp_path: Path) -> None:
    """The whole path: import a recording into a journal, real compaction, retention to the archive, export."""
    from gateway_bridge.importer import import_files
    from journal.reader import JournalReader
    from journal.store.compact import compact
    from tools.shard.config import load_shard_config

    cfg_path = tmp_path / "shard.yaml"
    cfg_path.write_text(f"data_dir: {tmp_path / 'data'}\nshard: {{symbols: [SOLUSDT, DOGEUSDT]}}\n"
                        f"store: {{archive_dir: {tmp_path / 'archive'}, retention_days: 2}}\n")
    cfg = load_shard_config(cfg_path)
    import_files(cfg.journal.dir, "frames", [str(shared_bybit / SOL_DOGE_FRAMES)])
    journaled = list(JournalReader(cfg.journal.dir).records())
    assert compact(cfg.journal.dir, cfg.store).records == len(journaled)
    ran = cli("retention", "run", "--config", str(cfg_path), "--now", "2026-08-12T00:00:01Z")
    assert ran.returncode == 0, ran.stderr
    assert orjson.loads(ran.stdout)["counts"]["archive"] == len(Manifest.load(cfg.store.dir).files)
    out = tmp_path / "export.jsonl.zst"
    proc = cli("store", "export", "--config", str(cfg_path), "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    check_equal(reimport(out), market(journaled))


def test_records_without_a_frame_are_counted_not_exported() -> None:
    import numpy as np

    from tools.offline.cmd_store import frames_of

    ns = 1_786_310_819 * 10**9
    book = {"depth": 50, "u": 1, "seq": 2, "b": np.array([[1.5, 2.0]]), "a": np.zeros((0, 2))}
    recs = [Record(1, ns, Kind.TICK, "", 0, 0, {}),
            Record(2, ns + 1, Kind.BOOK_SNAPSHOT, "SOLUSDT", 5, 6, {**book, "src": "rest"}),
            Record(3, ns + 2, Kind.BOOK_SNAPSHOT, "SOLUSDT", 5, 6, book),
            Record(4, ns + 3, Kind.FUNDING, "SOLUSDT", 5, 0, {"rate": "not a float"}),
            Record(5, ns + 4, Kind.TICK, "", 0, 0, {})]
    from collections import Counter

    counts: Counter[str] = Counter()
    out = list(frames_of(recs, ns + 1, ns + 4, counts))
    assert [t for t, _ in out] == [ns + 2]  # from inclusive, to exclusive
    assert counts == {"frames": 1, "rest_snapshot": 1, "unencodable": 1}
