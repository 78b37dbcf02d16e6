"""Capture-file readers: each yields ``(recv_ns, frame_bytes)`` per recorded frame, in file order.

Formats (``.gz`` and ``.zst`` files are decompressed transparently, streaming):

- ``frames``: JSON lines ``{"recv_ns": <int>, "frame": <Bybit v5 frame object or JSON text>}`` —
  this project's own recording format. A line that is a bare Bybit frame (as in Bybit's archive
  ``.data`` files and one-frame-per-line dumps) is also accepted: its receive time is the frame's
  ``ts`` (ms -> ns), or the previous line's time when it has none (acks); the line itself is the
  frame, byte for byte.
- ``tardis``: ``<ISO-8601 UTC timestamp> <frame>`` (``2019-10-01T00:00:00.1234567Z``; up to ns
  precision, parsed exactly).
- ``hftbacktest``: ``<local receive ns> <frame>``.
- ``cryptofeed``: raw-capture format 2 lines ``{"t": "recv", "ts": <epoch s>, "data": "<frame>"}``
  (``header``/``connect``/``send``/… lines are skipped) and format 1 lines ``<epoch s>: <frame>``
  (``wss://…`` connection/send lines are skipped). Seconds are converted to ns from their decimal
  text, exactly (digits past the ninth decimal are truncated).

``auto`` sniffs the first lines of each file (`sniff`) and reads it in the format they fit.
`categories` names the Bybit market categories a capture's connection URLs
(``wss://stream.bybit.com/v5/public/linear``) give.

Lines that carry no frame are skipped and counted in ``skipped`` by reason (``blank``,
``not_recv``, ``connection``, ``bad_line``, ``bad_time``); they are not errors. A frame whose
content is broken is still yielded: the decoder turns it into a BAD_FRAME record. Receive times
outside 2000–2100 are ``bad_time`` (a unit mistake would otherwise insert billions of ticks).
"""

from __future__ import annotations

import calendar
import gzip
import io
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import orjson

FORMATS = ("frames", "tardis", "hftbacktest", "cryptofeed")
AUTO = "auto"
CATEGORIES = ("linear", "spot", "inverse", "option")
#: Lines `sniff` looks at (non-blank, from the start of the file).
SNIFF_LINES = 50
NS_PER_S = 1_000_000_000
NS_PER_MS = 1_000_000
#: Plausible receive times: 2000-01-01 .. 2100-01-01 UTC.
MIN_RECV_NS = 946_684_800 * NS_PER_S
MAX_RECV_NS = 4_102_444_800 * NS_PER_S

Frame = tuple[int, bytes]
_SECONDS = re.compile(rb"([0-9]{1,12})(?:\.([0-9]+))?")
_ISO = re.compile(rb"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?"
                  rb"(?:Z|\+00:00|\+0000)")
_CRYPTOFEED_TS = re.compile(rb'"ts"\s*:\s*([0-9]{1,12}(?:\.[0-9]+)?)[\s,}]')
_CATEGORY_URL = re.compile(rb"wss?://[^\s\"]*/v5/public/(linear|spot|inverse|option)\b")
_ISO_HEAD = re.compile(rb"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9:.]+Z? ")


class BadLine(ValueError):
    """A line that fits no frame layout of its format; ``reason`` is the skipped-count key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def open_capture(path: str | Path) -> Iterator[BinaryIO]:
    """Open a capture file for binary line reading, decompressing ``.gz`` / ``.zst`` on the fly."""
    p = Path(path)
    if p.suffix == ".gz":
        with gzip.open(p, "rb") as f:
            yield f  # type: ignore[misc]
    elif p.suffix == ".zst":
        import zstandard

        with p.open("rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
            with io.BufferedReader(reader) as f:  # type: ignore[arg-type]
                yield f
    else:
        with p.open("rb") as f:
            yield f


def read(fmt: str, path: str | Path, skipped: Counter[str] | None = None) -> Iterator[Frame]:
    """Yield ``(recv_ns, frame_bytes)`` of one capture file; count skipped lines in `skipped`."""
    if fmt == AUTO:
        fmt = sniff(path) or "frames"
    parse = _PARSERS.get(fmt)
    if parse is None:
        raise ValueError(f"unknown capture format {fmt!r}; known: {', '.join(FORMATS)}")
    skipped = Counter() if skipped is None else skipped
    state = [0]  # last receive time, for bare frames without ts
    with open_capture(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                skipped["blank"] += 1
                continue
            try:
                recv_ns, frame = parse(line, state)
            except BadLine as e:
                skipped[e.reason] += 1
                continue
            if not MIN_RECV_NS <= recv_ns < MAX_RECV_NS:
                skipped["bad_time"] += 1
                continue
            state[0] = recv_ns
            yield recv_ns, frame


def sniff(path: str | Path) -> str | None:
    """The format the first non-blank lines of `path` fit best (None: none of them, or no lines)."""
    votes: Counter[str] = Counter()
    n = 0
    with open_capture(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            kind = looks_like(line)
            if kind is not None:
                votes[kind] += 1
            n += 1
            if n >= SNIFF_LINES:
                break
    if not votes:
        return None
    best, count = votes.most_common(1)[0]
    return best if count * 2 > n else None


def looks_like(line: bytes) -> str | None:
    """The format one capture line is written in, judged by its layout alone (None: no format)."""
    if line.startswith(b"{"):
        return _json_line_format(line)
    if line.startswith((b"wss://", b"ws://")):
        return "cryptofeed"
    head, _, rest = line.partition(b" ")
    if not rest.lstrip().startswith(b"{"):
        return None
    if head.endswith(b":") and _SECONDS.fullmatch(head[:-1]):
        return "cryptofeed"
    if _ISO_HEAD.match(line):
        return "tardis"
    return "hftbacktest" if head.isdigit() and len(head) <= 19 else None


def _json_line_format(line: bytes) -> str | None:
    """``cryptofeed`` for a format-2 line, ``frames`` for an envelope or a bare Bybit frame."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    if "t" in obj and ("ts" in obj or obj.get("t") == "header"):
        return "cryptofeed"
    if ("recv_ns" in obj and "frame" in obj) or "topic" in obj or "op" in obj:
        return "frames"
    return None


