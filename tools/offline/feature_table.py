"""Feature vectors as Arrow/Parquet: the one table layout replay, datasets and `verify` share."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.engine import Vector
from registry import Registry

#: Schema metadata keys carrying the registry a file was computed with.
META_HASH = b"feature_registry_hash"
META_REGISTRY = b"feature_registry"


def schema(registry: Registry) -> pa.Schema:
    """`ts` (tick boundary, UTC ns), `symbol`, `book_valid`, then every registry column as float64."""
    fields = [pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
              pa.field("symbol", pa.string(), nullable=False),
              pa.field("book_valid", pa.int8(), nullable=False)]
    fields += [pa.field(f.name, pa.float64()) for f in registry.features]
    meta = {META_HASH: registry.content_hash.encode(), META_REGISTRY: registry.canonical.encode()}
    return pa.schema(fields, metadata=meta)


def to_batch(vectors: list[Vector], sch: pa.Schema) -> pa.RecordBatch:
    """Turn vectors into one record batch of `sch` (NaN stays NaN, never null)."""
    n_features = len(sch) - 3
    values = np.vstack([v.values for v in vectors]) if vectors else np.empty((0, n_features))
    cols = [pa.array(np.fromiter((v.ts_ns for v in vectors), np.int64, len(vectors)), pa.int64()).cast(sch.field(0).type),
            pa.array([v.symbol for v in vectors], pa.string()),
            pa.array(np.fromiter((v.book_valid for v in vectors), np.int8, len(vectors)), pa.int8())]
    cols += [pa.array(values[:, j], pa.float64()) for j in range(n_features)]
    return pa.RecordBatch.from_arrays(cols, schema=sch)


class FeatureFileWriter:
    """Stream vectors into a Parquet file in batches of `batch_rows` rows."""

    def __init__(self, path: str | Path, registry: Registry, batch_rows: int = 65_536) -> None:
        self.schema = schema(registry)
        self.hash = registry.content_hash
        self.batch_rows = batch_rows
        self.rows = 0
        self._pending: list[Vector] = []
        self._writer = pq.ParquetWriter(str(path), self.schema, compression="zstd")

    def write(self, vectors: Iterable[Vector]) -> None:
        """Buffer `vectors`, flushing full batches; every vector must carry this file's registry hash."""
        for v in vectors:
            if v.registry_hash != self.hash:
                raise ValueError(f"vector at {v.ts_ns} was computed with registry {v.registry_hash[:12]}, "
                                 f"file is {self.hash[:12]}")
            self._pending.append(v)
            if len(self._pending) >= self.batch_rows:
                self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_batch(to_batch(self._pending, self.schema))
            self.rows += len(self._pending)
            self._pending = []

    def close(self) -> None:
        """Flush and close the file."""
        self._flush()
        self._writer.close()

    def __enter__(self) -> FeatureFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
