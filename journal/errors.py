"""Journal errors: damage that must stop a reader rather than be skipped."""

from __future__ import annotations

from pathlib import Path


class JournalError(Exception):
    """Base class for journal failures (locked directory, unusable layout, corruption)."""


class JournalCorruption(JournalError):
    """A segment holds bytes that are not a valid record where one must be; names file and offset."""

    def __init__(self, path: str | Path, offset: int, reason: str) -> None:
        self.path = str(path)
        self.offset = int(offset)
        self.reason = reason
        super().__init__(f"{self.path}: {reason} at offset {self.offset}")
