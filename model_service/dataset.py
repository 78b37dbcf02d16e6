"""Open a Feature Service dataset for training: resolve it, check its manifest and files, load X and y.

Only a directory that ``feature-service dataset build`` wrote is accepted: its manifest (``_manifest.json``;
``manifest.json`` is read too) names the registry, the feature columns in registry order and every
file with its SHA-256. Anything else is a `DatasetError` with the reason (the API's 400).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

#: Manifest file names, the Feature Service's own first.
MANIFESTS = ("_manifest.json", "manifest.json")
#: Dataset manifest formats this service reads.
FORMATS = (1,)
DATASET_ID_RE = re.compile(r"^[0-9a-f]{16}$")
_HASH_RE = re.compile(r"^[0-9a-f]{16,128}$")


class DatasetError(ValueError):
    """The dataset cannot be trained on; the message says which and why."""


@dataclass(frozen=True)
class Dataset:
    """A checked dataset directory and its manifest."""

    path: Path
    manifest: dict[str, Any]

    @property
    def dataset_id(self) -> str:
        return self.manifest["dataset_id"]

    @property
    def registry_hash(self) -> str:
        return self.manifest["registry_hash"]

    @property
    def feature_names(self) -> list[str]:
        return list(self.manifest["feature_names"])

    @property
    def horizons(self) -> list[str]:
        return list(self.manifest["params"]["horizons"])

    def horizon_ns(self, horizon: str) -> int:
        return int(self.manifest["params"]["horizons_ns"][horizon])


@dataclass(frozen=True)
class TrainingRows:
    """The rows a model may learn from, ordered by (ts, symbol); `dropped` counts what was left out and why."""

    x: np.ndarray
    y: np.ndarray
    ts: np.ndarray
    symbols: np.ndarray
    rows_read: int
    dropped: dict[str, int]


def resolve(datasets_dir: str | Path, dataset_id: str | None = None, dataset_path: str | None = None) -> Path:
    """The directory of `dataset_id` under `datasets_dir`, or `dataset_path` itself; exactly one must be given."""
    if (dataset_id is None) == (dataset_path is None):
        raise DatasetError("give exactly one of dataset_id and dataset_path")
    if dataset_id is not None:
        if not isinstance(dataset_id, str) or not DATASET_ID_RE.match(dataset_id):
            raise DatasetError(f"malformed dataset_id {str(dataset_id)[:80]!r}: 16 lower-case hex digits")
        path = Path(datasets_dir) / dataset_id
        if not path.is_dir():
            raise DatasetError(f"no dataset {dataset_id} in {datasets_dir} (feature-service dataset list names them)")
        return path
    if not isinstance(dataset_path, str) or not dataset_path:
        raise DatasetError("dataset_path must be a non-empty string")
    path = Path(dataset_path)
    if not path.is_dir():
        raise DatasetError(f"dataset_path {dataset_path}: no such directory")
    return path


def open_dataset(path: Path) -> Dataset:
    """Read and check the manifest of the dataset at `path` (no file contents read yet)."""
    found = next((path / n for n in MANIFESTS if (path / n).is_file()), None)
    if found is None:
        raise DatasetError(f"{path} is not a Feature Service dataset: it has no {MANIFESTS[0]} "
                           "(build one with feature-service dataset build)")
    try:
        m = orjson.loads(found.read_bytes())
    except (orjson.JSONDecodeError, OSError) as e:
        raise DatasetError(f"{found}: not a readable JSON manifest: {e}") from None
    _check_manifest(m, found)
    return Dataset(path, m)


def _check_manifest(m: Any, where: Path) -> None:
    """Raise DatasetError naming the first manifest field that is missing or wrong."""
    if not isinstance(m, dict):
        raise DatasetError(f"{where}: the manifest must be a JSON object")
    if m.get("format") not in FORMATS:
        raise DatasetError(f"{where}: manifest format {m.get('format')!r} is not one this service reads ({FORMATS})")
    if m.get("status") != "done":
        raise DatasetError(f"{where}: the dataset is not complete (status {m.get('status')!r})")
    checks = {
        "dataset_id": lambda v: isinstance(v, str) and DATASET_ID_RE.match(v),
        "registry_hash": lambda v: isinstance(v, str) and _HASH_RE.match(v),
        "feature_names": lambda v: isinstance(v, list) and v and all(isinstance(n, str) for n in v),
        "params": lambda v: isinstance(v, dict) and isinstance(v.get("horizons"), list)
        and isinstance(v.get("horizons_ns"), dict),
        "files": lambda v: isinstance(v, list) and v and all(isinstance(f, dict) and "path" in f for f in v),
    }
    for key, ok in checks.items():
        if key not in m or not ok(m[key]):
            raise DatasetError(f"{where}: manifest field {key!r} is missing or malformed")
    missing = [h for h in m["params"]["horizons"] if h not in m["params"]["horizons_ns"]]
    if missing:
        raise DatasetError(f"{where}: manifest params.horizons_ns has no length for horizon {missing[0]!r}")
    if "at" in m:
        raise DatasetError(f"{where}: dataset {m['dataset_id']} is a point-in-time join of events, not a "
                           "labelled tick dataset; train on a dataset built without --at")


def load_rows(ds: Dataset, horizon: str) -> TrainingRows:
    """The feature matrix and `label_<horizon>` of every row; invalid-book and null-label rows dropped and counted."""
    if horizon not in ds.horizons:
        raise DatasetError(f"dataset {ds.dataset_id} has no horizon {horizon!r}; it has {', '.join(ds.horizons)}")
    names, label = ds.feature_names, f"label_{horizon}"
    parts = [_read_file(ds, f, names, label) for f in ds.manifest["files"]]
    table = pa.concat_tables([t for t, _ in parts])
    syms = np.concatenate([np.full(t.num_rows, s, dtype=object) for t, s in parts])
    ts = table.column("ts").cast(pa.int64()).to_numpy()
    valid = table.column("book_valid").to_numpy() == 1
    y_col = table.column(label)
    has_label = ~np.asarray(y_col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    y = y_col.fill_null(0).to_numpy().astype(np.int64)
    x = np.column_stack([table.column(n).to_numpy(zero_copy_only=False).astype(np.float64) for n in names])
    keep = valid & has_label
    order = np.lexsort((syms[keep].astype(str), ts[keep]))
    dropped = {"invalid_book": int((~valid).sum()), "null_label": int((valid & ~has_label).sum())}
    return TrainingRows(x[keep][order], y[keep][order], ts[keep][order], syms[keep][order], table.num_rows, dropped)


def _read_file(ds: Dataset, entry: dict[str, Any], names: list[str], label: str) -> tuple[pa.Table, str]:
    """One dataset file, its checksum and columns checked, and its symbol (from the hive path)."""
    rel = str(entry["path"])
    path = (ds.path / rel).resolve()
    if ds.path.resolve() not in path.parents:
        raise DatasetError(f"dataset {ds.dataset_id}: manifest file {rel!r} lies outside the dataset")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise DatasetError(f"dataset {ds.dataset_id}: cannot read {rel}: {e.strerror}") from None
    if "sha256" in entry and hashlib.sha256(data).hexdigest() != entry["sha256"]:
        raise DatasetError(f"dataset {ds.dataset_id}: {rel} does not match its manifest checksum (changed or damaged)")
    table = pq.read_table(pa.BufferReader(data))
    features = [c for c in table.column_names if c not in ("ts", "book_valid", "symbol")
                and not c.startswith(("target_return_", "label_"))]
    if features != names:
        raise DatasetError(f"dataset {ds.dataset_id}: {rel} has feature columns other than the manifest's "
                           "feature_names, in registry order")
    if label not in table.column_names:
        raise DatasetError(f"dataset {ds.dataset_id}: {rel} has no column {label}")
    m = re.search(r"(?:^|/)symbol=([^/]+)/", rel)
    symbol = m.group(1) if m else (table.column("symbol")[0].as_py() if "symbol" in table.column_names else "")
    return table.select(["ts", "book_valid", *names, label]), symbol
