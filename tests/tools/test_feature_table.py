"""Feature table layout and `write_by_registry`: one file or one file per registry, bit for bit, nothing partial."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.engine import Vector
from registry import Registry, load_registry_text
from tools.offline.feature_table import (
    META_HASH,
    META_REGISTRY,
    FeatureTableError,
    schema,
    to_batch,
    write_by_registry,
)
from tools.registry_file import default_registry, default_registry_text

NS = 1_000_000_000
T0 = 1_780_000_000 * NS  # an epoch-aligned second
#: A quiet NaN with a payload, besides numpy's own NaN: bits must survive, not just NaN-ness.
PAYLOAD_NAN = np.array([0x7FF8_0000_0000_0ABC], np.uint64).view(np.float64)[0]
SPECIALS = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, PAYLOAD_NAN, 5e-324, -1.7976931348623157e308])


def second_registry(drop: str = "time_of_day") -> Registry:
    """The default registry minus feature `drop`: another hash, one column fewer."""
    lines = [ln for ln in default_registry_text().splitlines() if f"name: {drop}," not in ln]
    reg = load_registry_text("\n".join(lines) + "\n", source=f"default-minus-{drop}")
    assert len(reg) == len(default_registry()) - 1
    return reg


def make_vectors(registry: Registry, ticks: int, symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT"),
                 start_ns: int = T0, seed: int = 1, step_ns: int = NS) -> list[Vector]:
    """One vector per symbol per tick, random values with NaN, ±0, ±inf and a payload NaN sprinkled in."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(ticks):
        for sym in symbols:
            values = rng.normal(0.0, 1e3, len(registry))
            holes = rng.random(len(registry)) < 0.3
            values[holes] = rng.choice(SPECIALS, int(holes.sum()))
            out.append(Vector(start_ns + i * step_ns, sym, int(rng.integers(0, 2)), values, registry.content_hash))
    return out


def assert_rows_equal(table: pa.Table, vectors: list[Vector], registry: Registry) -> None:
    """The table holds exactly `vectors`, in order, every float bit for bit."""
    assert table.num_rows == len(vectors)
    assert table.column("ts").cast(pa.int64()).to_pylist() == [v.ts_ns for v in vectors]
    assert table.column("symbol").to_pylist() == [v.symbol for v in vectors]
    assert table.column("book_valid").to_pylist() == [v.book_valid for v in vectors]
    want = np.vstack([v.values for v in vectors]).view(np.uint64) if vectors else np.empty((0, len(registry)))
    for j, name in enumerate(registry.names):
        got = table.column(name).to_numpy(zero_copy_only=False)
        assert table.column(name).null_count == 0
        assert np.array_equal(got.view(np.uint64), want[:, j]), name


def test_schema_layout_unchanged_for_existing_callers() -> None:
    reg = default_registry()
    sch = schema(reg)
    assert sch.names == ["ts", "symbol", "book_valid", *reg.names]
    assert str(sch.field("ts").type) == "timestamp[ns, tz=UTC]"
    assert [str(sch.field(n).type) for n in reg.names] == ["double"] * len(reg)
    assert sch.metadata == {META_HASH: reg.content_hash.encode(), META_REGISTRY: reg.canonical.encode()}
    assert all(f.metadata is None for f in sch)


def test_schema_with_registry_hash_column_and_field_metadata() -> None:
    reg = default_registry()
    sch = schema(reg, registry_hash_column=True, field_metadata={"mid_price": {"unit": "quote"}})
    assert sch.names == ["ts", "symbol", "book_valid", *reg.names, "registry_hash"]
    assert sch.field("registry_hash").type == pa.string()
    assert sch.field("mid_price").metadata == {b"unit": b"quote"}
    assert sch.field("spread_abs").metadata is None
    vecs = make_vectors(reg, 2)
    batch = to_batch(vecs, sch)
    assert batch.column(len(sch) - 1).to_pylist() == [reg.content_hash] * 4
    with pytest.raises(FeatureTableError, match="no column named nope"):
        schema(reg, field_metadata={"nope": {"a": "b"}})


def test_to_batch_refuses_wrong_width() -> None:
    vecs = make_vectors(second_registry(), 1)
    with pytest.raises(FeatureTableError, match="values"):
        to_batch(vecs, schema(default_registry()))


def leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.endswith(".tmp"))


def test_one_file_round_trip(tmp_path: Path) -> None:
    reg = default_registry()
    vecs = make_vectors(reg, 40)
    out = tmp_path / "f.parquet"
    got = write_by_registry(out, iter(vecs), {reg.content_hash: reg}, batch_rows=7)
    assert got == {reg.content_hash: out}
    table = pq.read_table(out)
    assert table.schema.metadata[META_HASH].decode() == reg.content_hash
    assert "registry_hash" not in table.column_names
    assert_rows_equal(table, vecs, reg)
    assert leftovers(tmp_path) == []


def test_one_file_with_two_registries_fails_and_leaves_nothing(tmp_path: Path) -> None:
    a, b = default_registry(), second_registry()
    vecs = make_vectors(a, 30) + make_vectors(b, 5, start_ns=T0 + 30 * NS)
    out = tmp_path / "f.parquet"
    with pytest.raises(FeatureTableError) as e:
        write_by_registry(out, vecs, {a.content_hash: a, b.content_hash: b}, batch_rows=8)
    assert a.content_hash in str(e.value) and b.content_hash in str(e.value) and str(out) in str(e.value)
    assert list(tmp_path.iterdir()) == []
    # An older file under that name is left as it was.
    out.write_bytes(b"previous")
    with pytest.raises(FeatureTableError):
        write_by_registry(out, vecs, {a.content_hash: a, b.content_hash: b})
    assert out.read_bytes() == b"previous"
    assert leftovers(tmp_path) == []


