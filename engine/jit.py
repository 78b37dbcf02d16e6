"""The one place numba is applied: `@kernel` compiles a readable Python function with caching.

`NUMBA_DISABLE_JIT=1` (numba's own switch) runs every kernel as plain Python; each compiled
kernel also keeps its Python original as `.py_func`, so a test can compare the two.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numba

F = TypeVar("F", bound=Callable)


def kernel(fn: F) -> F:
    """Compile `fn` with numba in nopython mode, cached on disk across processes."""
    return numba.njit(cache=True, nogil=True)(fn)  # type: ignore[return-value]

