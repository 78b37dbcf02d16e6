"""Numba frame scanner: find frame boundaries, verify CRC-32s and index (seq, recv_ns, kind).

Indexing a segment never decodes a body: the kernel walks the u32 length fields, checks each
frame's CRC-32 (slicing-by-8, identical to `zlib.crc32`) and copies the 20-byte fixed header, which
numpy then views as seq/recv_ns/kind columns. Filtering by seq, time or kind works on those arrays;
only the records a reader yields are msgpack-decoded.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

import numpy as np

from engine.jit import kernel
from journal.codec import FIXED, LEN_CRC, MAX_LENGTH, MIN_LENGTH

#: Scan statuses: why the scan stopped where it did.
OK = 0  #: every byte up to the end is a whole, verified frame
TRUNCATED = 1  #: the last frame is incomplete (torn tail, or still being written)
BAD_LENGTH = 2  #: a length field outside [MIN_LENGTH, MAX_LENGTH]
BAD_CRC = 3  #: a whole frame whose CRC-32 does not match
STATUS_NAMES = {OK: "ok", TRUNCATED: "incomplete frame", BAD_LENGTH: "bad frame length",
                BAD_CRC: "CRC mismatch"}

#: Bytes a reader pulls per pread; a frame larger than this is read whole.
CHUNK_BYTES = 16 * 1024 * 1024

_HEAD = LEN_CRC.size  # offset of the fixed header inside a frame
_FIXED = FIXED.size
#: The fixed header as numpy sees it (seq, recv_ns, kind, reserved), packed, little-endian.
_FIXED_DTYPE = np.dtype([("seq", "<u8"), ("recv_ns", "<i8"), ("kind", "<u2"), ("reserved", "<u2")])


def _crc_table() -> np.ndarray:
    """Return the 8x256 slicing-by-8 tables of the reflected CRC-32 polynomial 0xEDB88320."""
    t = np.zeros((8, 256), dtype=np.int64)
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[0, n] = c
    for k in range(1, 8):
        for n in range(256):
            t[k, n] = (t[k - 1, n] >> 8) ^ t[0, t[k - 1, n] & 0xFF]
    return t


CRC_TABLE = _crc_table()


@kernel
def _u32(buf: np.ndarray, p: int) -> int:
    """Little-endian u32 at `p`."""
    return (np.int64(buf[p]) | (np.int64(buf[p + 1]) << 8) | (np.int64(buf[p + 2]) << 16)
            | (np.int64(buf[p + 3]) << 24))


@kernel
def crc32_kernel(buf: np.ndarray, start: int, end: int, crc: int, t: np.ndarray) -> int:
    """CRC-32 of buf[start:end] continuing from `crc` (zlib semantics), eight bytes per step."""
    c = np.int64(crc) ^ 0xFFFFFFFF
    i = start
    while i + 8 <= end:
        c ^= _u32(buf, i)
        hi = _u32(buf, i + 4)
        c = (t[7, c & 0xFF] ^ t[6, (c >> 8) & 0xFF] ^ t[5, (c >> 16) & 0xFF] ^ t[4, c >> 24]
             ^ t[3, hi & 0xFF] ^ t[2, (hi >> 8) & 0xFF] ^ t[1, (hi >> 16) & 0xFF] ^ t[0, hi >> 24])
        i += 8
    while i < end:
        c = t[0, (c ^ np.int64(buf[i])) & 0xFF] ^ (c >> 8)
        i += 1
    return c ^ 0xFFFFFFFF


@kernel
def _count_frames(buf: np.ndarray, start: int, end: int, min_len: int, max_len: int) -> int:
    """Count frames whose length fields chain from `start` without leaving [start, end)."""
    n, pos = 0, start
    while pos + 8 <= end:
        length = _u32(buf, pos)
        if length < min_len or length > max_len or pos + 4 + length > end:
            break
        n += 1
        pos += 4 + length
    return n


@kernel
def scan_kernel(buf: np.ndarray, start: int, end: int, t: np.ndarray, min_len: int,
                max_len: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Verify frames from `start`; return offsets, lengths, fixed headers (n x 20), stop, status."""
    n = _count_frames(buf, start, end, min_len, max_len)
    offsets = np.empty(n, dtype=np.int64)
    lengths = np.empty(n, dtype=np.int64)
    heads = np.empty((n, 20), dtype=np.uint8)
    pos, good, status = start, 0, 0
    for i in range(n):
        length = _u32(buf, pos)
        if crc32_kernel(buf, pos + 8, pos + 4 + length, 0, t) != _u32(buf, pos + 4):
            status = 3
            break
        offsets[i] = pos
        lengths[i] = 4 + length
        heads[i, :] = buf[pos + 8 : pos + 28]
        good += 1
        pos += 4 + length
    if status == 0 and pos < end:
        status = 1
        if pos + 8 <= end:
            length = _u32(buf, pos)
            if length < min_len or length > max_len:
                status = 2
    return offsets[:good], lengths[:good], heads[:good], pos, status


