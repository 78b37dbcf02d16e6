"""`feature-service store export`: the raw store (hot + archive) written back as Bybit v5 frames.

``store export --config FILE --format frames [--from TIME --to TIME --symbols S,...] [--out FILE]``
reads every committed record of the shard's store in journal order (`journal.store.records`),
keeps market records with ``--from <= recv_ns < --to`` of the symbols asked for, and writes each as
one line of this project's ``frames`` capture format, ``{"recv_ns": N, "frame": {...}}`` (see
`journal.capture_formats`; the frame is `gateway_bridge.encoder.record_to_frame`). Importing the
export (``journal import --format frames``) gives records numerically equal to the stored ones.
Control records (ticks, gateway up/down, sessions, …) and REST snapshots are not frames and are
left out (counted in the summary). Output goes to stdout, or to ``--out FILE`` (written to a temp
file and renamed when complete; ``.gz`` / ``.zst`` compress), with a JSON summary on stdout.

Mistakes are one line, exit 2: an unknown ``--format``, a bad time, ``--from`` not before ``--to``,
a symbol the store does not hold, a store with no compacted records, ``--out`` inside the store.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.record import Record
    from journal.store.layout import StoreRoots

log = logging.getLogger(__name__)

FORMATS = ("frames",)
_TIME_HELP = "ISO-8601 (2026-08-09T21:26:00Z; no Z means UTC) or epoch seconds, milliseconds or nanoseconds"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Attach the store sub-commands."""
    sub = p.add_subparsers(dest="store_command", metavar="ACTION", required=True)
    e = sub.add_parser("export", help="write the stored market data back as Bybit v5 frames (JSON lines)")
    e.add_argument("--config", required=True, metavar="FILE", help="shard config (its store section names the store)")
    e.add_argument("--format", default="frames", metavar="FORMAT",
                   help="output format: frames ({\"recv_ns\": N, \"frame\": {...}} lines; the default)")
    e.add_argument("--from", dest="from_", default="", metavar="TIME",
                   help=f"first receive time, inclusive: {_TIME_HELP} (default: the store's start)")
    e.add_argument("--to", default="", metavar="TIME", help="last receive time, exclusive (default: the store's end)")
    e.add_argument("--symbols", default="", metavar="S,...",
                   help="only these symbols, comma-separated, as the store spells them (default: all)")
    e.add_argument("--out", default="", metavar="FILE",
                   help="write here (.gz / .zst compressed; replaced only when complete) instead of stdout")


def run(args: argparse.Namespace) -> int:
    """Export the store; a JSON summary on stdout when writing to --out, on the log otherwise."""
    import orjson

    from tools.offline.cmd_replay import time_range
    from tools.shard.config import load_shard_config

    if args.format not in FORMATS:
        raise _usage(f"--format {args.format!r}: not supported (supported: {', '.join(FORMATS)})")
    from_ns, to_ns = time_range(args.from_, args.to)
    cfg = load_shard_config(args.config)
    roots = store_roots(cfg.store.dir, cfg.store.archive_dir)
    files = committed_files(roots)
    symbols = check_symbols(args.symbols, files, roots)
    out = check_out(args.out, roots)
    counts: Counter[str] = Counter()
    frames = stored_frames(roots, from_ns, to_ns, symbols, counts, files=files)
    lines = (b'{"recv_ns":%d,"frame":%s}\n' % (ns, frame) for ns, frame in frames)
    if out is None:
        write_lines(sys.stdout.buffer, lines)
        sys.stdout.flush()
    else:
        write_file(out, lines)
    summary = {"store": str(roots.hot), "archive": str(roots.archive) if roots.archive else None,
               "out": str(out) if out else "-", "format": args.format, "frames": counts["frames"],
               "skipped": {k: v for k, v in sorted(counts.items()) if k != "frames"}}
    if out is not None:
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
    log.info("store_export_done", extra=summary)
    return 0


# -- the store as frames (shared with the simulator's ``source: store``) --------------------------

def store_roots(hot: str, archive: str = "") -> StoreRoots:
    """The store's roots from its configured directories."""
    from journal.store.layout import StoreRoots

    return StoreRoots(Path(hot), Path(archive) if archive else None)


def committed_files(roots: StoreRoots) -> list[Any]:
    """The manifest's file entries; a store without any is a usage error (nothing was compacted)."""
    from journal.store.manifest import Manifest

    files = list(Manifest.load(roots.hot).files) if roots.hot.is_dir() else []
    if not files:
        raise _usage(f"store {roots.hot}: holds no compacted records (run feature-service compact first)")
    return files


def store_symbols(files: Iterable[Any]) -> set[str]:
    """The symbols of the store's partitions."""
    return {e.symbol for e in files if e.symbol}


