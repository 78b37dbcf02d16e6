"""The journal writer: number records, write each batch to the OS in one write, fsync by policy.

Crash-only: opening a journal *is* crash recovery. The last segment's torn or corrupt tail is cut
back to its last whole record (the cut bytes are kept beside it as ``<segment>.torn-<offset>`` and
the cut is logged), and numbering continues from there. Callers apply a record only after
`append` returned it (append-before-apply): once `append` returns, the batch is in the OS page
cache, so a process crash loses nothing; the fsync policy decides what a power loss can take.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.record import NS_PER_MS, NS_PER_S, Record
from journal.codec import encode_batch
from journal.config import JournalConfig
from journal.durable import fsync_dir
from journal.errors import JournalCorruption, JournalError
from journal.segment import HEADER_SIZE, list_segments, pack_header, scan_segment, segment_name

log = logging.getLogger(__name__)

LOCK_NAME = ".lock"
_O_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC


class JournalWriter:
    """Single writer of one journal directory (an exclusive flock keeps a second one out).

    Not thread-safe: one thread appends. Rolls happen between batches, so a batch bigger than
    `segment_max_bytes` gets a segment to itself.
    """

    def __init__(self, cfg: JournalConfig, clock_ns: Callable[[], int] = time.monotonic_ns,
                 fsync: Callable[[int], None] = os.fsync) -> None:
        self.cfg = cfg
        if not cfg.dir:
            raise JournalError("journal.dir: no journal directory given")
        self.dir = Path(cfg.dir)
        self._clock_ns = clock_ns
        self._fsync = fsync
        self._interval_ns = cfg.fsync_interval_ms * NS_PER_MS
        self._max_age_ns = cfg.segment_max_age_s * NS_PER_S
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        self._records_in_segment = 0
        self._created_recv_ns = 0
        self._dirty = False
        self._last_sync_ns = clock_ns()
        self._next_seq = 1
        self._last_recv_ns = 0
        self._lock_fd: int | None = None
        _make_dir(self.dir)
        self._lock_fd = _lock(self.dir / LOCK_NAME)
        try:
            self._recover()
        except OSError as e:
            self.close()
            raise _io_error(self.dir, e, "open the last segment for appending") from None
        except BaseException:
            self.close()
            raise

    # -- public API ------------------------------------------------------------------------

    @property
    def next_seq(self) -> int:
        """Seq the next appended record will get."""
        return self._next_seq

    @property
    def last_recv_ns(self) -> int:
        """recv_ns of the last journaled record (0 for an empty journal): the floor for new stamps."""
        return self._last_recv_ns

    @property
    def segment_path(self) -> Path | None:
        """The segment appends go to (None until the first append of an empty journal)."""
        return self._path

    def append(self, records: Sequence[Record], defer_sync: bool = False) -> list[Record]:
        """Number `records`, write them in one os.write, apply the fsync policy; return them numbered.

        All or nothing: if a record cannot be encoded or the write fails, nothing is journaled
        and no seq is used. An fsync error propagates after the batch reached the OS (its
        durability is then unknown): treat it as fatal and restart, which replays the journal.
        With `defer_sync` the ``interval_ms`` group commit is left to the caller's next
        `maybe_sync` (a live loop calls it right after publishing, so no fsync sits between a
        tick and its vectors); ``always`` still syncs here.
        """
        if not records:
            return []
        data, numbered = encode_batch(records, self._next_seq)
        self._roll_if_due(numbered[0].recv_ns, len(data))
        self._write(data)
        self._next_seq += len(numbered)
        self._last_recv_ns = numbered[-1].recv_ns
        self._records_in_segment += len(numbered)
        self._dirty = True
        if not defer_sync or self.cfg.fsync == "always":
            self._after_write()
        return numbered

    def maybe_sync(self) -> bool:
        """Group commit for idle loops: fsync if dirty and the interval has passed; True if synced."""
        if self._dirty and self.cfg.fsync == "interval_ms" and self._interval_due():
            self.sync()
            return True
        return False

    def sync(self) -> None:
        """fsync the current segment now (whatever the policy)."""
        if self._fd is not None:
            self._fsync(self._fd)
        self._dirty = False
        self._last_sync_ns = self._clock_ns()

    def close(self) -> None:
        """Flush to disk (unless the policy is `never`), close the segment and release the lock."""
        if self._fd is not None:
            if self._dirty and self.cfg.fsync != "never":
                self.sync()
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write `data` whole; on failure cut the segment back so no partial frame stays behind."""
        assert self._fd is not None
        try:
            n = os.write(self._fd, data)
            while n < len(data):  # short writes only happen on a full disk or a signal
                n += os.write(self._fd, memoryview(data)[n:])
        except BaseException as e:
            os.ftruncate(self._fd, self._size)
            if isinstance(e, OSError):
                raise _io_error(self.dir, e, f"append {len(data)} bytes to {self._path}",
                                "nothing of the batch was journaled") from None
            raise
        self._size += len(data)

    def _after_write(self) -> None:
        """Apply the fsync policy after a batch reached the OS."""
        if self.cfg.fsync == "always" or (self.cfg.fsync == "interval_ms" and self._interval_due()):
            self.sync()

    def _interval_due(self) -> bool:
        return self._clock_ns() - self._last_sync_ns >= self._interval_ns

    def _roll_if_due(self, recv_ns: int, nbytes: int) -> None:
        """Start a new segment before a batch that would overfill or outlive the current one."""
        if self._fd is None:
            self._create_segment(recv_ns)
        elif self._records_in_segment and (self._size + nbytes > self.cfg.segment_max_bytes
                                           or recv_ns - self._created_recv_ns >= self._max_age_ns):
            if self.cfg.fsync != "never":
                self.sync()
            os.close(self._fd)
            self._fd = None
            self._create_segment(recv_ns)

    def _create_segment(self, recv_ns: int) -> None:
        """Create the segment starting at next_seq, header written and (unless `never`) durable."""
        path = self.dir / segment_name(self._next_seq)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise _io_error(self.dir, e, f"create segment {path.name}", "nothing of the batch was journaled") from None
        try:
            if os.write(fd, pack_header(self._next_seq, recv_ns)) != HEADER_SIZE:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            if self.cfg.fsync != "never":
                self._fsync(fd)
                fsync_dir(self.dir, self._fsync)
        except BaseException as e:
            os.close(fd)
            path.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise _io_error(self.dir, e, f"create segment {path.name}",
                                "nothing of the batch was journaled") from None
            raise
        self._open_current(fd, path, HEADER_SIZE, 0, recv_ns)
        log.info("journal: new segment %s (first seq %d)", path, self._next_seq)

    def _open_current(self, fd: int, path: Path, size: int, records: int, created_recv_ns: int) -> None:
        self._fd, self._path, self._size = fd, path, size
        self._records_in_segment, self._created_recv_ns = records, created_recv_ns

    # -- recovery --------------------------------------------------------------------------

    def _recover(self) -> None:
        """Open the last segment for appending, cutting a torn tail; set next_seq and last_recv_ns."""
        segments = list_segments(self.dir)
        if not segments:
            return
        first_seq, path = segments[-1]
        if path.stat().st_size <= HEADER_SIZE and not _header_ok(path):
            self._rewrite_header(path, first_seq, segments)
            return
        scan = scan_segment(path)
        if not scan.clean:
            self._cut_tail(path, scan.stop, scan.size, scan.reason)
        n = len(scan.seq)
        self._next_seq = scan.header.first_seq + n
        self._last_recv_ns = int(scan.recv_ns[-1]) if n else _last_recv_ns_before(segments[:-1])
        fd = os.open(path, _O_APPEND)
        self._open_current(fd, path, scan.stop, n, scan.header.created_recv_ns)

    def _cut_tail(self, path: Path, stop: int, size: int, reason: str) -> None:
        """Truncate `path` to `stop` (durably), keeping the cut bytes in ``<path>.torn-<stop>``."""
        with open(path, "rb") as f:
            f.seek(stop)
            tail = f.read()
        keep = path.with_name(f"{path.name}.torn-{stop}")
        keep.write_bytes(tail)
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, stop)
            self._fsync(fd)
        finally:
            os.close(fd)
        log.warning("journal: %s: %s at offset %d; truncated %d bytes (kept in %s)",
                    path, reason, stop, size - stop, keep.name)

    def _rewrite_header(self, path: Path, first_seq: int, segments: list[tuple[int, Path]]) -> None:
        """Replace a torn or foreign header of an otherwise empty last segment (its name gives the seq)."""
        log.warning("journal: %s: unusable header on an empty last segment at offset 0; rewriting it", path)
        self._next_seq = first_seq
        self._last_recv_ns = _last_recv_ns_before(segments[:-1])
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, pack_header(first_seq, self._last_recv_ns), 0)
            self._fsync(fd)
        finally:
            os.close(fd)
        fd = os.open(path, _O_APPEND)
        self._open_current(fd, path, HEADER_SIZE, 0, self._last_recv_ns)


