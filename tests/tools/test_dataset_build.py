"""`feature-service dataset build`: rows equal a plain journal replay, targets equal a loop written here,
same id and bytes on a rebuild, on local workers and on a Dask cluster; its mistakes are one line."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.dataset as pads
import pytest
import yaml

from journal.store.layout import NS_PER_DAY
from tools.bench.synthetic_journal import write_journal
from tools.offline.replay import replay

NS = 1_000_000_000
#: Five minutes before a UTC midnight: the dataset crosses a date (two tasks per symbol).
START = (1_790_000_000 * NS // NS_PER_DAY + 1) * NS_PER_DAY - 300 * NS
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
FROM, TO = START + 20 * NS, START + 500 * NS


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.cli", "-q", *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def shard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compacted shard data dir of 10 synthetic minutes around midnight, and a copy of its journal."""
    root = tmp_path_factory.mktemp("ds")
    write_journal(root / "data" / "journal", SYMBOLS, 600, rate=40, start_ns=START)
    shutil.copytree(root / "data" / "journal", root / "journal-copy")
    (root / "shard.yaml").write_text(yaml.safe_dump({"data_dir": str(root / "data"), "shard": {"symbols": SYMBOLS}}))
    done = _cli("compact", "--config", str(root / "shard.yaml"))
    assert done.returncode == 0, done.stderr
    return root


def _copy(shard: Path, dest: Path) -> Path:
    """A copy of the shard with its config pointing at the copy."""
    shutil.copytree(shard / "data", dest / "data", ignore=shutil.ignore_patterns("datasets"))
    (dest / "shard.yaml").write_text(yaml.safe_dump({"data_dir": str(dest / "data"), "shard": {"symbols": SYMBOLS}}))
    return dest / "shard.yaml"


def _build(cfg: Path, *extra: str) -> dict:
    done = _cli("dataset", "build", "--config", str(cfg), "--from", str(FROM), "--to", str(TO),
                "--horizons", "60s,5m", *extra)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _files(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*.parquet"))}


def test_rows_are_the_journal_replay_with_targets_from_a_loop(shard: Path) -> None:
    out = _build(shard / "shard.yaml")
    path = Path(out["path"])
    assert path == shard / "data" / "datasets" / out["dataset_id"]
    assert sorted(_files(path)) == [f"symbol={s}/date={d}/part-0.parquet" for s in SYMBOLS
                                    for d in ("2026-09-21", "2026-09-22")]
    table = pads.dataset(path, format="parquet", partitioning="hive").to_table()
    manifest = json.loads((path / "_manifest.json").read_text())
    names = manifest["feature_names"]
    plain = {(v.ts_ns, v.symbol): v for v in replay(str(shard / "journal-copy"))}
    mids = {k: (v.values[names.index("mid_price")], v.book_valid) for k, v in plain.items()}
    ts = table.column("ts").cast("int64").to_numpy()
    syms = table.column("symbol").to_pylist()
    want_keys = sorted(k for k in plain if FROM <= k[0] < TO)
    assert sorted(zip(ts.tolist(), syms, strict=True)) == want_keys
    for col in names:
        got = table.column(col).to_numpy(zero_copy_only=False)
        ref = np.array([plain[(t, s)].values[names.index(col)] for t, s in zip(ts, syms, strict=True)])
        nan = np.isnan(ref)
        assert (table.column(col).is_null().to_numpy(zero_copy_only=False) == nan).all(), col
        assert np.array_equal(got[~nan].view(np.int64), ref[~nan].view(np.int64)), col
    for h, h_ns in (("60s", 60 * NS), ("5m", 300 * NS)):
        ret = table.column(f"target_return_{h}").to_pylist()
        label = table.column(f"label_{h}").to_pylist()
        for i, (t, s) in enumerate(zip(ts.tolist(), syms, strict=True)):
            a, b = mids[(t, s)], mids.get((t + h_ns, s))
            if b is None or not (a[1] and b[1] and a[0] > 0 and b[0] > 0):
                assert ret[i] is None and label[i] is None
                continue
            r = math.log(b[0] / a[0])
            assert ret[i] == r and label[i] == (1 if r > 2e-4 else -1 if r < -2e-4 else 0)
    assert manifest["rows_total"] == len(want_keys) == sum(out["rows"].values())
    assert manifest["label_balance"]["5m"]["null"] == table.column("label_5m").null_count > 0
    assert manifest["null_counts"]["label_5m"] == table.column("label_5m").null_count
    again = _build(shard / "shard.yaml")
    assert again["dataset_id"] == out["dataset_id"] and again["already_built"] and not out["already_built"]


def test_the_path_opens_in_pandas_polars_and_duckdb(shard: Path) -> None:
    import duckdb
    import pandas as pd
    import polars as pl

    path = _build(shard / "shard.yaml")["path"]
    rows = json.loads((Path(path) / "_manifest.json").read_text())["rows_total"]
    df = pd.read_parquet(path)
    assert len(df) == rows and {"ts", "symbol", "book_valid", "mid_price", "label_60s"} <= set(df.columns)
    assert pl.scan_parquet(f"{path}/**/*.parquet", hive_partitioning=True).collect().height == rows
    n = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)").fetchall()
    assert n == [(rows,)]


