"""Engine checkpoints at rest: atomic, checksummed files, the newest few kept.

A checkpoint is the engine state after applying every journal record up to and including `seq`;
a restart restores the newest readable one with `seq` ≤ the journal's last seq and replays only the
records after it. File `ckpt-<seq, 20 digits>.bin`, little-endian:

    magic   8 bytes  b"FSCKPT01"
    seq     u64      journal seq the state covers (must equal the seq in the file name)
    n_meta  u64      length of the msgpack meta map
    n_data  u64      length of the engine state bytes
    sha256  32 bytes SHA-256 of everything after the header (meta then data)
    meta    n_meta bytes, a msgpack map
    data    n_data bytes

A save writes a temp file in the same directory, fsyncs it, renames it into place and fsyncs the
directory, so a crash leaves either the old set of checkpoints or the new one, plus at worst a temp
file that the next `CheckpointStore` removes. Header damage that the checksum does not cover is
caught by the seq/name check and by the lengths having to add up to the file size.

Threads: `save` touches nothing but the directory and its arguments, so the shard may run it in a
worker thread (`await asyncio.to_thread(store.save, seq, data, meta)`) with the state already
serialised on the event loop. Run one save at a time per directory (concurrent saves stay whole,
but pruning may then keep more than `keep` files until the next save).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import uuid
from pathlib import Path
from typing import Any, NamedTuple

import msgpack

from journal.durable import fsync_dir, write_new_file

log = logging.getLogger(__name__)

MAGIC = b"FSCKPT01"
#: magic, seq, len(meta), len(data), sha256 of meta + data.
HEADER = struct.Struct("<8sQQQ32s")
PREFIX = "ckpt-"
SUFFIX = ".bin"
#: Temp files are `.ckpt-<seq>-<random>.tmp`: hidden, never matching the checkpoint pattern.
TMP_PREFIX = ".ckpt-"
TMP_SUFFIX = ".tmp"
_NAME = re.compile(r"^ckpt-(\d{20})\.bin$")
_U64_MAX = 2**64 - 1


class Checkpoint(NamedTuple):
    """A verified checkpoint: the journal seq it covers, the engine bytes, its meta map, its file."""

    seq: int
    data: bytes
    meta: dict[str, Any]
    path: Path


class CheckpointDamaged(ValueError):
    """A checkpoint file that fails verification; the message says why."""


def checkpoint_name(seq: int) -> str:
    """File name of the checkpoint covering `seq` (sorts by seq)."""
    return f"{PREFIX}{seq:020d}{SUFFIX}"


def encode(seq: int, data: bytes, meta: dict[str, Any]) -> bytes:
    """Return the whole file content of a checkpoint."""
    head, data = _pieces(seq, data, meta)
    return head + data


def _pieces(seq: int, data: bytes, meta: dict[str, Any]) -> tuple[bytes, bytes]:
    """(header + meta, data): the file content in two pieces, so `data` is never copied."""
    body_meta = msgpack.packb(meta, use_bin_type=True)
    digest = hashlib.sha256()
    digest.update(body_meta)
    digest.update(data)
    return HEADER.pack(MAGIC, seq, len(body_meta), len(data), digest.digest()) + body_meta, data


def decode(blob: bytes, expect_seq: int | None = None) -> tuple[int, bytes, dict[str, Any]]:
    """Verify and split a checkpoint file's bytes into (seq, data, meta); raise `CheckpointDamaged`."""
    seq, n_meta, n_data, want = _header(blob[:HEADER.size], len(blob), expect_seq)
    body = memoryview(blob)[HEADER.size:]
    return seq, bytes(body[n_meta:]), _verify(want, bytes(body[:n_meta]), body[n_meta:])