def _make_dir(d: Path) -> None:
    """Create the journal directory (and parents) if needed; JournalError in one line if it cannot be."""
    if d.exists() and not d.is_dir():
        raise JournalError(f"journal {d}: is a file, not a journal directory")
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        if isinstance(e, FileExistsError | NotADirectoryError):
            raise JournalError(f"journal {d}: cannot create the directory: a part of the path is a file") from None
        raise _io_error(d, e, "create the directory") from None
    if not os.access(d, os.W_OK | os.X_OK):
        raise JournalError(f"journal {d}: directory is not writable")


def _io_error(d: Path, e: OSError, doing: str, after: str = "") -> JournalError:
    """One line for an OS error met while `doing` something in journal `d` (ENOSPC, EROFS, EACCES, …)."""
    reason = e.strerror or str(e)
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        reason += " (is the directory read-only?)"
    return JournalError(f"journal {d}: cannot {doing}: {reason}" + (f"; {after}" if after else ""))


def lock_journal(path: Path) -> int:
    """Take the exclusive writer lock file `path` of a journal (for tools that rewrite it, like repair)."""
    return _lock(path)


def _lock(path: Path) -> int:
    """Take the exclusive writer lock of a journal directory, or raise JournalError."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as e:
        raise _io_error(path.parent, e, f"open the lock file {path.name}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise JournalError(f"{path.parent}: journal is open by another writer") from None
        raise _io_error(path.parent, e, "lock the journal") from None
    return fd


def _header_ok(path: Path) -> bool:
    """True when `path` starts with a valid segment header."""
    try:
        scan_segment(path)
    except JournalCorruption:
        return False
    return True


def _last_recv_ns_before(segments: list[tuple[int, Path]]) -> int:
    """recv_ns of the last good record in the newest non-empty earlier segment (0 if none)."""
    for _, path in reversed(segments):
        scan = scan_segment(path)
        if len(scan.recv_ns):
            return int(scan.recv_ns[-1])
    return 0