def test_workers_and_a_dask_cluster_give_the_same_id_and_bytes(shard: Path, tmp_path: Path) -> None:
    one = _build(shard / "shard.yaml")
    two = _build(_copy(shard, tmp_path / "w"), "--workers", "2")
    assert two["dataset_id"] == one["dataset_id"] and not two["already_built"]
    assert _files(Path(two["path"])) == _files(Path(one["path"]))
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        dask = _build(_copy(shard, tmp_path / "d"), "--executor", cluster.scheduler_address)
    assert dask["dataset_id"] == one["dataset_id"]
    assert _files(Path(dask["path"])) == _files(Path(one["path"]))


def test_drop_invalid_threshold_and_symbols_change_the_id(shard: Path) -> None:
    base = _build(shard / "shard.yaml")
    eth = _build(shard / "shard.yaml", "--symbols", "ETHUSDT", "--threshold-bps", "5", "--drop-invalid")
    assert eth["dataset_id"] != base["dataset_id"] and list(eth["rows"]) == ["ETHUSDT"]
    table = pads.dataset(eth["path"], format="parquet", partitioning="hive").to_table()
    assert table.column("book_valid").to_pylist() == [1] * table.num_rows
    ret, label = table.column("target_return_60s").to_pylist(), table.column("label_60s").to_pylist()
    assert all(lb == (1 if r > 5e-4 else -1 if r < -5e-4 else 0) for r, lb in zip(ret, label, strict=True)
               if r is not None)


@pytest.mark.parametrize(("args", "words"), [
    (["--from", str(TO), "--to", str(FROM)], "not before --to"),
    (["--symbols", "XRPUSDT"], "unknown symbol XRPUSDT"),
    (["--horizons", "60x"], "--horizons '60x'"),
    (["--from", str(START - 86_400 * NS), "--to", str(START - 86_000 * NS)], "no data in"),
    (["--to", str(START + 3 * 86_400 * NS)], "beyond what is stored"),
    (["--workers", "0"], "--workers 0"),
])
def test_bad_requests_are_one_line_and_build_nothing(shard: Path, args: list[str], words: str) -> None:
    base = {"--from": str(FROM), "--to": str(TO)}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    done = _cli("dataset", "build", "--config", str(shard / "shard.yaml"), *[x for kv in base.items() for x in kv])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and words in lines[0], done.stderr
    assert not list((shard / "data" / "datasets").glob(".staging-*"))


