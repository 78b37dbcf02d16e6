"""The time-ordered split: train, validation, test by time, with a gap of at least the horizon between them.

A label at tick t looks at the mid at t + H, so a training row within H before the validation
period would carry validation-period prices into training. Rows in ``[t1 - gap, t1)`` and
``[t2 - gap, t2)`` are therefore left out (t1, t2 the first ticks of validation and test), and no
row is ever shuffled across time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class SplitError(ValueError):
    """The rows cannot be split as asked (too few ticks for the fractions and the gap)."""


@dataclass(frozen=True)
class Split:
    """Row indices of each part (rows sorted by ts) and where the parts begin."""

    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray
    validation_from_ns: int
    test_from_ns: int
    gap_ns: int

    def sizes(self, rows: int) -> dict[str, int]:
        """Rows in each part and rows left out in the gaps, of `rows` in all."""
        n = {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}
        return {**n, "left_out_in_gaps": rows - sum(n.values())}


def time_split(ts: np.ndarray, gap_ns: int, validation: float = 0.2, test: float = 0.2,
               min_rows: int = 10) -> Split:
    """Split rows with sorted timestamps `ts` by time: the last `test` of ticks, the `validation` before it."""
    if not (0 < validation < 1 and 0 < test < 1 and validation + test < 1):
        raise SplitError(f"validation {validation} and test {test} must be fractions in (0, 1) summing below 1")
    if gap_ns < 0:
        raise SplitError(f"gap must be >= 0 ns, got {gap_ns}")
    ticks = np.unique(ts)
    if len(ticks) < 3:
        raise SplitError(f"{len(ticks)} distinct ticks cannot make a train, validation and test part")
    t1 = int(ticks[min(len(ticks) - 2, max(1, int(len(ticks) * (1 - validation - test))))])
    t2 = int(ticks[min(len(ticks) - 1, max(2, int(len(ticks) * (1 - test))))])
    idx = np.arange(len(ts))
    parts = (idx[ts < t1 - gap_ns], idx[(ts >= t1) & (ts < t2 - gap_ns)], idx[ts >= t2])
    for name, part in zip(("train", "validation", "test"), parts, strict=True):
        if len(part) < min_rows and name == "validation" and t1 == t2:
            raise SplitError(f"validation {validation} of {len(ticks)} ticks is less than one tick: "
                             "give a larger fraction")
        if len(part) < min_rows:
            raise SplitError(f"the {name} part has {len(part)} rows (< {min_rows}) after a gap of "
                             f"{gap_ns / 1e9:g} s between parts: the dataset is too short for this horizon")
    return Split(*parts, validation_from_ns=t1, test_from_ns=t2, gap_ns=gap_ns)
