"""Dataset targets (SPEC C.7): forward log returns of the tick mids and their −1/0/+1 labels.

Pure and vectorised over one symbol's ticks in time order; offline only (a target needs the future).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class Targets(NamedTuple):
    """One horizon's columns: `ret` (NaN where undefined), `label` (−1/0/+1) and where it is defined."""

    ret: np.ndarray
    label: np.ndarray
    defined: np.ndarray


def forward_targets(ts_ns: np.ndarray, mid: np.ndarray, valid: np.ndarray, horizon_ns: int,
                    threshold_bps: float) -> Targets:
    """`ln(mid[t+H] / mid[t])` at each tick `t` of strictly increasing `ts_ns`, and its label against ±θ bps.

    Undefined where there is no tick at exactly t+H, where the book is invalid at either end, or where
    either mid is not a finite positive number.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    mid = np.asarray(mid, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool) & np.isfinite(mid) & (mid > 0)
    j = np.searchsorted(ts, ts + horizon_ns)
    jj = np.minimum(j, len(ts) - 1)
    defined = (j < len(ts)) & ok & (ts[jj] == ts + horizon_ns) & ok[jj] if len(ts) else np.zeros(0, bool)
    ret = np.full(len(ts), np.nan)
    # math.log (libm), as the engine's return features use: numpy's SIMD log may differ in the last
    # bit between CPUs, and a dataset must not depend on the machine that built it.
    idx = np.flatnonzero(defined)
    ret[idx] = [math.log(a / b) for a, b in zip(mid[jj[idx]].tolist(), mid[idx].tolist(), strict=True)]
    theta = threshold_bps * 1e-4
    label = np.zeros(len(ts), dtype=np.int8)
    label[ret > theta] = 1
    label[ret < -theta] = -1
    return Targets(ret, label, defined)