def read_checkpoint(path: Path, expect_seq: int | None = None) -> tuple[int, bytes, dict[str, Any]]:
    """Read and verify one checkpoint file into (seq, data, meta) without copying the data."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        seq, n_meta, n_data, want = _header(f.read(HEADER.size), size, expect_seq)
        meta_b, data = f.read(n_meta), f.read(n_data)
    if len(meta_b) + len(data) != n_meta + n_data:
        raise CheckpointDamaged(f"shrank while being read ({size} bytes)")
    return seq, data, _verify(want, meta_b, data)


def _header(head: bytes, size: int, expect_seq: int | None) -> tuple[int, int, int, bytes]:
    """Check the header against the file size and name; return (seq, n_meta, n_data, sha256)."""
    if len(head) < HEADER.size:
        raise CheckpointDamaged(f"truncated header ({len(head)} of {HEADER.size} bytes)")
    magic, seq, n_meta, n_data, want = HEADER.unpack(head)
    if magic != MAGIC:
        raise CheckpointDamaged(f"bad magic {magic!r}")
    if expect_seq is not None and seq != expect_seq:
        raise CheckpointDamaged(f"header seq {seq} does not match the file name's {expect_seq}")
    if HEADER.size + n_meta + n_data != size:
        raise CheckpointDamaged(f"size {size} bytes, header says {HEADER.size + n_meta + n_data}")
    return seq, n_meta, n_data, want


def _verify(want: bytes, meta_b: bytes, data: bytes | memoryview) -> dict[str, Any]:
    """Check the SHA-256 of meta + data and decode the meta map."""
    digest = hashlib.sha256(meta_b)
    digest.update(data)
    if digest.digest() != want:
        raise CheckpointDamaged("SHA-256 mismatch")
    try:
        meta = msgpack.unpackb(meta_b, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise CheckpointDamaged(f"meta is not msgpack: {e}") from None
    if not isinstance(meta, dict):
        raise CheckpointDamaged(f"meta is a {type(meta).__name__}, not a map")
    return meta


class CheckpointStore:
    """A directory of engine checkpoints: `save` atomically, `load_newest` the newest readable one."""

    def __init__(self, dir: str | Path, keep: int = 3) -> None:
        if not 1 <= keep <= 1000:
            raise ValueError(f"keep: must be in 1..1000, got {keep}")
        self.dir = Path(dir)
        self.keep = keep
        self.dir.mkdir(parents=True, exist_ok=True)
        self._remove_temps()

    def save(self, seq: int, data: bytes, meta: dict[str, Any]) -> Path:
        """Write the checkpoint covering `seq` atomically, prune to the newest `keep`, return its path."""
        if not 0 <= seq <= _U64_MAX:
            raise ValueError(f"seq: must be in 0..2**64-1, got {seq}")
        if not isinstance(meta, dict):
            raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
        pieces = _pieces(seq, data, meta)
        path = self.dir / checkpoint_name(seq)
        tmp = self.dir / f"{TMP_PREFIX}{seq:020d}-{uuid.uuid4().hex}{TMP_SUFFIX}"
        try:
            write_new_file(tmp, pieces)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_dir(self.dir)
        self._prune(path)
        return path

    def list(self) -> list[tuple[int, Path]]:
        """Every checkpoint file as (seq, path), oldest first (not verified)."""
        out = []
        for p in self.dir.iterdir():
            m = _NAME.match(p.name)
            if m:
                out.append((int(m.group(1)), p))
        return sorted(out)

    def load_newest(self, max_seq: int | None = None) -> Checkpoint | None:
        """Return the newest checkpoint that verifies and has seq ≤ `max_seq`; None if there is none."""
        for seq, path in reversed(self.list()):
            if max_seq is not None and seq > max_seq:
                log.info("checkpoint %s covers seq %d beyond the journal's %d: not used", path, seq, max_seq)
                continue
            try:
                got_seq, data, meta = read_checkpoint(path, expect_seq=seq)
            except (OSError, CheckpointDamaged) as e:
                reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
                log.warning("checkpoint %s is unreadable (%s): trying an older one", path, reason)
                continue
            return Checkpoint(got_seq, data, meta, path)
        return None

    def _prune(self, just_written: Path) -> None:
        """Keep `just_written` and the newest `keep` - 1 others; delete the rest."""
        others = [p for _seq, p in self.list() if p != just_written]
        for p in others[: max(0, len(others) - (self.keep - 1))]:
            p.unlink(missing_ok=True)

    def _remove_temps(self) -> None:
        """Remove temp files a crashed save left behind."""
        for p in self.dir.iterdir():
            if p.name.startswith(TMP_PREFIX) and p.name.endswith(TMP_SUFFIX):
                log.info("removing leftover checkpoint temp file %s", p)
                p.unlink(missing_ok=True)