def test_a_failed_build_is_marked_failed_and_leaves_no_dataset(shard: Path, tmp_path: Path) -> None:
    cfg = _copy(shard, tmp_path)
    for f in (tmp_path / "data" / "store" / "raw_trades").rglob("*.parquet"):
        f.write_bytes(b"not parquet")  # the store is damaged after the id is known
    done = _cli("dataset", "build", "--config", str(cfg), "--from", str(FROM), "--to", str(TO))
    assert done.returncode == 1 and "build failed" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    datasets = tmp_path / "data" / "datasets"
    assert [p.name for p in datasets.iterdir() if not p.name.startswith("_")] == []
    (status,) = (datasets / "_status").glob("*.json")
    got = json.loads(status.read_text())
    assert got["status"] == "failed" and got["error"]
    listed = _cli("dataset", "list", "--config", str(cfg))
    assert json.loads(listed.stdout)[0]["status"] == "failed"
    shown = _cli("dataset", "show", "--config", str(cfg), got["dataset_id"])
    assert json.loads(shown.stdout)["status"] == "failed"
    bad = _cli("dataset", "show", "--config", str(cfg), "../../etc")
    assert bad.returncode == 2 and "not a dataset id" in bad.stderr


def test_point_in_time_join_takes_the_last_tick_at_or_before_each_event(shard: Path, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    ts = np.sort(rng.integers(FROM, TO, 40)).astype(np.int64)
    ts[0] = FROM + 3 * NS  # exactly on a tick: that tick, not the one before
    syms = [SYMBOLS[i % 2] for i in range(len(ts))]
    events = pa.table({"symbol": syms, "ts": pa.array(ts, pa.timestamp("ns", tz="UTC")),
                       "order_id": [f"o{i}" for i in range(len(ts))]})
    pq.write_table(events, tmp_path / "fills.parquet")
    done = _cli("dataset", "build", "--config", str(shard / "shard.yaml"), "--at", str(tmp_path / "fills.parquet"))
    assert done.returncode == 0, done.stderr
    table = pads.dataset(json.loads(done.stdout)["path"], format="parquet", partitioning="hive").to_table()
    assert table.num_rows == len(ts)
    plain = {(v.ts_ns, v.symbol): v for v in replay(str(shard / "journal-copy"))}
    names = json.loads((Path(json.loads(done.stdout)["path"]) / "_manifest.json").read_text())["feature_names"]
    by_id = {r["order_id"]: r for r in table.to_pylist()}
    for i, (t, s) in enumerate(zip(ts.tolist(), syms, strict=True)):
        row = by_id[f"o{i}"]
        tick = max(k for k, sym in plain if sym == s and k <= t)  # the naive as-of: never after
        assert row["symbol"] == s
        got_tick = pa.scalar(row["feature_ts"], pa.timestamp("ns", tz="UTC")).cast(pa.int64()).as_py()
        assert got_tick == tick <= t
        want = plain[(tick, s)].values[names.index("spread_abs")]
        assert (row["spread_abs"] is None and np.isnan(want)) or row["spread_abs"] == want
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"symbol": ["XRPUSDT"], "ts": pa.array([FROM], pa.timestamp("ns", tz="UTC"))}), bad)
    done = _cli("dataset", "build", "--config", str(shard / "shard.yaml"), "--at", str(bad))
    assert done.returncode == 2 and "unknown symbol XRPUSDT" in done.stderr


def test_a_what_if_registry_without_mid_price_still_has_the_targets(shard: Path, tmp_path: Path) -> None:
    reg = tmp_path / "small.yaml"
    reg.write_text("version: 1\nfeatures:\n  - {name: spread_abs, function: spread_abs}\n"
                   "  - {name: vol_3s, function: volume, window: 3s}\n")
    base = _build(shard / "shard.yaml")
    small = _build(shard / "shard.yaml", "--registry", str(reg))
    assert small["dataset_id"] != base["dataset_id"]
    manifest = json.loads((Path(small["path"]) / "_manifest.json").read_text())
    assert manifest["feature_names"] == ["spread_abs", "vol_3s"] and manifest["params"]["registry"] != "journaled"
    a = pads.dataset(small["path"], format="parquet", partitioning="hive").to_table().sort_by([("symbol", "ascending"), ("ts", "ascending")])
    b = pads.dataset(base["path"], format="parquet", partitioning="hive").to_table().sort_by([("symbol", "ascending"), ("ts", "ascending")])
    assert "mid_price" not in a.column_names
    for c in ("ts", "target_return_60s", "label_5m"):
        assert a.column(c).to_pylist() == b.column(c).to_pylist()


