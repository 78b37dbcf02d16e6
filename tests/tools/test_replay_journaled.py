"""Replay takes symbols and registries from the journal; `--out` writes one file per registry met."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from engine.record import Kind, Record
from journal.config import JournalConfig
from journal.writer import JournalWriter
from registry import load_registry_text
from tools.offline.feature_table import META_HASH
from tools.sim.synthetic_records import records

SYMBOLS = ["AAAUSDT", "BBBUSDT"]
REG_A = load_registry_text("version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n", source="a")
REG_B = load_registry_text("version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n"
                           "  - {name: spread, function: spread_abs}\n", source="b")


def session(t: int, symbols: list[str]) -> Record:
    payload = {"shard": "t", "category": "linear", "symbols": symbols, "registry": REG_A.canonical,
               "hash": REG_A.content_hash}
    return Record(0, t, Kind.SESSION, "", 0, 0, payload)


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 s of two symbols: SESSION (registry A) at the start, REGISTRY_CHANGED (B) after 20 ticks."""
    d = tmp_path_factory.mktemp("journaled") / "journal"
    recs = list(records(SYMBOLS + ["CCCUSDT"], seconds=40, events_per_s=50, depth=50))
    ticks = [i for i, r in enumerate(recs) if r.kind == Kind.TICK]
    change = Record(0, recs[ticks[20]].recv_ns + 1, Kind.REGISTRY_CHANGED, "", 0, 0,
                    {"hash": REG_B.content_hash, "content": REG_B.canonical})
    recs.insert(ticks[20] + 1, change)
    recs.insert(0, session(recs[0].recv_ns, SYMBOLS))  # CCCUSDT traded but is not this shard's
    with JournalWriter(JournalConfig(dir=str(d), fsync="never")) as w:
        w.append(recs)
    return d


def replay_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "replay", *args], capture_output=True, text=True,
                          timeout=120, check=False)


def test_out_dir_gets_one_file_per_registry_with_the_journaled_symbols(journal: Path, tmp_path: Path) -> None:
    done = replay_cli("--journal", str(journal), "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    a = pq.read_table(tmp_path / "out" / f"features-{REG_A.content_hash[:12]}.parquet")
    b = pq.read_table(tmp_path / "out" / f"features-{REG_B.content_hash[:12]}.parquet")
    assert a.schema.metadata[META_HASH].decode() == REG_A.content_hash and a.column_names[3:] == ["mid"]
    assert b.schema.metadata[META_HASH].decode() == REG_B.content_hash and b.column_names[3:] == ["mid", "spread"]
    assert set(a.column("symbol").to_pylist()) == set(b.column("symbol").to_pylist()) == set(SYMBOLS)
    assert a.num_rows == 2 * 21 and b.num_rows == 2 * 19  # the switch applies at the 22nd tick
    assert a.column("ts").to_pylist()[-1] < b.column("ts").to_pylist()[0]


def test_one_parquet_file_is_refused_naming_both_hashes_and_nothing_is_written(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "x.parquet"
    done = replay_cli("--journal", str(journal), "--out", str(out))
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert REG_A.content_hash[:12] in done.stderr and REG_B.content_hash[:12] in done.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_registry_override_is_a_what_if_for_the_whole_range(journal: Path, tmp_path: Path) -> None:
    (tmp_path / "reg.yaml").write_text(REG_B.canonical)
    out = tmp_path / "what_if.parquet"
    done = replay_cli("--journal", str(journal), "--out", str(out), "--registry", str(tmp_path / "reg.yaml"))
    assert done.returncode == 0, done.stderr
    t = pq.read_table(out)
    assert t.num_rows == 2 * 40 and t.schema.metadata[META_HASH].decode() == REG_B.content_hash
    assert np.isfinite(np.asarray(t.column("spread"))).sum() > 60
