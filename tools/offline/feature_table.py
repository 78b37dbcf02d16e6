"""Feature vectors as Arrow/Parquet: the one table layout replay, datasets, `verify` and the feature log share."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from engine.engine import Vector
from registry import Registry

#: Schema metadata keys carrying the registry a file was computed with.
META_HASH = b"feature_registry_hash"
META_REGISTRY = b"feature_registry"

#: Columns ahead of the features, in order.
LEADING = ("ts", "symbol", "book_valid")
#: The optional last column naming each row's registry (the feature log has it; replay files do not).
REGISTRY_HASH = "registry_hash"

#: Per-column Arrow field metadata: column name -> {key: value}.
FieldMetadata = Mapping[str, Mapping[str | bytes, str | bytes]]


class FeatureTableError(ValueError):
    """Vectors that do not fit the requested output; the message names the file and the registries."""


def schema(registry: Registry, *, registry_hash_column: bool = False,
           field_metadata: FieldMetadata | None = None) -> pa.Schema:
    """`ts` (tick boundary, UTC ns), `symbol`, `book_valid`, every registry column as float64[, `registry_hash`].

    `field_metadata` attaches Arrow field metadata to the named columns (an unknown name is an error).
    """
    fields = [pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
              pa.field("symbol", pa.string(), nullable=False),
              pa.field("book_valid", pa.int8(), nullable=False)]
    fields += [pa.field(f.name, pa.float64()) for f in registry.features]
    if registry_hash_column:
        if REGISTRY_HASH in registry.names:
            raise FeatureTableError(f"registry {registry.source}: feature {REGISTRY_HASH!r} clashes with the log column")
        fields.append(pa.field(REGISTRY_HASH, pa.string(), nullable=False))
    if field_metadata:
        fields = _with_field_metadata(fields, field_metadata)
    meta = {META_HASH: registry.content_hash.encode(), META_REGISTRY: registry.canonical.encode()}
    return pa.schema(fields, metadata=meta)


def _with_field_metadata(fields: list[pa.Field], field_metadata: FieldMetadata) -> list[pa.Field]:
    """Return `fields` with the metadata of `field_metadata` attached by column name."""
    unknown = set(field_metadata) - {f.name for f in fields}
    if unknown:
        raise FeatureTableError(f"field_metadata: no column named {', '.join(sorted(unknown))}")
    return [f.with_metadata(field_metadata[f.name]) if f.name in field_metadata else f for f in fields]


def feature_count(sch: pa.Schema) -> int:
    """Number of feature columns of a schema made by `schema`."""
    return len(sch) - len(LEADING) - (sch.names[-1] == REGISTRY_HASH)


def to_batch(vectors: list[Vector], sch: pa.Schema) -> pa.RecordBatch:
    """Turn vectors into one record batch of `sch` (NaN stays NaN, never null)."""
    n_features = feature_count(sch)
    values = np.vstack([v.values for v in vectors]) if vectors else np.empty((0, n_features))
    if values.shape[1] != n_features:
        raise FeatureTableError(f"vectors have {values.shape[1]} values, the table has {n_features} feature columns")
    cols = [pa.array(np.fromiter((v.ts_ns for v in vectors), np.int64, len(vectors)), pa.int64()).cast(sch.field(0).type),
            pa.array([v.symbol for v in vectors], pa.string()),
            pa.array(np.fromiter((v.book_valid for v in vectors), np.int8, len(vectors)), pa.int8())]
    cols += [pa.array(values[:, j], pa.float64()) for j in range(n_features)]
    if sch.names[-1] == REGISTRY_HASH:
        cols.append(pa.array([v.registry_hash for v in vectors], pa.string()))
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
                raise FeatureTableError(f"vector at {v.ts_ns} was computed with registry {v.registry_hash[:12]}, "
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

    def abort(self) -> None:
        """Close the file without writing what is still buffered (the caller deletes it)."""
        self._pending = []
        self._writer.close()

    def __enter__(self) -> FeatureFileWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_by_registry(out: str | Path, vectors: Iterable[Vector], registries: Mapping[str, Registry],
                      batch_rows: int = 65_536) -> dict[str, Path]:
    """Stream `vectors` into Parquet: one file if `out` ends in `.parquet`, else one per registry hash in `out`/.

    A directory gets `features-<hash12>.parquet` per registry met; a `.parquet` file takes vectors of
    one registry only and otherwise raises `FeatureTableError` naming the hashes. Files appear under
    their final names only when complete: on any error nothing partial is left. Returns hash → path.
    """
    out = Path(out)
    if out.suffix == ".parquet":
        return _write_file(out, vectors, registries, batch_rows)
    return _write_dir(out, vectors, registries, batch_rows)


def output_name(registry_hash: str) -> str:
    """File name, inside a `replay --out DIR`, of the vectors computed with `registry_hash`."""
    return f"features-{registry_hash[:12]}.parquet"


class _Staged:
    """A feature file written under a temp name in its final directory, renamed when committed."""

    def __init__(self, final: Path, registry: Registry, batch_rows: int) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        self.writer = FeatureFileWriter(self.tmp, registry, batch_rows)

    def commit(self) -> Path:
        self.writer.close()
        os.replace(self.tmp, self.final)
        return self.final

    def discard(self) -> None:
        try:
            self.writer.abort()
        finally:
            self.tmp.unlink(missing_ok=True)


def _registry_for(registries: Mapping[str, Registry], v: Vector) -> Registry:
    """The registry `v` was computed with; an unknown hash is an error naming it."""
    try:
        return registries[v.registry_hash]
    except KeyError:
        known = ", ".join(sorted(registries)) or "none"
        raise FeatureTableError(f"vector at {v.ts_ns} ({v.symbol}) has registry hash {v.registry_hash}, "
                                f"not among the registries given ({known})") from None


def _write_file(out: Path, vectors: Iterable[Vector], registries: Mapping[str, Registry],
                batch_rows: int) -> dict[str, Path]:
    """One `.parquet` file of a single registry's vectors."""
    if not out.parent.is_dir():
        raise FeatureTableError(f"{out}: directory {out.parent} does not exist")
    staged: _Staged | None = None
    try:
        for v in vectors:
            if staged is None:
                staged = _Staged(out, _registry_for(registries, v), batch_rows)
            elif v.registry_hash != staged.writer.hash:
                _registry_for(registries, v)
                raise FeatureTableError(f"{out}: vectors of more than one registry ({staged.writer.hash}, "
                                        f"{v.registry_hash}); write to a directory to get one file per registry")
            staged.writer.write((v,))
        if staged is None:
            staged = _Staged(out, _only_registry(out, registries), batch_rows)
    except BaseException:
        if staged is not None:
            staged.discard()
        raise
    return {staged.writer.hash: staged.commit()}


