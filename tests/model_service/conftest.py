"""Fixtures of the model-service tests: OpenMP/BLAS pools of one thread, so sklearn fits stay fast on a busy host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sklearn.ensemble  # noqa: F401 - loads the OpenMP runtime now, so threadpool_limits below reaches it
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    # HistGradientBoosting's OpenMP threads contend on a loaded 2-core machine (a 0.2 s fit took 60 s)
    with threadpool_limits(limits=1):
        yield
