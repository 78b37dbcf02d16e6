"""Retention: hot partitions past ``store.retention_days`` move to the archive (or go), old archive ones go.

Rules (SPEC §4, issue 8 §2), for a run at `now_ns` whose UTC date is *today*:

- a hot file whose partition date is before ``today - retention_days`` moves to ``store.archive_dir``
  (same relative path) and its manifest entry's ``location`` becomes ``"archive"``; without an
  archive it is deleted (its entry leaves the manifest);
- an archived file whose date is before ``today - archive_retention_days`` is deleted (a hot file
  already past that age is deleted straight away instead of being moved first);
- a journal segment the manifest lists as compacted (and not yet deleted) is deleted once its newest
  record's date is past ``retention_days`` and a scan of it still finds exactly the records the
  manifest names; never the journal's newest segment (the one a writer appends to), nor one holding
  seqs after the shard's newest checkpoint (a restart replays the journal after it);
- ``retention_days`` 0 keeps everything hot, ``archive_retention_days`` 0 keeps the archive forever;
  today's partitions are never touched.

Only files named in the manifest (compacted and verified) are ever moved or deleted, plus what an
interrupted run left behind: a hot copy of a file the manifest already places in the archive, this
module's own temp files in the archive, and archive part files the manifest no longer names whose
partition is past archive retention (a delete cut short between its manifest save and the unlink).

Crash safety: every step is ordered so the manifest never names a file that is not where it says.
A move links (same filesystem) or copies (temp file, fsync, size and SHA-256 checked against the
hot file, rename, directory fsync) the file into the archive, then saves the manifest saying
``archive`` (atomic), then removes the hot file. A delete saves the manifest without the entry
first, then removes the file. A rerun after a crash at any point finishes the job.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from journal.durable import fsync_dir
from journal.store.config import StoreConfig
from journal.store.layout import NS_PER_DAY, TABLES, date_of, day_start_ns

if TYPE_CHECKING:
    from journal.store.manifest import FileEntry, Manifest

#: The store's lock file in the hot root (compaction and retention hold it exclusively).
LOCK_NAME = ".lock"
#: Bytes per read while copying a file into the archive.
COPY_CHUNK = 1 << 20
#: Prefix of a file being copied into the archive (skipped by every Parquet reader).
TMP_PREFIX = ".tmp-retention-"
#: A store part file's relative path (`journal.store.layout`): table, date, symbol (not for control).
_PART_PATH = re.compile("(?P<table>" + "|".join(TABLES) + r")/date=(?P<date>\d{4}-\d{2}-\d{2})/"
                        r"(?:symbol=(?P<symbol>[^/]+)/)?part-\d{16}-\d{16}\.parquet")


class RetentionError(OSError):
    """A file could not be moved or deleted safely (the message names it); nothing unsafe was done."""


class Action(NamedTuple):
    """One step of a retention run (``path`` is relative to its root; a segment's is its file name)."""

    action: str  #: archive | delete_hot | delete_archive | delete_segment | cleanup_hot | delete_leftover
    path: str
    table: str = ""
    date: str = ""
    symbol: str = ""
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """The action as a JSON-ready dict."""
        return self._asdict()


def cutoff(now_ns: int, days: int) -> str | None:
    """The oldest partition date kept when keeping `days` days (None: `days` 0 keeps everything)."""
    if days <= 0:
        return None
    return date_of(day_start_ns(date_of(now_ns)) - days * NS_PER_DAY)


# --- planning ----------------------------------------------------------------------------------

def plan(cfg: StoreConfig, manifest: Manifest, journal_dir: Path | None, now_ns: int,
         checkpoints_dir: Path | None = None) -> list[Action]:
    """Every action a run at `now_ns` takes, in order (nothing is changed).

    `checkpoints_dir` is the shard's: no segment holding seqs after its newest checkpoint is deleted.
    """
    hot, archive = Path(cfg.dir), Path(cfg.archive_dir) if cfg.archive_dir else None
    hot_cut, arch_cut = cutoff(now_ns, cfg.retention_days), cutoff(now_ns, cfg.archive_retention_days)
    actions: list[Action] = []
    for e in manifest.files:
        info = (e.path, e.table, e.date, e.symbol, int(e.bytes))
        if e.location == "archive":
            if arch_cut is not None and e.date < arch_cut:
                actions.append(Action("delete_archive", *info))
            elif (hot / e.path).exists():
                actions.append(Action("cleanup_hot", *info))
        elif hot_cut is not None and e.date < hot_cut:
            gone = archive is None or (arch_cut is not None and e.date < arch_cut)
            actions.append(Action("delete_hot" if gone else "archive", *info))
    if archive is not None:
        actions += _leftovers(archive, {e.path for e in manifest.files}, arch_cut)
    if journal_dir is not None and hot_cut is not None:
        from journal.store.compact import newest_checkpoint_seq

        actions += _old_segments(manifest, journal_dir, hot_cut, newest_checkpoint_seq(checkpoints_dir))
    return actions


def _leftovers(archive: Path, listed: set[str], arch_cut: str | None) -> list[Action]:
    """Archive files an interrupted run left: our temp copies, and part files the manifest no longer
    names whose partition is past archive retention (a delete cut short after its manifest save)."""
    if not archive.is_dir():
        return []
    found = [Action("delete_leftover", p.relative_to(archive).as_posix(), bytes=p.stat().st_size)
             for p in sorted(archive.rglob(TMP_PREFIX + "*")) if p.is_file()]
    if arch_cut is None:
        return found
    for p in sorted(archive.glob("*/date=*/**/part-*.parquet")):
        rel = p.relative_to(archive)
        m = _PART_PATH.fullmatch(rel.as_posix())
        if m and rel.as_posix() not in listed and m.group("date") < arch_cut:
            found.append(Action("delete_leftover", rel.as_posix(), m.group("table"), m.group("date"),
                                m.group("symbol") or "", p.stat().st_size))
    return found


def _old_segments(manifest: Manifest, journal_dir: Path, hot_cut: str, limit: int | None) -> list[Action]:
    """Compacted, undeleted segments whose newest record is older than `hot_cut`: never the journal's
    newest segment, nor one past the store's `compacted_through` or the newest checkpoint's seq `limit`."""
    from journal.segment import list_segments

    present = list_segments(journal_dir)
    newest = present[-1][1].name if present else None
    names = {p.name for _, p in present}
    actions = []
    for s in manifest.segments:
        if s.deleted or s.name == newest or s.name not in names or s.last_seq > manifest.compacted_through \
                or (limit is not None and s.last_seq > limit):
            continue
        last_ns = _checked_last_recv_ns(journal_dir / s.name, s)
        if last_ns is not None and date_of(last_ns) < hot_cut:
            actions.append(Action("delete_segment", s.name, date=date_of(last_ns),
                                  bytes=(journal_dir / s.name).stat().st_size))
    return actions


def _checked_last_recv_ns(path: Path, seg: Any) -> int | None:
    """The newest recv_ns of a segment whose scan matches its manifest entry exactly, else None."""
    from journal.segment import scan_segment

    scan = scan_segment(path)
    n = len(scan.seq)
    if not scan.clean or n != seg.records or n == 0 or int(scan.seq[0]) != seg.first_seq \
            or int(scan.seq[-1]) != seg.last_seq:
        return None
    return int(scan.recv_ns.max())


# --- doing -------------------------------------------------------------------------------------

class Runner:
    """Carries out planned actions one by one, saving the manifest after each (see the module docstring)."""

    def __init__(self, cfg: StoreConfig, manifest: Manifest, journal_dir: Path | None,
                 link: Callable[[Path, Path], None] | None = None) -> None:
        self.hot = Path(cfg.dir)
        self.archive = Path(cfg.archive_dir) if cfg.archive_dir else None
        self.manifest = manifest
        self.journal_dir = journal_dir
        self._link = link or os.link  # injectable: a test stands in for another filesystem
        self.done: Counter[str] = Counter()
        self.freed: Counter[str] = Counter()

    def run(self, actions: list[Action]) -> None:
        """Do every action in order."""
        for a in actions:
            getattr(self, "_" + a.action)(a)
            self.done[a.action] += 1
            self.freed[a.action] += a.bytes

    def _archive(self, a: Action) -> None:
        assert self.archive is not None
        src, dst = self.hot / a.path, self.archive / a.path
        _check_size(src, a.bytes)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if not _same_file(src, dst):
            self._place(src, dst)
        self._set_files([e._replace(location="archive") if e.path == a.path else e for e in self.manifest.files])
        _remove(src)

    def _place(self, src: Path, dst: Path) -> None:
        """Put a copy of `src` at `dst` durably: a hard link on the same filesystem, else a checked copy."""
        tmp = dst.with_name(TMP_PREFIX + dst.name)
        tmp.unlink(missing_ok=True)
        try:
            self._link(src, tmp)
        except OSError as e:
            if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP):
                raise
            _copy_checked(src, tmp)
        os.replace(tmp, dst)
        assert self.archive is not None
        d = dst.parent
        while True:  # the file's directory and every partition directory above it (maybe just made)
            fsync_dir(d)
            if d == self.archive or self.archive not in d.parents:
                break
            d = d.parent

    def _cleanup_hot(self, a: Action) -> None:
        archived = self.archive / a.path if self.archive is not None else None
        if archived is None or not archived.exists() or archived.stat().st_size != a.bytes:
            raise RetentionError(f"{self.hot / a.path}: the manifest places it in the archive, where it is missing or"
                                 " not the size verified;"
                                 " the hot copy is kept")
        _remove(self.hot / a.path)

    def _delete_hot(self, a: Action) -> None:
        self._drop_entry(a.path)
        _remove(self.hot / a.path)

    def _delete_archive(self, a: Action) -> None:
        assert self.archive is not None
        self._drop_entry(a.path)
        _remove(self.archive / a.path)
        (self.hot / a.path).unlink(missing_ok=True)  # a hot copy an interrupted move left behind

    def _delete_leftover(self, a: Action) -> None:
        assert self.archive is not None
        _remove(self.archive / a.path)

    def _delete_segment(self, a: Action) -> None:
        assert self.journal_dir is not None
        _remove(self.journal_dir / a.path, prune=False)
        self.manifest.mark_deleted([a.path])
        self.manifest.save(self.hot)

    def _drop_entry(self, path: str) -> None:
        self._set_files([e for e in self.manifest.files if e.path != path])

    def _set_files(self, files: list[FileEntry]) -> None:
        self.manifest.files = files
        self.manifest.save(self.hot)