def test_a_range_across_a_registry_change_is_refused_naming_both(tmp_path: Path) -> None:
    from engine.record import Kind, Record
    from journal.config import JournalConfig
    from journal.writer import JournalWriter
    from registry import load_registry_text

    journal = tmp_path / "data" / "journal"
    write_journal(journal, ["BTCUSDT"], 60, rate=20, start_ns=START)
    new = load_registry_text("version: 1\nfeatures:\n  - {name: spread_abs, function: spread_abs}\n", source="t")
    with JournalWriter(JournalConfig(dir=str(journal), fsync="never")) as w:
        t = START + 61 * NS
        w.append([Record(0, t - NS // 2, Kind.REGISTRY_CHANGED, "", 0, 0, {"hash": new.content_hash,
                                                                            "content": new.canonical})])
        w.append([Record(0, t + i * NS, Kind.TICK, "", 0, 0, {}) for i in range(10)])
    cfg = tmp_path / "shard.yaml"
    cfg.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), "shard": {"symbols": ["BTCUSDT"]}}))
    done = _cli("dataset", "build", "--config", str(cfg), "--from", str(START + 10 * NS), "--to", str(t + 5 * NS))
    assert done.returncode == 1 and "spans registries" in done.stderr and new.content_hash in done.stderr, done.stderr
    after = _cli("dataset", "build", "--config", str(cfg), "--from", str(t), "--to", str(t + 9 * NS), "--horizons", "1s")
    assert after.returncode == 0, after.stderr
    assert json.loads(after.stdout)["registry_hash"] == new.content_hash


def test_a_build_fixed_at_a_seq_reads_nothing_after_it_and_gets_the_id_its_request_answered(shard: Path,
                                                                                            tmp_path: Path) -> None:
    # The shard's API answers an id from the data it sees; its build process starts later, when more has
    # arrived, and must build that same data (`--through-seq`): the ticks after it do not exist for it.
    from tools.dataset.build import request_id
    from tools.dataset.params import BuildParams
    from tools.dataset.source import ShardData

    cfg = _copy(shard, tmp_path)
    seq, ts = ShardData.open(str(cfg)).ticks()
    cut = int(np.searchsorted(ts, TO - 100 * NS))  # "now": the newest tick the request saw
    to = int(ts[cut]) + NS  # a range ending now: its last minute of 60 s targets is not there yet
    seen = ShardData.open(str(cfg))
    seen.through_seq = int(seq[cut])
    answered = request_id(seen, BuildParams(FROM, to, tuple(SYMBOLS), {"60s": 60 * NS}))

    def build(*extra: str) -> tuple[dict, object]:
        done = _cli("dataset", "build", "--config", str(cfg), "--from", str(FROM), "--to", str(to),
                    "--horizons", "60s", *extra)
        assert done.returncode == 0, done.stderr
        out = json.loads(done.stdout)
        table = pads.dataset(out["path"], format="parquet", partitioning="hive").to_table()
        return out, table.sort_by([("symbol", "ascending"), ("ts", "ascending")])

    (fixed, a), (full, b) = build("--through-seq", str(seq[cut])), build()
    assert fixed["dataset_id"] == answered != full["dataset_id"]
    assert json.loads((Path(fixed["path"]) / "_manifest.json").read_text())["source"]["through_seq"] == int(seq[cut])
    a_ts = a.column("ts").cast("int64").to_numpy()
    assert a_ts.tolist() == b.column("ts").cast("int64").to_numpy().tolist() and a_ts.max() == ts[cut]
    ret_a, ret_b = a.column("target_return_60s").to_pylist(), b.column("target_return_60s").to_pylist()
    inside = a_ts + 60 * NS <= ts[cut]
    assert [r for r, d in zip(ret_a, inside, strict=True) if d] == [r for r, d in zip(ret_b, inside, strict=True) if d]
    assert all(r is None for r, d in zip(ret_a, inside, strict=True) if not d)
    assert any(r is not None for r, d in zip(ret_b, inside, strict=True) if not d)
