"""Checkpoints: atomic saves, keep-N pruning, damaged files skipped for an older one, kill -9 safe."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from journal.checkpoints import Checkpoint, CheckpointStore

REPO = Path(__file__).resolve().parents[2]


def payload(seq: int, size: int = 100) -> bytes:
    """Deterministic engine bytes for `seq` (so a loaded checkpoint can be checked for its seq)."""
    block = hashlib.sha256(seq.to_bytes(8, "little")).digest()
    return (block * (size // 32 + 1))[:size]


def test_round_trip_and_layout(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    data, meta = b"\x00engine\xffstate", {"registry_hash": "ab" * 32, "next_seq": 43, "ts": [1, 2]}
    path = store.save(42, data, meta)
    assert path == tmp_path / "ckpt-00000000000000000042.bin"
    assert store.load_newest() == Checkpoint(42, data, meta, path)
    # The layout, read by hand.
    blob = path.read_bytes()
    magic, seq, n_meta, n_data = struct.unpack_from("<8sQQQ", blob)
    assert (magic, seq, n_data) == (b"FSCKPT01", 42, len(data))
    body = blob[64:]
    assert blob[32:64] == hashlib.sha256(body).digest()
    assert msgpack.unpackb(body[:n_meta]) == meta
    assert body[n_meta:] == data
    assert len(blob) == 64 + n_meta + n_data


def test_empty_dir_gives_none(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path / "new")
    assert store.list() == []
    assert store.load_newest() is None


def test_keep_n_prunes_oldest(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=3)
    for seq in (5, 10, 15, 20, 25):
        store.save(seq, payload(seq), {})
    assert [s for s, _ in store.list()] == [15, 20, 25]
    assert store.load_newest().seq == 25
    # An older seq written after newer ones stays: the one just written is never pruned.
    store.save(1, payload(1), {})
    assert [s for s, _ in store.list()] == [1, 20, 25]


def test_keep_out_of_range_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="^keep: "):
        CheckpointStore(tmp_path, keep=0)


def test_max_seq_skips_checkpoints_beyond_the_journal(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path, keep=5)
    for seq in (100, 200, 300):
        store.save(seq, payload(seq), {"seq": seq})
    assert store.load_newest(max_seq=299).seq == 200
    assert store.load_newest(max_seq=200).seq == 200
    assert store.load_newest(max_seq=99) is None
    assert store.load_newest(max_seq=10**9).seq == 300


def test_temp_leftovers_removed_on_open(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(7, payload(7), {})
    leftover = tmp_path / ".ckpt-00000000000000000008-deadbeef.tmp"
    leftover.write_bytes(b"half a checkpoint")
    other = tmp_path / "notes.txt"
    other.write_text("not ours")
    store = CheckpointStore(tmp_path)
    assert not leftover.exists()
    assert other.exists()
    assert [s for s, _ in store.list()] == [7]


def two_checkpoints(d: Path) -> tuple[CheckpointStore, Path, bytes]:
    """A store holding seq 1 and seq 2 (small); return it, seq 2's path and its pristine bytes."""
    store = CheckpointStore(d)
    store.save(1, payload(1, 40), {"seq": 1})
    newest = store.save(2, payload(2, 40), {"seq": 2})
    return store, newest, newest.read_bytes()


def assert_older_used(store: CheckpointStore) -> None:
    got = store.load_newest()
    assert got is not None and got.seq == 1
    assert got.data == payload(1, 40) and got.meta == {"seq": 1}


def test_torn_at_every_offset_uses_older(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, newest, blob = two_checkpoints(tmp_path)
    for cut in range(len(blob)):
        newest.write_bytes(blob[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="journal.checkpoints"):
            assert_older_used(store)
        assert any(str(newest) in r.getMessage() for r in caplog.records), cut
    newest.write_bytes(blob)
    assert store.load_newest().seq == 2


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_flipped_byte_uses_older(data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d:
        store, newest, blob = two_checkpoints(Path(d))
        pos = data.draw(st.integers(0, len(blob) - 1), label="pos")
        mask = data.draw(st.integers(1, 255), label="mask")
        damaged = bytearray(blob)
        damaged[pos] ^= mask
        newest.write_bytes(bytes(damaged))
        assert_older_used(store)


def test_damaged_reason_is_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, newest, blob = two_checkpoints(tmp_path)
    newest.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with caplog.at_level(logging.WARNING, logger="journal.checkpoints"):
        assert_older_used(store)
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"checkpoint {newest} is unreadable (SHA-256 mismatch): trying an older one"]


def test_all_damaged_gives_none(tmp_path: Path) -> None:
    store, newest, _ = two_checkpoints(tmp_path)
    for _, p in store.list():
        p.write_bytes(b"FSCKPT01")
    assert store.load_newest() is None


def test_header_seq_must_match_name(tmp_path: Path) -> None:
    store, newest, blob = two_checkpoints(tmp_path)
    os.replace(newest, tmp_path / "ckpt-00000000000000000003.bin")
    assert_older_used(store)


def test_save_from_worker_thread(tmp_path: Path) -> None:
    import asyncio

    store = CheckpointStore(tmp_path)

    async def main() -> Path:
        return await asyncio.to_thread(store.save, 9, payload(9), {"k": "v"})

    path = asyncio.run(main())
    assert store.load_newest() == Checkpoint(9, payload(9), {"k": "v"}, path)


SAVER = """
import sys
from journal.checkpoints import CheckpointStore
from tests.journal.test_checkpoints import payload
store = CheckpointStore(sys.argv[1], keep=2)
newest = store.load_newest()
seq = newest.seq if newest else 0
start = seq
while True:
    seq += 1
    store.save(seq, payload(seq, 300_000), {"seq": seq})
    if seq == start + 3:
        print("ready", flush=True)
"""


@pytest.mark.parametrize("delay_s", [0.0, 0.013, 0.05, 0.11, 0.2])
def test_kill_9_while_saving_leaves_a_valid_checkpoint(tmp_path: Path, delay_s: float) -> None:
    last = 0
    for cycle in range(2):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(tmp_path)], cwd=REPO,
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline() == "ready\n"
            time.sleep(delay_s + cycle * 0.007)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        store = CheckpointStore(tmp_path, keep=2)
        assert not [p for p in tmp_path.iterdir() if p.suffix == ".tmp"]
        got = store.load_newest()
        assert got is not None and got.seq >= last + 3
        assert got.data == payload(got.seq, 300_000) and got.meta == {"seq": got.seq}
        for seq, p in store.list():  # every file under a checkpoint name is whole
            assert store.load_newest(max_seq=seq).path == p
        last = got.seq


def test_engine_state_survives_the_store(tmp_path: Path) -> None:
    from engine.engine import Engine
    from tools.registry_file import default_registry

    engine = Engine(default_registry(), ["BTCUSDT", "ETHUSDT"])
    data = engine.checkpoint()
    store = CheckpointStore(tmp_path)
    store.save(engine.last_seq, data, {"registry_hash": engine.registry.content_hash})
    got = store.load_newest()
    assert got.data == data and got.meta == {"registry_hash": default_registry().content_hash}
    assert Engine.restore(got.data).checkpoint() == data
