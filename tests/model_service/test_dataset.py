"""`model_service.dataset` on hand-made dataset directories: resolving, manifest checks, and the rows
`load_rows` keeps (ordered by ts then symbol, invalid-book and null-label rows dropped and counted)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model_service.dataset import DatasetError, load_rows, open_dataset, resolve
from tests.model_service.dataset_factory import (
    DATASET_ID,
    H60_NS,
    REGISTRY_HASH,
    hive,
    ns,
    table,
    write_dataset,
)

# Six ticks one second apart across midnight: ticks 0-2 on 2026-09-21, 3-5 on 2026-09-22.
T0 = ns("2026-09-21T23:59:57")
TS = T0 + np.arange(6, dtype=np.int64) * 1_000_000_000
NAN = np.nan
# per symbol: book_valid, f1, f2, label (NaN = null)
BTC = {"bv": [1, 0, 1, 1, 1, 1], "f1": [0.0, 0.1, 0.2, 0.3, 0.4, 0.5], "f2": [10.0, 11, NAN, 13, 14, 15],
       "y": [1, 0, -1, 0, 1, NAN]}
ETH = {"bv": [1, 1, 1, 1, 0, 1], "f1": [1.0, 1.1, 1.2, 1.3, 1.4, 1.5], "f2": [20.0, 21, 22, 23, 24, 25],
       "y": [-1, -1, 0, 1, NAN, NAN]}


def _files(sym: str, d: dict) -> dict:
    out = {}
    for lo, hi in ((0, 3), (3, 6)):
        t = table(TS[lo:hi], np.array(d["bv"][lo:hi]), {"f1": np.array(d["f1"][lo:hi]), "f2": np.array(d["f2"][lo:hi])},
                  {"60s": np.array(d["y"][lo:hi], dtype=np.float64)})
        out[hive(sym, int(TS[lo]))] = t
    return out


def _hand(root: Path, **kw) -> Path:
    # ETHUSDT's files listed first: the order of the manifest must not matter
    return write_dataset(root, {**_files("ETHUSDT", ETH), **_files("BTCUSDT", BTC)}, **kw)


def _manifest(root: Path) -> dict:
    return json.loads((root / "_manifest.json").read_text())


def _rewrite_manifest(root: Path, **changes) -> None:
    m = _manifest(root)
    for k, v in changes.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    (root / "_manifest.json").write_text(json.dumps(m))


# resolve


def test_resolve_by_id(tmp_path: Path) -> None:
    d = _hand(tmp_path / "datasets" / DATASET_ID)
    assert resolve(tmp_path / "datasets", dataset_id=DATASET_ID) == d


def test_resolve_by_path(tmp_path: Path) -> None:
    d = _hand(tmp_path / "somewhere")
    assert resolve(tmp_path / "unused", dataset_path=str(d)) == d


@pytest.mark.parametrize("bad", ["../x", "3135E1989D15DF83", "3135e1989d15df8", "3135e1989d15df83/..", "", 12])
def test_resolve_malformed_id(tmp_path: Path, bad: object) -> None:
    with pytest.raises(DatasetError, match="malformed dataset_id"):
        resolve(tmp_path, dataset_id=bad)  # type: ignore[arg-type]


def test_resolve_needs_exactly_one(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="exactly one"):
        resolve(tmp_path)
    with pytest.raises(DatasetError, match="exactly one"):
        resolve(tmp_path, dataset_id=DATASET_ID, dataset_path=str(tmp_path))


def test_resolve_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=f"no dataset {DATASET_ID}"):
        resolve(tmp_path, dataset_id=DATASET_ID)
    with pytest.raises(DatasetError, match="no such directory"):
        resolve(tmp_path, dataset_path=str(tmp_path / "absent"))
    with pytest.raises(DatasetError, match="non-empty string"):
        resolve(tmp_path, dataset_path="")


# open_dataset


def test_open_reads_the_manifest(tmp_path: Path) -> None:
    ds = open_dataset(_hand(tmp_path / "d"))
    assert ds.dataset_id == DATASET_ID
    assert ds.registry_hash == REGISTRY_HASH
    assert ds.feature_names == ["f1", "f2"]
    assert ds.horizons == ["60s"]
    assert ds.horizon_ns("60s") == H60_NS


def test_open_accepts_manifest_json(tmp_path: Path) -> None:
    ds = open_dataset(_hand(tmp_path / "d", manifest_name="manifest.json"))
    assert ds.dataset_id == DATASET_ID


def test_open_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(DatasetError, match="not a Feature Service dataset"):
        open_dataset(tmp_path / "d")


def test_open_bad_json(tmp_path: Path) -> None:
    d = _hand(tmp_path / "d")
    (d / "_manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not a readable JSON manifest"):
        open_dataset(d)


def test_open_manifest_not_an_object(tmp_path: Path) -> None:
    d = _hand(tmp_path / "d")
    (d / "_manifest.json").write_text("[1, 2]")
    with pytest.raises(DatasetError, match="JSON object"):
        open_dataset(d)


@pytest.mark.parametrize(("changes", "what"), [
    ({"format": 2}, "format 2"),
    ({"format": None}, "format None"),
    ({"status": "running"}, "not complete"),
    ({"status": None}, "not complete"),
    ({"feature_names": None}, "'feature_names'"),
    ({"feature_names": []}, "'feature_names'"),
    ({"feature_names": ["f1", 2]}, "'feature_names'"),
    ({"dataset_id": "../x"}, "'dataset_id'"),
    ({"registry_hash": "xyz"}, "'registry_hash'"),
    ({"params": {"horizons": ["60s"]}}, "'params'"),
    ({"files": []}, "'files'"),
    ({"params": {"horizons": ["60s"], "horizons_ns": {}}}, "no length for horizon '60s'"),
    ({"at": "events.parquet"}, "point-in-time"),
])
def test_open_refuses_bad_manifests(tmp_path: Path, changes: dict, what: str) -> None:
    d = _hand(tmp_path / "d")
    _rewrite_manifest(d, **changes)
    with pytest.raises(DatasetError, match="_manifest.json") as e:
        open_dataset(d)
    assert what in str(e.value)


# load_rows


def test_load_rows_hand_example(tmp_path: Path) -> None:
    rows = load_rows(open_dataset(_hand(tmp_path / "d")), "60s")
    assert rows.rows_read == 12
    # book_valid 0: BTC tick 1, ETH tick 4 (also null-labelled, counted once as invalid);
    # null labels of valid rows: BTC tick 5, ETH tick 5
    assert rows.dropped == {"invalid_book": 2, "null_label": 2}
    # kept, ordered by (ts, symbol)
    order = [(0, "BTCUSDT"), (0, "ETHUSDT"), (1, "ETHUSDT"), (2, "BTCUSDT"), (2, "ETHUSDT"),
             (3, "BTCUSDT"), (3, "ETHUSDT"), (4, "BTCUSDT")]
    np.testing.assert_array_equal(rows.ts, [TS[k] for k, _ in order])
    assert rows.symbols.tolist() == [s for _, s in order]
    src = {"BTCUSDT": BTC, "ETHUSDT": ETH}
    np.testing.assert_array_equal(rows.x, [[src[s]["f1"][k], src[s]["f2"][k]] for k, s in order])
    assert rows.x.dtype == np.float64 and rows.x.shape == (8, 2)
    assert np.isnan(rows.x[3, 1])  # BTC tick 2's f2 is null: a missing value, kept
    assert rows.y.tolist() == [1, -1, -1, -1, 0, 0, 1, 1]
    assert rows.y.dtype == np.int64


def test_load_rows_x_in_feature_names_order(tmp_path: Path) -> None:
    # the files hold the columns in registry order f2, f1; the manifest says the same
    t = table(TS[:3], np.ones(3), {"f2": np.array([5.0, 6, 7]), "f1": np.array([1.0, 2, 3])},
              {"60s": np.array([0.0, 1, -1])})
    d = write_dataset(tmp_path / "d", {hive("BTCUSDT", int(TS[0])): t}, feature_names=["f2", "f1"])
    rows = load_rows(open_dataset(d), "60s")
    np.testing.assert_array_equal(rows.x, [[5.0, 1.0], [6.0, 2.0], [7.0, 3.0]])


def test_load_rows_unknown_horizon(tmp_path: Path) -> None:
    ds = open_dataset(_hand(tmp_path / "d", horizons={"60s": H60_NS, "10s": 10_000_000_000}))
    with pytest.raises(DatasetError, match=r"no horizon '300s'; it has 60s, 10s"):
        load_rows(ds, "300s")


def test_load_rows_missing_label_column(tmp_path: Path) -> None:
    ds = open_dataset(_hand(tmp_path / "d", horizons={"60s": H60_NS, "10s": 10_000_000_000}))
    with pytest.raises(DatasetError, match="no column label_10s"):
        load_rows(ds, "10s")


def test_load_rows_changed_file(tmp_path: Path) -> None:
    d = _hand(tmp_path / "d")
    rel = hive("BTCUSDT", int(TS[0]))
    t = pq.read_table(d / rel)
    pq.write_table(t.slice(0, 2), d / rel)  # a valid parquet file, other bytes
    with pytest.raises(DatasetError, match="checksum") as e:
        load_rows(open_dataset(d), "60s")
    assert rel in str(e.value)


def test_load_rows_damaged_file(tmp_path: Path) -> None:
    d = _hand(tmp_path / "d")
    p = d / hive("ETHUSDT", int(TS[3]))
    data = bytearray(p.read_bytes())
    data[len(data) // 2] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match="checksum"):
        load_rows(open_dataset(d), "60s")


def test_load_rows_missing_file(tmp_path: Path) -> None:
    d = _hand(tmp_path / "d")
    (d / hive("ETHUSDT", int(TS[3]))).unlink()
    with pytest.raises(DatasetError, match="cannot read"):
        load_rows(open_dataset(d), "60s")


@pytest.mark.parametrize("features", [{"f2": [1.0, 2, 3], "f1": [1.0, 2, 3]},
                                      {"f1": [1.0, 2, 3]},
                                      {"f1": [1.0, 2, 3], "f2": [1.0, 2, 3], "f3": [0.0, 0, 0]}])
def test_load_rows_feature_columns_differ(tmp_path: Path, features: dict) -> None:
    t = table(TS[:3], np.ones(3), {k: np.array(v) for k, v in features.items()}, {"60s": np.array([0.0, 1, -1])})
    d = write_dataset(tmp_path / "d", {hive("BTCUSDT", int(TS[0])): t}, feature_names=["f1", "f2"])
    with pytest.raises(DatasetError, match="feature columns other than the manifest's feature_names"):
        load_rows(open_dataset(d), "60s")


def test_load_rows_file_outside_the_dataset(tmp_path: Path) -> None:
    d = _hand(tmp_path / "d")
    outside = tmp_path / "outside.parquet"
    pq.write_table(table(TS[:3], np.ones(3), {"f1": np.zeros(3), "f2": np.zeros(3)}, {"60s": np.zeros(3)}), outside)
    m = _manifest(d)
    m["files"].append({"path": "../outside.parquet"})
    (d / "_manifest.json").write_text(json.dumps(m))
    with pytest.raises(DatasetError, match="outside the dataset"):
        load_rows(open_dataset(d), "60s")


def test_load_rows_null_features_are_missing_values(tmp_path: Path) -> None:
    t = table(TS[:3], np.ones(3), {"f1": np.array([1.0, 2, 3]), "f2": np.array([5.0, 6, 7])},
              {"60s": np.array([0.0, 1, -1])})
    t = t.set_column(t.column_names.index("f2"), "f2", pa.array([5.0, None, 7.0], type=pa.float64()))
    d = write_dataset(tmp_path / "d", {hive("BTCUSDT", int(TS[0])): t})
    rows = load_rows(open_dataset(d), "60s")
    assert rows.dropped == {"invalid_book": 0, "null_label": 0}
    np.testing.assert_array_equal(rows.x, [[1.0, 5.0], [2.0, np.nan], [3.0, 7.0]])
