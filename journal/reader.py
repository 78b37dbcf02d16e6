"""The journal reader: records from a seq or a time, filtered by kind, across segments, live or not.

Each segment is read in large chunks and indexed by the numba scanner (CRC-verified, no body
decoding); seq/time/kind filters run on the index columns and only the selected bodies are
decoded. Damage in a closed segment (one with a successor) raises `JournalCorruption`; bytes
after the last whole frame of the *live* segment are a write in progress or a torn tail that the
writer will cut on restart, so the reader waits there (follow) or ends there (no follow).

Seqs are gap-free except where `journal repair` moved a damaged closed segment's tail aside: it
leaves ``<segment>.lost-<first>-<last>.json`` beside the segment, and the reader then accepts that
the next segment starts at ``last + 1`` (any other jump is still corruption).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np

from engine.record import Record
from journal.codec import FRAME_HEAD_SIZE, decode_body
from journal.errors import JournalCorruption, JournalError
from journal.scan import OK, STATUS_NAMES, TRUNCATED, Frames, first_seq_break, iter_frames
from journal.segment import HEADER_SIZE, SegmentHeader, list_segments, read_header


class DamagedSegment(JournalCorruption):
    """Damage in a closed segment (one with a successor): `journal repair` can move it aside."""

    def __str__(self) -> str:
        d = Path(self.path).parent
        return f"{super().__str__()} (run `feature-service journal repair --journal {d}` to move it aside)"


def lost_marker(segment: Path, first_lost: int, last_lost: int) -> Path:
    """The file that records seqs `first_lost`..`last_lost` as lost by a repair of `segment`."""
    return segment.with_name(f"{segment.name}.lost-{first_lost}-{last_lost}.json")


def check_journal_dir(journal_dir: str | Path) -> Path:
    """Return `journal_dir` if it is a journal directory; JournalError in one line if it is not."""
    if not str(journal_dir):
        raise JournalError("no journal directory given (empty path)")
    d = Path(journal_dir)
    if not d.exists():
        raise JournalError(f"journal {d}: no such directory")
    if not d.is_dir():
        raise JournalError(f"journal {d}: is a file, not a journal directory")
    if not os.access(d, os.R_OK | os.X_OK):
        raise JournalError(f"journal {d}: directory is not readable")
    if not list_segments(d) and not (d / ".lock").exists():
        raise JournalError(f"journal {d}: not a journal (no segment files in it)")
    return d


class Chunk(NamedTuple):
    """Verified, seq-contiguous frames read from one segment, with the bytes they live in."""

    path: Path
    base: int  #: file offset of data[0]
    data: bytes
    frames: Frames  #: offsets are file offsets


class Tail(NamedTuple):
    """Where the live segment's whole frames end while more bytes follow (torn or in progress)."""

    path: Path
    offset: int
    reason: str


class JournalIndex(NamedTuple):
    """Index of a whole journal: one row per record, no bodies decoded."""

    seq: np.ndarray
    recv_ns: np.ndarray
    kind: np.ndarray
    offset: np.ndarray  #: file offset of the frame
    length: np.ndarray  #: frame size in bytes
    segment: np.ndarray  #: index into `segments`
    segments: list[Path]
    tail: Tail | None


class JournalReader:
    """Reads one journal directory; any number of readers may run beside the one writer."""

    def __init__(self, journal_dir: str | Path) -> None:
        self.dir = Path(journal_dir)
        #: After an iteration ends: where the live segment's whole frames stop if bytes follow them.
        self.tail: Tail | None = None

    def records(self, from_seq: int = 0, from_ns: int | None = None, kinds: Iterable[int] | None = None,
                follow: bool = False, stop: Callable[[], bool] | None = None,
                poll_s: float = 0.05) -> Iterator[Record]:
        """Yield records with seq >= from_seq, recv_ns >= from_ns and kind in `kinds`, in seq order.

        With `follow`, keep tailing the live segment (and the ones the writer rolls to) until
        `stop()` returns True; everything journaled before that moment is still yielded.
        `from_ns` skips whole segments assuming recv_ns never decreases (the bridge's stamper
        guarantees it); inside a segment it filters record by record.
        """
        want = None if kinds is None else np.array(sorted({int(k) for k in kinds}), dtype=np.int64)
        for chunk in self.chunks(from_seq, from_ns, follow, stop, poll_s):
            yield from _decode(chunk, _select(chunk.frames, from_seq, from_ns, want))

    def chunks(self, from_seq: int = 0, from_ns: int | None = None, follow: bool = False,
               stop: Callable[[], bool] | None = None, poll_s: float = 0.05) -> Iterator[Chunk]:
        """Yield verified frame chunks (undecoded) starting at the segment holding from_seq/from_ns."""
        cursor = _Cursor(self.dir, from_seq, from_ns)
        try:
            while True:
                stopping = stop is not None and stop()  # sampled before reading: nothing is missed
                progressed = False
                for chunk in cursor.poll():
                    progressed = True
                    yield chunk
                if progressed:
                    continue
                if not follow or stopping:
                    return
                time.sleep(poll_s)
        finally:
            self.tail = cursor.tail
            cursor.close()

    def index(self, from_seq: int = 0) -> JournalIndex:
        """Scan every segment (CRC-verified) into column arrays; bodies are not decoded."""
        paths: list[Path] = []
        parts: list[tuple[Frames, int]] = []
        for chunk in self.chunks(from_seq):
            if not paths or paths[-1] != chunk.path:
                paths.append(chunk.path)
            parts.append((chunk.frames, len(paths) - 1))
        cols = [_concat([getattr(f, name) for f, _ in parts])
                for name in ("seq", "recv_ns", "kind", "offset", "length")]
        seg = _concat([np.full(len(f.seq), i, dtype=np.int64) for f, i in parts])
        return JournalIndex(*cols, seg, paths, self.tail)