def categories(path: str | Path) -> set[str]:
    """The Bybit v5 market categories named by connection URLs anywhere in `path`."""
    found: set[str] = set()
    with open_capture(path) as f:
        for line in f:
            if b"/v5/public/" in line:
                found.update(m.decode() for m in _CATEGORY_URL.findall(line))
    return found


def seconds_to_ns(text: bytes) -> int:
    """Return epoch seconds given as decimal text (``b"1786310819.228447"``) as exact ns."""
    m = _SECONDS.fullmatch(text)
    if m is None:
        raise BadLine("bad_time")
    frac = (m.group(2) or b"")[:9].ljust(9, b"0")
    return int(m.group(1)) * NS_PER_S + int(frac)


def iso_to_ns(text: bytes) -> int:
    """Return a UTC ISO-8601 timestamp (``2019-10-01T00:00:00.1234567Z``) as exact epoch ns."""
    m = _ISO.fullmatch(text)
    if m is None:
        raise BadLine("bad_time")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and s < 61):
        raise BadLine("bad_time")
    seconds = calendar.timegm((y, mo, d, h, mi, s, 0, 0, 0))
    return seconds * NS_PER_S + int((m.group(7) or b"").ljust(9, b"0"))


# --- per-format line parsers: (line, state) -> (recv_ns, frame) or raise BadLine -----------------

def _frames_line(line: bytes, state: list[int]) -> Frame:
    """Parse a ``frames`` line: a ``{recv_ns, frame}`` envelope or a bare Bybit frame."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return state[0], line  # a broken frame: the decoder journals it as bad_json
    if type(obj) is dict and "recv_ns" in obj and "frame" in obj:
        recv_ns, frame = obj["recv_ns"], obj["frame"]
        if type(recv_ns) is not int:
            raise BadLine("bad_time")
        if type(frame) is str:
            return recv_ns, frame.encode()
        return recv_ns, orjson.dumps(frame)
    ts = obj.get("ts") if type(obj) is dict else None
    return (ts * NS_PER_MS if type(ts) is int else state[0]), line


def _split_first(line: bytes, sep: bytes) -> tuple[bytes, bytes]:
    """Split `line` at the first `sep` into (head, rest) or raise bad_line."""
    head, found, rest = line.partition(sep)
    if not found or not rest.strip():
        raise BadLine("bad_line")
    return head, rest.strip()


def _tardis_line(line: bytes, state: list[int]) -> Frame:
    """Parse ``<ISO timestamp> <frame>``."""
    head, frame = _split_first(line, b" ")
    return iso_to_ns(head), frame


def _hftbacktest_line(line: bytes, state: list[int]) -> Frame:
    """Parse ``<local ns> <frame>``."""
    head, frame = _split_first(line, b" ")
    if not head.isdigit() or len(head) > 19:
        raise BadLine("bad_time")
    return int(head), frame


def _cryptofeed_line(line: bytes, state: list[int]) -> Frame:
    """Parse a cryptofeed raw-capture line (format 2 JSON object, or format 1 ``<s>: <frame>``)."""
    if line.startswith(b"{"):
        return _cryptofeed_v2(line)
    if line.startswith(b"wss://") or line.startswith(b"ws://"):
        raise BadLine("connection")
    head, frame = _split_first(line, b": ")
    return seconds_to_ns(head), frame


def _cryptofeed_v2(line: bytes) -> Frame:
    """Parse ``{"t": "recv", "ts": <s>, "data": "<frame>"}``; other ``t`` types are skipped."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise BadLine("bad_line") from None
    if type(obj) is not dict or obj.get("t") != "recv":
        raise BadLine("not_recv")
    data = obj.get("data")
    m = _CRYPTOFEED_TS.search(line)
    if type(data) is not str or m is None:
        raise BadLine("bad_line")
    ns = seconds_to_ns(m.group(1))
    if obj.get("ts") != float(m.group(1)):  # the regex found a different "ts" than the object's
        raise BadLine("bad_time")
    return ns, data.encode()


_PARSERS: dict[str, Callable[[bytes, list[int]], Frame]] = {
    "frames": _frames_line, "tardis": _tardis_line, "hftbacktest": _hftbacktest_line,
    "cryptofeed": _cryptofeed_line,
}