def test_directory_one_file_per_registry(tmp_path: Path) -> None:
    a, b = default_registry(), second_registry()
    va1 = make_vectors(a, 10, seed=1)
    vb = make_vectors(b, 10, start_ns=T0 + 10 * NS, seed=2)
    va2 = make_vectors(a, 10, start_ns=T0 + 20 * NS, seed=3)  # reloaded back to the first registry
    out = tmp_path / "new" / "deeper"
    got = write_by_registry(out, va1 + vb + va2, {a.content_hash: a, b.content_hash: b}, batch_rows=6)
    assert got == {a.content_hash: out / f"features-{a.content_hash[:12]}.parquet",
                   b.content_hash: out / f"features-{b.content_hash[:12]}.parquet"}
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in got.values())
    ta, tb = pq.read_table(got[a.content_hash]), pq.read_table(got[b.content_hash])
    assert ta.schema.metadata[META_HASH].decode() == a.content_hash
    assert tb.schema.metadata[META_HASH].decode() == b.content_hash
    assert "time_of_day" in ta.column_names and "time_of_day" not in tb.column_names
    assert_rows_equal(ta, va1 + va2, a)
    assert_rows_equal(tb, vb, b)


def test_directory_refuses_a_file(tmp_path: Path) -> None:
    reg = default_registry()
    out = tmp_path / "plain"
    out.write_text("x")
    with pytest.raises(FeatureTableError, match="not a directory"):
        write_by_registry(out, make_vectors(reg, 1), {reg.content_hash: reg})
    assert out.read_text() == "x"


def test_one_file_refuses_a_directory_or_a_missing_parent(tmp_path: Path) -> None:
    reg = default_registry()
    (tmp_path / "x.parquet").mkdir()
    with pytest.raises(FeatureTableError, match="is a directory"):
        write_by_registry(tmp_path / "x.parquet", make_vectors(reg, 1), {reg.content_hash: reg})
    with pytest.raises(FeatureTableError, match="does not exist"):
        write_by_registry(tmp_path / "no" / "f.parquet", make_vectors(reg, 1), {reg.content_hash: reg})
    assert [p.name for p in tmp_path.iterdir()] == ["x.parquet"]
    assert list((tmp_path / "x.parquet").iterdir()) == []


def test_unknown_registry_hash_fails_and_leaves_nothing(tmp_path: Path) -> None:
    a, b = default_registry(), second_registry()
    vecs = make_vectors(a, 5) + make_vectors(b, 1, start_ns=T0 + 5 * NS)
    for out in (tmp_path / "d", tmp_path / "f.parquet"):
        with pytest.raises(FeatureTableError, match=f"registry hash {b.content_hash}, not among"):
            write_by_registry(out, vecs, {a.content_hash: a})
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    assert list((tmp_path / "d").iterdir()) == []


def test_failing_source_leaves_nothing(tmp_path: Path) -> None:
    reg = default_registry()

    def source() -> Iterator[Vector]:
        yield from make_vectors(reg, 20)
        raise RuntimeError("journal gone")

    for out in (tmp_path / "d", tmp_path / "f.parquet"):
        with pytest.raises(RuntimeError, match="journal gone"):
            write_by_registry(out, source(), {reg.content_hash: reg}, batch_rows=4)
    assert [p.name for p in tmp_path.iterdir()] == ["d"]
    assert list((tmp_path / "d").iterdir()) == []


def test_empty_range(tmp_path: Path) -> None:
    a, b = default_registry(), second_registry()
    out = tmp_path / "f.parquet"
    assert write_by_registry(out, [], {a.content_hash: a}) == {a.content_hash: out}
    table = pq.read_table(out)
    assert table.num_rows == 0 and table.schema.metadata[META_HASH].decode() == a.content_hash
    with pytest.raises(FeatureTableError, match="no vectors in range"):
        write_by_registry(tmp_path / "g.parquet", [], {a.content_hash: a, b.content_hash: b})
    assert write_by_registry(tmp_path / "d", [], {a.content_hash: a}) == {}
    assert list((tmp_path / "d").iterdir()) == []


def test_streams_instead_of_holding_every_vector(tmp_path: Path) -> None:
    """At most about one batch of vectors is alive while writing (numpy arrays are weak-referenceable)."""
    reg, batch_rows = default_registry(), 50
    alive: list[weakref.ref] = []
    peak = 0

    def source() -> Iterator[Vector]:
        nonlocal peak
        rng = np.random.default_rng(5)
        for i in range(2000):
            values = rng.normal(size=len(reg))
            alive.append(weakref.ref(values))
            peak = max(peak, sum(r() is not None for r in alive[-3 * batch_rows:]))
            yield Vector(T0 + i * NS, "BTCUSDT", 1, values, reg.content_hash)

    for out in (tmp_path / "f.parquet", tmp_path / "d"):
        peak = 0
        alive.clear()
        write_by_registry(out, source(), {reg.content_hash: reg}, batch_rows=batch_rows)
        assert peak <= batch_rows + 2, peak