def _concat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(arrays) if arrays else np.empty(0, dtype=np.int64)


def _select(frames: Frames, from_seq: int, from_ns: int | None, kinds: np.ndarray | None) -> np.ndarray:
    """Return the indices of frames passing the seq, time and kind filters."""
    mask = frames.seq >= from_seq
    if from_ns is not None:
        mask &= frames.recv_ns >= from_ns
    if kinds is not None:
        mask &= np.isin(frames.kind, kinds)
    return np.flatnonzero(mask)


def _decode(chunk: Chunk, sel: np.ndarray) -> Iterator[Record]:
    """Decode the selected frames of a chunk into Records."""
    f, mv = chunk.frames, memoryview(chunk.data)
    starts = (f.offset[sel] - chunk.base).tolist()
    ends = (f.offset[sel] + f.length[sel] - chunk.base).tolist()
    for s, e, seq, recv_ns, kind in zip(starts, ends, f.seq[sel].tolist(), f.recv_ns[sel].tolist(),
                                        f.kind[sel].tolist(), strict=True):
        symbol, ts, cts, payload = decode_body(mv[s + FRAME_HEAD_SIZE : e])
        yield Record(seq, recv_ns, kind, symbol, ts, cts, payload)


class _Cursor:
    """Position in a journal: segment, file offset and the seq expected next."""

    def __init__(self, journal_dir: Path, from_seq: int, from_ns: int | None) -> None:
        self.dir = journal_dir
        self.from_seq, self.from_ns = from_seq, from_ns
        self.fd: int | None = None
        self.path: Path | None = None
        self.header: SegmentHeader | None = None
        self.pos = 0
        self.expected = 0
        self.tail: Tail | None = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def poll(self) -> Iterator[Chunk]:
        """Yield every good chunk available now, moving on through closed segments."""
        while True:
            if self.fd is None and not self._open_first():
                return
            later = self._successor()  # sampled before the size: a successor means this file is final
            size = os.fstat(self.fd).st_size
            if self.header is None and not self._read_header(size, later):
                return
            yield from self._read_to(size, later)
            if later is None or self.pos < size:
                return
            self._switch(later)

    def _open_first(self) -> bool:
        """Open the segment holding the start position; False if the journal has none yet."""
        segments = list_segments(self.dir)
        if not segments:
            return False
        i = max((i for i, (first_seq, _) in enumerate(segments) if first_seq <= self.from_seq), default=0)
        if self.from_ns is not None:
            while i + 1 < len(segments) and _starts_before(segments[i + 1][1], self.from_ns):
                i += 1  # the next segment's first record is older than from_ns: skip this one
        self._open(*segments[i])
        return True

    def _open(self, first_seq: int, path: Path) -> None:
        self.close()
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self.path, self.header, self.pos, self.expected, self.tail = path, None, HEADER_SIZE, first_seq, None

    def _read_header(self, size: int, later: tuple[int, Path] | None) -> bool:
        """Read the current header; False to wait while a live segment's header is still short."""
        assert self.fd is not None and self.path is not None
        if size < HEADER_SIZE and later is None:
            self.tail = Tail(self.path, size, "segment header incomplete")
            return False
        try:
            self.header = read_header(self.fd, self.path)
        except JournalCorruption as e:
            if later is None:
                raise
            raise DamagedSegment(e.path, e.offset, e.reason) from None
        return True

    def _successor(self) -> tuple[int, Path] | None:
        """The first segment after the current one, if the writer has created it."""
        assert self.path is not None
        return next(((s, p) for s, p in list_segments(self.dir) if p.name > self.path.name), None)

    def _read_to(self, size: int, later: tuple[int, Path] | None) -> Iterator[Chunk]:
        """Yield good chunks from pos to `size`; damage raises if the segment is closed."""
        assert self.fd is not None and self.path is not None
        status = OK
        for base, data, frames in iter_frames(self.fd, self.pos, size):
            cut = first_seq_break(frames.seq, self.expected)
            good = frames if cut == len(frames.seq) else frames.take(slice(0, cut))
            if len(good.seq):
                self.pos = int(good.offset[-1] + good.length[-1])
                self.expected += len(good.seq)
                yield Chunk(self.path, base, data, good)
            if cut < len(frames.seq):
                reason = f"seq {int(frames.seq[cut])} where {self.expected} was expected"
                self._damaged(int(frames.offset[cut]), reason, later)
                return
            self.pos, status = frames.stop, frames.status
        if self.pos < size:
            self._damaged(self.pos, STATUS_NAMES[status if status != OK else TRUNCATED], later)
        else:
            self.tail = None

    def _damaged(self, offset: int, reason: str, later: tuple[int, Path] | None) -> None:
        """Raise for damage in a closed segment; remember it as the live tail otherwise."""
        assert self.path is not None
        if later is not None:
            raise DamagedSegment(self.path, offset, reason)
        self.tail = Tail(self.path, offset, reason)

    def _switch(self, later: tuple[int, Path]) -> None:
        """Move to the successor segment, which must start exactly at the next seq."""
        assert self.path is not None
        first_seq, path = later
        if first_seq != self.expected and not lost_marker(self.path, self.expected, first_seq - 1).exists():
            raise DamagedSegment(self.path, self.pos, f"segment ends before seq {self.expected} but the "
                                    f"next segment {path.name} starts at seq {first_seq}")
        self._open(first_seq, path)


def _starts_before(path: Path, ns: int) -> bool:
    """True if the segment's header says its first record has recv_ns < ns (False if unreadable)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return read_header(fd, path).created_recv_ns < ns
    except JournalCorruption:
        return False
    finally:
        os.close(fd)
