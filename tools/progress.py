"""A rich progress bar on stderr for long CLI runs, shown only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Callable


class CountBar:
    """`with CountBar("importing", "frames") as update:` — `update(done, total)`, or None off a terminal."""

    def __init__(self, label: str, unit: str) -> None:
        self.label, self.unit = label, unit
        self._bar = None

    def __enter__(self) -> Callable[[int, int], None] | None:
        if not sys.stderr.isatty():
            return None
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        self._bar = Progress(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TextColumn(self.unit),
                             TimeRemainingColumn(), console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(self.label, total=None)
        return self._update

    def _update(self, done: int, total: int) -> None:
        assert self._bar is not None
        self._bar.update(self._task, completed=done, total=total)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