def crc32(data: bytes | bytearray | memoryview | np.ndarray, crc: int = 0) -> int:
    """Return the CRC-32 of `data` computed by the kernel (equals `zlib.crc32(data, crc)`)."""
    buf = as_u8(data)
    return int(crc32_kernel(buf, 0, len(buf), crc, CRC_TABLE))


class Frames(NamedTuple):
    """Verified frames of a buffer: column arrays plus where and why the scan stopped."""

    offset: np.ndarray  #: int64 frame start within the scanned buffer (plus `base`)
    length: np.ndarray  #: int64 whole frame size in bytes
    seq: np.ndarray  #: int64
    recv_ns: np.ndarray  #: int64
    kind: np.ndarray  #: int64
    stop: int  #: offset just past the last verified frame (plus `base`)
    status: int  #: OK, TRUNCATED, BAD_LENGTH or BAD_CRC

    def take(self, sel: slice | np.ndarray) -> Frames:
        """Return these frames' columns indexed by `sel` (stop and status unchanged)."""
        return self._replace(offset=self.offset[sel], length=self.length[sel], seq=self.seq[sel],
                             recv_ns=self.recv_ns[sel], kind=self.kind[sel])


def as_u8(data: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
    """View `data` as a read-only uint8 array (one kernel signature for every buffer type)."""
    a = data if isinstance(data, np.ndarray) else np.frombuffer(data, dtype=np.uint8)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def scan_buffer(data: bytes | bytearray | memoryview | np.ndarray, start: int = 0,
                end: int | None = None, base: int = 0) -> Frames:
    """Scan frames in data[start:end]; offsets and stop are reported relative to data, plus `base`."""
    buf = as_u8(data)
    end = len(buf) if end is None else end
    offsets, lengths, heads, stop, status = scan_kernel(buf, start, end, CRC_TABLE, MIN_LENGTH, MAX_LENGTH)
    fixed = heads.view(_FIXED_DTYPE).reshape(-1)
    return Frames(offsets + base, lengths, fixed["seq"].astype(np.int64), fixed["recv_ns"].astype(np.int64),
                  fixed["kind"].astype(np.int64), int(stop) + base, int(status))


def read_frames(fd: int, pos: int, size: int, chunk: int = CHUNK_BYTES) -> tuple[bytes, Frames]:
    """pread whole frames at file offset `pos` (< `size`): up to `chunk` bytes, or one bigger frame.

    Offsets in the result are file offsets; the returned bytes start at `pos`.
    """
    data = os.pread(fd, min(size - pos, chunk), pos)
    frames = scan_buffer(data, base=pos)
    if frames.status == TRUNCATED and frames.stop == pos and len(data) >= 4:
        need = 4 + int.from_bytes(data[:4], "little")
        if len(data) < need <= size - pos:
            data = os.pread(fd, need, pos)
            frames = scan_buffer(data, base=pos)
    return data, frames


def iter_frames(fd: int, pos: int, size: int,
                chunk: int = CHUNK_BYTES) -> Iterator[tuple[int, bytes, Frames]]:
    """Yield (file offset, bytes, Frames) chunks from `pos` to `size`, ending at a bad/incomplete frame.

    The last chunk's `stop`/`status` say where scanning ended; a chunk cut by the read size is
    not a stop: the next chunk continues from its `stop`.
    """
    while pos < size:
        data, frames = read_frames(fd, pos, size, chunk)
        yield pos, data, frames
        cut_by_chunk = frames.status == TRUNCATED and pos + len(data) < size and frames.stop > pos
        if frames.status != OK and not cut_by_chunk:
            return
        pos = frames.stop


def first_seq_break(seq: np.ndarray, expected: int) -> int:
    """Return the index of the first seq that is not `expected`, `expected + 1`, …; len(seq) if none."""
    bad = np.flatnonzero(seq != np.arange(expected, expected + len(seq), dtype=np.int64))
    return int(bad[0]) if len(bad) else len(seq)