def _check_size(path: Path, expected: int) -> None:
    """Refuse to move a file whose size is not the one the manifest verified."""
    size = path.stat().st_size
    if size != expected:
        raise RetentionError(f"{path}: {size} bytes, the manifest says {expected}; not moved")


def _same_file(src: Path, dst: Path) -> bool:
    """True when `dst` already holds exactly `src`'s bytes (a rerun after an interrupted move)."""
    if not dst.exists():
        return False
    if os.path.samefile(src, dst):
        return True
    return dst.stat().st_size == src.stat().st_size and _sha256(dst) == _sha256(src)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(COPY_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _copy_checked(src: Path, tmp: Path) -> None:
    """Copy `src` to `tmp`, fsync it, and check its size and SHA-256 read back against the source's."""
    h = hashlib.sha256()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        with src.open("rb") as f:
            while chunk := f.read(COPY_CHUNK):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if tmp.stat().st_size != src.stat().st_size or _sha256(tmp) != h.hexdigest():
        tmp.unlink(missing_ok=True)
        raise RetentionError(f"{tmp}: the copy of {src} does not read back identical; not moved")


def _remove(path: Path, prune: bool = True) -> None:
    """Delete `path` (already gone is fine), fsync its directory, and drop partition dirs left empty."""
    path.unlink(missing_ok=True)
    parent = path.parent
    if parent.is_dir():
        fsync_dir(parent)
    while prune and parent.name.startswith(("date=", "symbol=")):
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent


# --- the run -----------------------------------------------------------------------------------

@contextlib.contextmanager
def store_lock(hot: Path) -> Iterator[None]:
    """Hold the store's exclusive lock (``<hot>/.lock``, flock) so compaction and retention never overlap."""
    import fcntl

    fd = os.open(hot / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RetentionError(f"{hot}: the store is locked by another compaction or retention run; "
                                 "try again when it is done") from None
        yield
    finally:
        os.close(fd)


def run_retention(cfg: StoreConfig, journal_dir: Path | None = None, *, checkpoints_dir: Path | None = None,
                  now_ns: int | None = None, dry_run: bool = False) -> dict[str, Any]:
    """Apply retention to the store at `cfg.dir` (and the compacted segments of `journal_dir`); a JSON summary.

    No segment holding seqs after the newest checkpoint in `checkpoints_dir` (the shard's) is deleted.
    With `dry_run` the actions are listed and nothing changes.
    """
    from journal.store.manifest import Manifest

    if now_ns is None:
        import time

        now_ns = time.time_ns()
    hot = Path(cfg.dir)
    with contextlib.ExitStack() as stack:
        if not dry_run and hot.is_dir():
            stack.enter_context(store_lock(hot))
        return _run(cfg, Manifest.load(hot), journal_dir, checkpoints_dir, now_ns, dry_run)


def _run(cfg: StoreConfig, manifest: Manifest, journal_dir: Path | None, checkpoints_dir: Path | None,
         now_ns: int, dry_run: bool) -> dict[str, Any]:
    """Plan, then (unless `dry_run`) act; the summary."""
    hot = Path(cfg.dir)
    actions = plan(cfg, manifest, journal_dir, now_ns, checkpoints_dir)
    summary: dict[str, Any] = {
        "store": str(hot), "archive": cfg.archive_dir or None, "today": date_of(now_ns), "dry_run": dry_run,
        "hot_kept_from": cutoff(now_ns, cfg.retention_days),
        "archive_kept_from": cutoff(now_ns, cfg.archive_retention_days),
        "actions": [a.as_dict() for a in actions],
    }
    if dry_run:
        summary["counts"] = dict(Counter(a.action for a in actions))
        return summary
    runner = Runner(cfg, manifest, journal_dir)
    runner.run(actions)
    summary["counts"], summary["bytes"] = dict(runner.done), dict(runner.freed)
    return summary