def check_symbols(text: str, files: list[Any], roots: StoreRoots) -> list[str] | None:
    """The --symbols list (None for all); a symbol the store does not hold is refused, listing those it does."""
    from tools.offline.cmd_replay import check_symbol_list

    return check_symbol_list(text, (f"the store {roots.hot}", sorted(store_symbols(files))))


def seq_window(files: Iterable[Any], from_ns: int | None, to_ns: int | None) -> tuple[int, int | None] | None:
    """A seq range ``[lo, hi]`` (hi None: the end) holding every record with recv_ns in [from_ns, to_ns),
    from the partitions' dates; None when no partition lies in the range."""
    from journal.store.layout import date_of

    lo_date = date_of(from_ns) if from_ns is not None else None
    hi_date = date_of(to_ns - 1) if to_ns is not None else None
    inside = [e for e in files if (lo_date is None or e.date >= lo_date) and (hi_date is None or e.date <= hi_date)]
    if not inside:
        return None
    return min(e.first_seq for e in inside), (max(e.last_seq for e in inside) if hi_date is not None else None)


def stored_frames(roots: StoreRoots, from_ns: int | None = None, to_ns: int | None = None,
                  symbols: Iterable[str] | None = None, counts: Counter[str] | None = None, *,
                  files: list[Any] | None = None) -> Iterator[tuple[int, bytes]]:
    """Yield ``(recv_ns, frame_bytes)`` of every stored market record in the range, in journal order."""
    from journal.store.manifest import Manifest

    files = files if files is not None else list(Manifest.load(roots.hot).files)
    window = seq_window(files, from_ns, to_ns)
    if window is None:
        return
    yield from frames_of(_records(roots, *window, symbols), from_ns, to_ns, counts)


def _records(roots: StoreRoots, lo: int, hi: int | None, symbols: Iterable[str] | None) -> Iterator[Record]:
    """The store's records with seq in [lo, hi] (hi None: to the end)."""
    from journal.store.records import read_records

    wanted = list(symbols) if symbols is not None else None
    return read_records(roots, lo, hi, wanted)


def frames_of(records: Iterable[Record], from_ns: int | None, to_ns: int | None,
              counts: Counter[str] | None = None) -> Iterator[tuple[int, bytes]]:
    """The frames of `records` received in [from_ns, to_ns); counts frames and what had none (control
    kinds by name, ``rest_snapshot``, ``unencodable`` for a market payload no decoder makes)."""
    from engine.record import kind_name
    from gateway_bridge.encoder import record_to_frame

    counts = counts if counts is not None else Counter()
    for rec in records:
        if from_ns is not None and rec.recv_ns < from_ns:
            continue
        if to_ns is not None and rec.recv_ns >= to_ns:
            break  # recv_ns never decreases along seq
        try:
            frame = record_to_frame(rec)
        except (KeyError, TypeError, ValueError, AttributeError):  # a payload no decoder made: counted, left out
            counts["unencodable"] += 1
            continue
        if frame is None:
            counts["rest_snapshot" if rec.payload.get("src") else kind_name(rec.kind)] += 1
            continue
        counts["frames"] += 1
        yield rec.recv_ns, frame


# -- output --------------------------------------------------------------------------------------

def check_out(text: str, roots: StoreRoots) -> Path | None:
    """The --out path (None: stdout); one inside the store (which it would change) is refused."""
    if not text:
        return None
    out = Path(text)
    resolved = out.resolve()
    for root in roots.all():
        r = root.resolve()
        if resolved == r or r in resolved.parents:
            raise _usage(f"--out {text}: lies inside the store {root}; write the export elsewhere")
    if out.is_dir():
        raise _usage(f"--out {text}: is a directory; name a file")
    return out


def write_lines(f: IO[bytes], lines: Iterable[bytes]) -> None:
    """Write `lines` to `f` in large chunks."""
    buf: list[bytes] = []
    size = 0
    for line in lines:
        buf.append(line)
        size += len(line)
        if size >= 1 << 20:
            f.write(b"".join(buf))
            buf, size = [], 0
    f.write(b"".join(buf))


def write_file(out: Path, lines: Iterable[bytes]) -> None:
    """Write `lines` to a temp file beside `out` (compressed by suffix), fsync, then rename it to `out`."""
    import os

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        with _open_out(tmp, out.suffix) as f:
            write_lines(f, lines)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _open_out(path: Path, suffix: str) -> Iterator[IO[bytes]]:
    """`path` opened for binary writing, through gzip or zstd for a ``.gz`` / ``.zst`` `suffix`."""
    if suffix == ".gz":
        import gzip

        with gzip.open(path, "wb") as f:
            yield f  # type: ignore[misc]
    elif suffix == ".zst":
        import zstandard

        with path.open("wb") as raw, zstandard.ZstdCompressor().stream_writer(raw) as f:
            yield f  # type: ignore[misc]
    else:
        with path.open("wb") as f:
            yield f


def _usage(message: str) -> Exception:
    from tools.cli import UsageError

    return UsageError(message)