def _only_registry(out: Path, registries: Mapping[str, Registry]) -> Registry:
    """The registry whose schema an empty output file gets: there must be exactly one."""
    if len(registries) != 1:
        raise FeatureTableError(f"{out}: no vectors in range, and {len(registries)} registries to choose a schema "
                                f"from ({', '.join(sorted(registries)) or 'none'})")
    return next(iter(registries.values()))


def _write_dir(out: Path, vectors: Iterable[Vector], registries: Mapping[str, Registry],
               batch_rows: int) -> dict[str, Path]:
    """One `features-<hash12>.parquet` per registry met, in directory `out`."""
    if out.exists() and not out.is_dir():
        raise FeatureTableError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    staged: dict[str, _Staged] = {}
    try:
        for v in vectors:
            s = staged.get(v.registry_hash)
            if s is None:
                s = staged[v.registry_hash] = _stage_in_dir(out, v, registries, staged, batch_rows)
            s.writer.write((v,))
    except BaseException:
        for s in staged.values():
            s.discard()
        raise
    return {h: s.commit() for h, s in staged.items()}


def _stage_in_dir(out: Path, v: Vector, registries: Mapping[str, Registry], staged: Mapping[str, _Staged],
                  batch_rows: int) -> _Staged:
    """Open the staged file for the registry of `v` (two hashes sharing a 12-digit prefix are an error)."""
    registry = _registry_for(registries, v)
    clash = [h for h in staged if h[:12] == v.registry_hash[:12]]
    if clash:
        raise FeatureTableError(f"{out}: registries {clash[0]} and {v.registry_hash} share the file name "
                                f"{output_name(v.registry_hash)}")
    return _Staged(out / output_name(v.registry_hash), registry, batch_rows)
