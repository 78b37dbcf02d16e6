"""Durable file writes shared by the journal, checkpoints, the feature log and repair."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path


def write_new_file(path: Path, pieces: Iterable[bytes]) -> None:
    """Create `path` (it must not exist) holding `pieces` one after another, and fsync it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    try:
        for piece in pieces:
            view = memoryview(piece)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path, fsync: Callable[[int], None] = os.fsync) -> None:
    """fsync a directory, so a file created or renamed in it survives a power loss."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fsync(fd)
    finally:
        os.close(fd)
