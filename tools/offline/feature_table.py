"""Feature files: vectors as Parquet for replay, datasets and `verify`, in one file or one per registry.

The table layout itself (`schema`, `to_batch`) lives in `journal.feature_log`, below `tools/` in the
layering, because the shard's feature log writes the same layout; it is re-exported here.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pyarrow.parquet as pq

from engine.engine import Vector
from journal.feature_log import (
    LEADING,
    META_HASH,
    META_REGISTRY,
    REGISTRY_HASH,
    FeatureTableError,
    FieldMetadata,
    feature_count,
    schema,
    to_batch,
)
from registry import Registry

#: Field metadata of a registry's feature columns (unit, description), for `write_by_registry`.
Docs = Callable[[Registry], "FieldMetadata"]
#: (batch_rows, docs) passed down to every staged file.
_Options = tuple[int, "Docs | None"]

__all__ = ["LEADING", "META_HASH", "META_REGISTRY", "REGISTRY_HASH", "FeatureFileWriter", "FeatureTableError",
           "FieldMetadata", "feature_count", "output_name", "schema", "to_batch", "write_by_registry"]


class FeatureFileWriter:
    """Stream vectors into a Parquet file in batches of `batch_rows` rows."""

    def __init__(self, path: str | Path, registry: Registry, batch_rows: int = 65_536,
                 field_metadata: FieldMetadata | None = None) -> None:
        self.schema = schema(registry, field_metadata=field_metadata)
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
                      batch_rows: int = 65_536, docs: Docs | None = None) -> dict[str, Path]:
    """Stream `vectors` into Parquet: one file if `out` ends in `.parquet`, else one per registry hash in `out`/.

    A directory gets `features-<hash12>.parquet` per registry met; a `.parquet` file takes vectors of
    one registry only and otherwise raises `FeatureTableError` naming the hashes. Files appear under
    their final names only when complete: on any error nothing partial is left. Returns hash → path.
    `docs(registry)` gives each feature column's Parquet field metadata (unit, description).
    """
    out = Path(out)
    if out.suffix.lower() == ".parquet":
        return _write_file(out, vectors, registries, (batch_rows, docs))
    return _write_dir(out, vectors, registries, (batch_rows, docs))


def output_name(registry_hash: str) -> str:
    """File name, inside a `replay --out DIR`, of the vectors computed with `registry_hash`."""
    return f"features-{registry_hash[:12]}.parquet"


class _Staged:
    """A feature file written under a temp name in its final directory, renamed when committed."""

    def __init__(self, final: Path, registry: Registry, opts: _Options) -> None:
        self.final = final
        self.tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.tmp")
        batch_rows, docs = opts
        self.writer = FeatureFileWriter(self.tmp, registry, batch_rows, docs(registry) if docs else None)

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
                opts: _Options) -> dict[str, Path]:
    """One `.parquet` file of a single registry's vectors."""
    if not out.parent.is_dir():
        raise FeatureTableError(f"{out}: directory {out.parent} does not exist")
    if out.is_dir():
        raise FeatureTableError(f"{out}: is a directory; a name ending in .parquet means one file")
    staged: _Staged | None = None
    try:
        for v in vectors:
            if staged is None:
                staged = _Staged(out, _registry_for(registries, v), opts)
            elif v.registry_hash != staged.writer.hash:
                _registry_for(registries, v)
                raise FeatureTableError(f"{out}: vectors of more than one registry ({staged.writer.hash}, "
                                        f"{v.registry_hash}); write to a directory to get one file per registry")
            staged.writer.write((v,))
        if staged is None:
            staged = _Staged(out, _only_registry(out, registries), opts)
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
               opts: _Options) -> dict[str, Path]:
    """One `features-<hash12>.parquet` per registry met, in directory `out`."""
    if out.exists() and not out.is_dir():
        raise FeatureTableError(f"{out}: exists and is not a directory")
    out.mkdir(parents=True, exist_ok=True)
    staged: dict[str, _Staged] = {}
    try:
        for v in vectors:
            s = staged.get(v.registry_hash)
            if s is None:
                s = staged[v.registry_hash] = _stage_in_dir(out, v, registries, staged, opts)
            s.writer.write((v,))
    except BaseException:
        for s in staged.values():
            s.discard()
        raise
    return {h: s.commit() for h, s in staged.items()}


def _stage_in_dir(out: Path, v: Vector, registries: Mapping[str, Registry], staged: Mapping[str, _Staged],
                  opts: _Options) -> _Staged:
    """Open the staged file for the registry of `v` (two hashes sharing a 12-digit prefix are an error)."""
    registry = _registry_for(registries, v)
    clash = [h for h in staged if h[:12] == v.registry_hash[:12]]
    if clash:
        raise FeatureTableError(f"{out}: registries {clash[0]} and {v.registry_hash} share the file name "
                                f"{output_name(v.registry_hash)}")
    return _Staged(out / output_name(v.registry_hash), registry, opts)
