"""Which registry a shard start journals: the one in force, unless the configured file changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.record import Kind, Record, session
from journal.config import JournalConfig
from journal.reader import JournalReader
from journal.writer import JournalWriter
from registry import Registry, load_registry_text
from tools.shard.config import ShardConfig, ShardSection, resolve
from tools.shard.node import ShardNode

T0 = 1_786_310_800_000_000_000
FILE_A = "version: 1\nfeatures:\n  - {name: mid, function: mid_price}\n"
FILE_B = FILE_A + "  - {name: spread, function: spread_abs}\n"
POSTED = FILE_A + "  - {name: tod, function: time_of_day}\n"


def reg(text: str) -> Registry:
    return load_registry_text(text, source="test")


def node_for(tmp_path: Path, file_text: str, history: list[Record]) -> ShardNode:
    """A node (not started) over a journal holding `history`, configured with a registry file."""
    (tmp_path / "registry.yaml").write_text(file_text)
    cfg = resolve(ShardConfig(data_dir=str(tmp_path / "data"), shard=ShardSection(name="t", symbols=("AUSDT",)),
                              registry=str(tmp_path / "registry.yaml")))
    with JournalWriter(JournalConfig(dir=cfg.journal.dir, fsync="never")) as w:
        w.append(history)
    return ShardNode(cfg)


def first_start(configured: str) -> list[Record]:
    r = reg(configured)
    return [session(T0, "t", "linear", ["AUSDT"], r.canonical, r.content_hash, r.content_hash)]


def posted(t: int, text: str) -> Record:
    r = reg(text)
    return Record(0, t, Kind.REGISTRY_CHANGED, "", 0, 0, {"hash": r.content_hash, "content": r.canonical})


@pytest.mark.parametrize(("file_now", "want"), [(FILE_A, POSTED), (FILE_B, FILE_B)])
def test_a_posted_registry_survives_a_restart_unless_the_file_changed(tmp_path: Path, file_now: str,
                                                                      want: str) -> None:
    node = node_for(tmp_path, file_now, [*first_start(FILE_A), posted(T0 + 10, POSTED)])
    try:
        assert node.registry.content_hash == reg(want).content_hash
        rec = node._session()
        assert rec.payload["hash"] == reg(want).content_hash and rec.payload["configured"] == reg(file_now).content_hash
    finally:
        node.close()


def test_a_reload_of_the_file_is_remembered_as_the_configured_one(tmp_path: Path) -> None:
    """File A at start, file B re-read by an empty reload, then a posted registry: a restart on B keeps it."""
    b = reg(FILE_B)
    reread = Record(0, T0 + 5, Kind.REGISTRY_CHANGED, "", 0, 0,
                    {"hash": b.content_hash, "content": b.canonical, "configured": b.content_hash})
    node = node_for(tmp_path, FILE_B, [*first_start(FILE_A), reread, posted(T0 + 10, POSTED)])
    try:
        assert node.registry.content_hash == reg(POSTED).content_hash
    finally:
        node.close()
    kinds = [r.kind for r in JournalReader(str(tmp_path / "data" / "journal")).records()]
    assert kinds == [Kind.SESSION, Kind.REGISTRY_CHANGED, Kind.REGISTRY_CHANGED]  # building a node journals nothing


def test_a_batch_spanning_a_registry_switch_reaches_the_feature_log_one_run_per_registry() -> None:
    """A restart's backfill can hold ticks before and after a switch: each run gets its own registry."""
    from types import SimpleNamespace

    calls: list[tuple[list[str], str]] = []
    log = SimpleNamespace(append=lambda vs, r: calls.append(([v.registry_hash for v in vs], r)))
    node = SimpleNamespace(feature_log=log, fold=SimpleNamespace(engine=SimpleNamespace(registries={"a": "A", "b": "B"})))
    vectors = [SimpleNamespace(registry_hash=h) for h in "aabbba"]
    ShardNode._log_vectors(node, vectors)  # type: ignore[arg-type]
    assert calls == [(["a", "a"], "A"), (["b", "b", "b"], "B"), (["a"], "A")]
